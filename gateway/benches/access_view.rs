//! Access-view read cost: `facts()` for 2 000 participants, idle and with a writer applying
//! consent changes as fast as it can. Prints numbers: `cargo bench -p samsyn-gateway --bench access_view`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prost::Message;
use samsyn_gateway::access_view::{AccessView, FeedName};
use samsyn_kit::time::to_timestamp;
use samsyn_proto::common::v1::{self as common, Change};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1 as participants_pb;

const REGION: &str = "SE2321000255";
const HELSINGBORG: &str = "1283";

fn pid(value: &str) -> Option<common::ParticipantId> {
    Some(common::ParticipantId {
        value: value.to_owned(),
    })
}

fn org(value: &str) -> Option<common::OrganisationId> {
    Some(common::OrganisationId {
        value: value.to_owned(),
    })
}

fn change(
    sequence: u64,
    entity_kind: &str,
    participant: &str,
    recorded: DateTime<Utc>,
    payload: Vec<u8>,
) -> Change {
    Change {
        sequence,
        entity_kind: entity_kind.to_owned(),
        entity_id: participant.to_owned(),
        change_kind: "changed".to_owned(),
        participant_id: pid(participant),
        recorded_at: Some(to_timestamp(recorded)),
        payload,
        traceparent: String::new(),
    }
}

fn heartbeat(sequence: u64) -> Change {
    Change {
        sequence,
        change_kind: samsyn_kit::feed::HEARTBEAT.to_owned(),
        recorded_at: Some(to_timestamp(Utc::now())),
        ..Change::default()
    }
}

fn participant(
    sequence: u64,
    id: &str,
    status: participants_pb::ParticipantStatus,
    revision: u64,
) -> Change {
    let payload = participants_pb::ParticipantSummary {
        participant_id: pid(id),
        name: "Åsa Öberg".to_owned(),
        home_municipality_code: HELSINGBORG.to_owned(),
        status: status as i32,
        revision: Some(common::Revision { value: revision }),
    }
    .encode_to_vec();
    change(sequence, "participant", id, Utc::now(), payload)
}

fn member(
    staff: &str,
    org_id: &str,
    role: participants_pb::CareRole,
) -> participants_pb::Assignment {
    participants_pb::Assignment {
        assignment_id: format!("a-{staff}"),
        kind: participants_pb::AssignmentKind::CareTeamMember as i32,
        staff: Some(common::StaffRef {
            staff_id: staff.to_owned(),
            organisation_id: org(org_id),
            unit_id: String::new(),
        }),
        role: role as i32,
        ..Default::default()
    }
}

fn coordinator(staff: &str, org_id: &str) -> participants_pb::Assignment {
    participants_pb::Assignment {
        assignment_id: format!("a-{staff}"),
        kind: participants_pb::AssignmentKind::Coordinator as i32,
        staff: Some(common::StaffRef {
            staff_id: staff.to_owned(),
            organisation_id: org(org_id),
            unit_id: "hbg-soc".to_owned(),
        }),
        principal: common::OrganisationKind::Municipality as i32,
        rank: participants_pb::CoordinatorRank::Main as i32,
        ..Default::default()
    }
}

fn care_team(
    sequence: u64,
    id: &str,
    revision: u64,
    assignments: Vec<participants_pb::Assignment>,
) -> Change {
    let payload = participants_pb::CareTeam {
        participant_id: pid(id),
        assignments,
        revision: Some(common::Revision { value: revision }),
    }
    .encode_to_vec();
    change(sequence, "care_team", id, Utc::now(), payload)
}

/// Consent to share the region's plan with Helsingborg.
fn sharing(id: &str, participant: &str, revision: u64) -> consent_pb::Consent {
    consent_pb::Consent {
        id: id.to_owned(),
        participant_id: pid(participant),
        kind: consent_pb::ConsentKind::InformationSharing as i32,
        sharing: Some(consent_pb::Sharing {
            from_organisation_id: org(REGION),
            to_organisation_id: org(HELSINGBORG),
            categories: vec![common::DataCategory::Plan as i32, 99],
            unit_id: String::new(),
            staff_id: String::new(),
        }),
        valid_from: Some(to_timestamp(Utc::now() - chrono::Duration::days(1))),
        state: consent_pb::ConsentState::Recorded as i32,
        note: "Får delas med kommunen".to_owned(),
        revision: Some(common::Revision { value: revision }),
        ..Default::default()
    }
}

fn consent_change(sequence: u64, consent: &consent_pb::Consent) -> Change {
    let mut c = change(
        sequence,
        "consent",
        &consent.participant_id.as_ref().unwrap().value,
        Utc::now(),
        consent.encode_to_vec(),
    );
    c.entity_id.clone_from(&consent.id);
    c
}

/// A view in which both feeds are current at `cursor`s.
fn current(view: &AccessView) {
    for feed in FeedName::ALL {
        view.apply(feed, &heartbeat(view.cursor(feed))).unwrap();
    }
}

fn main() {
    use participants_pb::CareRole as R;
    let view = Arc::new(AccessView::new(Duration::from_secs(60)));
    let ids: Vec<String> = (0..2000)
        .map(|n| format!("0198c0de-0000-7000-8000-{n:012}"))
        .collect();
    let mut sequence = 0;
    for id in &ids {
        sequence += 1;
        view.apply(
            FeedName::Participants,
            &participant(
                sequence,
                id,
                participants_pb::ParticipantStatus::Enrolled,
                3,
            ),
        )
        .unwrap();
        sequence += 1;
        let team = vec![
            coordinator("hbg-soc-7", HELSINGBORG),
            member("SE2321000255-P001", REGION, R::CaseManager),
        ];
        view.apply(FeedName::Participants, &care_team(sequence, id, 4, team))
            .unwrap();
    }
    for (n, id) in ids.iter().enumerate() {
        let n = n as u64;
        view.apply(
            FeedName::Consent,
            &consent_change(n + 1, &sharing(&format!("c-{n}"), id, 1)),
        )
        .unwrap();
    }
    current(&view);

    let measure = |label: &str| {
        let mut samples = Vec::with_capacity(200_000);
        for i in 0..200_000 {
            let id = &ids[i % ids.len()];
            let start = Instant::now();
            let f = view.facts(id, start).unwrap().unwrap();
            std::hint::black_box(f);
            samples.push(start.elapsed());
        }
        samples.sort();
        let total: Duration = samples.iter().sum();
        println!(
            "{label}: mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
            total / samples.len() as u32,
            samples[samples.len() / 2],
            samples[samples.len() * 99 / 100],
            samples[samples.len() - 1]
        );
    };
    measure("facts(), idle");

    // A writer applying consent versions as fast as it can meanwhile.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let view = Arc::clone(&view);
        let stop = Arc::clone(&stop);
        let ids = ids.clone();
        std::thread::spawn(move || {
            let mut sequence = view.cursor(FeedName::Consent);
            let mut applied = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sequence += 1;
                let id = &ids[(sequence as usize) % ids.len()];
                view.apply(
                    FeedName::Consent,
                    &consent_change(sequence, &sharing("c-x", id, 2)),
                )
                .unwrap();
                applied += 1;
            }
            applied
        })
    };
    let start = Instant::now();
    measure("facts(), writer busy");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let applied = writer.join().unwrap();
    println!(
        "writer: {applied} changes applied in {:?} ({:.0}/s)",
        start.elapsed(),
        applied as f64 / start.elapsed().as_secs_f64()
    );
}
