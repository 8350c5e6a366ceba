//! The tonic adapter of `samsyn.consent.v1`: decode, validate into domain types, call the
//! domain and the repository, map the result.

use chrono::{DateTime, Utc};
use samsyn_consent_rule as rule;
use samsyn_kit::caller::{Caller, CallerKind, bind_staff};
use samsyn_kit::feed::ChangeStream;
use samsyn_kit::idempotency::IdempotencyKey;
use samsyn_kit::paging::Page;
use samsyn_kit::time::parse_timestamp;
use samsyn_kit::{ApiError, FieldViolations, parse_fields};
use samsyn_proto::common::v1 as common;
use samsyn_proto::common::v1::WatchChangesRequest;
use samsyn_proto::consent::v1 as pb;
use samsyn_proto::consent::v1::consent_service_server::ConsentService;
use samsyn_proto::ids::IdError;
use tonic::{Request, Response, Status};

use crate::domain::{
    self, Actor, CategorySet, Consent, ConsentError, ConsentForm, ConsentId, ConsentKind,
    ConsentRepository, Ending, LiftPeriod, LiftReason, NewConsent, NewLift, NewRestriction, Note,
    OrgId, ParticipantId, PersonName, Reason, Representative, RepresentativeKind, Restriction,
    RestrictionId, SharingScope, StaffId, StaffMember, StudyId, UnitId, Validity, ValueError,
};
use crate::wire;
use samsyn_kit::feed::ChangeFeed;

/// The most categories one scope may name (there are seven).
const MAX_CATEGORIES: usize = 8;

/// The handlers of `ConsentService`, over any consent repository.
#[derive(Debug, Clone)]
pub struct ConsentApi<R> {
    repo: R,
    feed: ChangeFeed,
}

impl<R: ConsentRepository> ConsentApi<R> {
    /// Handlers over a repository and the service's change feed.
    pub fn new(repo: R, feed: ChangeFeed) -> Self {
        Self { repo, feed }
    }

    /// Revokes or voids a consent as `request` says, for `caller`.
    async fn end_consent(
        &self,
        caller: Option<&Caller>,
        how: Ended,
        request: EndRequest,
    ) -> Result<Response<pb::Consent>, Status> {
        let (target, ending) = parse_end(caller, how, CONSENT, request)?;
        let consent = self
            .repo
            .change_consent(
                &target.participant,
                &target.id.to_string(),
                target.revision,
                how.change_kind(),
                |c| match how {
                    Ended::Revoked => c.revoke(ending),
                    Ended::Voided => c.void(ending),
                },
            )
            .await
            .map_err(status)?;
        tracing::info!(participant_id = %target.participant, consent_id = %target.id, change = how.change_kind(), "consent ended");
        Ok(Response::new(wire::consent(&consent)))
    }

    /// Applies `change` to the restriction `target` names, if `caller` may end it.
    async fn change_restriction(
        &self,
        caller: Option<&Caller>,
        target: Target<RestrictionId>,
        change_kind: &'static str,
        key: Option<(&'static str, &IdempotencyKey)>,
        change: impl FnOnce(&mut Restriction) -> Result<(), ConsentError> + Send,
    ) -> Result<Response<pb::Restriction>, Status> {
        let restriction = self
            .repo
            .change_restriction(
                &target.participant,
                &target.id.to_string(),
                target.revision,
                change_kind,
                key,
                |r| {
                    may_end_restriction(caller, r)?;
                    change(r)
                },
            )
            .await
            .map_err(status)?;
        tracing::info!(participant_id = %target.participant, restriction_id = %target.id, change = change_kind, "restriction changed");
        Ok(Response::new(wire::restriction(&restriction)))
    }
}

/// The record a change names: the participant, the record's id and the revision last read.
struct Target<I> {
    participant: ParticipantId,
    id: I,
    revision: u64,
}

/// A kind of record a change names: its id field and how the id is parsed.
type Record<I> = (&'static str, fn(&str) -> Result<I, IdError>);

const CONSENT: Record<ConsentId> = ("consent_id", ConsentId::parse);
const RESTRICTION: Record<RestrictionId> = ("restriction_id", RestrictionId::parse);

/// What every request naming one record carries besides its id.
trait Names {
    fn participant_id(&self) -> Option<&common::ParticipantId>;
    fn revision(&self) -> Option<&common::Revision>;
}

fn target<I>(
    v: &mut FieldViolations,
    (field, parse): Record<I>,
    id: &str,
    request: &impl Names,
) -> Option<Target<I>> {
    let participant = v.id(ParticipantId::from_field(
        "participant_id",
        request.participant_id(),
    ));
    let id = v.check(field, parse(id));
    let revision = revision(v, request.revision());
    Some(Target {
        participant: participant?,
        id: id?,
        revision: revision?,
    })
}

/// How a consent or restriction comes to an end.
#[derive(Debug, Clone, Copy)]
enum Ended {
    /// By the participant's (or staff's) wish, with an optional reason.
    Revoked,
    /// By staff, as recorded in error, with a reason.
    Voided,
}

impl Ended {
    fn actor_field(self) -> &'static str {
        match self {
            Self::Revoked => "revoked_by",
            Self::Voided => "voided_by",
        }
    }

    fn change_kind(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Voided => "voided",
        }
    }
}

