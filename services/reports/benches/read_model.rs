//! Building the reports' read model from the feeds, and report latency, over real gRPC and
//! mutual TLS on SQLite.
//!
//! 10,000 participants with a year of history are written straight into the change feeds of
//! the four real services (referral, review, enrolment, care team, a SIP with a meeting and
//! an evaluation, a fifth discharged, a third with a board stay, a tenth in a research
//! study): about 90,000 changes. The reports part then follows the feeds from the start;
//! the time until it has applied all four is the build time. Then each report is asked for
//! 50 times; the very first report also loads the read model into memory (what every report
//! cost before the facts were kept in memory), and is printed on its own. `PARTICIPANTS` in
//! the environment changes the size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, Utc};
use prost::Message;
use samsyn_kit::config::Limits;
use samsyn_kit::feed::entity as feed;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::{ServedPart, fresh_sqlite_url};
use samsyn_kit::time::{to_calendar_date, to_timestamp};
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::common::v1::{OrganisationId, ParticipantId, Revision, StaffRef};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::reports::v1 as pb;
use samsyn_proto::reports::v1::reports_service_client::ReportsServiceClient;
use samsyn_reports::{Feed, ReportSettings};
use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, EntityTrait, QueryOrder, TransactionTrait};

const MUNICIPALITIES: [&str; 10] = [
    "1257", "1260", "1275", "1276", "1277", "1278", "1282", "1283", "1284", "1292",
];
const READS: usize = 50;

fn pid(n: usize) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: format!("0193a5f0-0000-7000-8000-{n:012}"),
    })
}

struct Row {
    entity_kind: &'static str,
    entity_id: String,
    change_kind: &'static str,
    participant: usize,
    at: DateTime<Utc>,
    payload: Vec<u8>,
}

fn summary(n: usize, status: participants_pb::ParticipantStatus, day: NaiveDate) -> Vec<u8> {
    participants_pb::ParticipantSummary {
        participant_id: pid(n),
        name: String::new(),
        home_municipality_code: MUNICIPALITIES[n % MUNICIPALITIES.len()].to_owned(),
        status: status as i32,
        revision: Some(Revision { value: 1 }),
        enrolled_on: (status as i32 >= participants_pb::ParticipantStatus::Enrolled as i32)
            .then(|| to_calendar_date(day)),
        discharged_on: (status == participants_pb::ParticipantStatus::Discharged)
            .then(|| to_calendar_date(day + Days::new(200))),
        discharge_reason: if status == participants_pb::ParticipantStatus::Discharged {
            participants_pb::DischargeReason::ReadyForOrdinaryCare as i32
        } else {
            0
        },
        participation_consent_revoked_at: None,
    }
    .encode_to_vec()
}

