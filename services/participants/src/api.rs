//! The tonic adapter of `samsyn.participants.v1`: decode, validate into domain types, call
//! the repository (a domain trait; its store runs the domain rules), map the result.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use samsyn_kit::caller::{Caller, bind_staff};
use samsyn_kit::error::{ApiError, FieldViolations};
use samsyn_kit::feed::{ChangeFeed, ChangeStream};
use samsyn_kit::idempotency::IdempotencyKey;
use samsyn_kit::paging::Page;
use samsyn_kit::time::parse_calendar_date;
use samsyn_proto::common::v1::{
    CalendarDate, OrganisationKind, PageResponse, ParticipantId as ProtoId, Revision, StaffRef,
    WatchChangesRequest,
};
use samsyn_proto::participants::v1 as pb;
use samsyn_proto::participants::v1::participants_service_server::ParticipantsService;
use tonic::{Request, Response, Status};

use crate::consent_feed::ConsentFollower;
use crate::domain::{
    self, AdmissionCriteria, Assessment, AssignmentRole, CareRole, ConsentReference,
    CoordinatorRank, Created, DischargeReason, Effect, FreeText, IdError, ListFilter,
    MunicipalityCode, NewReferral, OrganisationId, Participant, ParticipantId,
    ParticipantRepository, ParticipantsError, ParticipantsSettings, PersonName,
    PersonalIdentityNumber, Principal, Review, Staff, StaffId, Status as Standing, UnitId,
};
use crate::wire::{care_team_to_proto, participant_to_proto, proto_id, status_to_proto};

/// The longest span of years one count may cover.
const MAX_COUNT_YEARS: i32 = 50;

/// The handlers of `ParticipantsService`, over any participant repository.
#[derive(Debug, Clone)]
pub struct ParticipantsApi<R> {
    repo: R,
    feed: ChangeFeed,
    settings: Arc<ParticipantsSettings>,
    consents: Option<ConsentFollower>,
}

/// How long enrolment waits for the consent feed to bring a consent it does not know yet
/// (one recorded a moment before): the feed is pushed as changes commit, so this is only
/// ever spent on a consent that is not there.
const CONSENT_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(1);

impl<R: ParticipantRepository> ParticipantsApi<R> {
    /// Handlers over a repository and the service's change feed, with the service's settings
    /// and the follower of the consent feed (without one, enrolment is refused).
    pub fn new(
        repo: R,
        feed: ChangeFeed,
        settings: ParticipantsSettings,
        consents: Option<ConsentFollower>,
    ) -> Self {
        Self {
            repo,
            feed,
            settings: Arc::new(settings),
            consents,
        }
    }

    /// Checks that `consent` is an active participation consent of `participant`, waiting
    /// briefly for the consent feed when it does not say so yet.
    async fn check_consent(
        &self,
        consent: ConsentReference,
        participant: ParticipantId,
    ) -> Result<(), Status> {
        let Some(consents) = &self.consents else {
            tracing::warn!("enrolment refused: the consent feed is not followed");
            return Err(ApiError::Unavailable.into());
        };
        let mut applied = consents.applied();
        let deadline = tokio::time::Instant::now() + CONSENT_CATCH_UP;
        loop {
            let known = self
                .repo
                .participation_consent(consent)
                .await
                .map_err(status)?;
            let checked = domain::check_participation_consent(known, participant);
            if checked.is_ok() {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => {}
                _ => return checked.map_err(status),
            }
        }
    }
}

impl From<ParticipantsError> for ApiError {
    fn from(error: ParticipantsError) -> Self {
        match error {
            ParticipantsError::InvalidField { field, reason } => ApiError::invalid(field, reason),
            ParticipantsError::NotFound(what) => ApiError::NotFound(what),
            ParticipantsError::AlreadyActive => ApiError::AlreadyExists("active participation"),
            ParticipantsError::AlreadyAssigned => ApiError::AlreadyExists("assignment"),
            ParticipantsError::StaleRevision { current } => ApiError::StaleRevision { current },
            ParticipantsError::FailedPrecondition(reason) => {
                ApiError::FailedPrecondition(reason.to_owned())
            }
            ParticipantsError::KeyReused => ApiError::KeyReused("idempotency_key".to_owned()),
            ParticipantsError::Unavailable => ApiError::Unavailable,
            ParticipantsError::Storage(source) => ApiError::Internal(source),
        }
    }
}