/// What a request that revokes or voids a record carries.
struct EndRequest {
    participant_id: Option<common::ParticipantId>,
    id: String,
    revision: Option<common::Revision>,
    by: Option<pb::Actor>,
    reason: String,
}

impl Names for EndRequest {
    fn participant_id(&self) -> Option<&common::ParticipantId> {
        self.participant_id.as_ref()
    }

    fn revision(&self) -> Option<&common::Revision> {
        self.revision.as_ref()
    }
}

impl Names for pb::LiftRestrictionRequest {
    fn participant_id(&self) -> Option<&common::ParticipantId> {
        self.participant_id.as_ref()
    }

    fn revision(&self) -> Option<&common::Revision> {
        self.revision.as_ref()
    }
}

/// The record a revocation or voiding names, and the ending; the actor is the caller.
fn parse_end<I>(
    caller: Option<&Caller>,
    how: Ended,
    record: Record<I>,
    mut request: EndRequest,
) -> Result<(Target<I>, Ending), ApiError> {
    parse_fields(|v| {
        let field = how.actor_field();
        bind_actor(caller, field, &mut request.by, false, v);
        let target = target(v, record, &request.id, &request);
        let (by, reason) = match how {
            Ended::Revoked => (
                actor(v, field, &request.by),
                v.check("reason", Reason::parse_optional(&request.reason)),
            ),
            Ended::Voided => (
                staff_actor(v, field, &request.by).map(Actor::Staff),
                v.check("reason", Reason::parse(&request.reason)).map(Some),
            ),
        };
        let ending = Ending {
            by: by?,
            at: Utc::now(),
            reason: reason?,
        };
        Some((target?, ending))
    })
}

impl From<ConsentError> for ApiError {
    fn from(error: ConsentError) -> Self {
        match error {
            ConsentError::Invalid { field, description } => ApiError::invalid(field, description),
            ConsentError::NotFound(what) => ApiError::NotFound(what),
            ConsentError::StaleRevision { current } => ApiError::StaleRevision { current },
            ConsentError::Ended(why) => ApiError::FailedPrecondition(why.to_owned()),
            ConsentError::Forbidden => ApiError::PermissionDenied,
            ConsentError::KeyReused => ApiError::KeyReused("idempotency_key".to_owned()),
            ConsentError::Unavailable => ApiError::Unavailable,
            ConsentError::Internal(source) => ApiError::Internal(source),
        }
    }
}

fn status(error: ConsentError) -> Status {
    Status::from(ApiError::from(error))
}

#[tonic::async_trait]
impl<R: ConsentRepository> ConsentService for ConsentApi<R> {
    async fn record_consent(
        &self,
        request: Request<pb::RecordConsentRequest>,
    ) -> Result<Response<pb::Consent>, Status> {
        let caller = Caller::of(&request)?;
        let mut request = request.into_inner();
        bind_actors(
            caller.as_ref(),
            &mut request.requested_by,
            &mut request.recorded_by,
        )?;
        let (new, key) = parse_record_consent(&request)?;
        let key = key.map(|k| k.bind(caller.as_ref(), &request));
        discloser_records(caller.as_ref(), &new.kind)?;
        let consent = Consent::record(new, Utc::now());
        let consent = self
            .repo
            .record_consent(consent, key.as_ref())
            .await
            .map_err(status)?;
        tracing::info!(participant_id = %consent.participant, consent_id = %consent.id, "consent recorded");
        Ok(Response::new(wire::consent(&consent)))
    }

