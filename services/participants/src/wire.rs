//! Domain values in their `samsyn.participants.v1` form: answers, feed payloads and
//! remembered answers. The API and the store both encode through here.

use samsyn_kit::time::{to_calendar_date, to_timestamp};
use samsyn_proto::common::v1::{
    OrganisationId, OrganisationKind, ParticipantId as ProtoId, Revision, StaffRef,
};
use samsyn_proto::participants::v1 as pb;

use crate::domain::{
    Assessment, Assignment, AssignmentRole, CareRole, CoordinatorRank, DischargeReason,
    Participant, ParticipantId, Principal, Referral, Staff, Status as Standing,
};

pub(crate) fn proto_id(id: ParticipantId) -> ProtoId {
    ProtoId {
        value: id.to_string(),
    }
}

pub(crate) fn status_to_proto(status: Standing) -> pb::ParticipantStatus {
    match status {
        Standing::Referred => pb::ParticipantStatus::Referred,
        Standing::Accepted => pb::ParticipantStatus::Accepted,
        Standing::Declined => pb::ParticipantStatus::Declined,
        Standing::Enrolled => pb::ParticipantStatus::Enrolled,
        Standing::Discharged => pb::ParticipantStatus::Discharged,
    }
}

pub(crate) fn kind_to_proto(principal: Principal) -> OrganisationKind {
    match principal {
        Principal::Region => OrganisationKind::Region,
        Principal::Municipality => OrganisationKind::Municipality,
    }
}

pub(crate) fn staff_to_proto(staff: &Staff) -> StaffRef {
    StaffRef {
        staff_id: staff.staff_id.as_str().to_owned(),
        organisation_id: Some(OrganisationId {
            value: staff.organisation_id.as_str().to_owned(),
        }),
        unit_id: staff
            .unit_id
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
    }
}

pub(crate) fn referral_to_proto(r: &Referral) -> pb::Referral {
    pb::Referral {
        referral_id: r.id.to_string(),
        referring_principal: kind_to_proto(r.principal) as i32,
        referred_by: Some(staff_to_proto(&r.referred_by)),
        reason: r.reason.as_str().to_owned(),
        criteria: Some(pb::AdmissionCriteria {
            long_term_needs_from_both_principals: r.criteria.long_term_needs_from_both_principals,
            diagnosis_criteria_met: r.criteria.diagnosis_criteria_met,
        }),
        referred_at: Some(to_timestamp(r.referred_at)),
    }
}

pub(crate) fn discharge_reason_to_proto(reason: DischargeReason) -> pb::DischargeReason {
    match reason {
        DischargeReason::ReadyForOrdinaryCare => pb::DischargeReason::ReadyForOrdinaryCare,
        DischargeReason::Moved => pb::DischargeReason::Moved,
        DischargeReason::DeclinedFurtherParticipation => {
            pb::DischargeReason::DeclinedFurtherParticipation
        }
        DischargeReason::Deceased => pb::DischargeReason::Deceased,
        DischargeReason::Other => pb::DischargeReason::Other,
    }
}

pub(crate) fn participant_to_proto(p: &Participant) -> pb::Participant {
    pb::Participant {
        participant_id: Some(proto_id(p.id)),
        personal_identity_number: p.pin.as_normalised().to_owned(),
        name: p.name.as_str().to_owned(),
        home_municipality_code: p.home_municipality.as_str().to_owned(),
        status: status_to_proto(p.status) as i32,
        referral: Some(referral_to_proto(&p.referral)),
        reviews: p
            .reviews
            .iter()
            .map(|r| pb::Review {
                principal: kind_to_proto(r.principal) as i32,
                reviewed_by: Some(staff_to_proto(&r.reviewed_by)),
                assessment: match r.assessment {
                    Assessment::Accept => pb::Assessment::Accept,
                    Assessment::Decline => pb::Assessment::Decline,
                } as i32,
                reason: r.reason.as_str().to_owned(),
                recorded_at: Some(to_timestamp(r.recorded_at)),
            })
            .collect(),
        outcome: p.outcome.as_ref().map(|o| pb::ReviewOutcome {
            accepted: o.accepted,
            reason: o.reason.as_str().to_owned(),
            decided_at: Some(to_timestamp(o.decided_at)),
        }),
        enrolment: p.enrolment.as_ref().map(|e| pb::Enrolment {
            consent_reference: e.consent_reference.to_string(),
            enrolled_on: Some(to_calendar_date(e.enrolled_on)),
            consent_revoked_at: e.consent_revoked_at.map(to_timestamp),
        }),
        discharge: p.discharge.as_ref().map(|d| pb::Discharge {
            reason: discharge_reason_to_proto(d.reason) as i32,
            discharged_on: Some(to_calendar_date(d.discharged_on)),
            note: d.note.as_str().to_owned(),
        }),
        revision: Some(Revision { value: p.revision }),
        updated_at: Some(to_timestamp(p.updated_at)),
    }
}