fn status(error: ParticipantsError) -> Status {
    ApiError::from(error).into()
}

/// After `FieldViolations::finish` every checked value is present; this is never reached.
fn incomplete() -> Status {
    ApiError::invalid("request", "incomplete").into()
}

#[tonic::async_trait]
impl<R: ParticipantRepository> ParticipantsService for ParticipantsApi<R> {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Ok(self.feed.watch_response(request))
    }

    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let caller = Caller::of(&request)?;
        let mut req = request.into_inner();
        let mut v = FieldViolations::new();
        bind_staff(caller.as_ref(), "referred_by", &mut req.referred_by, &mut v);
        let key = v
            .check(
                "idempotency_key",
                IdempotencyKey::parse("idempotency_key", &req.idempotency_key)
                    .map_err(|_| "1 to 128 printable ASCII characters"),
            )
            .flatten()
            .map(|key| key.bind(caller.as_ref(), &req));
        let pin = v.check(
            "personal_identity_number",
            PersonalIdentityNumber::parse(&req.personal_identity_number, today()),
        );
        let name = v.check("name", PersonName::parse(&req.name));
        let home = v.check(
            "home_municipality_code",
            MunicipalityCode::parse(&req.home_municipality_code),
        );
        let principal = v.check("referring_principal", principal(req.referring_principal));
        let referred_by = staff(&mut v, "referred_by", req.referred_by.as_ref());
        side_of(
            &mut v,
            "referring_principal",
            principal,
            referred_by.as_ref(),
        );
        let reason = v.check("reason", FreeText::parse_required(&req.reason));
        v.finish()?;
        let (Some(pin), Some(name), Some(home), Some(principal), Some(referred_by), Some(reason)) =
            (pin, name, home, principal, referred_by, reason)
        else {
            return Err(incomplete());
        };
        let criteria = req.criteria.unwrap_or_default();
        let new = NewReferral {
            pin,
            name,
            home_municipality: home,
            principal,
            referred_by,
            reason,
            criteria: AdmissionCriteria {
                long_term_needs_from_both_principals: criteria.long_term_needs_from_both_principals,
                diagnosis_criteria_met: criteria.diagnosis_criteria_met,
            },
        };
        match self
            .repo
            .create_referral(new, key.as_ref(), &self.settings, caller.is_some())
            .await
            .map_err(status)?
        {
            Created::New(p) => {
                tracing::info!(participant_id = %p.id, "participant referred");
                Ok(Response::new(participant_to_proto(&p)))
            }
            Created::Replayed(bytes) | Created::Receipt(bytes) => {
                pb::Participant::decode(bytes.as_slice())
                    .map(Response::new)
                    .map_err(|e| ApiError::internal(e).into())
            }
        }
    }

    async fn record_review(
        &self,
        request: Request<pb::RecordReviewRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let caller = Caller::of(&request)?;
        let mut req = request.into_inner();
        let mut v = FieldViolations::new();
        bind_staff(caller.as_ref(), "reviewed_by", &mut req.reviewed_by, &mut v);
        let id = v.check(
            "participant_id",
            participant_id(req.participant_id.as_ref()),
        );
        let revision = v.check("revision", revision(req.revision.as_ref()));
        let principal = v.check("principal", principal(req.principal));
        let reviewed_by = staff(&mut v, "reviewed_by", req.reviewed_by.as_ref());
        side_of(&mut v, "principal", principal, reviewed_by.as_ref());
        let assessment = v.check("assessment", assessment(req.assessment));
        let reason = v.check("reason", FreeText::parse(&req.reason));
        v.finish()?;
        let (
            Some(id),
            Some(revision),
            Some(principal),
            Some(reviewed_by),
            Some(assessment),
            Some(reason),
        ) = (id, revision, principal, reviewed_by, assessment, reason)
        else {
            return Err(incomplete());
        };
        let settings = Arc::clone(&self.settings);
        let answer = self
            .update(id, revision, move |p, now| {
                p.record_review(
                    Review {
                        principal,
                        reviewed_by,
                        assessment,
                        reason,
                        recorded_at: now,
                    },
                    &settings,
                )?;
                let change_kind = match p.status {
                    Standing::Accepted => "accepted",
                    Standing::Declined => "declined",
                    _ => "reviewed",
                };
                Ok(Effect {
                    change_kind,
                    ends_assignments: false,
                })
            })
            .await?;
        Ok(answer)
    }

    async fn enrol(
        &self,
        request: Request<pb::EnrolRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let (id, revision) = target(&mut v, req.participant_id.as_ref(), req.revision.as_ref());
        let consent = v.check(
            "consent_reference",
            ConsentReference::parse(&req.consent_reference),
        );
        let enrolled_on = v.check("enrolled_on", date(req.enrolled_on.as_ref()));
        v.finish()?;
        let (Some(id), Some(revision), Some(consent), Some(enrolled_on)) =
            (id, revision, consent, enrolled_on)
        else {
            return Err(incomplete());
        };
        self.check_consent(consent, id).await?;
        let answer = self
            .update(id, revision, move |p, now| {
                p.enrol(consent, enrolled_on, now)?;
                Ok(Effect {
                    change_kind: "enrolled",
                    ends_assignments: false,
                })
            })
            .await?;
        tracing::info!(participant_id = %id, "participant enrolled");
        Ok(answer)
    }

    async fn record_move(
        &self,
        request: Request<pb::RecordMoveRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let (id, revision) = target(&mut v, req.participant_id.as_ref(), req.revision.as_ref());
        let code = v.check(
            "home_municipality_code",
            MunicipalityCode::parse(&req.home_municipality_code),
        );
        let moved_on = v.check("moved_on", date(req.moved_on.as_ref()));
        v.finish()?;
        let (Some(id), Some(revision), Some(code), Some(moved_on)) = (id, revision, code, moved_on)
        else {
            return Err(incomplete());
        };
        let settings = Arc::clone(&self.settings);
        let answer = self
            .update(id, revision, move |p, now| {
                let ended = p.record_move(code, moved_on, &settings, now)?;
                Ok(Effect {
                    change_kind: if ended { "discharged" } else { "moved" },
                    ends_assignments: ended,
                })
            })
            .await?;
        Ok(answer)
    }

    async fn discharge(
        &self,
        request: Request<pb::DischargeRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let (id, revision) = target(&mut v, req.participant_id.as_ref(), req.revision.as_ref());
        let reason = v.check("reason", discharge_reason(req.reason));
        let discharged_on = v.check("discharged_on", date(req.discharged_on.as_ref()));
        let note = v.check("note", FreeText::parse(&req.note));
        v.finish()?;
        let (Some(id), Some(revision), Some(reason), Some(discharged_on), Some(note)) =
            (id, revision, reason, discharged_on, note)
        else {
            return Err(incomplete());
        };
        let answer = self
            .update(id, revision, move |p, now| {
                p.discharge(reason, discharged_on, note, now)?;
                Ok(Effect {
                    change_kind: "discharged",
                    ends_assignments: true,
                })
            })
            .await?;
        tracing::info!(participant_id = %id, "participant discharged");
        Ok(answer)
    }

    async fn get_participant(
        &self,
        request: Request<pb::GetParticipantRequest>,
    ) -> Result<Response<pb::Participant>, Status> {
        let id = participant_id(request.get_ref().participant_id.as_ref())
            .map_err(|e| Status::from(ApiError::invalid("participant_id", e.to_string())))?;
        let p = self.repo.get(id).await.map_err(status)?;
        Ok(Response::new(participant_to_proto(&p)))
    }

    async fn list_participants(
        &self,
        request: Request<pb::ListParticipantsRequest>,
    ) -> Result<Response<pb::ListParticipantsResponse>, Status> {
        let req = request.into_inner();
        let page = Page::from_request(req.page.as_ref(), "page")?;
        let mut v = FieldViolations::new();
        let after = match &page.after {
            None => None,
            Some(token) => v.check(
                "page.page_token",
                ParticipantId::parse(token).map_err(|_| "not a token this server issued"),
            ),
        };
        let status_filter = v.check("status", status_filter(req.status)).flatten();
        let staff_id = optional(&mut v, "staff_id", &req.staff_id, StaffId::parse);
        let organisation_id = optional(
            &mut v,
            "organisation_id.value",
            req.organisation_id
                .as_ref()
                .map_or("", |o| o.value.as_str()),
            OrganisationId::parse,
        );
        let home = optional(
            &mut v,
            "home_municipality_code",
            &req.home_municipality_code,
            MunicipalityCode::parse,
        );
        let personal_identity_number = if req.personal_identity_number.is_empty() {
            None
        } else {
            v.check(
                "personal_identity_number",
                PersonalIdentityNumber::parse(&req.personal_identity_number, today()),
            )
        };
        v.finish()?;
        let filter = ListFilter {
            status: status_filter,
            staff_id,
            organisation_id,
            home_municipality: home,
            personal_identity_number,
        };
        let mut rows = self
            .repo
            .list(&filter, after, page.fetch_limit())
            .await
            .map_err(status)?;
        let next_page_token = page.finish(&mut rows, |r| r.id.to_string());
        Ok(Response::new(pb::ListParticipantsResponse {
            participants: rows
                .iter()
                .map(|r| pb::ParticipantSummary {
                    participant_id: Some(proto_id(r.id)),
                    name: r.name.clone(),
                    home_municipality_code: r.home_municipality.clone(),
                    status: status_to_proto(r.status) as i32,
                    revision: Some(Revision { value: r.revision }),
                    ..pb::ParticipantSummary::default()
                })
                .collect(),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn count_new_participants(
        &self,
        request: Request<pb::CountNewParticipantsRequest>,
    ) -> Result<Response<pb::CountNewParticipantsResponse>, Status> {
        let req = request.get_ref();
        let (from, to) = (req.from_year, req.to_year);
        if !(1900..=9999).contains(&from) {
            return Err(ApiError::invalid("from_year", "a year from 1900 to 9999").into());
        }
        if to < from || to - from >= MAX_COUNT_YEARS {
            return Err(ApiError::invalid(
                "to_year",
                "not before from_year, at most 50 years in all",
            )
            .into());
        }
        let found = self.repo.enrolment_counts(from, to).await.map_err(status)?;
        let target = self.settings.yearly_target;
        let counts = domain::yearly_counts(&self.settings, from, to, found)
            .into_iter()
            .map(|c| pb::MunicipalityYearCount {
                home_municipality_code: c.municipality,
                year: c.year,
                count: c.count,
                target,
            })
            .collect();
        Ok(Response::new(pb::CountNewParticipantsResponse { counts }))
    }

    async fn get_care_team(
        &self,
        request: Request<pb::GetCareTeamRequest>,
    ) -> Result<Response<pb::CareTeam>, Status> {
        let req = request.get_ref();
        let id = participant_id(req.participant_id.as_ref())
            .map_err(|e| Status::from(ApiError::invalid("participant_id", e.to_string())))?;
        let (p, assignments) = self
            .repo
            .care_team(id, req.include_history)
            .await
            .map_err(status)?;
        Ok(Response::new(care_team_to_proto(&p, &assignments)))
    }

    async fn assign_coordinator(
        &self,
        request: Request<pb::AssignCoordinatorRequest>,
    ) -> Result<Response<pb::CareTeam>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let (id, revision) = target(&mut v, req.participant_id.as_ref(), req.revision.as_ref());
        let principal = v.check("principal", principal(req.principal));
        let rank = v.check("rank", rank(req.rank));
        let staff = staff(&mut v, "staff", req.staff.as_ref());
        side_of(&mut v, "principal", principal, staff.as_ref());
        // Each principal appoints its own coordinators (SoL 2:7 and HSL 16:4: the SIP names
        // who in each principal has the overall responsibility).
        if let (Some(caller), Some(staff)) = (&caller, &staff)
            && !caller.acts_for(staff.organisation_id.as_str())
        {
            v.add(
                "staff.organisation_id.value",
                "a coordinator is appointed by their own organisation",
            );
        }
        v.finish()?;
        let (Some(id), Some(revision), Some(principal), Some(rank), Some(staff)) =
            (id, revision, principal, rank, staff)
        else {
            return Err(incomplete());
        };
        let role = AssignmentRole::Coordinator { principal, rank };
        self.assign(id, revision, "coordinator_assigned", role, staff)
            .await
    }

    async fn add_care_team_member(
        &self,
        request: Request<pb::AddCareTeamMemberRequest>,
    ) -> Result<Response<pb::CareTeam>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let (id, revision) = target(&mut v, req.participant_id.as_ref(), req.revision.as_ref());
        let role = v.check("role", care_role(req.role));
        let staff = staff(&mut v, "staff", req.staff.as_ref());
        v.finish()?;
        let (Some(id), Some(revision), Some(role), Some(staff)) = (id, revision, role, staff)
        else {
            return Err(incomplete());
        };
        let role = AssignmentRole::CareTeamMember { role };
        self.assign(id, revision, "member_added", role, staff).await
    }

    async fn end_assignment(
        &self,
        request: Request<pb::EndAssignmentRequest>,
    ) -> Result<Response<pb::CareTeam>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let (id, revision) = target(&mut v, req.participant_id.as_ref(), req.revision.as_ref());
        let assignment = v.check(
            "assignment_id",
            domain::AssignmentId::parse(&req.assignment_id),
        );
        v.finish()?;
        let (Some(id), Some(revision), Some(assignment)) = (id, revision, assignment) else {
            return Err(incomplete());
        };
        let (p, current) = self
            .repo
            .change_assignments(id, revision, "assignment_ended", move |current, _| {
                domain::plan_end(current, assignment)
            })
            .await
            .map_err(status)?;
        Ok(Response::new(care_team_to_proto(&p, &current)))
    }

    async fn set_fixed_care_contact(
        &self,
        request: Request<pb::SetFixedCareContactRequest>,
    ) -> Result<Response<pb::CareTeam>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let (id, revision) = target(&mut v, req.participant_id.as_ref(), req.revision.as_ref());
        let staff = staff(&mut v, "staff", req.staff.as_ref());
        v.finish()?;
        let (Some(id), Some(revision), Some(staff)) = (id, revision, staff) else {
            return Err(incomplete());
        };
        self.assign(
            id,
            revision,
            "fixed_care_contact_set",
            AssignmentRole::FixedCareContact,
            staff,
        )
        .await
    }
}

