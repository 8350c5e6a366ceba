//! The tonic adapter of `samsyn.plans.v1`: decode, parse into domain values, call the
//! repository with the domain's rules, map the answer.

use chrono::Utc;
use samsyn_kit::caller::{Caller, bind_organisation, bind_staff};
use samsyn_kit::feed::{ChangeFeed, ChangeStream};
use samsyn_kit::idempotency::IdempotencyKey;
use samsyn_kit::paging::Page;
use samsyn_kit::{ApiError, FieldViolations, parse_fields};
use samsyn_proto::common::v1::{PageResponse, WatchChangesRequest};
use samsyn_proto::plans::v1 as pb;
use samsyn_proto::plans::v1::plans_service_server::PlansService;
use tonic::{Request, Response, Status};

use crate::domain::catalogue::Principal;
use crate::domain::decision::{DecisionSubject, MAX_DISMISSAL_CHARS, Resolver};
use crate::domain::plan::{Plan, PlanContent, RevisionKind};
use crate::domain::repository::{FollowUpOwner, PlanRepository};
use crate::domain::values::{
    Day, ItemId, OrganisationId, ParticipantId, PlanId, StaffId, TeamId, Text,
};
use crate::domain::{PlansError, Violations};
use crate::wire;

/// The longest look-ahead of the due follow-up list, in days.
const MAX_WITHIN_DAYS: u32 = 366;

/// The handlers of `PlansService`, over any plan repository.
#[derive(Debug, Clone)]
pub struct PlansApi<R> {
    repo: R,
    feed: ChangeFeed,
}

impl<R: PlanRepository> PlansApi<R> {
    /// Handlers over a repository and the service's change feed.
    pub fn new(repo: R, feed: ChangeFeed) -> Self {
        Self { repo, feed }
    }

    /// Applies `change` to the plan `at` names, at the revision the caller last read.
    async fn revise(
        &self,
        at: (ParticipantId, PlanId, u64),
        change: impl FnOnce(&mut Plan) -> Result<RevisionKind, PlansError> + Send,
    ) -> Result<Response<pb::Plan>, Status> {
        let (participant, plan_id, expected) = at;
        plan_response(
            self.repo
                .update(participant, plan_id, expected, change)
                .await,
        )
    }

    /// Refuses interventions that name codes the catalogue does not hold.
    async fn check_codes(&self, content: &PlanContent, field: &str) -> Result<(), Status> {
        let named = content.catalogue_codes(field);
        let unknown = self
            .repo
            .unknown_codes(named.iter().map(|(_, code)| (*code).clone()).collect())
            .await
            .map_err(to_status)?;
        let mut v = Violations::default();
        for (path, code) in &named {
            if unknown.contains(code) {
                v.add(path.clone(), "not in the intervention catalogue");
            }
        }
        finish(v)
    }
}

impl From<PlansError> for ApiError {
    fn from(error: PlansError) -> Self {
        match error {
            PlansError::Invalid(violations) => {
                let mut fields = FieldViolations::new();
                for (field, reason) in violations.0 {
                    fields.add(field, reason);
                }
                fields
                    .finish()
                    .err()
                    .unwrap_or_else(|| ApiError::invalid("request", "invalid"))
            }
            PlansError::PlanNotFound => ApiError::NotFound("plan"),
            PlansError::RevisionNotFound => ApiError::NotFound("plan revision"),
            PlansError::InterventionNotFound => ApiError::NotFound("intervention"),
            PlansError::InboxEntryNotFound => ApiError::NotFound("decision inbox entry"),
            PlansError::DecisionNotFound => ApiError::NotFound("decision.external_decision_id"),
            e @ PlansError::VersionGap { .. } => ApiError::FailedPrecondition(e.to_string()),
            PlansError::StaleRevision { current } => ApiError::StaleRevision { current },
            e @ (PlansError::ActivePlanExists
            | PlansError::PlanClosed
            | PlansError::NotParked
            | PlansError::AmbiguousIntervention) => ApiError::FailedPrecondition(e.to_string()),
            PlansError::DecisionConflict => {
                ApiError::AlreadyExists("a different decision with this external decision id")
            }
            PlansError::Forbidden => ApiError::PermissionDenied,
            PlansError::KeyReused => ApiError::KeyReused("request_id".to_owned()),
            PlansError::Unavailable => ApiError::Unavailable,
            PlansError::Storage(source) => ApiError::Internal(source),
        }
    }
}