/// A year of one participant's history on each feed: participants, consent, plans, board.
fn history(n: usize, start: NaiveDate) -> [Vec<Row>; 4] {
    use participants_pb::ParticipantStatus as S;
    let day = start + Days::new(u64::try_from(n % 300).unwrap());
    let at = |offset: u64| {
        (day + Days::new(offset))
            .and_hms_opt(9, 0, 0)
            .unwrap()
            .and_utc()
    };
    let row = |kind, change, offset, payload| Row {
        entity_kind: kind,
        entity_id: pid(n).unwrap().value,
        change_kind: change,
        participant: n,
        at: at(offset),
        payload,
    };
    let mut people = vec![
        row("participant", "referred", 0, summary(n, S::Referred, day)),
        row("participant", "accepted", 3, summary(n, S::Accepted, day)),
        row("participant", "enrolled", 7, summary(n, S::Enrolled, day)),
        row(
            "care_team",
            "coordinator_assigned",
            7,
            participants_pb::CareTeam {
                participant_id: pid(n),
                assignments: vec![participants_pb::Assignment {
                    assignment_id: format!("a{n}"),
                    kind: participants_pb::AssignmentKind::CareTeamMember as i32,
                    staff: Some(StaffRef {
                        staff_id: format!("SE2321000255-cm{:03}", n % 50),
                        organisation_id: Some(OrganisationId {
                            value: "SE2321000255".into(),
                        }),
                        unit_id: String::new(),
                    }),
                    role: participants_pb::CareRole::CaseManager as i32,
                    valid_from: Some(to_timestamp(at(7))),
                    ..participants_pb::Assignment::default()
                }],
                revision: Some(Revision { value: 4 }),
            }
            .encode_to_vec(),
        ),
    ];
    if n.is_multiple_of(5) {
        people.push(row(
            "participant",
            "discharged",
            200,
            summary(n, S::Discharged, day),
        ));
    }
    let consents = if n.is_multiple_of(10) {
        vec![row(
            "consent",
            "recorded",
            7,
            consent_pb::Consent {
                id: format!("c{n}"),
                participant_id: pid(n),
                kind: consent_pb::ConsentKind::ResearchStudy as i32,
                valid_from: Some(to_timestamp(at(7))),
                state: consent_pb::ConsentState::Recorded as i32,
                ..consent_pb::Consent::default()
            }
            .encode_to_vec(),
        )]
    } else {
        Vec::new()
    };
    let plan = |meetings: usize, evaluations: usize| {
        plans_pb::Plan {
            id: format!("plan{n}"),
            participant_id: pid(n),
            status: plans_pb::PlanStatus::Active as i32,
            created_at: Some(to_timestamp(at(14))),
            content: Some(plans_pb::PlanContent {
                needs: vec![
                    plans_pb::Need {
                        id: format!("n{n}a"),
                        life_area: plans_pb::LifeArea::Housing as i32,
                        description: String::new(),
                        no_intervention_reason: 0,
                    },
                    plans_pb::Need {
                        id: format!("n{n}b"),
                        life_area: plans_pb::LifeArea::Finances as i32,
                        description: String::new(),
                        no_intervention_reason: 0,
                    },
                ],
                interventions: vec![plans_pb::Intervention {
                    id: format!("i{n}"),
                    need_id: format!("n{n}a"),
                    responsible_organisation_id: Some(OrganisationId {
                        value: MUNICIPALITIES[n % MUNICIPALITIES.len()].into(),
                    }),
                    status: plans_pb::InterventionStatus::Started as i32,
                    start_on: Some(to_calendar_date(day + Days::new(30))),
                    ..plans_pb::Intervention::default()
                }],
                ..plans_pb::PlanContent::default()
            }),
            meetings: (0..meetings)
                .map(|_| plans_pb::Meeting {
                    id: format!("m{n}"),
                    held_on: Some(to_calendar_date(day + Days::new(21))),
                    ..plans_pb::Meeting::default()
                })
                .collect(),
            evaluations: (0..evaluations)
                .map(|_| plans_pb::Evaluation {
                    id: format!("e{n}"),
                    recorded_at: Some(to_timestamp(at(60))),
                    ..plans_pb::Evaluation::default()
                })
                .collect(),
            ..plans_pb::Plan::default()
        }
        .encode_to_vec()
    };
    let plans = vec![
        row("plan", "created", 14, plan(0, 0)),
        row("plan", "meeting_recorded", 21, plan(1, 0)),
        row("plan", "evaluated", 60, plan(1, 1)),
    ];
    let mut board = Vec::new();
    if n.is_multiple_of(3) {
        let entry = |off: bool| {
            board_pb::BoardEntry {
                entry_id: format!("b{n}"),
                team_id: "team".into(),
                participant_id: pid(n),
                state: if off {
                    board_pb::EntryState::TakenOff
                } else {
                    board_pb::EntryState::OnBoard
                } as i32,
                put_on_at: Some(to_timestamp(at(40))),
                taken_off_at: off.then(|| to_timestamp(at(55))),
                ..board_pb::BoardEntry::default()
            }
            .encode_to_vec()
        };
        board.push(row("board_entry", "put_on", 40, entry(false)));
        board.push(row("board_entry", "taken_off", 55, entry(true)));
    }
    [people, consents, plans, board]
}

