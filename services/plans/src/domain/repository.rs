//! What the plans service needs from storage, in domain terms.

use std::future::Future;

use chrono::{DateTime, Utc};
use samsyn_kit::idempotency::IdempotencyKey;
use samsyn_kit::paging::Page;

use super::PlansError;
use super::catalogue::{CatalogueEntry, Principal};
use super::decision::{Decision, DecisionReceipt, InboxState, ParkedDecision, Resolver};
use super::plan::{FollowUp, Plan, PlanStatus, RevisionKind};
use super::values::{
    CatalogueCode, Day, ItemId, OrganisationId, ParticipantId, PlanId, TeamId, Text,
};

/// A plan without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSummary {
    /// Its id.
    pub id: PlanId,
    /// Whose plan.
    pub participant_id: ParticipantId,
    /// Active or closed.
    pub status: PlanStatus,
    /// Current revision.
    pub revision: u64,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

/// One revision in a plan's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionSummary {
    /// The revision.
    pub revision: u64,
    /// What made it.
    pub kind: RevisionKind,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// A parked decision linked or dismissed at this revision.
    pub inbox: Option<InboxNote>,
}

/// What the plan's history keeps of a parked decision linked or dismissed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InboxNote {
    /// The inbox entry.
    pub inbox_id: ItemId,
    /// The deciding system's id.
    pub external_decision_id: String,
    /// Who linked or dismissed it.
    pub resolved_by: Resolver,
    /// Dismissed: why.
    pub dismissal_reason: Option<Text>,
}

impl InboxNote {
    /// The note of a parked decision just resolved.
    pub fn of(parked: &ParkedDecision) -> Option<Self> {
        let (resolved_by, _) = parked.resolved.clone()?;
        Some(Self {
            inbox_id: parked.inbox_id,
            external_decision_id: parked.decision.external_decision_id.to_string(),
            resolved_by,
            dismissal_reason: match &parked.state {
                InboxState::Dismissed { reason } => Some(reason.clone()),
                _ => None,
            },
        })
    }
}

/// Whose follow-ups to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUpOwner {
    /// One organisation's.
    Organisation(OrganisationId),
    /// One team's.
    Team(TeamId),
}

/// An open follow-up of an active plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueFollowUp {
    /// Whose plan.
    pub participant_id: ParticipantId,
    /// The plan.
    pub plan_id: PlanId,
    /// The follow-up.
    pub follow_up: FollowUp,
}

/// A page of rows and the token of the next page (empty when none).
pub type Paged<T> = (Vec<T>, String);

/// Storage of plans, decisions and the catalogue. Every change is one transaction that
/// also appends to the change feed.
pub trait PlanRepository: Clone + Send + Sync + 'static {
    /// Stores a new plan (closing the active one when `supersede_active`); with a request id,
    /// a retry returns the plan stored first.
    fn create_plan(
        &self,
        plan: Plan,
        supersede_active: bool,
        request_id: Option<IdempotencyKey>,
    ) -> impl Future<Output = Result<Plan, PlansError>> + Send;

    /// The plan as it is now, if it is this participant's.
    fn plan(
        &self,
        participant_id: ParticipantId,
        plan_id: PlanId,
    ) -> impl Future<Output = Result<Plan, PlansError>> + Send;

    /// The participant's active plan.
    fn active_plan(
        &self,
        participant_id: ParticipantId,
    ) -> impl Future<Output = Result<Plan, PlansError>> + Send;

    /// Every plan of the participant, newest first.
    fn plans_of(
        &self,
        participant_id: ParticipantId,
    ) -> impl Future<Output = Result<Vec<PlanSummary>, PlansError>> + Send;

    /// The plan exactly as it was at `revision`.
    fn plan_at(
        &self,
        participant_id: ParticipantId,
        plan_id: PlanId,
        revision: u64,
    ) -> impl Future<Output = Result<Plan, PlansError>> + Send;

    /// The plan's revisions, oldest first.
    fn revisions(
        &self,
        participant_id: ParticipantId,
        plan_id: PlanId,
        page: Page,
    ) -> impl Future<Output = Result<Paged<RevisionSummary>, PlansError>> + Send;

    /// Applies `change` to the plan at `expected_revision` and stores the next revision.
    fn update<F>(
        &self,
        participant_id: ParticipantId,
        plan_id: PlanId,
        expected_revision: u64,
        change: F,
    ) -> impl Future<Output = Result<Plan, PlansError>> + Send
    where
        F: FnOnce(&mut Plan) -> Result<RevisionKind, PlansError> + Send;

    /// Records a decision once per (organisation, external id) and updates its intervention.
    fn push_decision(
        &self,
        decision: Decision,
    ) -> impl Future<Output = Result<DecisionReceipt, PlansError>> + Send;

    /// One deciding organisation's decision inbox, oldest first; parked ones only unless
    /// `include_resolved`; with `team`, only about participants that team follows up.
    fn decision_inbox(
        &self,
        organisation: OrganisationId,
        team: Option<TeamId>,
        include_resolved: bool,
        page: Page,
    ) -> impl Future<Output = Result<Paged<ParkedDecision>, PlansError>> + Send;

    /// Links a parked decision of `participant_id` to `intervention` of their active plan,
    /// which it then decides.
    fn link_parked_decision(
        &self,
        participant_id: ParticipantId,
        inbox_id: ItemId,
        intervention: ItemId,
        resolver: Resolver,
    ) -> impl Future<Output = Result<DecisionReceipt, PlansError>> + Send;

    /// Dismisses a parked decision of `participant_id` with a reason.
    fn dismiss_parked_decision(
        &self,
        participant_id: ParticipantId,
        inbox_id: ItemId,
        reason: Text,
        resolver: Resolver,
    ) -> impl Future<Output = Result<ParkedDecision, PlansError>> + Send;

    /// Open follow-ups of active plans due on or before `until`, earliest first.
    fn due_follow_ups(
        &self,
        owner: FollowUpOwner,
        until: Day,
        page: Page,
    ) -> impl Future<Output = Result<Paged<DueFollowUp>, PlansError>> + Send;

    /// Catalogue entries, optionally of one principal, optionally with retired ones.
    fn catalogue(
        &self,
        principal: Option<Principal>,
        include_retired: bool,
    ) -> impl Future<Output = Result<Vec<CatalogueEntry>, PlansError>> + Send;

    /// Which of `codes` the catalogue does not hold (retired entries count as held).
    fn unknown_codes(
        &self,
        codes: Vec<CatalogueCode>,
    ) -> impl Future<Output = Result<Vec<CatalogueCode>, PlansError>> + Send;

    /// Adds or changes a catalogue entry.
    fn upsert_catalogue_entry(
        &self,
        entry: CatalogueEntry,
    ) -> impl Future<Output = Result<CatalogueEntry, PlansError>> + Send;
}
