//! What the read model keeps of each feed: only the fields reports count, never a name, a
//! personal identity number or free text.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Where a participant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Stage {
    /// Referred, not yet decided.
    #[default]
    Referred,
    /// Accepted at review.
    Accepted,
    /// Declined at review.
    Declined,
    /// Enrolled.
    Enrolled,
    /// Participation ended.
    Discharged,
}

/// Why participation ended, grouped as reports show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    /// Manages with ordinary care.
    OrdinaryCare,
    /// Moved out of the programme area.
    Moved,
    /// Declined further participation.
    DeclinedFurther,
    /// Died.
    Deceased,
    /// Another reason.
    Other,
}

/// A participant's state as one participant change carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantState {
    /// Current home municipality code.
    pub home_municipality: String,
    /// Current stage.
    pub stage: Stage,
    /// The current episode's enrolment date.
    pub enrolled_on: Option<NaiveDate>,
    /// The current episode's discharge date.
    pub discharged_on: Option<NaiveDate>,
    /// Why the current episode ended.
    pub exit: Option<ExitReason>,
}

/// What a participant change records, from its change kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantEvent {
    /// A (new) referral.
    Referred,
    /// One principal reviewed; no outcome yet.
    Reviewed,
    /// The review accepted.
    Accepted,
    /// The review declined.
    Declined,
    /// Anything else (enrolment, moves, discharge carry their own dates).
    Other,
}

/// One participant's funnel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantFact {
    /// Current home municipality code.
    pub home_municipality: String,
    /// Current stage.
    pub stage: Stage,
    /// When the current episode was referred.
    pub referred_at: Option<DateTime<Utc>>,
    /// When the first review of the current episode was recorded.
    pub reviewed_at: Option<DateTime<Utc>>,
    /// When the review accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When the review declined.
    pub declined_at: Option<DateTime<Utc>>,
    /// Enrolment date.
    pub enrolled_on: Option<NaiveDate>,
    /// Discharge date.
    pub discharged_on: Option<NaiveDate>,
    /// Why participation ended.
    pub exit: Option<ExitReason>,
}

impl ParticipantFact {
    /// Takes in one participant change recorded at `at`.
    pub fn apply(&mut self, state: ParticipantState, event: ParticipantEvent, at: DateTime<Utc>) {
        match event {
            ParticipantEvent::Referred if state.stage == Stage::Referred => {
                // A new episode (a first referral, or a re-referral after one ended).
                *self = Self {
                    referred_at: Some(at),
                    ..Self::default()
                };
            }
            ParticipantEvent::Referred => {
                // A referral kept beside an ongoing participation changes nothing.
                self.referred_at.get_or_insert(at);
            }
            ParticipantEvent::Reviewed => {
                self.reviewed_at.get_or_insert(at);
            }
            ParticipantEvent::Accepted => {
                self.reviewed_at.get_or_insert(at);
                self.accepted_at = Some(at);
            }
            ParticipantEvent::Declined => {
                self.reviewed_at.get_or_insert(at);
                self.declined_at = Some(at);
            }
            ParticipantEvent::Other => {}
        }
        self.home_municipality = state.home_municipality;
        self.stage = state.stage;
        self.enrolled_on = state.enrolled_on;
        self.discharged_on = state.discharged_on;
        self.exit = state.exit;
    }
}

/// Which principal is responsible for an intervention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Principal {
    /// The region (health care).
    Region,
    /// The municipality (social services).
    Municipality,
}

/// One intervention as reports count it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterventionFact {
    /// Who is responsible.
    pub principal: Principal,
    /// Whether it still meets the need (not denied, not ended).
    pub current: bool,
    /// Days from the decision's start to the intervention's start, when both are known.
    pub days_decision_to_start: Option<i64>,
}

/// One need as reports count it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeedFact {
    /// The life area's code ("housing", "occupation", ...).
    pub life_area: String,
    /// The interventions meeting it.
    pub interventions: Vec<InterventionFact>,
    /// Why it has no intervention, as a code of [`super::reports::NO_INTERVENTION_REASONS`];
    /// `None` when the plan records no reason.
    #[serde(default)]
    pub no_intervention_reason: Option<String>,
}

/// One plan as reports count it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFact {
    /// The participant's id.
    pub participant_id: String,
    /// Whether the plan is the participant's active one.
    pub active: bool,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// Its needs.
    pub needs: Vec<NeedFact>,
    /// The days SIP meetings were held.
    pub meetings: Vec<NaiveDate>,
    /// When SIP-kollen evaluations were recorded.
    pub evaluations: Vec<DateTime<Utc>>,
    /// The SIP-kollen evaluations' answers (a read model built before they were kept has
    /// none).
    #[serde(default)]
    pub sip_kollen: Vec<EvaluationFact>,
}

/// One SIP-kollen evaluation's structured answers; never its comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationFact {
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// (question, answer) codes: "took_part", ... and "yes", "partly" or "no".
    pub answers: Vec<(String, String)>,
}