pub(crate) fn assignment_to_proto(a: &Assignment) -> pb::Assignment {
    let mut row = pb::Assignment {
        assignment_id: a.id.to_string(),
        staff: Some(staff_to_proto(&a.staff)),
        valid_from: Some(to_timestamp(a.valid_from)),
        valid_until: a.valid_until.map(to_timestamp),
        ..Default::default()
    };
    match a.role {
        AssignmentRole::Coordinator { principal, rank } => {
            row.kind = pb::AssignmentKind::Coordinator as i32;
            row.principal = kind_to_proto(principal) as i32;
            row.rank = match rank {
                CoordinatorRank::Main => pb::CoordinatorRank::Main,
                CoordinatorRank::Deputy => pb::CoordinatorRank::Deputy,
            } as i32;
        }
        AssignmentRole::CareTeamMember { role } => {
            use pb::CareRole as P;
            row.kind = pb::AssignmentKind::CareTeamMember as i32;
            row.role = match role {
                CareRole::CaseManager => P::CaseManager,
                CareRole::Physician => P::Physician,
                CareRole::Nurse => P::Nurse,
                CareRole::Psychologist => P::Psychologist,
                CareRole::SocialWorker => P::SocialWorker,
                CareRole::NeedsAssessor => P::NeedsAssessor,
                CareRole::HousingSupportWorker => P::HousingSupportWorker,
                CareRole::PeerSupportSpecialist => P::PeerSupportSpecialist,
                CareRole::IpsSpecialist => P::IpsSpecialist,
                CareRole::TeamLeader => P::TeamLeader,
                CareRole::Other => P::Other,
            } as i32;
        }
        AssignmentRole::FixedCareContact => {
            row.kind = pb::AssignmentKind::FixedCareContact as i32;
        }
    }
    row
}

pub(crate) fn care_team_to_proto(p: &Participant, assignments: &[Assignment]) -> pb::CareTeam {
    pb::CareTeam {
        participant_id: Some(proto_id(p.id)),
        assignments: assignments.iter().map(assignment_to_proto).collect(),
        revision: Some(Revision { value: p.revision }),
    }
}

/// The receipt of a referral for a referrer who may not learn whom it matched.
pub(crate) fn receipt(referral: &Referral) -> pb::Participant {
    pb::Participant {
        status: pb::ParticipantStatus::Referred as i32,
        referral: Some(referral_to_proto(referral)),
        ..Default::default()
    }
}

/// A participant change on the feed: no identity number, no free text.
pub(crate) fn participant_summary(p: &Participant) -> pb::ParticipantSummary {
    pb::ParticipantSummary {
        participant_id: Some(proto_id(p.id)),
        name: p.name.as_str().to_owned(),
        home_municipality_code: p.home_municipality.as_str().to_owned(),
        status: status_to_proto(p.status) as i32,
        revision: Some(Revision { value: p.revision }),
        enrolled_on: p
            .enrolment
            .as_ref()
            .map(|e| to_calendar_date(e.enrolled_on)),
        discharged_on: p
            .discharge
            .as_ref()
            .map(|d| to_calendar_date(d.discharged_on)),
        discharge_reason: p
            .discharge
            .as_ref()
            .map_or(pb::DischargeReason::Unspecified, |d| {
                discharge_reason_to_proto(d.reason)
            }) as i32,
        participation_consent_revoked_at: p
            .enrolment
            .as_ref()
            .and_then(|e| e.consent_revoked_at)
            .map(to_timestamp),
    }
}
