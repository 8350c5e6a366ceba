//! The participants service's errors, converted once into `samsyn_kit::ApiError` by the API.

/// What can go wrong in the participants service.
#[derive(Debug, thiserror::Error)]
pub enum ParticipantsError {
    /// An input is valid in shape but not in context (a date before the referral).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// Dotted field path.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The named record does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The person already has an active participation (referred, accepted or enrolled).
    #[error("an active participation already exists for this person")]
    AlreadyActive,
    /// The member of staff already holds this assignment.
    #[error("assignment already exists")]
    AlreadyAssigned,
    /// The caller's revision is no longer current.
    #[error("stale revision")]
    StaleRevision {
        /// The current revision.
        current: u64,
    },
    /// The participant's status does not allow the call.
    #[error("{0}")]
    FailedPrecondition(&'static str),
    /// The caller sent this idempotency key before with another request.
    #[error("idempotency key already used for a different request")]
    KeyReused,
    /// Storage is unreachable; retry.
    #[error("storage unavailable")]
    Unavailable,
    /// A bug or broken storage.
    #[error("storage failure")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}
