//! The coordinated individual plan (SIP) and the rules for changing it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decision::{Decision, DecisionChange, DecisionOutcome, DecisionSubject};
use super::values::{
    CatalogueCode, Day, ItemId, OrganisationId, ParticipantId, PlanId, StaffId, TeamId, Text,
};
use super::{PlansError, Violations};

/// The most goals, needs, interventions, actions or follow-ups one plan holds (each).
pub const MAX_ITEMS: usize = 200;
/// The most attendees or decisions one meeting holds (each).
pub const MAX_MEETING_ITEMS: usize = 100;

/// Whether a plan is the participant's current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanStatus {
    /// The participant's current SIP.
    Active,
    /// An earlier SIP, kept; it no longer changes.
    Closed,
}

/// A life area a need belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifeArea {
    /// Boende.
    Housing,
    /// Sysselsättning, arbete.
    Occupation,
    /// Hälsa.
    Health,
    /// Missbruk, beroende.
    SubstanceUse,
    /// Ekonomi.
    Finances,
    /// Socialt nätverk.
    SocialNetwork,
    /// Vardagsliv.
    DailyLiving,
    /// Annat.
    Other,
}

/// Where an intervention stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InterventionStatus {
    /// Discussed, not applied for.
    Proposed,
    /// Applied for; waiting for a decision.
    Applied,
    /// Granted by a decision.
    Granted,
    /// Denied by a decision.
    Denied,
    /// Under way.
    Started,
    /// Paused.
    Paused,
    /// Over (or dropped).
    Ended,
}

impl InterventionStatus {
    /// Whether an intervention in this state still meets its need (not denied, not ended).
    pub fn is_current(self) -> bool {
        !matches!(self, Self::Denied | Self::Ended)
    }

    /// Whether staff may move an intervention from `self` to `next` by editing the plan.
    ///
    /// Granted and denied are normally set by a pushed decision; staff may still record them
    /// for applications decided outside Samsyn.
    pub fn may_become(self, next: Self) -> bool {
        use InterventionStatus::{Applied, Denied, Ended, Granted, Paused, Proposed, Started};
        self == next
            || matches!(
                (self, next),
                (Proposed, Applied | Started | Ended)
                    | (Applied, Granted | Denied | Started | Ended)
                    | (Granted, Started | Ended)
                    | (Denied, Applied | Ended)
                    | (Started, Paused | Ended)
                    | (Paused, Started | Ended)
            )
    }

    /// The status a decision gives an intervention now in `self`; `None` when the
    /// intervention is already under way or over and the decision only goes on record.
    pub fn after_decision(self, outcome: DecisionOutcome) -> Option<Self> {
        use InterventionStatus::{Applied, Denied, Granted, Proposed};
        match self {
            Proposed | Applied | Granted | Denied => Some(match outcome {
                DecisionOutcome::Granted | DecisionOutcome::PartlyGranted => Granted,
                DecisionOutcome::Denied => Denied,
            }),
            _ => None,
        }
    }
}

/// A goal of the participant in their own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    /// Its id.
    pub id: ItemId,
    /// The participant's words, unchanged.
    pub text: Text,
}

/// Who holds the overall responsibility for the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responsibility {
    /// The responsible organisation.
    pub organisation_id: OrganisationId,
    /// The responsible person, when named.
    pub staff_id: Option<StaffId>,
}

/// A need in one life area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    /// Its id.
    pub id: ItemId,
    /// The life area.
    pub life_area: LifeArea,
    /// What is needed.
    pub description: Text,
    /// Why no intervention is planned, when none is and a reason was recorded. Plans stored
    /// before the field existed read as recording none.
    #[serde(default)]
    pub no_intervention_reason: Option<NoInterventionReason>,
}

/// Why a need has no intervention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoInterventionReason {
    /// The participant does not want one now.
    ParticipantDeclines,
    /// Hard to motivate or ambivalent: motivational work comes first.
    MotivationWork,
    /// No suitable intervention is available.
    NoneSuitable,
    /// Applied for and refused by a decision.
    Denied,
    /// Met by the participant's own network or another actor.
    MetOtherwise,
    /// Another reason.
    Other,
}

/// What kind of intervention: from the catalogue or described freely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InterventionKind {
    /// A catalogue entry.
    Catalogue(CatalogueCode),
    /// A free-text description.
    FreeText(Text),
}

