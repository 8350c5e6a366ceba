//! What one change does to the read model, whichever feed it came from.

use chrono::{DateTime, Utc};

use super::facts::{ConsentFact, ParticipantEvent, ParticipantState, PlanFact, StayFact};

/// Which feed a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// The participants service.
    Participants,
    /// The consent service.
    Consent,
    /// The plans service.
    Plans,
    /// The board service.
    Board,
}

impl Feed {
    /// Every feed.
    pub const ALL: [Self; 4] = [Self::Participants, Self::Consent, Self::Plans, Self::Board];

    /// Its name in the cursor table, logs and spans.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Participants => "participants",
            Self::Consent => "consent",
            Self::Plans => "plans",
            Self::Board => "board",
        }
    }
}

/// What one change does to the read model.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A participant's state changed.
    Participant {
        /// Participant id.
        id: String,
        /// The new state.
        state: ParticipantState,
        /// What happened.
        event: ParticipantEvent,
        /// When it was recorded.
        at: DateTime<Utc>,
    },
    /// A participant's current case managers.
    CaseManagers {
        /// Participant id.
        id: String,
        /// Staff ids.
        staff: Vec<String>,
    },
    /// A plan at its new revision.
    Plan {
        /// Plan id.
        id: String,
        /// What reports count of it.
        fact: PlanFact,
    },
    /// A board entry at its new revision.
    Stay {
        /// Entry id.
        id: String,
        /// What reports count of it.
        fact: StayFact,
    },
    /// A research-study consent at its new revision.
    ResearchConsent {
        /// Consent id.
        id: String,
        /// What reports count of it.
        fact: ConsentFact,
    },
}
