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

/// What a version of a decision does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionChange {
    /// The decision as first made (version 1).
    #[default]
    Original,
    /// New outcome or dates.
    Amended,
    /// Withdrawn: the intervention waits for a decision again.
    Withdrawn,
    /// Appealed; the decision stands meanwhile.
    Appealed,
    /// The appeal was decided; the outcome is the appeal's.
    AppealDecided,
}

fn first_version() -> u32 {
    1
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
    /// Its version under the external id (1 first).
    #[serde(default = "first_version")]
    pub version: u32,
    /// What this version does.
    #[serde(default)]
    pub change: DecisionChange,
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
    /// Earlier versions of the decision, oldest first, while it was parked.
    #[serde(default)]
    pub earlier: Vec<Decision>,
    /// The teams that follow up the participant's active plan, where known: read with the
    /// inbox, never stored with the entry.
    #[serde(skip)]
    pub teams: Vec<TeamId>,
}

impl ParkedDecision {
    /// A newly parked decision.
    pub fn park(decision: Decision, reason: ParkReason, now: DateTime<Utc>) -> Self {
        Self {
            inbox_id: ItemId::generate(),
            decision,
            reason,
            state: InboxState::Parked,
            parked_at: now,
            resolved: None,
            earlier: Vec::new(),
            teams: Vec::new(),
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

/// How a push relates to the versions recorded under its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioned {
    /// The latest version, or an earlier one, again: answer as recorded.
    Replay,
    /// The next version: apply its change.
    Next,
}

impl Decision {
    /// Places a push among the versions recorded under its id (`latest` and the `earlier`
    /// ones): a replay, the next version, or a conflict (different content under a recorded
    /// version, or a version that skips one).
    pub fn against(
        &self,
        latest: &Decision,
        earlier: &[Decision],
    ) -> Result<Versioned, PlansError> {
        match self.version.cmp(&latest.version) {
            std::cmp::Ordering::Equal => match self.replay_of(latest) {
                Replay::Same => Ok(Versioned::Replay),
                Replay::Conflict => Err(PlansError::DecisionConflict),
            },
            std::cmp::Ordering::Less => {
                if earlier.contains(self) {
                    Ok(Versioned::Replay)
                } else {
                    Err(PlansError::DecisionConflict)
                }
            }
            std::cmp::Ordering::Greater if self.version == latest.version + 1 => {
                Ok(Versioned::Next)
            }
            std::cmp::Ordering::Greater => Err(PlansError::VersionGap {
                next: latest.version + 1,
            }),
        }
    }

    /// Compares a push with the decision recorded first under the same id.
    pub fn replay_of(&self, recorded: &Decision) -> Replay {
        if self == recorded {
            Replay::Same
        } else {
            Replay::Conflict
        }
    }
}