    async fn revoke_consent(
        &self,
        request: Request<pb::RevokeConsentRequest>,
    ) -> Result<Response<pb::Consent>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let end = EndRequest {
            participant_id: r.participant_id,
            id: r.consent_id,
            revision: r.revision,
            by: r.revoked_by,
            reason: r.reason,
        };
        self.end_consent(caller.as_ref(), Ended::Revoked, end).await
    }

    async fn void_consent(
        &self,
        request: Request<pb::VoidConsentRequest>,
    ) -> Result<Response<pb::Consent>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let end = EndRequest {
            participant_id: r.participant_id,
            id: r.consent_id,
            revision: r.revision,
            by: r.voided_by,
            reason: r.reason,
        };
        self.end_consent(caller.as_ref(), Ended::Voided, end).await
    }

    async fn list_consents(
        &self,
        request: Request<pb::ListConsentsRequest>,
    ) -> Result<Response<pb::ListConsentsResponse>, Status> {
        let request = request.into_inner();
        let (participant, page) =
            parse_list(request.participant_id.as_ref(), request.page.as_ref())?;
        let (consents, next) = self
            .repo
            .consents(&participant, &page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListConsentsResponse {
            consents: consents.iter().map(wire::consent).collect(),
            page: Some(common::PageResponse {
                next_page_token: next,
            }),
        }))
    }

    async fn create_restriction(
        &self,
        request: Request<pb::CreateRestrictionRequest>,
    ) -> Result<Response<pb::Restriction>, Status> {
        let caller = Caller::of(&request)?;
        let mut request = request.into_inner();
        bind_actors(
            caller.as_ref(),
            &mut request.requested_by,
            &mut request.recorded_by,
        )?;
        let (new, key) = parse_create_restriction(&request)?;
        let key = key.map(|k| k.bind(caller.as_ref(), &request));
        let restriction = Restriction::create(new, Utc::now());
        let restriction = self
            .repo
            .create_restriction(restriction, key.as_ref())
            .await
            .map_err(status)?;
        tracing::info!(participant_id = %restriction.participant, restriction_id = %restriction.id, "restriction created");
        Ok(Response::new(wire::restriction(&restriction)))
    }

    async fn revoke_restriction(
        &self,
        request: Request<pb::RevokeRestrictionRequest>,
    ) -> Result<Response<pb::Restriction>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let end = EndRequest {
            participant_id: r.participant_id,
            id: r.restriction_id,
            revision: r.revision,
            by: r.revoked_by,
            reason: r.reason,
        };
        let (target, ending) = parse_end(caller.as_ref(), Ended::Revoked, RESTRICTION, end)?;
        self.change_restriction(caller.as_ref(), target, "revoked", None, |r| {
            r.revoke(ending)
        })
        .await
    }

    async fn lift_restriction(
        &self,
        request: Request<pb::LiftRestrictionRequest>,
    ) -> Result<Response<pb::Restriction>, Status> {
        let caller = Caller::of(&request)?;
        let mut request = request.into_inner();
        let (target, new, key) = parse_fields(|v| {
            bind_actor(
                caller.as_ref(),
                "lifted_by",
                &mut request.lifted_by,
                false,
                v,
            );
            let target = target(v, RESTRICTION, &request.restriction_id, &request);
            let reason = match pb::LiftReason::try_from(request.reason) {
                Ok(pb::LiftReason::Consent) => Some(LiftReason::Consent),
                Ok(pb::LiftReason::Emergency) => Some(LiftReason::Emergency),
                _ => {
                    v.add("reason", "must be consent or emergency");
                    None
                }
            };
            let unit = v.check("unit_id", UnitId::parse_optional(&request.unit_id));
            let staff = v.check("staff_id", StaffId::parse_optional(&request.staff_id));
            let categories = categories(v, "categories", &request.categories);
            let period = lift_period(v, "period", request.period.as_ref());
            let lifted_by = actor(v, "lifted_by", &request.lifted_by);
            let note = v.check("note", Note::parse_optional(&request.note));
            let key = idempotency_key(v, &request.idempotency_key);
            let new = NewLift {
                reason: reason?,
                unit: unit?,
                staff: staff?,
                categories: categories?,
                period: period?,
                lifted_by: lifted_by?,
                note: note?,
            };
            Some((target?, new, key?))
        })?;
        let key = key.map(|k| k.bind(caller.as_ref(), &request));
        let key = key.as_ref().map(|k| ("LiftRestriction", k));
        self.change_restriction(caller.as_ref(), target, "lifted", key, |r| {
            r.lift(new, Utc::now()).map(|_| ())
        })
        .await
    }

    async fn list_restrictions(
        &self,
        request: Request<pb::ListRestrictionsRequest>,
    ) -> Result<Response<pb::ListRestrictionsResponse>, Status> {
        let request = request.into_inner();
        let (participant, page) =
            parse_list(request.participant_id.as_ref(), request.page.as_ref())?;
        let (restrictions, next) = self
            .repo
            .restrictions(&participant, &page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListRestrictionsResponse {
            restrictions: restrictions.iter().map(wire::restriction).collect(),
            page: Some(common::PageResponse {
                next_page_token: next,
            }),
        }))
    }

    async fn list_history(
        &self,
        request: Request<pb::ListHistoryRequest>,
    ) -> Result<Response<pb::ListHistoryResponse>, Status> {
        let request = request.into_inner();
        let (participant, page) =
            parse_list(request.participant_id.as_ref(), request.page.as_ref())?;
        let (versions, next) = self
            .repo
            .history(&participant, &page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListHistoryResponse {
            versions: versions.iter().map(wire::version).collect(),
            page: Some(common::PageResponse {
                next_page_token: next,
            }),
        }))
    }

    async fn decide(
        &self,
        request: Request<pb::DecideRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let request = request.into_inner();
        let (participant, question) = parse_decide(&request, Utc::now())?;
        let (consents, restrictions) = self.repo.facts(&participant).await.map_err(status)?;
        let decision = domain::decide(&consents, &restrictions, &question);
        tracing::info!(
            participant_id = %participant,
            effect = ?decision.effect,
            reason = decision.reason.code(),
            "consent decision"
        );
        Ok(Response::new(wire::decision(&decision, question.at)))
    }

    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Ok(self.feed.watch_response(request))
    }
}

