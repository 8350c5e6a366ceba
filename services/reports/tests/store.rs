//! The read model's store on SQLite and PostgreSQL, with the real migrations: facts and the
//! feed cursor are written together, so a store opened again resumes after the last change
//! it took in, and a participant's funnel accumulates across changes.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, Utc};
use samsyn_kit::testing::{fresh_postgres_url, fresh_sqlite_url};
use samsyn_reports::Feed;
use samsyn_reports::domain::{ParticipantEvent, ParticipantState, Stage, StayFact, Update};
use samsyn_reports::store::{Migrator, Store};

fn at(hour: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_750_000_000 + hour * 3600, 0).unwrap()
}

fn participant(stage: Stage, event: ParticipantEvent, hour: i64) -> Update {
    Update::Participant {
        id: "p1".into(),
        state: ParticipantState {
            home_municipality: "1283".into(),
            stage,
            enrolled_on: (stage == Stage::Enrolled)
                .then(|| NaiveDate::from_ymd_opt(2025, 6, 1))
                .flatten(),
            discharged_on: None,
            exit: None,
        },
        event,
        at: at(hour),
    }
}

async fn resumes_and_accumulates(url: &str) {
    let store = Store::new(samsyn_kit::db::connect::<Migrator>(url).await.unwrap());
    assert_eq!(store.cursor(Feed::Participants).await.unwrap(), 0);
    store
        .apply(
            Feed::Participants,
            vec![
                participant(Stage::Referred, ParticipantEvent::Referred, 1),
                participant(Stage::Accepted, ParticipantEvent::Accepted, 2),
            ],
            7,
        )
        .await
        .unwrap();
    store
        .apply(
            Feed::Board,
            vec![Update::Stay {
                id: "e1".into(),
                fact: StayFact {
                    participant_id: "p1".into(),
                    team_id: "t".into(),
                    on_at: at(3),
                    off_at: None,
                    levels: Vec::new(),
                },
            }],
            3,
        )
        .await
        .unwrap();

    // Opened again (a restart): each feed resumes after its own cursor.
    let again = Store::new(samsyn_kit::db::connect::<Migrator>(url).await.unwrap());
    assert_eq!(again.cursor(Feed::Participants).await.unwrap(), 7);
    assert_eq!(again.cursor(Feed::Board).await.unwrap(), 3);
    assert_eq!(again.cursor(Feed::Plans).await.unwrap(), 0);
    again
        .apply(
            Feed::Participants,
            vec![participant(Stage::Enrolled, ParticipantEvent::Other, 5)],
            8,
        )
        .await
        .unwrap();
    let facts = again.facts().await.unwrap();
    let p = &facts.participants["p1"];
    assert_eq!(p.referred_at, Some(at(1)));
    assert_eq!(p.reviewed_at, Some(at(2)));
    assert_eq!(p.accepted_at, Some(at(2)));
    assert_eq!(p.stage, Stage::Enrolled);
    assert_eq!(p.enrolled_on, NaiveDate::from_ymd_opt(2025, 6, 1));
    assert_eq!(facts.stays.len(), 1);
    assert_eq!(again.cursor(Feed::Participants).await.unwrap(), 8);

    // Kept in memory from here: a later change is in the next snapshot, level history and
    // all, exactly as the database has it, and the snapshot a report holds stays as it was.
    again
        .apply(
            Feed::Board,
            vec![Update::Stay {
                id: "e1".into(),
                fact: StayFact {
                    participant_id: "p1".into(),
                    team_id: "t".into(),
                    on_at: at(3),
                    off_at: Some(at(9)),
                    levels: vec![(at(9), 1)],
                },
            }],
            4,
        )
        .await
        .unwrap();
    let now = again.facts().await.unwrap();
    assert_eq!(now.stays["e1"].off_at, Some(at(9)));
    assert_eq!(now.stays["e1"].levels, [(at(9), 1)]);
    assert_eq!(
        facts.stays["e1"].off_at, None,
        "a held snapshot does not change"
    );
    let stored = again.load_facts().await.unwrap();
    assert_eq!(stored.stays, now.stays);
    assert_eq!(stored.participants, now.participants);
}

#[tokio::test]
async fn sqlite_resumes_after_the_last_change_taken_in() {
    let dir = tempfile::tempdir().unwrap();
    resumes_and_accumulates(&fresh_sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn postgres_resumes_after_the_last_change_taken_in() {
    resumes_and_accumulates(&fresh_postgres_url().await.unwrap()).await;
}
