//! What the board learns from other services' feeds: municipal decisions to bring up at the
//! morning meeting, and participations whose consent was revoked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ParticipantId;

/// What happened to a municipal decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    /// Recorded in the participant's plan.
    Recorded,
    /// A later version (amended, withdrawn, appealed, appeal decided).
    Changed,
    /// Parked in the decision inbox.
    Parked,
    /// A parked decision linked to an intervention.
    Linked,
    /// A parked decision dismissed.
    Dismissed,
}

/// A municipal decision to bring up; no free text. Outcome, change and park reason are the
/// plans contract's enum values, kept as they came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionNotice {
    /// What happened.
    pub kind: NoticeKind,
    /// The deciding system's id.
    pub external_decision_id: String,
    /// The deciding municipality.
    pub organisation_id: String,
    /// `samsyn.plans.v1.DecisionOutcome`.
    pub outcome: i32,
    /// The version.
    pub version: u32,
    /// `samsyn.plans.v1.DecisionChange`.
    pub change: i32,
    /// The intervention it decides, when named.
    pub intervention_id: String,
    /// The catalogue code it named, if it named one.
    pub catalogue_code: String,
    /// The inbox entry (parked, linked, dismissed).
    pub inbox_id: String,
    /// `samsyn.plans.v1.ParkReason`.
    pub park_reason: i32,
    /// When the plans service recorded it.
    pub noted_at: DateTime<Utc>,
}

/// One fact from a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A decision about a participant.
    Decision {
        /// Whom it concerns.
        participant_id: ParticipantId,
        /// What happened.
        notice: DecisionNotice,
    },
    /// The participant's participation consent: revoked since `Some(at)`, or counting.
    ParticipationConsent {
        /// Whom it concerns.
        participant_id: ParticipantId,
        /// When revoked while taking part; `None` when it counts (or was never revoked).
        revoked_at: Option<DateTime<Utc>>,
    },
}

impl Fact {
    /// The participant the fact is about.
    pub fn participant_id(&self) -> ParticipantId {
        match self {
            Self::Decision { participant_id, .. }
            | Self::ParticipationConsent { participant_id, .. } => *participant_id,
        }
    }
}