/// Binds the requester and recorder of a new consent or restriction to the caller: the
/// recorder is always the caller; the requester may be the participant or a representative
/// whose wish staff record.
fn bind_actors(
    caller: Option<&Caller>,
    requested_by: &mut Option<pb::Actor>,
    recorded_by: &mut Option<pb::Actor>,
) -> Result<(), ApiError> {
    let mut v = FieldViolations::new();
    bind_actor(caller, "requested_by", requested_by, true, &mut v);
    bind_actor(caller, "recorded_by", recorded_by, false, &mut v);
    v.finish()
}

/// Binds an actor field to the caller: staff act as themselves, a participant as the
/// participant. With `on_behalf`, staff may name the participant or a representative as the
/// one whose act they record (the record keeps the recorder too).
fn bind_actor(
    caller: Option<&Caller>,
    field: &str,
    value: &mut Option<pb::Actor>,
    on_behalf: bool,
    v: &mut FieldViolations,
) {
    let Some(caller) = caller else { return };
    let kind = value.as_ref().map_or(pb::ActorKind::Unspecified, |a| {
        pb::ActorKind::try_from(a.kind).unwrap_or(pb::ActorKind::Unspecified)
    });
    match (caller.kind, kind) {
        (CallerKind::Participant, pb::ActorKind::Unspecified | pb::ActorKind::Participant) => {
            *value = Some(pb::Actor {
                kind: pb::ActorKind::Participant as i32,
                staff: None,
            });
        }
        (CallerKind::Participant, _) => {
            v.add(
                format!("{field}.kind"),
                "must be the participant, who is calling",
            );
        }
        (_, pb::ActorKind::Participant | pb::ActorKind::Representative) if on_behalf => {}
        (_, pb::ActorKind::Unspecified | pb::ActorKind::Staff) => {
            let mut staff = value.take().and_then(|a| a.staff);
            bind_staff(Some(caller), &format!("{field}.staff"), &mut staff, v);
            *value = Some(pb::Actor {
                kind: pb::ActorKind::Staff as i32,
                staff,
            });
        }
        _ => v.add(
            format!("{field}.kind"),
            "must be staff: the caller is staff",
        ),
    }
}