/// The decision that last decided an intervention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionLink {
    /// The deciding system's decision id.
    pub external_decision_id: super::values::ExternalDecisionId,
    /// What it said.
    pub outcome: DecisionOutcome,
    /// From which day.
    pub valid_from: Day,
    /// Until which day, if limited.
    pub valid_until: Option<Day>,
    /// The decision's current version.
    #[serde(default = "first_version")]
    pub version: u32,
    /// What that version did.
    #[serde(default)]
    pub change: DecisionChange,
}

fn first_version() -> u32 {
    1
}

/// An intervention (insats) meeting a need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervention {
    /// Its id.
    pub id: ItemId,
    /// The need it meets.
    pub need_id: ItemId,
    /// The organisation responsible for it.
    pub responsible_organisation_id: OrganisationId,
    /// The person responsible, when named.
    pub responsible_staff_id: Option<StaffId>,
    /// Its kind.
    pub kind: InterventionKind,
    /// Its status.
    pub status: InterventionStatus,
    /// Planned or actual start.
    pub start_on: Option<Day>,
    /// Planned or actual end.
    pub end_on: Option<Day>,
    /// The decision that decided it; set by decisions only.
    pub decision: Option<DecisionLink>,
}

/// An action by an actor outside the two principals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherActorAction {
    /// Its id.
    pub id: ItemId,
    /// Who acts ("Försäkringskassan").
    pub actor: Text,
    /// What they do.
    pub description: Text,
    /// Whom to contact there (may be empty).
    pub contact: Text,
    /// By when.
    pub due_on: Option<Day>,
}

/// A scheduled review of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Its id.
    pub id: ItemId,
    /// When it is due.
    pub due_on: Day,
    /// The organisation that follows up.
    pub organisation_id: OrganisationId,
    /// The team that follows up, if one does.
    pub team_id: Option<TeamId>,
    /// The person who follows up, if named.
    pub staff_id: Option<StaffId>,
    /// What is followed up.
    pub description: Text,
    /// When it was done.
    pub completed_on: Option<Day>,
}

/// The editable content of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanContent {
    /// The participant's own goals.
    pub goals: Vec<Goal>,
    /// The participant's strengths and resources.
    pub strengths: Text,
    /// Who holds the overall responsibility.
    pub overall_responsibility: Option<Responsibility>,
    /// Needs per life area.
    pub needs: Vec<Need>,
    /// Interventions, each meeting a need.
    pub interventions: Vec<Intervention>,
    /// Actions by other actors.
    pub other_actions: Vec<OtherActorAction>,
    /// Follow-ups.
    pub follow_ups: Vec<FollowUp>,
    /// The participant approved the plan as written.
    pub approved_for_participant: bool,
}

impl PlanContent {
    /// Checks the rules that span items: at least one goal, unique ids, interventions linked
    /// to needs of this plan, periods that end after they start. Field paths start at `field`.
    pub fn check(&self, field: &str, violations: &mut Violations) {
        if self.goals.is_empty() {
            violations.add(
                format!("{field}.goals"),
                "at least one goal, in the participant's own words",
            );
        }
        let mut ids = HashSet::new();
        let mut unique = |id: ItemId, path: String, violations: &mut Violations| {
            if !ids.insert(id) {
                violations.add(path, "id used twice in the plan");
            }
        };
        for (i, goal) in self.goals.iter().enumerate() {
            unique(goal.id, format!("{field}.goals[{i}].id"), violations);
        }
        for (i, need) in self.needs.iter().enumerate() {
            unique(need.id, format!("{field}.needs[{i}].id"), violations);
        }
        let needs: HashSet<ItemId> = self.needs.iter().map(|n| n.id).collect();
        for (i, need) in self.needs.iter().enumerate() {
            let met = self
                .interventions
                .iter()
                .any(|x| x.need_id == need.id && x.status.is_current());
            if need.no_intervention_reason.is_some() && met {
                violations.add(
                    format!("{field}.needs[{i}].no_intervention_reason"),
                    "only for a need without a current intervention",
                );
            }
        }
        for (i, intervention) in self.interventions.iter().enumerate() {
            let path = format!("{field}.interventions[{i}]");
            unique(intervention.id, format!("{path}.id"), violations);
            if !needs.contains(&intervention.need_id) {
                violations.add(format!("{path}.need_id"), "not a need of this plan");
            }
            if let (Some(start), Some(end)) = (intervention.start_on, intervention.end_on)
                && end < start
            {
                violations.add(format!("{path}.end_on"), "before start_on");
            }
        }
        for (i, action) in self.other_actions.iter().enumerate() {
            unique(
                action.id,
                format!("{field}.other_actions[{i}].id"),
                violations,
            );
        }
        for (i, follow_up) in self.follow_ups.iter().enumerate() {
            unique(
                follow_up.id,
                format!("{field}.follow_ups[{i}].id"),
                violations,
            );
        }
    }

