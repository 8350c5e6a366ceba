//! The consent domain: values, records and their changes, and the service's errors.
//! No tonic or sea-orm here.

pub mod records;
pub mod repository;
pub mod values;

pub use records::{
    Actor, Consent, ConsentForm, ConsentKind, Ending, Lift, LiftReason, NewConsent, NewLift,
    NewRestriction, Representative, RepresentativeKind, Restriction, SharingScope, StaffMember,
};
pub use repository::ConsentRepository;
pub use values::{
    CategorySet, ConsentId, LiftId, LiftPeriod, Note, OrgId, ParticipantId, PersonName, Reason,
    RestrictionId, StaffId, StudyId, Text, UnitId, Validity, ValueError,
};

use samsyn_consent_rule as rule;

/// Everything that can go wrong in the consent service.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// A request field breaks a rule that needs more than one field (or a stored record).
    #[error("invalid {field}: {description}")]
    Invalid {
        /// Dotted path of the field.
        field: &'static str,
        /// Why.
        description: String,
    },
    /// No such record for this participant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller read an older revision.
    #[error("stale revision")]
    StaleRevision {
        /// The current revision.
        current: u64,
    },
    /// The record has ended and cannot change this way any more.
    #[error("{0}")]
    Ended(&'static str),
    /// The caller's organisation is not the one entitled to this act.
    #[error("permission denied")]
    Forbidden,
    /// The caller sent this idempotency key before with another request.
    #[error("idempotency key already used for a different request")]
    KeyReused,
    /// Storage is unreachable; retry.
    #[error("storage unavailable")]
    Unavailable,
    /// A bug or broken storage.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A record of either kind, as one version in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A consent.
    Consent(Consent),
    /// A restriction.
    Restriction(Restriction),
}

/// One version in a participant's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// What happened ("recorded", "revoked", ...).
    pub change_kind: String,
    /// The record after the change.
    pub record: Record,
}

/// Decides `request` from the participant's stored consents and restrictions.
pub fn decide(
    consents: &[Consent],
    restrictions: &[Restriction],
    request: &rule::Request,
) -> rule::Decision {
    let consents: Vec<_> = consents.iter().map(Consent::to_rule).collect();
    let restrictions: Vec<_> = restrictions.iter().map(Restriction::to_rule).collect();
    rule::decide(&consents, &restrictions, request)
}
