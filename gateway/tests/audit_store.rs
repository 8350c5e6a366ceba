//! The durable audit trail on SQLite and PostgreSQL: events survive a reopen, concurrent
//! callers are group-committed in order, and every kind of tampering with the rows — an
//! edited event, an edited index column, a deleted, reordered or cut-off event, a forged
//! checkpoint — is found at its position; a purge leaves the rest verifiable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use samsyn_gateway::audit::store::{AuditStore, CHECKPOINT_EVERY, Filter, Verification};
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
        export: None,
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

/// The positions of the first 100 events `filter` finds.
async fn found(store: &AuditStore, filter: Filter) -> Vec<u64> {
    store
        .query(&filter, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect()
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

    let cases: [(&str, &str, u64); 7] = [
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
            "an event hidden from auditors' queries",
            "DELETE FROM audit_index WHERE kind = 'p' AND position = 900",
            900,
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

/// Two gateways on one PostgreSQL database append concurrently: one chain, every event
/// once, positions without gaps, and it verifies as a whole (checkpoints from either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_append_to_one_chain_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-signing-key");
    let url = fresh_postgres_url().await.unwrap();
    let replicas = [
        Arc::new(AuditStore::open(&url, &key).await.unwrap()),
        Arc::new(AuditStore::open(&url, &key).await.unwrap()),
    ];
    const PER_REPLICA: u64 = 700;
    let mut writers = Vec::new();
    for (r, store) in replicas.iter().enumerate() {
        for lane in 0..4u64 {
            let store = Arc::clone(store);
            writers.push(tokio::spawn(async move {
                let mut positions = Vec::new();
                for n in (lane..PER_REPLICA).step_by(4) {
                    let position = store
                        .append(samsyn_gateway::audit::store::Record::of(&event(
                            n + r as u64 * PER_REPLICA,
                        )))
                        .await
                        .unwrap();
                    positions.push(position);
                }
                positions
            }));
        }
    }
    let mut positions = Vec::new();
    for writer in writers {
        positions.extend(writer.await.unwrap());
    }
    positions.sort_unstable();
    let expected: Vec<u64> = (1..=2 * PER_REPLICA).collect();
    assert_eq!(
        positions, expected,
        "every event once, no gaps, no position twice"
    );
    for store in &replicas {
        let verification = verifies_whole(store, 2 * PER_REPLICA).await;
        assert!(verification.checkpoints >= 2, "{verification:?}");
    }
}

/// `store`'s whole chain verifies and holds `events` events; the verification.
async fn verifies_whole(store: &AuditStore, events: u64) -> Verification {
    let verification = store.verify().await.unwrap();
    assert_eq!(
        verification.first_broken, None,
        "{:?}",
        verification.problem
    );
    assert_eq!(verification.events, events);
    verification
}

/// Two gateways on one SQLite file take turns: each finds the head it remembers moved by
/// the other every time, and the chain still has every event once, in order, and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_taking_turns_on_one_sqlite_file_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-signing-key");
    let url = fresh_sqlite_url(dir.path());
    let replicas = [
        AuditStore::open(&url, &key).await.unwrap(),
        AuditStore::open(&url, &key).await.unwrap(),
    ];
    const TURNS: u64 = 60;
    let mut positions = Vec::new();
    for n in 0..TURNS {
        let store = &replicas[(n % 2) as usize];
        let record = samsyn_gateway::audit::store::Record::of(&event(n));
        positions.push(store.append(record).await.unwrap());
    }
    let expected: Vec<u64> = (1..=TURNS).collect();
    assert_eq!(positions, expected, "each turn takes the next position");
    for store in &replicas {
        verifies_whole(store, TURNS).await;
    }
}

/// The gateway's database role (deploy/postgres/gateway-grants.sql) appends and reads the
/// trail but cannot change or remove an event: PostgreSQL refuses, not only the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_role_cannot_update_or_delete_an_audit_event() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_postgres_url().await.unwrap();
    let store = filled(&url, &dir.path().join("key")).await;
    samsyn_kit::db::connect::<samsyn_outbox::Migrator>(&url)
        .await
        .unwrap();
    let schema = url.rsplit("search_path%3D").next().unwrap().to_owned();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (gateway_role, purge_role) = (format!("t_gw_{suffix}"), format!("t_purge_{suffix}"));
    sql(
        &store,
        &format!("CREATE ROLE {gateway_role} LOGIN; CREATE ROLE {purge_role} LOGIN"),
    )
    .await;
    let grants = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/postgres/gateway-grants.sql"),
    )
    .unwrap()
    .replace(":\"schema\"", &schema)
    .replace(":\"gateway_role\"", &gateway_role)
    .replace(":\"purge_role\"", &purge_role);
    store.database().execute_unprepared(&grants).await.unwrap();

    let base = samsyn_kit::testing::test_server_url().await.unwrap();
    let as_role = |role: &str| {
        let rest = base.split_once('@').unwrap().1;
        format!("postgres://{role}@{rest}?options=-c%20search_path%3D{schema}")
    };
    let gateway = sea_orm::Database::connect(as_role(&gateway_role).as_str())
        .await
        .unwrap();
    let count = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            db.query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT count(*) AS n FROM audit_event",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap()
        }
    };
    assert_eq!(count(&gateway).await, EVENTS as i64, "it reads");
    for statement in [
        "UPDATE audit_event SET body = '{}' WHERE position = 1",
        "DELETE FROM audit_event WHERE position = 1",
        "UPDATE audit_checkpoint SET hash = 'x'",
        "DELETE FROM audit_checkpoint",
        "TRUNCATE audit_event",
    ] {
        let refused = gateway.execute_unprepared(statement).await.unwrap_err();
        assert!(
            refused.to_string().contains("permission denied"),
            "{statement}: {refused}"
        );
    }
    // The purge role may remove, but not rewrite.
    let purge = sea_orm::Database::connect(as_role(&purge_role).as_str())
        .await
        .unwrap();
    let rewrite = purge
        .execute_unprepared("UPDATE audit_event SET body = '{}' WHERE position = 1")
        .await
        .unwrap_err();
    assert!(
        rewrite.to_string().contains("permission denied"),
        "{rewrite}"
    );
    assert_eq!(store.verify().await.unwrap().first_broken, None);
    gateway.close().await.unwrap();
    purge.close().await.unwrap();
    sql(
        &store,
        &format!(
            "DROP OWNED BY {gateway_role}, {purge_role}; DROP ROLE {gateway_role}; DROP ROLE {purge_role}"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_an_event_is_on_the_disk_before_its_call_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = AuditStore::open(&fresh_sqlite_url(dir.path()), &dir.path().join("audit.key"))
        .await
        .unwrap();
    store.record(event(1)).await.unwrap();
    // SQLite's WAL with `synchronous = NORMAL` syncs only at checkpoints, so a power loss
    // could take back events whose calls were already answered; FULL (2) syncs every commit.
    // This is the pool, which stores revocations and reviews; the writer of events has its
    // own connection, checked where it is opened (`store/sqlite.rs`).
    let row = store
        .database()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Sqlite,
            "PRAGMA synchronous",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.try_get_by_index::<i32>(0).unwrap(),
        2,
        "synchronous = FULL"
    );
}