/// Appends `rows` to the feed at `url`; returns the feed's newest sequence.
async fn fill(url: &str, rows: Vec<Row>) -> u64 {
    let db = sea_orm::Database::connect(url).await.unwrap();
    let txn = db.begin().await.unwrap();
    for chunk in rows.chunks(1000) {
        feed::Entity::insert_many(chunk.iter().map(|r| feed::ActiveModel {
            sequence: NotSet,
            entity_kind: Set(r.entity_kind.to_owned()),
            entity_id: Set(r.entity_id.clone()),
            change_kind: Set(r.change_kind.to_owned()),
            participant_id: Set(pid(r.participant).map(|p| p.value)),
            recorded_at: Set(r.at),
            payload: Set(r.payload.clone()),
            traceparent: Set(String::new()),
        }))
        .exec(&txn)
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    feed::Entity::find()
        .order_by_desc(feed::Column::Sequence)
        .one(&db)
        .await
        .unwrap()
        .map_or(0, |row| u64::try_from(row.sequence).unwrap())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let participants: usize = std::env::var("PARTICIPANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let context = |url: String| PartContext {
        database_url: url,
        data_dir: dir.path().to_path_buf(),
        limits: Limits::default(),
    };
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let mut feeds: [Vec<Row>; 4] = Default::default();
    for n in 0..participants {
        for (all, rows) in feeds.iter_mut().zip(history(n, start)) {
            all.extend(rows);
        }
    }
    // Each feed in commit order, as the services would have written it.
    for rows in &mut feeds {
        rows.sort_by_key(|r| r.at);
    }
    let changes: usize = feeds.iter().map(Vec::len).sum();
    let [people, consents, plans, board] = feeds;
    let urls: Vec<String> = (0..4).map(|_| fresh_sqlite_url(dir.path())).collect();
    let parts = [
        ServedPart::start(
            // The feed rows are written straight into the feed table: no enrolment is asked
            // for, so the participants part needs no consent feed here.
            samsyn_participants::part(&context(urls[0].clone()), None)
                .await
                .unwrap(),
        )
        .await,
        ServedPart::start(
            samsyn_consent::part(&context(urls[1].clone()))
                .await
                .unwrap(),
        )
        .await,
        ServedPart::start(samsyn_plans::part(&context(urls[2].clone())).await.unwrap()).await,
        ServedPart::start(samsyn_board::part(&context(urls[3].clone())).await.unwrap()).await,
    ];
    let mut heads = Vec::new();
    for (url, rows) in urls.iter().zip([people, consents, plans, board]) {
        heads.push(fill(url, rows).await);
    }
    let settings = ReportSettings {
        programme_municipalities: MUNICIPALITIES.iter().map(|m| (*m).to_owned()).collect(),
        ..ReportSettings::default()
    };
    let began = Instant::now();
    let (part, progress) = samsyn_reports::part_with_progress(
        &context(fresh_sqlite_url(dir.path())),
        settings,
        samsyn_reports::FeedChannels {
            participants: parts[0].channel.clone(),
            consent: parts[1].channel.clone(),
            plans: parts[2].channel.clone(),
            board: parts[3].channel.clone(),
        },
    )
    .await
    .unwrap();
    let reports = ServedPart::start(part).await;
    for (feed, head) in Feed::ALL.into_iter().zip(heads) {
        assert!(
            progress
                .wait_for(feed, head, Duration::from_secs(3600))
                .await,
            "{} never caught up",
            feed.as_str()
        );
    }
    let built = began.elapsed();
    println!(
        "read model: {participants} participants, {changes} changes on 4 feeds, built in {} ms ({:.0} changes/s)",
        built.as_millis(),
        changes as f64 / built.as_secs_f64()
    );
    let mut client = ReportsServiceClient::new(reports.channel.clone());
    let t = Instant::now();
    client
        .get_report(pb::GetReportRequest {
            kind: pb::ReportKind::Recruitment as i32,
            year: 2025,
            format: pb::ReportFormat::Csv as i32,
        })
        .await
        .unwrap();
    println!(
        "first GetReport (loads the read model into memory) {:>6.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    for (name, kind) in [
        ("recruitment", pb::ReportKind::Recruitment),
        (
            "intervention_coverage",
            pb::ReportKind::InterventionCoverage,
        ),
        ("board", pb::ReportKind::Board),
        ("fidelity", pb::ReportKind::Fidelity),
        ("sip_kollen", pb::ReportKind::SipKollen),
        ("board_levels", pb::ReportKind::BoardLevels),
    ] {
        let mut times = Vec::new();
        for _ in 0..READS {
            let t = Instant::now();
            let report = client
                .get_report(pb::GetReportRequest {
                    kind: kind as i32,
                    year: 2025,
                    format: pb::ReportFormat::Csv as i32,
                })
                .await
                .unwrap()
                .into_inner();
            times.push(t.elapsed());
            assert!(!report.rows.is_empty());
        }
        times.sort();
        println!(
            "GetReport {name:<22} p50 {:>6.1} ms  p99 {:>6.1} ms",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0
        );
    }
}