/// One stay on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StayFact {
    /// The participant's id.
    pub participant_id: String,
    /// The FACT team's id.
    pub team_id: String,
    /// Put on the board.
    pub on_at: DateTime<Utc>,
    /// Taken off, when it has been.
    pub off_at: Option<DateTime<Utc>>,
    /// Each status level the stay had, from when the read model saw it set (1 = most
    /// acute). A change that leaves the level as it was adds nothing.
    #[serde(default)]
    pub levels: Vec<(DateTime<Utc>, u32)>,
}

impl StayFact {
    /// This revision of the stay taken in after `previous`: its level history continued.
    pub fn after(mut self, previous: Option<Self>) -> Self {
        let current = self.levels.pop();
        self.levels = previous.map(|p| p.levels).unwrap_or_default();
        if let Some((at, level)) = current
            && self.levels.last().map(|(_, l)| *l) != Some(level)
        {
            self.levels.push((at, level));
        }
        self
    }

    /// The level in force at `at` (the last set at or before it).
    pub fn level_at(&self, at: DateTime<Utc>) -> Option<u32> {
        self.levels
            .iter()
            .take_while(|(set, _)| *set <= at)
            .last()
            .map(|(_, level)| *level)
    }
}

/// One research-study consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentFact {
    /// The participant's id.
    pub participant_id: String,
    /// The study it is for; `None` for a consent recorded before consents named their study.
    #[serde(default)]
    pub study_id: Option<String>,
    /// From when it counts.
    pub valid_from: DateTime<Utc>,
    /// Until when, if limited.
    pub valid_until: Option<DateTime<Utc>>,
    /// Revoked or voided.
    pub ended: bool,
}

impl ConsentFact {
    /// Whether it is in force at `at`.
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        !self.ended && self.valid_from <= at && self.valid_until.is_none_or(|until| at < until)
    }

    /// Whether it is in force at `at` for `study`.
    pub fn active_for(&self, study: &str, at: DateTime<Utc>) -> bool {
        self.study_id.as_deref() == Some(study) && self.active_at(at)
    }
}

/// Everything the read model holds: loaded once, then kept current change by change.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Participants by id.
    pub participants: HashMap<String, ParticipantFact>,
    /// Current case managers (staff ids) by participant id.
    pub case_managers: HashMap<String, Vec<String>>,
    /// Plans by id.
    pub plans: BTreeMap<String, PlanFact>,
    /// Board stays by entry id.
    pub stays: BTreeMap<String, StayFact>,
    /// Research-study consents by id.
    pub research_consents: BTreeMap<String, ConsentFact>,
    /// The consultation group's cases.
    pub consultation_cases: Vec<(String, super::consultation::CaseFact)>,
    /// The consultation group's meetings.
    pub consultation_meetings: Vec<super::consultation::MeetingFact>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(stage: Stage) -> ParticipantState {
        ParticipantState {
            home_municipality: "1283".into(),
            stage,
            enrolled_on: None,
            discharged_on: None,
            exit: None,
        }
    }

    #[test]
    fn a_funnel_keeps_the_first_review_and_a_new_referral_starts_over() {
        let t = |h: i64| DateTime::<Utc>::from_timestamp(h * 3600, 0).unwrap_or_default();
        let mut fact = ParticipantFact::default();
        fact.apply(state(Stage::Referred), ParticipantEvent::Referred, t(1));
        fact.apply(state(Stage::Referred), ParticipantEvent::Reviewed, t(2));
        fact.apply(state(Stage::Accepted), ParticipantEvent::Accepted, t(3));
        assert_eq!(fact.referred_at, Some(t(1)));
        assert_eq!(fact.reviewed_at, Some(t(2)));
        assert_eq!(fact.accepted_at, Some(t(3)));
        fact.apply(state(Stage::Referred), ParticipantEvent::Referred, t(9));
        assert_eq!(fact.referred_at, Some(t(9)));
        assert_eq!(fact.reviewed_at, None);
    }

    #[test]
    fn a_stay_keeps_each_level_it_had_and_only_changes() {
        let t = |h: i64| DateTime::<Utc>::from_timestamp(h * 3600, 0).unwrap_or_default();
        let revision = |at: i64, level: u32| StayFact {
            participant_id: "p".into(),
            team_id: "t".into(),
            on_at: t(1),
            off_at: None,
            levels: vec![(t(at), level)],
        };
        let mut stay = revision(1, 2).after(None);
        stay = revision(2, 2).after(Some(stay));
        stay = revision(3, 1).after(Some(stay));
        assert_eq!(stay.levels, [(t(1), 2), (t(3), 1)]);
        assert_eq!(stay.level_at(t(2)), Some(2));
        assert_eq!(stay.level_at(t(4)), Some(1));
        assert_eq!(stay.level_at(t(0)), None);
    }
}