/// A sharing consent from A to B is recorded by A's staff (or the participant): under OSL
/// the disclosing authority judges a disclosure, so the receiving organisation never
/// authorises itself.
fn discloser_records(caller: Option<&Caller>, kind: &ConsentKind) -> Result<(), ApiError> {
    let (Some(caller), ConsentKind::InformationSharing(scope)) = (caller, kind) else {
        return Ok(());
    };
    if caller.kind == CallerKind::Participant || caller.acts_for(scope.from().as_str()) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied)
    }
}

/// A restriction (spärr) against B is lifted or revoked only by the participant or the
/// organisation whose data it protects — never by B, whose only way past it is emergency
/// access (OSL 25:1 and PDL 4:4: the participant's restriction binds the blocked party).
fn may_end_restriction(
    caller: Option<&Caller>,
    restriction: &Restriction,
) -> Result<(), ConsentError> {
    let Some(caller) = caller else { return Ok(()) };
    if caller.kind == CallerKind::Participant {
        return Ok(());
    }
    let blocked = caller.acts_for(restriction.organisation.as_str());
    let owner = restriction
        .owner_organisation
        .as_ref()
        .is_none_or(|owner| caller.acts_for(owner.as_str()));
    if blocked || !owner {
        return Err(ConsentError::Forbidden);
    }
    Ok(())
}

fn parse_record_consent(
    request: &pb::RecordConsentRequest,
) -> Result<(NewConsent, Option<IdempotencyKey>), ApiError> {
    parse_fields(|v: &mut FieldViolations| {
        let participant = v.id(ParticipantId::from_field(
            "participant_id",
            request.participant_id.as_ref(),
        ));
        let kind = match pb::ConsentKind::try_from(request.kind) {
            Ok(pb::ConsentKind::Participation) => {
                no_sharing(v, request.sharing.as_ref());
                no_study(v, &request.study_id);
                Some(ConsentKind::Participation)
            }
            Ok(pb::ConsentKind::ResearchStudy) => {
                no_sharing(v, request.sharing.as_ref());
                if request.study_id.is_empty() {
                    v.add("study_id", "required for a research study");
                    None
                } else {
                    v.check("study_id", StudyId::parse(&request.study_id))
                        .map(|study| ConsentKind::ResearchStudy(Some(study)))
                }
            }
            Ok(pb::ConsentKind::InformationSharing) => {
                no_study(v, &request.study_id);
                match &request.sharing {
                    Some(sharing) => sharing_scope(v, sharing).map(ConsentKind::InformationSharing),
                    None => {
                        v.add("sharing", "required for information sharing");
                        None
                    }
                }
            }
            _ => {
                v.add(
                    "kind",
                    "must be participation, information sharing or research study",
                );
                None
            }
        };
        let validity = validity(v, request.valid_from.as_ref(), request.valid_until.as_ref());
        let form = match pb::ConsentForm::try_from(request.form) {
            Ok(pb::ConsentForm::Verbal) => Some(ConsentForm::Verbal),
            Ok(pb::ConsentForm::Written) => Some(ConsentForm::Written),
            _ => {
                v.add("form", "must be verbal or written");
                None
            }
        };
        let recording = recording(v, request.into())?;
        let new = NewConsent {
            participant: participant?,
            kind: kind?,
            validity: validity?,
            form: form?,
            requested_by: recording.requested_by,
            recorded_by: recording.recorded_by,
            on_behalf_of: recording.on_behalf_of,
            note: recording.note,
        };
        Some((new, recording.key))
    })
}

/// What a new consent and a new restriction both carry besides their own fields.
struct Recorded<'a> {
    requested_by: &'a Option<pb::Actor>,
    recorded_by: &'a Option<pb::Actor>,
    on_behalf_of: Option<&'a pb::Representative>,
    note: &'a str,
    idempotency_key: &'a str,
}