    /// Catalogue codes named by interventions, with the field path of each.
    pub fn catalogue_codes(&self, field: &str) -> Vec<(String, &CatalogueCode)> {
        self.interventions
            .iter()
            .enumerate()
            .filter_map(|(i, intervention)| match &intervention.kind {
                InterventionKind::Catalogue(code) => {
                    Some((format!("{field}.interventions[{i}].catalogue_code"), code))
                }
                InterventionKind::FreeText(_) => None,
            })
            .collect()
    }
}

/// Someone who attended a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attendee {
    /// A member of staff.
    Staff {
        /// Their id.
        staff_id: StaffId,
        /// The organisation they acted for.
        organisation_id: Option<OrganisationId>,
        /// Their unit.
        unit_id: Option<TeamId>,
    },
    /// The participant.
    Participant,
    /// A relative, described as the participant wishes.
    Relative(Text),
    /// Anyone else.
    Other(Text),
}

/// A SIP meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    /// Its id.
    pub id: ItemId,
    /// The day it was held.
    pub held_on: Day,
    /// Who attended.
    pub attendees: Vec<Attendee>,
    /// What was decided.
    pub decisions: Vec<Text>,
}

/// A SIP-kollen question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EvaluationQuestion {
    /// I took part in making my plan.
    TookPart,
    /// The goals are my own.
    GoalsAreMine,
    /// I know who does what.
    KnowsWhoDoesWhat,
    /// I know when the plan is followed up.
    KnowsFollowUp,
    /// The plan helps me.
    PlanHelps,
}

/// A short structured answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvaluationAnswer {
    /// Ja.
    Yes,
    /// Delvis.
    Partly,
    /// Nej.
    No,
}

/// The participant's own evaluation of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Its id.
    pub id: ItemId,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Answers, each question at most once.
    pub items: Vec<(EvaluationQuestion, EvaluationAnswer)>,
    /// The participant's comment.
    pub comment: Text,
}

impl Evaluation {
    /// Checks that it says something and answers each question at most once.
    pub fn check(&self, field: &str, violations: &mut Violations) {
        if self.items.is_empty() && self.comment.is_empty() {
            violations.add(format!("{field}.items"), "answer a question or comment");
        }
        let mut seen = HashSet::new();
        for (i, (question, _)) in self.items.iter().enumerate() {
            if !seen.insert(*question) {
                violations.add(
                    format!("{field}.items[{i}].question"),
                    "question answered twice",
                );
            }
        }
    }
}

/// What kind of change made a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevisionKind {
    /// The plan was created.
    Created,
    /// Its content was replaced.
    ContentUpdated,
    /// A meeting was recorded.
    MeetingRecorded,
    /// An evaluation was recorded.
    EvaluationRecorded,
    /// A decision was recorded.
    DecisionRecorded,
    /// The plan was closed (superseded by a new one).
    Closed,
    /// A parked decision was linked to one of its interventions.
    ParkedDecisionLinked,
    /// A parked decision about the participant was dismissed.
    ParkedDecisionDismissed,
}

impl RevisionKind {
    /// The stored (and change-feed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::ContentUpdated => "content_updated",
            Self::MeetingRecorded => "meeting_recorded",
            Self::EvaluationRecorded => "evaluation_recorded",
            Self::DecisionRecorded => "decision_recorded",
            Self::Closed => "closed",
            Self::ParkedDecisionLinked => "parked_decision_linked",
            Self::ParkedDecisionDismissed => "parked_decision_dismissed",
        }
    }

    /// The kind of a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Created,
            Self::ContentUpdated,
            Self::MeetingRecorded,
            Self::EvaluationRecorded,
            Self::DecisionRecorded,
            Self::Closed,
            Self::ParkedDecisionLinked,
            Self::ParkedDecisionDismissed,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }
}

