//! Feed payloads decoded into the facts a decision needs.
//!
//! The consent service maps its records into the rule's types in its own domain (not public,
//! and the gateway must not depend on a service crate), so the same mapping is written here
//! from the wire form. Where a value is missing or unknown, the conversion errs towards
//! denial: an unknown category is dropped from a consent but a restriction missing its
//! organisation is unreadable (and the participant's facts fail until a readable version).
//!
//! A board entry carries personal data (reasons, status notes, actions); only its ids and
//! whether it is on the board are read, and nothing of it is ever logged.

use chrono::{DateTime, Utc};
use prost::Message;
use samsyn_consent_rule::{self as rule, Categories, Category};
use samsyn_kit::time::from_timestamp;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::common::v1 as common;
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::participants::v1 as participants_pb;

use super::{
    AssignmentRole, CareRole, CoordinatorRank, OrganisationKind, ParticipantStatus, TeamMember,
};

/// Why a payload could not be read. Names fields only, never values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Unreadable {
    /// The payload is not the message the feed promises.
    #[error("payload does not decode")]
    Decode,
    /// A required field is missing or holds an unknown value.
    #[error("field {0} missing or invalid")]
    Field(&'static str),
}

/// A participant change: `samsyn.participants.v1.ParticipantSummary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParticipantRecord {
    pub participant_id: String,
    pub status: ParticipantStatus,
    pub home_municipality: String,
    pub revision: u64,
}

/// A care-team change: `samsyn.participants.v1.CareTeam` with the current assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CareTeamRecord {
    pub participant_id: String,
    pub members: Vec<TeamMember>,
    pub revision: u64,
}

/// A consent change: the whole `samsyn.consent.v1.Consent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConsentRecord {
    pub participant_id: String,
    pub consent: rule::Consent,
    pub revision: u64,
}

/// A restriction change: the whole `samsyn.consent.v1.Restriction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RestrictionRecord {
    pub participant_id: String,
    pub restriction: rule::Restriction,
    pub revision: u64,
}

/// A board-entry change: which team's board a participant is on, or was taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BoardEntryRecord {
    pub participant_id: String,
    pub entry_id: String,
    pub team_id: String,
    pub on_board: bool,
}

fn participant_id(id: Option<&common::ParticipantId>) -> Result<String, Unreadable> {
    match id {
        Some(id) if !id.value.is_empty() => Ok(id.value.clone()),
        _ => Err(Unreadable::Field("participant_id")),
    }
}

fn revision(value: Option<&common::Revision>) -> u64 {
    value.map_or(0, |r| r.value)
}