macro_rules! recorded_of {
    ($($request:ty),*) => {$(
        impl<'a> From<&'a $request> for Recorded<'a> {
            fn from(request: &'a $request) -> Self {
                Recorded {
                    requested_by: &request.requested_by,
                    recorded_by: &request.recorded_by,
                    on_behalf_of: request.on_behalf_of.as_ref(),
                    note: &request.note,
                    idempotency_key: &request.idempotency_key,
                }
            }
        }
    )*};
}

recorded_of!(pb::RecordConsentRequest, pb::CreateRestrictionRequest);

/// Who asked, who recorded it, for whom, the note, and the idempotency key.
struct Recording {
    requested_by: Actor,
    recorded_by: StaffMember,
    on_behalf_of: Option<Representative>,
    note: Option<Note>,
    key: Option<IdempotencyKey>,
}

fn recording(v: &mut FieldViolations, request: Recorded<'_>) -> Option<Recording> {
    let requested_by = actor(v, "requested_by", request.requested_by);
    let recorded_by = staff_actor(v, "recorded_by", request.recorded_by);
    let on_behalf_of = representative(v, "on_behalf_of", request.on_behalf_of);
    representative_named(v, requested_by.as_ref(), on_behalf_of.as_ref());
    let note = v.check("note", Note::parse_optional(request.note));
    let key = idempotency_key(v, request.idempotency_key);
    Some(Recording {
        requested_by: requested_by?,
        recorded_by: recorded_by?,
        on_behalf_of: on_behalf_of?,
        note: note?,
        key: key?,
    })
}

fn parse_create_restriction(
    request: &pb::CreateRestrictionRequest,
) -> Result<(NewRestriction, Option<IdempotencyKey>), ApiError> {
    parse_fields(|v: &mut FieldViolations| {
        let participant = v.id(ParticipantId::from_field(
            "participant_id",
            request.participant_id.as_ref(),
        ));
        let organisation = v.id(OrgId::from_field(
            "organisation_id",
            request.organisation_id.as_ref(),
        ));
        let unit = v.check("unit_id", UnitId::parse_optional(&request.unit_id));
        let owner = match &request.owner_organisation_id {
            None => Some(None),
            Some(owner) => v
                .check("owner_organisation_id.value", OrgId::parse(&owner.value))
                .map(Some),
        };
        let categories = categories(v, "categories", &request.categories);
        let validity = validity(v, request.valid_from.as_ref(), request.valid_until.as_ref());
        let recording = recording(v, request.into())?;
        let new = NewRestriction {
            participant: participant?,
            organisation: organisation?,
            unit: unit?,
            owner_organisation: owner?,
            categories: categories?,
            validity: validity?,
            requested_by: recording.requested_by,
            recorded_by: recording.recorded_by,
            on_behalf_of: recording.on_behalf_of,
            note: recording.note,
        };
        Some((new, recording.key))
    })
}

fn parse_list(
    participant: Option<&common::ParticipantId>,
    page: Option<&common::PageRequest>,
) -> Result<(ParticipantId, Page), ApiError> {
    let page = match Page::from_request(page, "page") {
        Ok(page) => Ok(page),
        Err(ApiError::InvalidArgument(violations)) => Err(violations),
        Err(other) => return Err(other),
    };
    parse_fields(|v: &mut FieldViolations| {
        let participant = v.id(ParticipantId::from_field("participant_id", participant));
        let page = page
            .map_err(|violations| {
                for violation in violations {
                    v.add(violation.field, violation.description);
                }
            })
            .ok();
        Some((participant?, page?))
    })
}