impl samsyn_kit::Violations for Violations {
    fn finish(self) -> Result<(), ApiError> {
        Violations::finish(self).map_err(ApiError::from)
    }
}

/// What every request that revises a plan names: the plan and the revision last read.
struct Revising<'a> {
    participant: Option<&'a samsyn_proto::common::v1::ParticipantId>,
    plan_id: &'a str,
    expected: Option<&'a samsyn_proto::common::v1::Revision>,
}

impl<'a> Revising<'a> {
    fn of(
        participant: &'a Option<samsyn_proto::common::v1::ParticipantId>,
        plan_id: &'a str,
        expected: &'a Option<samsyn_proto::common::v1::Revision>,
    ) -> Self {
        Self {
            participant: participant.as_ref(),
            plan_id,
            expected: expected.as_ref(),
        }
    }

    /// The plan, the revision and what `part` parses of the rest, or every bad field.
    fn parse<P>(
        self,
        part: impl FnOnce(&mut Violations) -> Option<P>,
    ) -> Result<((ParticipantId, PlanId, u64), P), ApiError> {
        parse_fields(|v: &mut Violations| {
            let plan = plan_ref(v, self.participant, self.plan_id);
            let expected = wire::revision(v, "expected_revision", self.expected);
            let part = part(v);
            let (participant, plan_id) = plan?;
            Some(((participant, plan_id, expected?), part?))
        })
    }
}

/// The parked decision a request names: the participant's id and the inbox entry's.
fn parked_ref(
    v: &mut Violations,
    participant: Option<&samsyn_proto::common::v1::ParticipantId>,
    inbox_id: &str,
) -> Option<(ParticipantId, ItemId)> {
    let participant = wire::participant_id(v, "participant_id", participant);
    let inbox_id = v.check("inbox_id", ItemId::parse(inbox_id));
    Some((participant?, inbox_id?))
}

/// The plan a request names: the participant's and its own id.
fn plan_ref(
    v: &mut Violations,
    participant: Option<&samsyn_proto::common::v1::ParticipantId>,
    plan_id: &str,
) -> Option<(ParticipantId, PlanId)> {
    let participant = wire::participant_id(v, "participant_id", participant);
    let plan_id = wire::plan_id(v, "plan_id", plan_id);
    Some((participant?, plan_id?))
}

fn to_status(error: PlansError) -> Status {
    Status::from(ApiError::from(error))
}

fn finish(v: Violations) -> Result<(), Status> {
    v.finish().map_err(to_status)
}

/// Who links or dismisses a parked decision: the authenticated member of staff, never a
/// name in the request. A call without one is refused.
fn resolver<T>(request: &Request<T>) -> Result<Resolver, Status> {
    let caller = Caller::of(request)?.ok_or(ApiError::PermissionDenied)?;
    let staff_id = StaffId::parse(&caller.id).map_err(|_| ApiError::PermissionDenied)?;
    let organisation_id = caller
        .organisation
        .as_deref()
        .and_then(|org| OrganisationId::parse(org).ok())
        .ok_or(ApiError::PermissionDenied)?;
    let unit_id = caller
        .unit
        .as_deref()
        .and_then(|unit| TeamId::parse(unit).ok());
    Ok(Resolver {
        staff_id,
        organisation_id,
        unit_id,
    })
}

fn plan_response(plan: Result<Plan, PlansError>) -> Result<Response<pb::Plan>, Status> {
    plan.map(|p| Response::new(wire::plan_to(&p)))
        .map_err(to_status)
}