impl<R: ParticipantRepository> ParticipantsApi<R> {
    /// Applies `op` to the participant at `revision` and answers with the participant.
    async fn update(
        &self,
        id: ParticipantId,
        revision: u64,
        op: impl FnOnce(&mut Participant, DateTime<Utc>) -> Result<Effect, ParticipantsError> + Send,
    ) -> Result<Response<pb::Participant>, Status> {
        let p = self.repo.update(id, revision, op).await.map_err(status)?;
        Ok(Response::new(participant_to_proto(&p)))
    }

    async fn assign(
        &self,
        id: ParticipantId,
        revision: u64,
        change_kind: &'static str,
        role: AssignmentRole,
        staff: Staff,
    ) -> Result<Response<pb::CareTeam>, Status> {
        let (p, current) = self
            .repo
            .change_assignments(id, revision, change_kind, move |current, now| {
                domain::plan_assignment(current, role, staff, now)
            })
            .await
            .map_err(status)?;
        tracing::info!(participant_id = %p.id, change = change_kind, "care team changed");
        Ok(Response::new(care_team_to_proto(&p, &current)))
    }
}

// ---- proto → domain ----

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A participant id, refused under the message's own field name: the participants
/// service names `participant_id` whether it is missing or malformed.
fn participant_id(id: Option<&ProtoId>) -> Result<ParticipantId, IdError> {
    ParticipantId::parse(id.map_or("", |id| id.value.as_str()))
}

