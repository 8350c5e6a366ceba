//! What the board keeps from the plans and participants feeds, on SQLite and PostgreSQL:
//! decisions and a revoked participation consent reach the agenda and the live board, a
//! fact that changes nothing appends nothing, and the feed positions survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use samsyn_board::domain::ParticipantId as DomainParticipantId;
use samsyn_board::domain::notice::{DecisionNotice, Fact, NoticeKind};
use samsyn_board::store::{Migrator, Store};
use samsyn_kit::config::Limits;
use samsyn_kit::feed::ChangeFeed;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::{ServedPart, fresh_postgres_url, fresh_sqlite_url};
use samsyn_proto::board::v1 as pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{OrganisationId, ParticipantId, StaffRef, WatchChangesRequest};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const ANNA: &str = "0193a5f0-0000-7000-8000-0000000000a1";

fn staff() -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: "SE2321000081-S0001".into(),
        organisation_id: Some(OrganisationId {
            value: "SE2321000081-E001".into(),
        }),
        unit_id: String::new(),
    })
}

async fn serve(url: &str, dir: &std::path::Path) -> ServedPart {
    let part = samsyn_board::part(&PartContext {
        database_url: url.to_owned(),
        data_dir: dir.to_path_buf(),
        limits: Limits::default(),
    })
    .await
    .unwrap();
    ServedPart::start(part).await
}

async fn store(url: &str) -> Store {
    let db = samsyn_kit::db::connect::<Migrator>(url).await.unwrap();
    Store::new(db.clone(), ChangeFeed::new(db))
}

fn decision(kind: NoticeKind, external_id: &str) -> Fact {
    Fact::Decision {
        participant_id: DomainParticipantId::parse(ANNA).unwrap(),
        notice: DecisionNotice {
            kind,
            external_decision_id: external_id.into(),
            organisation_id: "1283".into(),
            outcome: 1,
            version: 1,
            change: 0,
            intervention_id: String::new(),
            catalogue_code: "municipality.housing_support".into(),
            inbox_id: String::new(),
            park_reason: 0,
            noted_at: Utc::now(),
        },
    }
}

fn revoked(at: Option<chrono::DateTime<Utc>>) -> Fact {
    Fact::ParticipationConsent {
        participant_id: DomainParticipantId::parse(ANNA).unwrap(),
        revoked_at: at,
    }
}

async fn feed_len(client: &mut BoardServiceClient<Channel>) -> usize {
    let mut stream = client
        .watch_changes(WatchChangesRequest {
            after_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Ok(Some(Ok(_))) =
        tokio::time::timeout(Duration::from_millis(200), stream.next()).await
    {
        n += 1;
    }
    n
}

async fn agenda(client: &mut BoardServiceClient<Channel>, team_id: &str) -> pb::Agenda {
    client
        .get_agenda(pb::GetAgendaRequest {
            team_id: team_id.into(),
            on: None,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn facts_reach_the_agenda(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let url = if postgres {
        fresh_postgres_url()
            .await
            .expect("the test PostgreSQL server")
    } else {
        fresh_sqlite_url(dir.path())
    };
    let served = serve(&url, dir.path()).await;
    let mut client = BoardServiceClient::new(served.channel.clone());
    let team = client
        .create_team(pb::CreateTeamRequest {
            request_id: "team-1".into(),
            name: "FACT-team Nordväst".into(),
            owner_organisation_id: Some(OrganisationId {
                value: "SE2321000081-E001".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let entry = client
        .put_on_board(pb::PutOnBoardRequest {
            request_id: "put-on-anna".into(),
            team_id: team.team_id.clone(),
            participant_id: Some(ParticipantId { value: ANNA.into() }),
            reason: "Kris – ångest och sömnlöshet".into(),
            criteria: vec!["crisis".into()],
            status: Some(pb::StatusAssessment {
                level: 2,
                trend: pb::Trend::Unchanged.into(),
                note: String::new(),
            }),
            recorded_by: staff(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut live = client
        .watch_board(pb::WatchBoardRequest {
            team_id: team.team_id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let snapshot = live.next().await.unwrap().unwrap();
    assert_eq!(snapshot.entries[0].latest_decision_at, None);

    // Another writer of the same database: the board's feed followers.
    let facts = store(&url).await;
    assert_eq!(facts.feed_cursor("plans").await.unwrap(), 0);
    facts
        .apply_facts(
            "plans",
            vec![
                decision(NoticeKind::Recorded, "HBG-1"),
                decision(NoticeKind::Parked, "HBG-2"),
            ],
            17,
        )
        .await
        .unwrap();
    let changed = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .expect("the live board shows it")
        .unwrap()
        .unwrap();
    assert_eq!(changed.entries[0].entry_id, entry.entry_id);
    assert!(changed.entries[0].latest_decision_at.is_some());
    assert_eq!(
        changed.entries[0].revision, entry.revision,
        "a learned fact is no edit"
    );

    let shown = agenda(&mut client, &team.team_id).await;
    assert_eq!(shown.decisions.len(), 1);
    let ids: Vec<_> = shown.decisions[0]
        .notices
        .iter()
        .map(|n| n.external_decision_id.as_str())
        .collect();
    assert_eq!(ids, ["HBG-1", "HBG-2"]);
    assert_eq!(
        shown.decisions[0].notices[1].kind,
        pb::DecisionNoticeKind::Parked as i32
    );

    // A revoked participation consent is a reason; hearing it again changes nothing.
    let at = Utc::now();
    facts
        .apply_facts("participants", vec![revoked(Some(at))], 4)
        .await
        .unwrap();
    let shown = agenda(&mut client, &team.team_id).await;
    assert!(
        shown.items[0]
            .reasons
            .contains(&(pb::AgendaReason::ParticipationConsentRevoked as i32))
    );
    let before = feed_len(&mut client).await;
    facts
        .apply_facts("participants", vec![revoked(Some(at))], 5)
        .await
        .unwrap();
    assert_eq!(feed_len(&mut client).await, before, "nothing new to show");
    facts
        .apply_facts("participants", vec![revoked(None)], 6)
        .await
        .unwrap();
    let shown = agenda(&mut client, &team.team_id).await;
    assert!(shown.items[0].participation_consent_revoked_at.is_none());

    // The positions survive a restart: a new process resumes after them.
    drop(facts);
    served.stop().await;
    let facts = store(&url).await;
    assert_eq!(facts.feed_cursor("plans").await.unwrap(), 17);
    assert_eq!(facts.feed_cursor("participants").await.unwrap(), 6);
    let served = serve(&url, dir.path()).await;
    let mut client = BoardServiceClient::new(served.channel.clone());
    assert_eq!(agenda(&mut client, &team.team_id).await.decisions.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_reach_the_agenda_sqlite() {
    facts_reach_the_agenda(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_reach_the_agenda_postgres() {
    facts_reach_the_agenda(true).await;
}