#[tonic::async_trait]
impl<R: PlanRepository> PlansService for PlansApi<R> {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Ok(self.feed.watch_response(request))
    }

    async fn create_plan(
        &self,
        request: Request<pb::CreatePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (participant, content, key) = parse_fields(|v: &mut Violations| {
            let participant = wire::participant_id(v, "participant_id", r.participant_id.as_ref());
            let content = wire::content(v, "content", r.content.as_ref());
            let key = match IdempotencyKey::parse("request_id", &r.request_id) {
                Ok(key) => Some(key.map(|key| key.bind(caller.as_ref(), &r))),
                Err(_) => {
                    v.add("request_id", "1 to 128 printable ASCII characters");
                    None
                }
            };
            Some((participant?, content?, key?))
        })?;
        self.check_codes(&content, "content").await?;
        let plan = Plan::new(participant, content, Utc::now());
        plan_response(self.repo.create_plan(plan, r.supersede_active, key).await)
    }

    async fn get_plan(
        &self,
        request: Request<pb::GetPlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let r = request.into_inner();
        let (participant, plan_id) =
            parse_fields(|v| plan_ref(v, r.participant_id.as_ref(), &r.plan_id))?;
        plan_response(self.repo.plan(participant, plan_id).await)
    }

    async fn get_active_plan(
        &self,
        request: Request<pb::GetActivePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let participant =
            ParticipantId::from_field("participant_id", request.get_ref().participant_id.as_ref())
                .map_err(ApiError::from)?;
        plan_response(self.repo.active_plan(participant).await)
    }

    async fn list_plans(
        &self,
        request: Request<pb::ListPlansRequest>,
    ) -> Result<Response<pb::ListPlansResponse>, Status> {
        let participant =
            ParticipantId::from_field("participant_id", request.get_ref().participant_id.as_ref())
                .map_err(ApiError::from)?;
        let plans = self.repo.plans_of(participant).await.map_err(to_status)?;
        Ok(Response::new(pb::ListPlansResponse {
            plans: plans.iter().map(wire::summary_to).collect(),
        }))
    }

    async fn get_plan_revision(
        &self,
        request: Request<pb::GetPlanRevisionRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let r = request.into_inner();
        let ((participant, plan_id), revision) = parse_fields(|v: &mut Violations| {
            let plan = plan_ref(v, r.participant_id.as_ref(), &r.plan_id);
            let revision = wire::revision(v, "revision", r.revision.as_ref());
            Some((plan?, revision?))
        })?;
        plan_response(self.repo.plan_at(participant, plan_id, revision).await)
    }

    async fn list_plan_revisions(
        &self,
        request: Request<pb::ListPlanRevisionsRequest>,
    ) -> Result<Response<pb::ListPlanRevisionsResponse>, Status> {
        let r = request.into_inner();
        let (participant, plan_id) =
            parse_fields(|v| plan_ref(v, r.participant_id.as_ref(), &r.plan_id))?;
        let page = Page::from_request(r.page.as_ref(), "page")?;
        let (revisions, next_page_token) = self
            .repo
            .revisions(participant, plan_id, page)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListPlanRevisionsResponse {
            revisions: revisions.iter().map(wire::revision_summary_to).collect(),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn update_plan(
        &self,
        request: Request<pb::UpdatePlanRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let r = request.into_inner();
        let revision = Revising::of(&r.participant_id, &r.plan_id, &r.expected_revision);
        let (revision, content) =
            revision.parse(|v| wire::content(v, "content", r.content.as_ref()))?;
        self.check_codes(&content, "content").await?;
        self.revise(revision, move |plan| {
            plan.replace_content(content)?;
            Ok(RevisionKind::ContentUpdated)
        })
        .await
    }

    async fn record_meeting(
        &self,
        request: Request<pb::RecordMeetingRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let r = request.into_inner();
        let revision = Revising::of(&r.participant_id, &r.plan_id, &r.expected_revision);
        let (revision, meeting) =
            revision.parse(|v| wire::meeting(v, "meeting", r.meeting.as_ref()))?;
        self.revise(revision, move |plan| {
            plan.record_meeting(meeting)?;
            Ok(RevisionKind::MeetingRecorded)
        })
        .await
    }

    async fn record_evaluation(
        &self,
        request: Request<pb::RecordEvaluationRequest>,
    ) -> Result<Response<pb::Plan>, Status> {
        let r = request.into_inner();
        let revision = Revising::of(&r.participant_id, &r.plan_id, &r.expected_revision);
        let (revision, evaluation) =
            revision.parse(|v| wire::evaluation(v, "evaluation", r.evaluation.as_ref()))?;
        self.revise(revision, move |plan| {
            plan.record_evaluation(evaluation)?;
            Ok(RevisionKind::EvaluationRecorded)
        })
        .await
    }

    async fn list_due_follow_ups(
        &self,
        request: Request<pb::ListDueFollowUpsRequest>,
    ) -> Result<Response<pb::ListDueFollowUpsResponse>, Status> {
        let r = request.into_inner();
        let (owner, as_of) = parse_fields(|v: &mut Violations| {
            let owner = match &r.owner {
                Some(pb::list_due_follow_ups_request::Owner::OrganisationId(org)) => v
                    .check("organisation_id.value", OrganisationId::parse(&org.value))
                    .map(FollowUpOwner::Organisation),
                Some(pb::list_due_follow_ups_request::Owner::TeamId(team)) => v
                    .check("team_id", TeamId::parse(team))
                    .map(FollowUpOwner::Team),
                None => {
                    v.add("owner", "required: organisation_id or team_id");
                    None
                }
            };
            let as_of = match &r.as_of {
                None => Day::from_date(Utc::now().date_naive()).ok(),
                Some(_) => wire::day(v, "as_of", r.as_of.as_ref()),
            };
            if r.within_days > MAX_WITHIN_DAYS {
                v.add("within_days", format!("at most {MAX_WITHIN_DAYS}"));
            }
            Some((owner?, as_of?))
        })?;
        let page = Page::from_request(r.page.as_ref(), "page")?;
        let (due, next_page_token) = self
            .repo
            .due_follow_ups(owner, as_of.plus_days(r.within_days), page)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListDueFollowUpsResponse {
            follow_ups: due
                .iter()
                .map(|d| wire::due_follow_up_to(d, as_of))
                .collect(),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn push_decision(
        &self,
        request: Request<pb::PushDecisionRequest>,
    ) -> Result<Response<pb::PushDecisionResponse>, Status> {
        let caller = Caller::of(&request)?;
        let mut r = request.into_inner();
        let mut bound = FieldViolations::new();
        if let Some(decision) = r.decision.as_mut() {
            bind_organisation(
                caller.as_ref(),
                "decision.organisation_id",
                &mut decision.organisation_id,
                &mut bound,
            );
            bind_staff(
                caller.as_ref(),
                "decision.decided_by",
                &mut decision.decided_by,
                &mut bound,
            );
        }
        bound.finish()?;
        let decision = parse_fields(|v| wire::decision(v, "decision", r.decision.as_ref()))?;
        // A code the catalogue does not hold is a mistake, not a decision to park.
        if let DecisionSubject::CatalogueCode(code) = &decision.subject {
            let unknown = self
                .repo
                .unknown_codes(vec![code.clone()])
                .await
                .map_err(to_status)?;
            if !unknown.is_empty() {
                return Err(ApiError::invalid(
                    "decision.catalogue_code",
                    "not in the intervention catalogue",
                )
                .into());
            }
        }
        let receipt = self.repo.push_decision(decision).await.map_err(to_status)?;
        Ok(Response::new(wire::receipt_to(&receipt)))
    }

    async fn list_decision_inbox(
        &self,
        request: Request<pb::ListDecisionInboxRequest>,
    ) -> Result<Response<pb::ListDecisionInboxResponse>, Status> {
        let r = request.into_inner();
        let (organisation, team) = parse_fields(|v: &mut Violations| {
            let organisation =
                OrganisationId::from_field("organisation_id", r.organisation_id.as_ref());
            let organisation = organisation.map_err(|e| v.add(e.field, e.error.to_string()));
            let team = (!r.team_id.is_empty())
                .then(|| v.check("team_id", TeamId::parse(&r.team_id)))
                .flatten();
            Some((organisation.ok()?, team))
        })?;
        let page = Page::from_request(r.page.as_ref(), "page")?;
        let (parked, next_page_token) = self
            .repo
            .decision_inbox(organisation, team, r.include_resolved, page)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListDecisionInboxResponse {
            decisions: parked.iter().map(wire::parked_to).collect(),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn link_parked_decision(
        &self,
        request: Request<pb::LinkParkedDecisionRequest>,
    ) -> Result<Response<pb::PushDecisionResponse>, Status> {
        let resolver = resolver(&request)?;
        let r = request.into_inner();
        let ((participant, inbox_id), intervention) = parse_fields(|v: &mut Violations| {
            let parked = parked_ref(v, r.participant_id.as_ref(), &r.inbox_id);
            let intervention = v.check("intervention_id", ItemId::parse(&r.intervention_id));
            Some((parked?, intervention?))
        })?;
        let receipt = self
            .repo
            .link_parked_decision(participant, inbox_id, intervention, resolver)
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire::receipt_to(&receipt)))
    }

    async fn dismiss_parked_decision(
        &self,
        request: Request<pb::DismissParkedDecisionRequest>,
    ) -> Result<Response<pb::ParkedDecision>, Status> {
        let resolver = resolver(&request)?;
        let r = request.into_inner();
        let ((participant, inbox_id), reason) = parse_fields(|v: &mut Violations| {
            let parked = parked_ref(v, r.participant_id.as_ref(), &r.inbox_id);
            let reason = v.check("reason", Text::required(&r.reason, MAX_DISMISSAL_CHARS));
            Some((parked?, reason?))
        })?;
        let parked = self
            .repo
            .dismiss_parked_decision(participant, inbox_id, reason, resolver)
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire::parked_to(&parked)))
    }

    async fn list_catalogue(
        &self,
        request: Request<pb::ListCatalogueRequest>,
    ) -> Result<Response<pb::ListCatalogueResponse>, Status> {
        let r = request.into_inner();
        let principal = wire::principal(r.principal);
        if principal.is_none() && r.principal != pb::Principal::Unspecified as i32 {
            return Err(
                ApiError::invalid("principal", "region, municipality or unspecified").into(),
            );
        }
        let entries = self
            .repo
            .catalogue(principal, r.include_retired)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListCatalogueResponse {
            entries: entries.iter().map(wire::catalogue_entry_to).collect(),
        }))
    }

    async fn upsert_catalogue_entry(
        &self,
        request: Request<pb::UpsertCatalogueEntryRequest>,
    ) -> Result<Response<pb::CatalogueEntry>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let entry = parse_fields(|v| wire::catalogue_entry(v, "entry", r.entry.as_ref()))?;
        // Each principal keeps its own catalogue: the region's interventions are the
        // region's, a municipality's are the municipality's.
        if let Some(caller) = &caller {
            let own = if caller.is_municipal() {
                Principal::Municipality
            } else {
                Principal::Region
            };
            let existing = self.repo.catalogue(None, true).await.map_err(to_status)?;
            let kept_by = existing
                .iter()
                .find(|e| e.code == entry.code)
                .map_or(entry.principal, |e| e.principal);
            if entry.principal != own || kept_by != own {
                return Err(ApiError::PermissionDenied.into());
            }
        }
        let entry = self
            .repo
            .upsert_catalogue_entry(entry)
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire::catalogue_entry_to(&entry)))
    }
}
