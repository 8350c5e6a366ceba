//! The one write path on SQLite and PostgreSQL: a keyed write is done once and replayed after,
//! a key reused for another request is refused, a failed write leaves no feed row, and of two
//! racing first attempts the loser replays the winner.
#![allow(clippy::unwrap_used)]

use samsyn_kit::db;
use samsyn_kit::feed::{ChangeFeed, NewChange, migration::CreateChangeFeed};
use samsyn_kit::idempotency::migration::{AddRequestFingerprint, CreateIdempotencyKeys};
use samsyn_kit::idempotency::{IdempotencyError, IdempotencyKey};
use samsyn_kit::testing;
use samsyn_kit::write::{Begun, Outcome, Write};
use samsyn_proto::common::v1::ParticipantId;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateChangeFeed),
            Box::new(CreateIdempotencyKeys),
            Box::new(AddRequestFingerprint),
        ]
    }
}

const SCOPE: &str = "test.Create";

#[derive(Debug, PartialEq)]
enum Failure {
    Reused,
    Refused,
    Db(String),
}

impl From<DbErr> for Failure {
    fn from(error: DbErr) -> Self {
        Self::Db(error.to_string())
    }
}

impl From<IdempotencyError> for Failure {
    fn from(error: IdempotencyError) -> Self {
        match error {
            IdempotencyError::Reused => Self::Reused,
            IdempotencyError::Db(error) => error.into(),
        }
    }
}

fn key(value: &str, request: &str) -> IdempotencyKey {
    IdempotencyKey::parse("request_id", value)
        .unwrap()
        .unwrap()
        .bind(
            None,
            &ParticipantId {
                value: request.to_owned(),
            },
        )
}

fn change(name: &str) -> NewChange {
    NewChange {
        entity_kind: "note",
        entity_id: name.to_owned(),
        change_kind: "created",
        participant_id: None,
        payload: name.as_bytes().to_vec(),
    }
}

/// Creates a note named `name` under `key`; `refuse` makes the work fail after it appended.
async fn create(
    db: &DatabaseConnection,
    feed: &ChangeFeed,
    key: &IdempotencyKey,
    name: &str,
    refuse: bool,
) -> Result<Outcome<String>, Failure> {
    let write = match Write::begin_keyed(db, feed, SCOPE, Some(key)).await? {
        Begun::Fresh(write) => write,
        Begun::Replayed(answer) => return Ok(Outcome::Replayed(answer)),
    };
    let result = async {
        write.append(change(name));
        if refuse {
            return Err(Failure::Refused);
        }
        Ok((name.to_owned(), name.as_bytes().to_vec()))
    }
    .await;
    write.finish(result).await
}

async fn feed_rows(feed: &ChangeFeed) -> Vec<String> {
    feed.read_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.entity_id)
        .collect()
}

async fn done_once_then_replayed(url: &str) {
    let db = db::connect::<Migrator>(url).await.unwrap();
    let feed = ChangeFeed::new(db.clone());
    let first = key("k-1", "Åsa");

    let refused = create(&db, &feed, &first, "Åsa", true).await;
    assert_eq!(refused.unwrap_err(), Failure::Refused);
    assert!(
        feed_rows(&feed).await.is_empty(),
        "a failed write appends nothing"
    );

    match create(&db, &feed, &first, "Åsa", false).await.unwrap() {
        Outcome::Done(name) => assert_eq!(name, "Åsa"),
        Outcome::Replayed(_) => panic!("the first successful call does the work"),
    }
    match create(&db, &feed, &first, "Åsa", false).await.unwrap() {
        Outcome::Replayed(answer) => assert_eq!(answer, "Åsa".as_bytes()),
        Outcome::Done(_) => panic!("a retry replays"),
    }
    assert_eq!(feed_rows(&feed).await, ["Åsa"], "one change for two calls");

    let other_request = key("k-1", "Örjan");
    assert_eq!(
        create(&db, &feed, &other_request, "Örjan", false)
            .await
            .unwrap_err(),
        Failure::Reused
    );
}

#[tokio::test]
async fn sqlite_keyed_write_is_done_once_then_replayed() {
    let dir = tempfile::tempdir().unwrap();
    done_once_then_replayed(&testing::fresh_sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_keyed_write_is_done_once_then_replayed() {
    done_once_then_replayed(&testing::fresh_postgres_url().await.unwrap()).await;
}

/// Two first attempts both begin before either commits (PostgreSQL lets them; SQLite's
/// `BEGIN IMMEDIATE` makes the second wait, so there it finds the answer at begin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_racing_first_attempts_replay_the_winner() {
    let url = testing::fresh_postgres_url().await.unwrap();
    let db = db::connect::<Migrator>(&url).await.unwrap();
    let feed = ChangeFeed::new(db.clone());
    let key = key("k-race", "Åsa");

    let Begun::Fresh(winner) = Write::begin_keyed(&db, &feed, SCOPE, Some(&key))
        .await
        .unwrap()
    else {
        panic!("nothing to replay yet")
    };
    let Begun::Fresh(loser) = Write::begin_keyed(&db, &feed, SCOPE, Some(&key))
        .await
        .unwrap()
    else {
        panic!("nothing committed yet")
    };
    winner.append(change("winner"));
    let won = winner
        .finish::<_, Failure>(Ok(("winner", b"winner".to_vec())))
        .await
        .unwrap();
    assert!(matches!(won, Outcome::Done("winner")));
    loser.append(change("loser"));
    match loser
        .finish::<_, Failure>(Ok(("loser", b"loser".to_vec())))
        .await
        .unwrap()
    {
        Outcome::Replayed(answer) => assert_eq!(answer, b"winner"),
        Outcome::Done(_) => panic!("the loser of a race replays the winner"),
    }
    assert_eq!(feed_rows(&feed).await, ["winner"]);
}