/// Events stored before the index of participants and organisations, which their own
/// columns found until then, are found by auditors after the upgrade that finds every event
/// through the index alone; the trail still verifies.
async fn earlier_events_cases(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit.key");
    let store = AuditStore::open(url, &key).await.unwrap();
    let mut earlier = event(1);
    earlier.owner_organisation = Some("1283".into());
    store.record(earlier).await.unwrap();
    // As the gateway stored it before the index, and before the upgrade.
    sql(&store, "DELETE FROM audit_index").await;
    sql(
        &store,
        "DELETE FROM seaql_migrations WHERE version = 'm20261205_000400_index_earlier_events'",
    )
    .await;
    drop(store);

    let store = AuditStore::open(url, &key).await.unwrap();
    store.record(event(2)).await.unwrap();
    let participant = |n: u64| Filter {
        participant_id: Some(format!("0198c0de-0000-7000-8000-{n:012}")),
        ..Filter::default()
    };
    let scope = |organisation: &str| Filter {
        any_organisation: Some(organisation.into()),
        ..Filter::default()
    };
    // Each event names its own participant and shows participant 1 in a list.
    assert_eq!(
        found(&store, participant(1)).await,
        vec![1, 2],
        "by its participant"
    );
    assert_eq!(found(&store, participant(2)).await, vec![2]);
    assert_eq!(found(&store, participant(3)).await, Vec::<u64>::new());
    assert_eq!(
        found(&store, scope("SE2321000255")).await,
        vec![1, 2],
        "the caller's"
    );
    assert_eq!(found(&store, scope("1283")).await, vec![1], "the owner's");
    assert_eq!(found(&store, scope("2281")).await, Vec::<u64>::new());
    let verification = store.verify().await.unwrap();
    assert_eq!(verification.first_broken, None, "{verification:?}");
    assert_eq!(verification.events, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_before_the_index_are_found_after_the_upgrade_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    earlier_events_cases(&fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_before_the_index_are_found_after_the_upgrade_on_postgres() {
    earlier_events_cases(&fresh_postgres_url().await.unwrap()).await;
}

/// Follow-up by time: a window finds exactly the events recorded in it, whole seconds and
/// fractions alike, on SQLite (where the writer's stored times are compared as text) and on
/// PostgreSQL.
async fn time_window_cases(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = AuditStore::open(url, &dir.path().join("audit.key"))
        .await
        .unwrap();
    let at = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    };
    let times = [
        "2026-03-01T08:00:00Z",
        "2026-03-01T08:00:00.250Z",
        "2026-03-01T08:00:01Z",
        "2026-03-01T09:00:00.000001Z",
    ];
    for (n, time) in times.iter().enumerate() {
        let mut event = event(n as u64 + 1);
        event.at = at(time);
        store.record(event).await.unwrap();
    }
    let window = |from: Option<&str>, until: Option<&str>| Filter {
        from: from.map(at),
        until: until.map(at),
        ..Filter::default()
    };
    assert_eq!(
        found(&store, window(Some(times[1]), None)).await,
        vec![2, 3, 4],
        "from a fraction of a second"
    );
    assert_eq!(
        found(&store, window(Some(times[0]), Some(times[1]))).await,
        vec![1],
        "from a whole second until a fraction"
    );
    assert_eq!(
        found(
            &store,
            window(Some("2026-03-01T08:00:00.250001Z"), Some(times[3]))
        )
        .await,
        vec![3],
        "a microsecond either side"
    );
    assert_eq!(
        found(&store, window(None, Some(times[0]))).await,
        Vec::<u64>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_window_finds_the_events_recorded_in_it_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    time_window_cases(&fresh_sqlite_url(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_window_finds_the_events_recorded_in_it_on_postgres() {
    time_window_cases(&fresh_postgres_url().await.unwrap()).await;
}
