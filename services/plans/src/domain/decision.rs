//! Municipal decisions on applications (biståndsbeslut) pushed by municipal systems.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::values::{
    CatalogueCode, Day, ExternalDecisionId, ItemId, OrganisationId, ParticipantId, PlanId, StaffId,
    TeamId,
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

/// What recording a decision did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionReceipt {
    /// The plan it was recorded in.
    pub plan_id: PlanId,
    /// The intervention it decided.
    pub intervention_id: ItemId,
    /// The plan revision that recorded it.
    pub plan_revision: u64,
    /// This push repeated an earlier one; nothing changed.
    pub replayed: bool,
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