fn parse_decide(
    request: &pb::DecideRequest,
    now: DateTime<Utc>,
) -> Result<(ParticipantId, rule::Request), ApiError> {
    parse_fields(|v: &mut FieldViolations| {
        let participant = v.id(ParticipantId::from_field(
            "participant_id",
            request.participant_id.as_ref(),
        ));
        let reader = match &request.reader {
            None => {
                v.add("reader", "required");
                None
            }
            Some(reader) => {
                let org = v.id(OrgId::from_field(
                    "reader.organisation_id",
                    reader.organisation_id.as_ref(),
                ));
                let unit = v.check("reader.unit_id", UnitId::parse_optional(&reader.unit_id));
                let staff = v.check("reader.staff_id", StaffId::parse_optional(&reader.staff_id));
                match (org, unit, staff) {
                    (Some(org), Some(unit), Some(staff)) => Some((org, unit, staff)),
                    _ => None,
                }
            }
        };
        let owner = v.id(OrgId::from_field(
            "owner_organisation_id",
            request.owner_organisation_id.as_ref(),
        ));
        let category = wire::category_from_proto(request.category);
        if category.is_none() {
            v.add("category", "must be a category of participant data");
        }
        let purpose = match pb::Purpose::try_from(request.purpose) {
            Ok(pb::Purpose::Care) => Some(rule::Purpose::Care),
            Ok(pb::Purpose::Research) => Some(rule::Purpose::Research),
            _ => {
                v.add("purpose", "must be care or research");
                None
            }
        };
        let at = time(v, "at", request.at.as_ref()).map(|at| at.unwrap_or(now));
        let (org, unit, staff) = reader?;
        let request = rule::Request {
            reader_organisation: String::from(org),
            reader_unit: unit.map(String::from),
            reader_staff: staff.map(String::from),
            owner_organisation: String::from(owner?),
            category: category?,
            purpose: purpose?,
            at: at?,
            emergency: request.emergency,
        };
        Some((participant?, request))
    })
}

fn revision(v: &mut FieldViolations, value: Option<&common::Revision>) -> Option<u64> {
    match value {
        Some(revision) if revision.value > 0 => Some(revision.value),
        _ => {
            v.add("revision", "required: the revision last read");
            None
        }
    }
}

fn idempotency_key(v: &mut FieldViolations, value: &str) -> Option<Option<IdempotencyKey>> {
    match IdempotencyKey::parse("idempotency_key", value) {
        Ok(key) => Some(key),
        Err(_) => {
            v.add("idempotency_key", "1 to 128 printable ASCII characters");
            None
        }
    }
}

fn time(
    v: &mut FieldViolations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<Option<DateTime<Utc>>> {
    match value {
        None => Some(None),
        Some(timestamp) => v.check(field, parse_timestamp(timestamp)).map(Some),
    }
}

fn validity(
    v: &mut FieldViolations,
    from: Option<&prost_types::Timestamp>,
    until: Option<&prost_types::Timestamp>,
) -> Option<Validity> {
    let from = time(v, "valid_from", from)?;
    let until = time(v, "valid_until", until)?;
    v.check(
        "valid_until",
        Validity::new(from.unwrap_or_else(Utc::now), until),
    )
}

fn lift_period(
    v: &mut FieldViolations,
    field: &str,
    value: Option<&common::Period>,
) -> Option<LiftPeriod> {
    let Some(period) = value else {
        v.add(field, "required: the lift's end");
        return None;
    };
    let start = time(v, &format!("{field}.start"), period.start.as_ref())?;
    let Some(end) = time(v, &format!("{field}.end"), period.end.as_ref())? else {
        v.add(format!("{field}.end"), "required");
        return None;
    };
    v.check(
        &format!("{field}.end"),
        LiftPeriod::new(start.unwrap_or_else(Utc::now), end),
    )
}

fn categories(v: &mut FieldViolations, field: &str, values: &[i32]) -> Option<CategorySet> {
    if values.len() > MAX_CATEGORIES {
        v.add(field, format!("at most {MAX_CATEGORIES} categories"));
        return None;
    }
    let mut parsed = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        match wire::category_from_proto(*value) {
            Some(category) => parsed.push(category),
            None => {
                v.add(
                    format!("{field}[{index}]"),
                    ValueError::UnknownCategory.to_string(),
                );
                return None;
            }
        }
    }
    v.check(field, CategorySet::new(parsed))
}

fn no_sharing(v: &mut FieldViolations, sharing: Option<&pb::Sharing>) {
    if sharing.is_some() {
        v.add("sharing", "only for information sharing");
    }
}

fn no_study(v: &mut FieldViolations, study_id: &str) {
    if !study_id.is_empty() {
        v.add("study_id", "only for a research study");
    }
}

