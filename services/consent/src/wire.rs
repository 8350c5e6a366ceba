//! The protobuf form of domain records: responses, change-feed payloads and history.

use chrono::{DateTime, Utc};
use samsyn_consent_rule::{self as rule, Category};
use samsyn_kit::time::to_timestamp;
use samsyn_proto::common::v1 as common;
use samsyn_proto::consent::v1 as pb;

use crate::domain::{
    Actor, CategorySet, Consent, ConsentForm, ConsentKind, Ending, LiftReason, OrgId,
    ParticipantId, Record, Representative, RepresentativeKind, Restriction, StaffMember, Version,
};

/// The domain category of a protobuf one; `None` for unspecified or non-participant data.
pub fn category_from_proto(value: i32) -> Option<Category> {
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

fn category_to_proto(category: Category) -> i32 {
    let value = match category {
        Category::Enrolment => common::DataCategory::Enrolment,
        Category::CareTeam => common::DataCategory::CareTeam,
        Category::Consent => common::DataCategory::Consent,
        Category::Plan => common::DataCategory::Plan,
        Category::Decision => common::DataCategory::Decision,
        Category::Board => common::DataCategory::Board,
        Category::Audit => common::DataCategory::Audit,
    };
    value as i32
}

fn categories(set: CategorySet) -> Vec<i32> {
    set.categories().iter().map(category_to_proto).collect()
}

fn time(value: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(to_timestamp(value))
}

fn org(id: &OrgId) -> Option<common::OrganisationId> {
    Some(common::OrganisationId {
        value: id.as_str().to_owned(),
    })
}

fn participant(id: &ParticipantId) -> Option<common::ParticipantId> {
    Some(common::ParticipantId {
        value: id.to_string(),
    })
}

fn text<T: AsRef<str>>(value: Option<T>) -> String {
    value.map(|v| v.as_ref().to_owned()).unwrap_or_default()
}

/// The protobuf form of a staff member.
pub fn staff_ref(staff: &StaffMember) -> common::StaffRef {
    common::StaffRef {
        staff_id: staff.staff.as_str().to_owned(),
        organisation_id: org(&staff.organisation),
        unit_id: text(staff.unit.as_ref().map(|u| u.as_str())),
    }
}

fn actor(actor: &Actor) -> Option<pb::Actor> {
    Some(match actor {
        Actor::Staff(staff) => pb::Actor {
            kind: pb::ActorKind::Staff as i32,
            staff: Some(staff_ref(staff)),
        },
        Actor::Participant => pb::Actor {
            kind: pb::ActorKind::Participant as i32,
            staff: None,
        },
        Actor::Representative => pb::Actor {
            kind: pb::ActorKind::Representative as i32,
            staff: None,
        },
    })
}

fn staff_actor(staff: &StaffMember) -> Option<pb::Actor> {
    actor(&Actor::Staff(staff.clone()))
}

fn representative(value: &Representative) -> pb::Representative {
    let kind = match value.kind {
        RepresentativeKind::Guardian => pb::RepresentativeKind::Guardian,
        RepresentativeKind::Trustee => pb::RepresentativeKind::Trustee,
        RepresentativeKind::PowerOfAttorney => pb::RepresentativeKind::PowerOfAttorney,
        RepresentativeKind::Other => pb::RepresentativeKind::Other,
    };
    pb::Representative {
        kind: kind as i32,
        name: value.name.as_str().to_owned(),
    }
}

fn ending(value: &Ending) -> pb::Ending {
    pb::Ending {
        by: actor(&value.by),
        at: time(value.at),
        reason: text(value.reason.as_ref().map(|r| r.as_str())),
    }
}

fn revision(value: u64) -> Option<common::Revision> {
    Some(common::Revision { value })
}

/// The protobuf form of a consent.
pub fn consent(c: &Consent) -> pb::Consent {
    let (kind, sharing) = match &c.kind {
        ConsentKind::Participation => (pb::ConsentKind::Participation, None),
        ConsentKind::ResearchStudy(_) => (pb::ConsentKind::ResearchStudy, None),
        ConsentKind::InformationSharing(scope) => (
            pb::ConsentKind::InformationSharing,
            Some(pb::Sharing {
                from_organisation_id: org(scope.from()),
                to_organisation_id: org(scope.to()),
                categories: categories(scope.categories()),
                unit_id: text(scope.unit().map(|u| u.as_str())),
                staff_id: text(scope.staff().map(|s| s.as_str())),
            }),
        ),
    };
    let state = if c.voiding.is_some() {
        pb::ConsentState::Voided
    } else if c.revocation.is_some() {
        pb::ConsentState::Revoked
    } else {
        pb::ConsentState::Recorded
    };
    pb::Consent {
        id: c.id.to_string(),
        participant_id: participant(&c.participant),
        kind: kind as i32,
        sharing,
        valid_from: time(c.validity.from()),
        valid_until: c.validity.until().and_then(time),
        form: match c.form {
            ConsentForm::Verbal => pb::ConsentForm::Verbal,
            ConsentForm::Written => pb::ConsentForm::Written,
        } as i32,
        requested_by: actor(&c.requested_by),
        recorded_by: staff_actor(&c.recorded_by),
        recorded_at: time(c.recorded_at),
        on_behalf_of: c.on_behalf_of.as_ref().map(representative),
        note: text(c.note.as_ref().map(|n| n.as_str())),
        state: state as i32,
        revocation: c.revocation.as_ref().map(ending),
        voiding: c.voiding.as_ref().map(ending),
        revision: revision(c.revision),
        study_id: match &c.kind {
            ConsentKind::ResearchStudy(study) => text(study.as_ref().map(|s| s.as_str())),
            _ => String::new(),
        },
    }
}

/// The protobuf form of a restriction.
pub fn restriction(r: &Restriction) -> pb::Restriction {
    pb::Restriction {
        id: r.id.to_string(),
        participant_id: participant(&r.participant),
        organisation_id: org(&r.organisation),
        unit_id: text(r.unit.as_ref().map(|u| u.as_str())),
        owner_organisation_id: r.owner_organisation.as_ref().and_then(org),
        categories: categories(r.categories),
        valid_from: time(r.validity.from()),
        valid_until: r.validity.until().and_then(time),
        requested_by: actor(&r.requested_by),
        recorded_by: staff_actor(&r.recorded_by),
        recorded_at: time(r.recorded_at),
        on_behalf_of: r.on_behalf_of.as_ref().map(representative),
        note: text(r.note.as_ref().map(|n| n.as_str())),
        revocation: r.revocation.as_ref().map(ending),
        lifts: r
            .lifts
            .iter()
            .map(|l| pb::Lift {
                id: l.id.to_string(),
                reason: match l.reason {
                    LiftReason::Consent => pb::LiftReason::Consent,
                    LiftReason::Emergency => pb::LiftReason::Emergency,
                } as i32,
                unit_id: text(l.unit.as_ref().map(|u| u.as_str())),
                staff_id: text(l.staff.as_ref().map(|s| s.as_str())),
                categories: categories(l.categories),
                period: Some(common::Period {
                    start: time(l.period.start()),
                    end: time(l.period.end()),
                }),
                lifted_by: actor(&l.lifted_by),
                recorded_at: time(l.recorded_at),
                note: text(l.note.as_ref().map(|n| n.as_str())),
            })
            .collect(),
        revision: revision(r.revision),
    }
}

/// The protobuf form of one history version.
pub fn version(v: &Version) -> pb::RecordVersion {
    pb::RecordVersion {
        change_kind: v.change_kind.clone(),
        record: Some(match &v.record {
            Record::Consent(c) => pb::record_version::Record::Consent(consent(c)),
            Record::Restriction(r) => pb::record_version::Record::Restriction(restriction(r)),
        }),
    }
}

/// The protobuf form of a decision.
pub fn decision(d: &rule::Decision, at: DateTime<Utc>) -> pb::Decision {
    use rule::Reason as R;
    let reason = match d.reason {
        R::SameOrganisation => pb::DecisionReason::SameOrganisation,
        R::Consent => pb::DecisionReason::Consent,
        R::Emergency => pb::DecisionReason::Emergency,
        R::RestrictionLifted => pb::DecisionReason::RestrictionLifted,
        R::NoConsent => pb::DecisionReason::NoConsent,
        R::WrongDirection => pb::DecisionReason::WrongDirection,
        R::CategoryNotCovered => pb::DecisionReason::CategoryNotCovered,
        R::OutsideConsentLimit => pb::DecisionReason::OutsideConsentLimit,
        R::ConsentVoided => pb::DecisionReason::ConsentVoided,
        R::ConsentRevoked => pb::DecisionReason::ConsentRevoked,
        R::ConsentNotYetValid => pb::DecisionReason::ConsentNotYetValid,
        R::ConsentExpired => pb::DecisionReason::ConsentExpired,
        R::Restricted => pb::DecisionReason::Restricted,
        R::NoResearchConsent => pb::DecisionReason::NoResearchConsent,
    };
    pb::Decision {
        effect: match d.effect {
            rule::Effect::Permit => pb::Effect::Permit,
            rule::Effect::Deny => pb::Effect::Deny,
        } as i32,
        reason: reason as i32,
        consent_ids: d.consents.clone(),
        restriction_id: d.restriction.clone().unwrap_or_default(),
        lift_id: d.lift.clone().unwrap_or_default(),
        at: time(at),
    }
}