/// The participant and revision a change names, each violation recorded in `v`.
fn target(
    v: &mut FieldViolations,
    id: Option<&ProtoId>,
    expected: Option<&Revision>,
) -> (Option<ParticipantId>, Option<u64>) {
    (
        v.check("participant_id", participant_id(id)),
        v.check("revision", revision(expected)),
    )
}

fn revision(revision: Option<&Revision>) -> Result<u64, &'static str> {
    revision.map(|r| r.value).ok_or("required")
}

fn date(date: Option<&CalendarDate>) -> Result<NaiveDate, String> {
    let date = date.ok_or("required")?;
    parse_calendar_date(date).map_err(|e| e.to_string())
}

fn principal(kind: i32) -> Result<Principal, &'static str> {
    match OrganisationKind::try_from(kind) {
        Ok(OrganisationKind::Region) => Ok(Principal::Region),
        Ok(OrganisationKind::Municipality) => Ok(Principal::Municipality),
        _ => Err("region or municipality"),
    }
}

/// Which principal an organisation is: a municipality by its four-digit municipality code,
/// otherwise the region.
fn principal_of(organisation: &str) -> Principal {
    if MunicipalityCode::parse(organisation).is_ok() {
        Principal::Municipality
    } else {
        Principal::Region
    }
}

