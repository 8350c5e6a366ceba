//! Synthetic feed changes for the access view's tests and bench (fictional people only).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use chrono::{DateTime, Utc};
use prost::Message;
use samsyn_kit::time::to_timestamp;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::common::v1::{self as common, Change};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1 as participants_pb;

use super::{AccessView, FeedName};

/// The region organisation of the fixtures.
pub const REGION: &str = "SE2321000255";
/// The municipality of the fixtures (Helsingborg).
pub const HELSINGBORG: &str = "1283";

/// A participant id message.
pub fn pid(value: &str) -> Option<common::ParticipantId> {
    Some(common::ParticipantId {
        value: value.to_owned(),
    })
}

/// An organisation id message.
pub fn org(value: &str) -> Option<common::OrganisationId> {
    Some(common::OrganisationId {
        value: value.to_owned(),
    })
}

/// A feed change with a payload.
pub fn change(
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

/// A heartbeat at `sequence`.
pub fn heartbeat(sequence: u64) -> Change {
    Change {
        sequence,
        change_kind: samsyn_kit::feed::HEARTBEAT.to_owned(),
        recorded_at: Some(to_timestamp(Utc::now())),
        ..Change::default()
    }
}

/// A participant change with the given status and revision.
pub fn participant(
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
        ..Default::default()
    }
    .encode_to_vec();
    change(sequence, "participant", id, Utc::now(), payload)
}

/// A care-team member assignment.
pub fn member(
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

/// A municipal main-coordinator assignment.
pub fn coordinator(staff: &str, org_id: &str) -> participants_pb::Assignment {
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

/// A care-team change replacing the whole team.
pub fn care_team(
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
pub fn sharing(id: &str, participant: &str, revision: u64) -> consent_pb::Consent {
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

/// A consent change carrying the whole consent.
pub fn consent_change(sequence: u64, consent: &consent_pb::Consent) -> Change {
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

/// A board-entry change: `participant` on `team`'s board, or taken off it.
pub fn board_entry(
    sequence: u64,
    entry_id: &str,
    team: &str,
    participant: &str,
    state: board_pb::EntryState,
) -> Change {
    let payload = board_pb::BoardEntry {
        entry_id: entry_id.to_owned(),
        team_id: team.to_owned(),
        participant_id: pid(participant),
        state: state as i32,
        reason: "Försämring efter utskrivning".to_owned(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut c = change(sequence, "board_entry", participant, Utc::now(), payload);
    c.entity_id = entry_id.to_owned();
    c
}

/// A view in which every feed is current at its cursor.
pub fn current(view: &AccessView) {
    for feed in FeedName::ALL {
        view.apply(feed, &heartbeat(view.cursor(feed))).unwrap();
    }
}
