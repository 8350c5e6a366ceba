//! The durable audit trail on SQLite and PostgreSQL: events survive a reopen, concurrent
//! callers are group-committed in order, and every kind of tampering with the rows — an
//! edited event, an edited index column, a deleted, reordered or cut-off event, a forged
//! checkpoint — is found at its position; a purge leaves the rest verifiable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use samsyn_gateway::audit::store::{AuditStore, CHECKPOINT_EVERY, Filter};
use samsyn_gateway::audit::{AuditEvent, AuditTrail, Outcome, RowAccess};
use samsyn_gateway::auth::{Principal, PrincipalKind};
use samsyn_gateway::policy::Action;
use samsyn_kit::testing::{fresh_postgres_url, fresh_sqlite_url};
use samsyn_proto::common::v1::DataCategory;
use sea_orm::ConnectionTrait;

const EVENTS: u64 = 2500;

/// A synthetic event: the n-th read of a participant's plan by a case manager, every tenth
/// an emergency access with a Swedish reason, every seventh a denial.
fn event(n: u64) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        principal: Some(Principal {
            id: format!("SE2321000255-cm{:02}", n % 7),
            kind: PrincipalKind::Staff,
            organisation: Some("SE2321000255".into()),
            unit: Some("fact-nordvast".into()),
            roles: vec!["case_manager".into()],
            teams: vec![],
            purpose: Some("care".into()),
            acting_through: None,
        }),
        rpc: "/samsyn.plans.v1.PlansService/GetPlan".into(),
        action: Some(Action::Read),
        category: DataCategory::Plan,
        participant_id: Some(format!("0198c0de-0000-7000-8000-{n:012}")),
        owner_organisation: None,
        allowed: !n.is_multiple_of(7),
        policies: vec!["care-team-read".into()],
        disclosure: false,
        emergency: n.is_multiple_of(10) && !n.is_multiple_of(7),
        emergency_reason: n
            .is_multiple_of(10)
            .then(|| "Akut läge, jourläkare på väg".to_owned()),
        rows: vec![RowAccess {
            participant_id: "0198c0de-0000-7000-8000-000000000001".into(),
            disclosure: true,
        }],
        outcome: Outcome::Forwarded,
        status: tonic::Code::Ok,
        trace_id: None,
        stakeholders: Vec::new(),
        call_id: None,
    }
}

async fn filled(url: &str, key: &Path) -> AuditStore {
    let store = AuditStore::open(url, key).await.unwrap();
    let store = Arc::new(store);
    // Callers in parallel: the writer groups them, and positions still follow one chain.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..10 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            for i in 0..EVENTS / 10 {
                store
                    .record(event(worker * (EVENTS / 10) + i + 1))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    Arc::into_inner(store).unwrap()
}

async fn sql(store: &AuditStore, statement: &str) {
    store
        .database()
        .execute_unprepared(statement)
        .await
        .unwrap();
}

async fn tamper_cases(url_for: impl AsyncFn() -> String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-signing-key");

    // Intact; and still intact, and continued, after a reopen.
    let url = url_for().await;
    let store = filled(&url, &key).await;
    let verification = store.verify().await.unwrap();
    assert_eq!(verification.first_broken, None, "{verification:?}");
    assert_eq!(verification.events, EVENTS);
    assert_eq!(verification.checkpoints, EVENTS.div_ceil(CHECKPOINT_EVERY));
    drop(store);
    let store = AuditStore::open(&url, &key).await.unwrap();
    let position = store
        .append(samsyn_gateway::audit::store::Record::of(&event(9999)))
        .await
        .unwrap();
    assert_eq!(position, EVENTS + 1);
    assert_eq!(store.verify().await.unwrap().first_broken, None);
    // Follow-up: one participant's events, and emergencies awaiting review.
    let about = store
        .query(
            &Filter {
                participant_id: Some("0198c0de-0000-7000-8000-000000000020".into()),
                ..Filter::default()
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(about.len(), 1);
    assert_eq!(
        about[0].record.emergency_reason.as_deref(),
        Some("Akut läge, jourläkare på väg")
    );
    let unreviewed = Filter {
        unreviewed_emergencies: true,
        ..Filter::default()
    };
    let waiting = store.query(&unreviewed, 0, 1000).await.unwrap();
    assert!(!waiting.is_empty());
    assert!(
        store
            .mark_reviewed(waiting[0].position, "SE2321000255-rev1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_reviewed(waiting[0].position, "SE2321000255-rev1")
            .await
            .unwrap()
    );
    let still = store.query(&unreviewed, 0, 1000).await.unwrap();
    assert_eq!(still.len(), waiting.len() - 1);
    drop(store);

    let cases: [(&str, &str, u64); 6] = [
        (
            "an edited event",
            "UPDATE audit_event SET body = replace(body, '\"read\"', '\"write\"') WHERE position = 700",
            700,
        ),
        (
            "an edited index column",
            "UPDATE audit_event SET participant_id = 'someone-else' WHERE position = 800",
            800,
        ),
        (
            "a deleted event",
            "DELETE FROM audit_event WHERE position = 1500",
            1500,
        ),
        (
            "two events swapped",
            "UPDATE audit_event SET position = -1 WHERE position = 1200; \
             UPDATE audit_event SET position = 1200 WHERE position = 1201; \
             UPDATE audit_event SET position = 1201 WHERE position = -1",
            1200,
        ),
        (
            "the end cut off",
            "DELETE FROM audit_event WHERE position > 1900",
            1901,
        ),
        (
            "the start cut off",
            "DELETE FROM audit_event WHERE position <= 10",
            // A purge may end at the first checkpoint (position 1): what is provably
            // missing starts after it.
            2,
        ),
    ];
    for (case, statement, at) in cases {
        let url = url_for().await;
        let store = filled(&url, &key).await;
        sql(&store, statement).await;
        let verification = store.verify().await.unwrap();
        assert_eq!(
            verification.first_broken,
            Some(at),
            "{case}: {verification:?}"
        );
    }

    // A forged checkpoint is refused.
    let url = url_for().await;
    let store = filled(&url, &key).await;
    sql(
        &store,
        "UPDATE audit_checkpoint SET hash = CASE WHEN substr(hash, 1, 1) = '0' THEN '1' ELSE '0' END \
         || substr(hash, 2) WHERE position = 1001",
    )
    .await;
    let verification = store.verify().await.unwrap();
    assert_eq!(verification.first_broken, Some(1001), "{verification:?}");

    // A purge removes a prefix ending at a checkpoint; the rest verifies from it.
    let url = url_for().await;
    let store = filled(&url, &key).await;
    assert!(
        store.purge_before(Utc::now()).await.is_err(),
        "retention floor"
    );
    let purged = store
        .purge_through_checkpoint_before(Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(purged, 2001);
    let verification = store.verify().await.unwrap();
    assert_eq!(verification.first_broken, None, "{verification:?}");
    assert_eq!(verification.events, EVENTS - 2001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_found_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    tamper_cases(async || fresh_sqlite_url(&path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_found_on_postgres() {
    tamper_cases(async || fresh_postgres_url().await.unwrap()).await;
}