/// An act on one principal's behalf (a referral, a review, a coordinator) is by staff of
/// that principal: a region employee never speaks for the municipality, nor the reverse.
fn side_of(
    v: &mut FieldViolations,
    field: &str,
    claimed: Option<Principal>,
    staff: Option<&Staff>,
) {
    if let (Some(claimed), Some(staff)) = (claimed, staff)
        && claimed != principal_of(staff.organisation_id.as_str())
    {
        v.add(
            field,
            "must be the principal of the staff member's organisation",
        );
    }
}

fn assessment(value: i32) -> Result<Assessment, &'static str> {
    match pb::Assessment::try_from(value) {
        Ok(pb::Assessment::Accept) => Ok(Assessment::Accept),
        Ok(pb::Assessment::Decline) => Ok(Assessment::Decline),
        _ => Err("accept or decline"),
    }
}

fn rank(value: i32) -> Result<CoordinatorRank, &'static str> {
    match pb::CoordinatorRank::try_from(value) {
        Ok(pb::CoordinatorRank::Main) => Ok(CoordinatorRank::Main),
        Ok(pb::CoordinatorRank::Deputy) => Ok(CoordinatorRank::Deputy),
        _ => Err("main or deputy"),
    }
}

fn discharge_reason(value: i32) -> Result<DischargeReason, &'static str> {
    use pb::DischargeReason as P;
    match P::try_from(value) {
        Ok(P::ReadyForOrdinaryCare) => Ok(DischargeReason::ReadyForOrdinaryCare),
        Ok(P::Moved) => Ok(DischargeReason::Moved),
        Ok(P::DeclinedFurtherParticipation) => Ok(DischargeReason::DeclinedFurtherParticipation),
        Ok(P::Deceased) => Ok(DischargeReason::Deceased),
        Ok(P::Other) => Ok(DischargeReason::Other),
        _ => Err("a discharge reason"),
    }
}