/// A coordinated individual plan at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Its id.
    pub id: PlanId,
    /// Whose plan.
    pub participant_id: ParticipantId,
    /// Active or closed.
    pub status: PlanStatus,
    /// Its revision; 1 when created, one more for every change.
    pub revision: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When this revision was made.
    pub updated_at: DateTime<Utc>,
    /// The editable content.
    pub content: PlanContent,
    /// SIP meetings held.
    pub meetings: Vec<Meeting>,
    /// The participant's evaluations.
    pub evaluations: Vec<Evaluation>,
    /// Decisions received.
    pub decisions: Vec<Decision>,
}

impl Plan {
    /// A new active plan at revision 1.
    pub fn new(participant_id: ParticipantId, content: PlanContent, now: DateTime<Utc>) -> Self {
        Self {
            id: PlanId::generate(),
            participant_id,
            status: PlanStatus::Active,
            revision: 1,
            created_at: now,
            updated_at: now,
            content,
            meetings: Vec::new(),
            evaluations: Vec::new(),
            decisions: Vec::new(),
        }
    }

    fn ensure_open(&self) -> Result<(), PlansError> {
        match self.status {
            PlanStatus::Active => Ok(()),
            PlanStatus::Closed => Err(PlansError::PlanClosed),
        }
    }

    /// Moves to the next revision, made at `now`.
    pub fn next_revision(&mut self, now: DateTime<Utc>) {
        self.revision += 1;
        self.updated_at = now.max(self.updated_at);
    }

    /// Replaces the content. Interventions already in the plan keep their decision link and
    /// may only change status along [`InterventionStatus::may_become`]. Any change other than
    /// to `approved_for_participant` withdraws the participant's approval.
    pub fn replace_content(&mut self, mut content: PlanContent) -> Result<(), PlansError> {
        self.ensure_open()?;
        let mut violations = Violations::default();
        for (i, intervention) in content.interventions.iter_mut().enumerate() {
            if let Some(current) = self
                .content
                .interventions
                .iter()
                .find(|c| c.id == intervention.id)
            {
                if !current.status.may_become(intervention.status) {
                    violations.add(
                        format!("content.interventions[{i}].status"),
                        format!(
                            "cannot go from {:?} to {:?}",
                            current.status, intervention.status
                        )
                        .to_lowercase(),
                    );
                }
                intervention.decision.clone_from(&current.decision);
            } else {
                // Only decisions link interventions to decisions.
                intervention.decision = None;
            }
        }
        violations.finish()?;
        // An approval covers the plan as the participant saw it: a change to anything else
        // withdraws it, and approving is a save that changes nothing but the flag.
        let unchanged = PlanContent {
            approved_for_participant: self.content.approved_for_participant,
            ..content.clone()
        } == self.content;
        if !unchanged {
            content.approved_for_participant = false;
        }
        self.content = content;
        Ok(())
    }

    /// Adds a meeting.
    pub fn record_meeting(&mut self, meeting: Meeting) -> Result<(), PlansError> {
        self.ensure_open()?;
        self.meetings.push(meeting);
        Ok(())
    }

    /// Adds the participant's evaluation.
    pub fn record_evaluation(&mut self, evaluation: Evaluation) -> Result<(), PlansError> {
        self.ensure_open()?;
        self.evaluations.push(evaluation);
        Ok(())
    }

    /// Closes the plan (a new one supersedes it).
    pub fn close(&mut self) {
        self.status = PlanStatus::Closed;
    }

