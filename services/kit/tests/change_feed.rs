//! The change feed on SQLite and PostgreSQL: appended in the writer's transaction, served in
//! order, resumable from a cursor across disconnects and restarts.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use samsyn_kit::db;
use samsyn_kit::feed::{ChangeFeed, NewChange, migration::CreateChangeFeed};
use samsyn_kit::testing;
use samsyn_proto::common::v1::Change;
use sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_stream::StreamExt;

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateChangeFeed)]
    }
}

fn change(n: usize) -> NewChange {
    NewChange {
        entity_kind: "referral",
        entity_id: format!("referral-{n}"),
        change_kind: "created",
        participant_id: Some(format!("participant-{n}")),
        payload: format!("Åsa Öberg-Ängström {n}").into_bytes(),
    }
}

async fn commit(db: &DatabaseConnection, feed: &ChangeFeed, n: usize) -> u64 {
    let txn = db.begin().await.unwrap();
    let sequence = ChangeFeed::append(&txn, change(n)).await.unwrap();
    txn.commit().await.unwrap();
    feed.notify_committed();
    sequence
}

async fn next(stream: &mut samsyn_kit::feed::ChangeStream) -> Change {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a change arrives")
        .expect("the stream stays open")
        .expect("no error")
}

/// Writes, consumes part, disconnects, restarts on a new connection, writes more, resumes.
async fn resume_sees_every_change_once_in_order(url: &str) {
    let db = db::connect::<Migrator>(url).await.unwrap();
    let feed = ChangeFeed::new(db.clone());
    for n in 1..=5 {
        commit(&db, &feed, n).await;
    }

    let mut stream = feed.watch(0);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut stream).await);
    }
    let cursor = seen.last().unwrap().sequence;
    drop(stream);

    // A change rolled back never reaches the feed.
    let txn = db.begin().await.unwrap();
    ChangeFeed::append(&txn, change(99)).await.unwrap();
    txn.rollback().await.unwrap();

    // Restart: a new connection (and migration run) on the same database.
    db.close().await.unwrap();
    let db = db::connect::<Migrator>(url).await.unwrap();
    let feed = ChangeFeed::new(db.clone());
    for n in 6..=8 {
        commit(&db, &feed, n).await;
    }

    let mut stream = feed.watch(cursor);
    for _ in 0..5 {
        seen.push(next(&mut stream).await);
    }
    // Live: a change committed while the consumer waits arrives without reconnecting.
    commit(&db, &feed, 9).await;
    seen.push(next(&mut stream).await);

    let ids: Vec<_> = seen.iter().map(|c| c.entity_id.clone()).collect();
    let expected: Vec<_> = (1..=9).map(|n| format!("referral-{n}")).collect();
    assert_eq!(ids, expected, "every change exactly once, in commit order");
    assert!(seen.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(
        String::from_utf8(seen[0].payload.clone()).unwrap(),
        "Åsa Öberg-Ängström 1",
        "payload bytes round-trip"
    );
    assert_eq!(
        seen[0].participant_id.as_ref().unwrap().value,
        "participant-1"
    );
    assert!(seen[0].recorded_at.is_some());
}

/// Many concurrent writers while a watcher follows live: no gap, no duplicate, no reordering.
async fn concurrent_writers_lose_nothing(url: &str) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let db = db::connect::<Migrator>(url).await.unwrap();
    // A short poll so that commits by other connections are also picked up promptly.
    let feed = ChangeFeed::new(db.clone()).with_poll_interval(Duration::from_millis(20));
    let mut stream = feed.watch(0);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let db = db.clone();
        let feed = feed.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                commit(&db, &feed, w * 1000 + i).await;
            }
        }));
    }
    let mut sequences = Vec::new();
    let mut ids = BTreeSet::new();
    for _ in 0..WRITERS * EACH {
        let change = next(&mut stream).await;
        sequences.push(change.sequence);
        assert!(ids.insert(change.entity_id), "no change twice");
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(ids.len(), WRITERS * EACH);
}

#[tokio::test]
async fn sqlite_resume_sees_every_change_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    resume_sees_every_change_once_in_order(&testing::fresh_sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_resume_sees_every_change_once_in_order() {
    resume_sees_every_change_once_in_order(&testing::fresh_postgres_url().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_writers_lose_nothing(&testing::fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_writers_lose_nothing() {
    concurrent_writers_lose_nothing(&testing::fresh_postgres_url().await.unwrap()).await;
}

#[tokio::test]
async fn an_idle_feed_sends_heartbeats_only_to_those_who_ask() {
    let dir = tempfile::tempdir().unwrap();
    let db = db::connect::<Migrator>(&testing::fresh_sqlite_url(dir.path()))
        .await
        .unwrap();
    let feed = ChangeFeed::new(db.clone()).with_poll_interval(Duration::from_millis(10));
    let sequence = commit(&db, &feed, 1).await;

    let mut stream = feed.watch_with_heartbeat(0, Some(Duration::from_millis(50)));
    assert_eq!(next(&mut stream).await.entity_id, "referral-1");
    let heartbeat = next(&mut stream).await;
    assert_eq!(heartbeat.change_kind, samsyn_kit::feed::HEARTBEAT);
    assert_eq!(heartbeat.sequence, sequence, "caught up to the last change");
    assert!(heartbeat.entity_id.is_empty() && heartbeat.payload.is_empty());
    commit(&db, &feed, 2).await;
    let change = next(&mut stream).await;
    assert_eq!(
        change.entity_id, "referral-2",
        "changes still arrive in order"
    );

    let mut quiet = feed.watch(sequence + 1);
    let nothing = tokio::time::timeout(Duration::from_millis(200), quiet.next()).await;
    assert!(nothing.is_err(), "no heartbeat unless asked for");
}