fn care_role(value: i32) -> Result<CareRole, &'static str> {
    use pb::CareRole as P;
    Ok(match P::try_from(value) {
        Ok(P::CaseManager) => CareRole::CaseManager,
        Ok(P::Physician) => CareRole::Physician,
        Ok(P::Nurse) => CareRole::Nurse,
        Ok(P::Psychologist) => CareRole::Psychologist,
        Ok(P::SocialWorker) => CareRole::SocialWorker,
        Ok(P::NeedsAssessor) => CareRole::NeedsAssessor,
        Ok(P::HousingSupportWorker) => CareRole::HousingSupportWorker,
        Ok(P::PeerSupportSpecialist) => CareRole::PeerSupportSpecialist,
        Ok(P::IpsSpecialist) => CareRole::IpsSpecialist,
        Ok(P::TeamLeader) => CareRole::TeamLeader,
        Ok(P::Other) => CareRole::Other,
        _ => return Err("a care role"),
    })
}

fn status_filter(value: i32) -> Result<Option<Standing>, &'static str> {
    use pb::ParticipantStatus as P;
    Ok(Some(match P::try_from(value) {
        Ok(P::Unspecified) => return Ok(None),
        Ok(P::Referred) => Standing::Referred,
        Ok(P::Accepted) => Standing::Accepted,
        Ok(P::Declined) => Standing::Declined,
        Ok(P::Enrolled) => Standing::Enrolled,
        Ok(P::Discharged) => Standing::Discharged,
        Err(_) => return Err("a participant status"),
    }))
}

/// An optional filter: empty means none.
fn optional<T, E: std::fmt::Display>(
    v: &mut FieldViolations,
    field: &str,
    value: &str,
    parse: fn(&str) -> Result<T, E>,
) -> Option<T> {
    if value.is_empty() {
        None
    } else {
        v.check(field, parse(value))
    }
}

/// A staff reference; each missing or bad part is recorded under `prefix`.
fn staff(v: &mut FieldViolations, prefix: &str, staff: Option<&StaffRef>) -> Option<Staff> {
    let Some(staff) = staff else {
        v.add(prefix, "required");
        return None;
    };
    let staff_id = v.check(
        &format!("{prefix}.staff_id"),
        StaffId::parse(&staff.staff_id),
    );
    let organisation_id = v.check(
        &format!("{prefix}.organisation_id.value"),
        OrganisationId::parse(
            staff
                .organisation_id
                .as_ref()
                .map_or("", |o| o.value.as_str()),
        ),
    );
    let unit_id = if staff.unit_id.is_empty() {
        Some(None)
    } else {
        v.check(
            &format!("{prefix}.unit_id"),
            UnitId::parse(&staff.unit_id).map(Some),
        )
    };
    Some(Staff {
        staff_id: staff_id?,
        organisation_id: organisation_id?,
        unit_id: unit_id?,
    })
}