    /// Records a decision and updates the intervention it decides; returns that
    /// intervention's id.
    pub fn apply_decision(&mut self, decision: &Decision) -> Result<ItemId, PlansError> {
        self.ensure_open()?;
        let index = match &decision.subject {
            DecisionSubject::Intervention(id) => self
                .content
                .interventions
                .iter()
                .position(|i| i.id == *id)
                .ok_or(PlansError::InterventionNotFound)?,
            DecisionSubject::CatalogueCode(code) => {
                let mut waiting = self
                    .content
                    .interventions
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| {
                        i.kind == InterventionKind::Catalogue(code.clone())
                            && matches!(
                                i.status,
                                InterventionStatus::Proposed | InterventionStatus::Applied
                            )
                    })
                    .map(|(index, _)| index);
                let first = waiting.next().ok_or(PlansError::InterventionNotFound)?;
                if waiting.next().is_some() {
                    return Err(PlansError::AmbiguousIntervention);
                }
                first
            }
        };
        self.decide_at(index, decision)
    }

    /// Records `decision` (as pushed) for the intervention `intervention`, whatever the
    /// decision names: a later version of a decision already applied, or a parked decision a
    /// coordinator linked.
    pub fn apply_decision_to(
        &mut self,
        intervention: ItemId,
        decision: &Decision,
    ) -> Result<ItemId, PlansError> {
        self.ensure_open()?;
        let index = self
            .content
            .interventions
            .iter()
            .position(|i| i.id == intervention)
            .ok_or(PlansError::InterventionNotFound)?;
        self.decide_at(index, decision)
    }

    fn decide_at(&mut self, index: usize, decision: &Decision) -> Result<ItemId, PlansError> {
        let Some(intervention) = self.content.interventions.get_mut(index) else {
            return Err(PlansError::InterventionNotFound);
        };
        // A decision binds only the authority that made it (SoL 4:1 decisions are the
        // municipality's own): it never changes an intervention another organisation is
        // responsible for.
        if intervention.responsible_organisation_id != decision.organisation_id {
            return Err(PlansError::Forbidden);
        }
        match decision.change {
            // The decision stands while appealed.
            DecisionChange::Appealed => {}
            // Withdrawn: the intervention waits for a decision again.
            DecisionChange::Withdrawn => {
                if matches!(
                    intervention.status,
                    InterventionStatus::Granted | InterventionStatus::Denied
                ) {
                    intervention.status = InterventionStatus::Applied;
                }
            }
            DecisionChange::Original | DecisionChange::Amended | DecisionChange::AppealDecided => {
                if let Some(status) = intervention.status.after_decision(decision.outcome) {
                    intervention.status = status;
                }
            }
        }
        intervention.decision = Some(DecisionLink {
            external_decision_id: decision.external_decision_id.clone(),
            outcome: decision.outcome,
            valid_from: decision.valid_from,
            valid_until: decision.valid_until,
            version: decision.version,
            change: decision.change,
        });
        let id = intervention.id;
        self.decisions.push(decision.clone());
        Ok(id)
    }

    /// Follow-ups not yet done.
    pub fn open_follow_ups(&self) -> impl Iterator<Item = &FollowUp> {
        self.content
            .follow_ups
            .iter()
            .filter(|f| f.completed_on.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::InterventionStatus::*;
    use super::*;

    #[test]
    fn staff_move_interventions_along_allowed_steps_only() {
        let table = [
            (Proposed, Applied, true),
            (Proposed, Started, true),
            (Proposed, Granted, false),
            (Applied, Granted, true),
            (Applied, Denied, true),
            (Applied, Paused, false),
            (Granted, Started, true),
            (Granted, Applied, false),
            (Denied, Applied, true),
            (Started, Paused, true),
            (Paused, Started, true),
            (Started, Proposed, false),
            (Ended, Started, false),
            (Ended, Ended, true),
        ];
        for (from, to, allowed) in table {
            assert_eq!(from.may_become(to), allowed, "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn decisions_decide_waiting_interventions_and_only_go_on_record_for_running_ones() {
        let table = [
            (Proposed, DecisionOutcome::Granted, Some(Granted)),
            (Applied, DecisionOutcome::PartlyGranted, Some(Granted)),
            (Applied, DecisionOutcome::Denied, Some(Denied)),
            (Denied, DecisionOutcome::Granted, Some(Granted)),
            (Started, DecisionOutcome::Denied, None),
            (Ended, DecisionOutcome::Granted, None),
        ];
        for (from, outcome, expected) in table {
            assert_eq!(
                from.after_decision(outcome),
                expected,
                "{from:?} {outcome:?}"
            );
        }
    }

    fn plan_with(text: &str, approved: bool) -> PlanContent {
        PlanContent {
            goals: vec![Goal {
                id: ItemId::parse("6a1c1c1e-0000-4000-8000-000000000001").unwrap(),
                text: Text::required(text, Text::MEDIUM).unwrap(),
            }],
            approved_for_participant: approved,
            ..PlanContent::default()
        }
    }

    #[test]
    fn approval_covers_the_plan_as_the_participant_saw_it() {
        // (current goal, approved now, new goal, approve in the update, approved after)
        let table = [
            ("Egen lägenhet", false, "Egen lägenhet", true, true),
            ("Egen lägenhet", true, "Egen lägenhet", true, true),
            ("Egen lägenhet", true, "Ett arbete", true, false),
            ("Egen lägenhet", false, "Ett arbete", true, false),
            ("Egen lägenhet", true, "Egen lägenhet", false, false),
        ];
        for (before, approved, after, approve, expected) in table {
            let mut plan = Plan::new(
                ParticipantId::generate(),
                plan_with(before, approved),
                Utc::now(),
            );
            plan.replace_content(plan_with(after, approve)).unwrap();
            assert_eq!(
                plan.content.approved_for_participant, expected,
                "{before} -> {after}, approve {approve}"
            );
        }
    }

    #[test]
    fn a_decision_by_catalogue_kind_needs_exactly_one_waiting_intervention() {
        use crate::domain::decision::{Decider, DecisionSubject};
        use crate::domain::values::{ExternalDecisionId, OrganisationId, StaffId};
        let code = CatalogueCode::parse("municipality.housing_support").unwrap();
        let need = Need {
            id: ItemId::generate(),
            life_area: LifeArea::Housing,
            description: Text::required("Boende", 10).unwrap(),
            no_intervention_reason: None,
        };
        let with_status = |status| Intervention {
            id: ItemId::generate(),
            need_id: need.id,
            responsible_organisation_id: OrganisationId::parse("9999").unwrap(),
            responsible_staff_id: None,
            kind: InterventionKind::Catalogue(code.clone()),
            status,
            start_on: None,
            end_on: None,
            decision: None,
        };
        let decision = Decision {
            external_decision_id: ExternalDecisionId::parse("BB-1").unwrap(),
            organisation_id: OrganisationId::parse("9999").unwrap(),
            participant_id: ParticipantId::generate(),
            subject: DecisionSubject::CatalogueCode(code.clone()),
            outcome: DecisionOutcome::Granted,
            valid_from: Day::from_ymd(2026, 12, 1).unwrap(),
            valid_until: None,
            decided_by: Decider {
                staff_id: StaffId::parse("9999-BH-7").unwrap(),
                unit_id: None,
            },
            decided_at: Utc::now(),
            version: 1,
            change: DecisionChange::Original,
        };
        let plan_of = |statuses: &[InterventionStatus]| {
            let mut content = plan_with("Mål", false);
            content.needs = vec![need.clone()];
            content.interventions = statuses.iter().map(|s| with_status(*s)).collect();
            Plan::new(ParticipantId::generate(), content, Utc::now())
        };

        let mut one_waiting = plan_of(&[Started, Applied]);
        let decided = one_waiting.apply_decision(&decision).unwrap();
        assert_eq!(decided, one_waiting.content.interventions[1].id);
        assert_eq!(one_waiting.content.interventions[1].status, Granted);
        assert_eq!(one_waiting.content.interventions[0].status, Started);
        assert_eq!(one_waiting.decisions, std::slice::from_ref(&decision));

        let mut two_waiting = plan_of(&[Proposed, Applied]);
        assert!(matches!(
            two_waiting.apply_decision(&decision),
            Err(PlansError::AmbiguousIntervention)
        ));
        let mut none_waiting = plan_of(&[Ended]);
        assert!(matches!(
            none_waiting.apply_decision(&decision),
            Err(PlansError::InterventionNotFound)
        ));
        assert!(two_waiting.decisions.is_empty() && none_waiting.decisions.is_empty());
    }

    #[test]
    fn a_closed_plan_no_longer_changes() {
        let mut plan = Plan::new(
            ParticipantId::generate(),
            plan_with("Mål", false),
            Utc::now(),
        );
        plan.close();
        assert!(matches!(
            plan.replace_content(plan_with("Nytt mål", false)),
            Err(PlansError::PlanClosed)
        ));
    }

    #[test]
    fn revision_kinds_round_trip_their_names() {
        for kind in [
            RevisionKind::Created,
            RevisionKind::ContentUpdated,
            RevisionKind::MeetingRecorded,
            RevisionKind::EvaluationRecorded,
            RevisionKind::DecisionRecorded,
            RevisionKind::Closed,
        ] {
            assert_eq!(RevisionKind::parse(kind.as_str()), Some(kind));
        }
    }
}
