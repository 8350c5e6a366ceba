//! The plans domain: the SIP, its rules, decisions and the catalogue. No tonic, no sea-orm.

pub mod catalogue;
pub mod decision;
pub mod plan;
pub mod repository;
pub mod values;

/// Field violations found while checking input: dotted field path and reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations(pub Vec<(String, String)>);

impl Violations {
    /// Records that `field` is wrong.
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push((field.into(), reason.into()));
    }

    /// Keeps an `Ok` value, records the field of an `Err`.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), PlansError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(PlansError::Invalid(self))
        }
    }
}

/// What can go wrong in the plans service.
#[derive(Debug, thiserror::Error)]
pub enum PlansError {
    /// The input breaks a rule; names every field.
    #[error("invalid input")]
    Invalid(Violations),
    /// No such plan (for this participant).
    #[error("plan not found")]
    PlanNotFound,
    /// No such revision of the plan.
    #[error("plan revision not found")]
    RevisionNotFound,
    /// The decision names no intervention of the participant's active plan.
    #[error("intervention not found")]
    InterventionNotFound,
    /// The update named a revision that is no longer current.
    #[error("stale revision")]
    StaleRevision {
        /// The current revision.
        current: u64,
    },
    /// The participant has an active plan and the caller did not ask to supersede it.
    #[error("the participant already has an active plan; set supersede_active to replace it")]
    ActivePlanExists,
    /// The plan was superseded and no longer changes.
    #[error("the plan is closed; change the participant's active plan")]
    PlanClosed,
    /// A different decision was recorded under the same external id.
    #[error("a different decision with this external decision id")]
    DecisionConflict,
    /// A later version of a decision that skips one.
    #[error("this decision's next version is {next}")]
    VersionGap {
        /// The version that comes next.
        next: u32,
    },
    /// A later version of a decision never recorded.
    #[error("no decision with this external decision id")]
    DecisionNotFound,
    /// No such entry in the decision inbox (for this participant).

    #[error("decision inbox entry not found")]
    InboxEntryNotFound,
    /// The parked decision was already linked or dismissed.
    #[error("the decision was already linked or dismissed")]
    NotParked,
    /// A decision's catalogue code matches several waiting interventions.
    #[error("the catalogue code matches several waiting interventions; name the intervention id")]
    AmbiguousIntervention,
    /// The caller's organisation is not the one entitled to this act.
    #[error("permission denied")]
    Forbidden,
    /// The caller sent this idempotency key before with another request.
    #[error("idempotency key already used for a different request")]
    KeyReused,
    /// Storage cannot be reached; the caller may retry.
    #[error("storage unavailable")]
    Unavailable,
    /// Storage failed.
    #[error("storage failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}