fn text(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn org(value: Option<&common::OrganisationId>) -> Option<String> {
    value.and_then(|o| text(&o.value))
}

fn time(value: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    value.and_then(from_timestamp)
}

/// The rule's category of a wire one; `None` for those no consent or restriction can name.
pub(crate) fn category(value: i32) -> Option<Category> {
    match common::DataCategory::try_from(value).ok()? {
        common::DataCategory::Enrolment => Some(Category::Enrolment),
        common::DataCategory::CareTeam => Some(Category::CareTeam),
        common::DataCategory::Consent => Some(Category::Consent),
        common::DataCategory::Plan => Some(Category::Plan),
        common::DataCategory::Decision => Some(Category::Decision),
        common::DataCategory::Board => Some(Category::Board),
        common::DataCategory::Audit => Some(Category::Audit),
        common::DataCategory::Unspecified
        | common::DataCategory::Admin
        | common::DataCategory::ChangeFeed
        | common::DataCategory::Report => None,
    }
}

/// Unknown values are dropped: they can never be asked about.
fn categories(values: &[i32]) -> Categories {
    values.iter().filter_map(|v| category(*v)).collect()
}

/// Decodes a participant change.
pub(super) fn participant(payload: &[u8]) -> Result<ParticipantRecord, Unreadable> {
    let p = participants_pb::ParticipantSummary::decode(payload).map_err(|_| Unreadable::Decode)?;
    use participants_pb::ParticipantStatus as S;
    let status = match S::try_from(p.status) {
        Ok(S::Referred) => ParticipantStatus::Referred,
        Ok(S::Accepted) => ParticipantStatus::Accepted,
        Ok(S::Declined) => ParticipantStatus::Declined,
        Ok(S::Enrolled) => ParticipantStatus::Enrolled,
        Ok(S::Discharged) => ParticipantStatus::Discharged,
        Ok(S::Unspecified) | Err(_) => return Err(Unreadable::Field("status")),
    };
    Ok(ParticipantRecord {
        participant_id: participant_id(p.participant_id.as_ref())?,
        status,
        home_municipality: p.home_municipality_code,
        revision: revision(p.revision.as_ref()),
    })
}

fn organisation_kind(value: i32) -> Option<OrganisationKind> {
    match common::OrganisationKind::try_from(value).ok()? {
        common::OrganisationKind::Region => Some(OrganisationKind::Region),
        common::OrganisationKind::Municipality => Some(OrganisationKind::Municipality),
        common::OrganisationKind::Other => Some(OrganisationKind::Other),
        common::OrganisationKind::Unspecified => None,
    }
}

fn care_role(value: i32) -> Option<CareRole> {
    use participants_pb::CareRole as P;
    Some(match P::try_from(value).ok()? {
        P::CaseManager => CareRole::CaseManager,
        P::Physician => CareRole::Physician,
        P::Nurse => CareRole::Nurse,
        P::Psychologist => CareRole::Psychologist,
        P::SocialWorker => CareRole::SocialWorker,
        P::NeedsAssessor => CareRole::NeedsAssessor,
        P::HousingSupportWorker => CareRole::HousingSupportWorker,
        P::PeerSupportSpecialist => CareRole::PeerSupportSpecialist,
        P::IpsSpecialist => CareRole::IpsSpecialist,
        P::TeamLeader => CareRole::TeamLeader,
        P::Other => CareRole::Other,
        P::Unspecified => return None,
    })
}

/// One current assignment; `None` for an ended one or one the gateway cannot read (which
/// then grants nothing).
fn member(a: &participants_pb::Assignment) -> Option<TeamMember> {
    if a.valid_until.is_some() {
        return None;
    }
    let staff = a.staff.as_ref()?;
    let role = match participants_pb::AssignmentKind::try_from(a.kind).ok()? {
        participants_pb::AssignmentKind::Coordinator => AssignmentRole::Coordinator {
            principal: organisation_kind(a.principal)?,
            rank: match participants_pb::CoordinatorRank::try_from(a.rank).ok()? {
                participants_pb::CoordinatorRank::Main => CoordinatorRank::Main,
                participants_pb::CoordinatorRank::Deputy => CoordinatorRank::Deputy,
                participants_pb::CoordinatorRank::Unspecified => return None,
            },
        },
        participants_pb::AssignmentKind::CareTeamMember => {
            AssignmentRole::CareTeamMember(care_role(a.role)?)
        }
        participants_pb::AssignmentKind::FixedCareContact => AssignmentRole::FixedCareContact,
        participants_pb::AssignmentKind::Unspecified => return None,
    };
    Some(TeamMember {
        assignment_id: a.assignment_id.clone(),
        staff_id: text(&staff.staff_id)?,
        organisation_id: org(staff.organisation_id.as_ref())?,
        unit_id: text(&staff.unit_id),
        role,
    })
}

/// Decodes a care-team change.
pub(super) fn care_team(payload: &[u8]) -> Result<CareTeamRecord, Unreadable> {
    let team = participants_pb::CareTeam::decode(payload).map_err(|_| Unreadable::Decode)?;
    let members: Vec<TeamMember> = team.assignments.iter().filter_map(member).collect();
    let current = team
        .assignments
        .iter()
        .filter(|a| a.valid_until.is_none())
        .count();
    if members.len() < current {
        // Access is only ever narrowed by this; say so without naming anyone.
        tracing::warn!(
            skipped = current - members.len(),
            "care-team assignments the gateway cannot read are ignored"
        );
    }
    Ok(CareTeamRecord {
        participant_id: participant_id(team.participant_id.as_ref())?,
        members,
        revision: revision(team.revision.as_ref()),
    })
}

fn ended_at(ending: Option<&consent_pb::Ending>) -> Option<Option<DateTime<Utc>>> {
    ending.map(|e| time(e.at.as_ref()))
}

/// Decodes a consent change.
pub(super) fn consent(payload: &[u8]) -> Result<ConsentRecord, Unreadable> {
    let c = consent_pb::Consent::decode(payload).map_err(|_| Unreadable::Decode)?;
    if c.id.is_empty() {
        return Err(Unreadable::Field("id"));
    }
    let kind = match consent_pb::ConsentKind::try_from(c.kind) {
        Ok(consent_pb::ConsentKind::Participation) => rule::ConsentKind::Participation,
        Ok(consent_pb::ConsentKind::InformationSharing) => rule::ConsentKind::InformationSharing,
        Ok(consent_pb::ConsentKind::ResearchStudy) => rule::ConsentKind::ResearchStudy,
        Ok(consent_pb::ConsentKind::Unspecified) | Err(_) => {
            return Err(Unreadable::Field("kind"));
        }
    };
    // A sharing scope without both organisations covers nothing (the rule skips it).
    let sharing = c.sharing.as_ref().and_then(|s| {
        Some(rule::Sharing {
            from_organisation: org(s.from_organisation_id.as_ref())?,
            to_organisation: org(s.to_organisation_id.as_ref())?,
            categories: categories(&s.categories),
            unit: text(&s.unit_id),
            staff: text(&s.staff_id),
        })
    });
    let state = consent_pb::ConsentState::try_from(c.state).ok();
    let revoked = state == Some(consent_pb::ConsentState::Revoked);
    let revoked_at = match ended_at(c.revocation.as_ref()) {
        Some(Some(at)) => Some(at),
        // Revoked without a readable time: still revoked (the rule never lets a revoked
        // consent count, whatever the time).
        Some(None) => Some(DateTime::<Utc>::MIN_UTC),
        None if revoked => Some(DateTime::<Utc>::MIN_UTC),
        None => None,
    };
    let voided = c.voiding.is_some() || state == Some(consent_pb::ConsentState::Voided);
    Ok(ConsentRecord {
        participant_id: participant_id(c.participant_id.as_ref())?,
        consent: rule::Consent {
            id: c.id,
            kind,
            sharing,
            valid_from: time(c.valid_from.as_ref()).ok_or(Unreadable::Field("valid_from"))?,
            valid_until: time(c.valid_until.as_ref()),
            revoked_at,
            voided,
        },
        revision: revision(c.revision.as_ref()),
    })
}

/// A lift the gateway cannot read suspends nothing.
fn lift(l: &consent_pb::Lift) -> Option<rule::Lift> {
    let period = l.period.as_ref()?;
    Some(rule::Lift {
        id: text(&l.id)?,
        reason: match consent_pb::LiftReason::try_from(l.reason).ok()? {
            consent_pb::LiftReason::Consent => rule::LiftReason::Consent,
            consent_pb::LiftReason::Emergency => rule::LiftReason::Emergency,
            consent_pb::LiftReason::Unspecified => return None,
        },
        unit: text(&l.unit_id),
        staff: text(&l.staff_id),
        categories: categories(&l.categories),
        starts_at: time(period.start.as_ref())?,
        ends_at: time(period.end.as_ref())?,
    })
}

/// Decodes a restriction change.
pub(super) fn restriction(payload: &[u8]) -> Result<RestrictionRecord, Unreadable> {
    let r = consent_pb::Restriction::decode(payload).map_err(|_| Unreadable::Decode)?;
    if r.id.is_empty() {
        return Err(Unreadable::Field("id"));
    }
    Ok(RestrictionRecord {
        participant_id: participant_id(r.participant_id.as_ref())?,
        restriction: rule::Restriction {
            organisation: org(r.organisation_id.as_ref())
                .ok_or(Unreadable::Field("organisation_id"))?,
            unit: text(&r.unit_id),
            owner_organisation: org(r.owner_organisation_id.as_ref()),
            categories: categories(&r.categories),
            valid_from: time(r.valid_from.as_ref()).ok_or(Unreadable::Field("valid_from"))?,
            valid_until: time(r.valid_until.as_ref()),
            // Revoked without a readable time: it keeps counting (errs towards denial).
            revoked_at: ended_at(r.revocation.as_ref()).flatten(),
            lifts: r.lifts.iter().filter_map(lift).collect(),
            id: r.id,
        },
        revision: revision(r.revision.as_ref()),
    })
}

/// Decodes a board-entry change (`samsyn.board.v1.BoardEntry`, the entry in its new state).
pub(super) fn board_entry(payload: &[u8]) -> Result<BoardEntryRecord, Unreadable> {
    let e = board_pb::BoardEntry::decode(payload).map_err(|_| Unreadable::Decode)?;
    let on_board = match board_pb::EntryState::try_from(e.state) {
        Ok(board_pb::EntryState::OnBoard) => true,
        Ok(board_pb::EntryState::TakenOff) => false,
        Ok(board_pb::EntryState::Unspecified) | Err(_) => return Err(Unreadable::Field("state")),
    };
    Ok(BoardEntryRecord {
        participant_id: participant_id(e.participant_id.as_ref())?,
        entry_id: text(&e.entry_id).ok_or(Unreadable::Field("entry_id"))?,
        team_id: text(&e.team_id).ok_or(Unreadable::Field("team_id"))?,
        on_board,
    })
}