fn sharing_scope(v: &mut FieldViolations, sharing: &pb::Sharing) -> Option<SharingScope> {
    let from = v.id(OrgId::from_field(
        "sharing.from_organisation_id",
        sharing.from_organisation_id.as_ref(),
    ));
    let to = v.id(OrgId::from_field(
        "sharing.to_organisation_id",
        sharing.to_organisation_id.as_ref(),
    ));
    let categories = categories(v, "sharing.categories", &sharing.categories);
    let unit = v.check("sharing.unit_id", UnitId::parse_optional(&sharing.unit_id));
    let staff = v.check(
        "sharing.staff_id",
        StaffId::parse_optional(&sharing.staff_id),
    );
    let (from, to, categories, unit, staff) = (from?, to?, categories?, unit?, staff?);
    v.check(
        "sharing.to_organisation_id",
        SharingScope::new(from, to, categories, unit, staff),
    )
}

fn staff_member(
    v: &mut FieldViolations,
    field: &str,
    value: Option<&common::StaffRef>,
) -> Option<StaffMember> {
    let Some(staff) = value else {
        v.add(field, "required for staff");
        return None;
    };
    let id = v.check(
        &format!("{field}.staff_id"),
        StaffId::parse(&staff.staff_id),
    );
    let org = v.id(OrgId::from_field(
        &format!("{field}.organisation_id"),
        staff.organisation_id.as_ref(),
    ));
    let unit = v.check(
        &format!("{field}.unit_id"),
        UnitId::parse_optional(&staff.unit_id),
    );
    Some(StaffMember {
        staff: id?,
        organisation: org?,
        unit: unit?,
    })
}

fn actor(v: &mut FieldViolations, field: &str, value: &Option<pb::Actor>) -> Option<Actor> {
    let Some(actor) = value else {
        v.add(field, "required");
        return None;
    };
    match pb::ActorKind::try_from(actor.kind) {
        Ok(pb::ActorKind::Staff) => {
            staff_member(v, &format!("{field}.staff"), actor.staff.as_ref()).map(Actor::Staff)
        }
        Ok(pb::ActorKind::Participant) => Some(Actor::Participant),
        Ok(pb::ActorKind::Representative) => Some(Actor::Representative),
        _ => {
            v.add(
                format!("{field}.kind"),
                "must be staff, participant or representative",
            );
            None
        }
    }
}

fn staff_actor(
    v: &mut FieldViolations,
    field: &str,
    value: &Option<pb::Actor>,
) -> Option<StaffMember> {
    match value {
        Some(actor) if actor.kind == pb::ActorKind::Staff as i32 => {
            staff_member(v, &format!("{field}.staff"), actor.staff.as_ref())
        }
        _ => {
            v.add(format!("{field}.kind"), "must be staff");
            None
        }
    }
}

fn representative(
    v: &mut FieldViolations,
    field: &str,
    value: Option<&pb::Representative>,
) -> Option<Option<Representative>> {
    let Some(representative) = value else {
        return Some(None);
    };
    let kind = match pb::RepresentativeKind::try_from(representative.kind) {
        Ok(pb::RepresentativeKind::Guardian) => Some(RepresentativeKind::Guardian),
        Ok(pb::RepresentativeKind::Trustee) => Some(RepresentativeKind::Trustee),
        Ok(pb::RepresentativeKind::PowerOfAttorney) => Some(RepresentativeKind::PowerOfAttorney),
        Ok(pb::RepresentativeKind::Other) => Some(RepresentativeKind::Other),
        _ => {
            v.add(
                format!("{field}.kind"),
                "must name the kind of representative",
            );
            None
        }
    };
    let name = v.check(
        &format!("{field}.name"),
        PersonName::parse(&representative.name),
    );
    Some(Some(Representative {
        kind: kind?,
        name: name?,
    }))
}

/// A request made by a representative must say who the representative is.
fn representative_named(
    v: &mut FieldViolations,
    requested_by: Option<&Actor>,
    on_behalf_of: Option<&Option<Representative>>,
) {
    if matches!(requested_by, Some(Actor::Representative)) && matches!(on_behalf_of, Some(None)) {
        v.add("on_behalf_of", "required when a representative asks");
    }
}
