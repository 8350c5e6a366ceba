//! Municipal decisions on applications (biståndsbeslut) pushed by municipal systems.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PlansError;
use super::values::{
    CatalogueCode, Day, ExternalDecisionId, ItemId, OrganisationId, ParticipantId, PlanId, StaffId,
    TeamId, Text,
};

/// What a decision says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionOutcome {
    /// Beviljat.
    Granted,
    /// Avslag.
    Denied,
    /// Delvis beviljat; counts as granted.
    PartlyGranted,
}

/// Which intervention a decision decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionSubject {
    /// The intervention with this id in the participant's active plan.
    Intervention(ItemId),
    /// The one proposed or applied intervention of this catalogue kind in the active plan.
    CatalogueCode(CatalogueCode),
}

/// Who decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decider {
    /// The needs assessor's id.
    pub staff_id: StaffId,
    /// The unit they acted for, if given.
    pub unit_id: Option<TeamId>,
}

/// A municipal decision, as pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The deciding system's id; with the organisation, the idempotency key.
    pub external_decision_id: ExternalDecisionId,
    /// The deciding municipality.
    pub organisation_id: OrganisationId,
    /// Whom it concerns.
    pub participant_id: ParticipantId,
    /// What it decides.
    pub subject: DecisionSubject,
    /// What it says.
    pub outcome: DecisionOutcome,
    /// From which day.
    pub valid_from: Day,
    /// Until which day, if limited.
    pub valid_until: Option<Day>,
    /// Who decided.
    pub decided_by: Decider,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
}

/// Why a decision was parked in the decision inbox rather than applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParkReason {
    /// The participant has no active plan yet.
    NoActivePlan,
    /// No proposed or applied intervention of the active plan matches it.
    NoMatchingIntervention,
    /// Its catalogue code matches several waiting interventions.
    Ambiguous,
}

impl ParkReason {
    /// The reason to park a decision that applying refused with `error`; `None` when the
    /// refusal stands (another organisation's intervention, a closed plan, storage).
    pub fn of(error: &PlansError) -> Option<Self> {
        match error {
            PlansError::InterventionNotFound => Some(Self::NoMatchingIntervention),
            PlansError::AmbiguousIntervention => Some(Self::Ambiguous),
            _ => None,
        }
    }
}

/// What became of a pushed decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disposition {
    /// Recorded in the active plan, deciding an intervention.
    Applied {
        /// The plan it was recorded in.
        plan_id: PlanId,
        /// The intervention it decided.
        intervention_id: ItemId,
        /// The plan revision that recorded it.
        plan_revision: u64,
    },
    /// Accepted and parked in the decision inbox.
    Parked {
        /// The inbox entry.
        inbox_id: ItemId,
        /// Why.
        reason: ParkReason,
    },
}

/// What recording a decision did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionReceipt {
    /// Applied or parked.
    pub disposition: Disposition,
    /// This push repeated an earlier one; nothing changed.
    pub replayed: bool,
}

/// Who linked or dismissed a parked decision: the authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolver {
    /// Their staff id.
    pub staff_id: StaffId,
    /// Their organisation.
    pub organisation_id: OrganisationId,
    /// Their unit, when given.
    pub unit_id: Option<TeamId>,
}

/// Where a parked decision stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboxState {
    /// Waiting for a coordinator.
    Parked,
    /// Linked to an intervention, which it decided.
    Linked {
        /// The plan.
        plan_id: PlanId,
        /// The intervention.
        intervention_id: ItemId,
    },
    /// Dismissed.
    Dismissed {
        /// Why (never logged).
        reason: Text,
    },
}

/// The longest dismissal reason, in characters.
pub const MAX_DISMISSAL_CHARS: usize = 2_000;

/// A decision in the decision inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedDecision {
    /// The entry's id (time-ordered).
    pub inbox_id: ItemId,
    /// The decision as pushed.
    pub decision: Decision,
    /// Why it was parked.
    pub reason: ParkReason,
    /// Where it stands.
    pub state: InboxState,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
    /// Who linked or dismissed it, and when.
    pub resolved: Option<(Resolver, DateTime<Utc>)>,
}

impl ParkedDecision {
    /// A newly parked decision.
    pub fn park(decision: Decision, reason: ParkReason, now: DateTime<Utc>) -> Self {
        Self {
            inbox_id: ItemId::generate_ordered(),
            decision,
            reason,
            state: InboxState::Parked,
            parked_at: now,
            resolved: None,
        }
    }

    /// Checks that `resolver` may link or dismiss it now: still parked, and only by the
    /// deciding organisation (its decisions are its own).
    pub fn check_resolvable(&self, resolver: &Resolver) -> Result<(), PlansError> {
        if resolver.organisation_id != self.decision.organisation_id {
            return Err(PlansError::Forbidden);
        }
        if self.state != InboxState::Parked {
            return Err(PlansError::NotParked);
        }
        Ok(())
    }

    /// The decision as it applies to `intervention` of the active plan.
    pub fn linked_to(&self, intervention: ItemId) -> Decision {
        Decision {
            subject: DecisionSubject::Intervention(intervention),
            ..self.decision.clone()
        }
    }

    /// Marks it resolved.
    pub fn resolve(&mut self, state: InboxState, resolver: Resolver, now: DateTime<Utc>) {
        self.state = state;
        self.resolved = Some((resolver, now));
    }
}

/// How a pushed decision relates to the one already recorded under its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The same decision again: answer as the first time.
    Same,
    /// Different content under the same id: refuse.
    Conflict,
}

impl Decision {
    /// Compares a push with the decision recorded first under the same id.
    pub fn replay_of(&self, recorded: &Decision) -> Replay {
        if self == recorded {
            Replay::Same
        } else {
            Replay::Conflict
        }
    }
}
