//! A read-only FHIR R4 REST view for regional journal systems, under `/fhir/` at the gateway.
//!
//! No second door: every FHIR request is carried out as ordinary gRPC calls made in-process
//! through the gateway's own [`Proxy`], as the FHIR caller (see [`caller`]). Authentication
//! (tokens and link certificates), policy decisions, row narrowing and the audit trail are
//! therefore exactly those of gRPC: each FHIR read is audited as the link's read, a link
//! must be allowed the RPCs a resource needs, and this module decides nothing itself.
//!
//! What it adds is FHIR's shape: resources from `samsyn-fhir`, searchset Bundles whose
//! `total` counts only the entries the reader sees, and OperationOutcome errors. A search
//! whose underlying call is refused answers an empty Bundle, like a search that matches
//! nothing, so a search never tells whether a participant exists; a read of a Patient the
//! caller may not see (or that does not exist) answers 403 "not permitted" either way.
//! `metadata` makes no call and needs no credentials: the CapabilityStatement holds no data.

pub mod caller;
pub mod query;

use std::sync::Arc;

use axum::extract::State;
use samsyn_fhir::{IssueSeverity, IssueType};
use samsyn_proto::audit::v1::ListEventsRequest;
use samsyn_proto::audit::v1::audit_service_client::AuditServiceClient;
use samsyn_proto::common::v1::{OrganisationId, PageRequest, ParticipantId};
use samsyn_proto::consent::v1::ListConsentsRequest;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::participants::v1::{
    GetCareTeamRequest, GetParticipantRequest, ListParticipantsRequest, Participant,
};
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use samsyn_proto::plans::v1::{GetPlanRequest, ListPlansRequest};
use serde_json::Value;
use tonic::Code;
use tracing::Instrument;

use crate::proxy::{Gateway, Proxy};
use caller::AsCaller;
use query::{IdentifierSearch, Interaction, Refusal};

/// The media type of every answer.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
/// Most plans of one participant put in one Bundle.
const MAX_PLANS: usize = 50;
/// Most consents of one participant put in one Bundle (one page of the consent service).
const MAX_CONSENTS: u32 = 100;
/// Most audit events of one participant put in one Bundle (one page of the trail).
const MAX_AUDIT_EVENTS: u32 = 100;
/// Most participants a personal identity number search lists (one, unless the data is odd).
const MAX_PATIENT_MATCHES: u32 = 10;

/// What the view's handlers share.
#[derive(Debug)]
struct FhirView {
    proxy: Proxy,
    /// The region that runs the FACT team: the EpisodeOfCare's managing organisation.
    region: OrganisationId,
}

/// The `/fhir` routes; the gateway adds its gRPC fallback after them.
pub fn routes(gateway: Arc<Gateway>) -> axum::Router {
    let region = OrganisationId {
        value: gateway.gate().settings().region_organisation.clone(),
    };
    let view = Arc::new(FhirView {
        proxy: Proxy::new(gateway),
        region,
    });
    axum::Router::new()
        .route("/fhir", axum::routing::any(handle))
        .route("/fhir/{*rest}", axum::routing::any(handle))
        .with_state(view)
}

/// Why a FHIR request failed, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    Invalid(String),
    NotFound(String),
    MethodNotAllowed,
    Unauthenticated,
    Forbidden,
    Unavailable,
    Timeout,
    Internal,
}

impl Failure {
    /// The answer to a gRPC call's refusal. Messages are fixed texts: a service's message is
    /// not passed on.
    fn from_status(status: &tonic::Status) -> Self {
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Self::Invalid("invalid request".into()),
            Code::Unauthenticated => Self::Unauthenticated,
            Code::PermissionDenied => Self::Forbidden,
            Code::NotFound => Self::NotFound("no such resource".into()),
            Code::Unavailable | Code::ResourceExhausted | Code::Aborted => Self::Unavailable,
            Code::DeadlineExceeded => Self::Timeout,
            _ => Self::Internal,
        }
    }

    fn answer(&self) -> (http::StatusCode, Value) {
        use http::StatusCode as S;
        let (status, code, text): (S, IssueType, &str) = match self {
            Self::Invalid(text) => (S::BAD_REQUEST, IssueType::Invalid, text),
            Self::NotFound(text) => (S::NOT_FOUND, IssueType::NotFound, text),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                IssueType::NotSupported,
                "this view is read-only: GET only",
            ),
            Self::Unauthenticated => (
                S::UNAUTHORIZED,
                IssueType::Login,
                "valid credentials required",
            ),
            Self::Forbidden => (S::FORBIDDEN, IssueType::Forbidden, "not permitted"),
            Self::Unavailable => (
                S::SERVICE_UNAVAILABLE,
                IssueType::Transient,
                "service unavailable",
            ),
            Self::Timeout => (S::GATEWAY_TIMEOUT, IssueType::Timeout, "timed out"),
            Self::Internal => (
                S::INTERNAL_SERVER_ERROR,
                IssueType::Exception,
                "internal error",
            ),
        };
        (
            status,
            samsyn_fhir::operation_outcome(IssueSeverity::Error, code, text),
        )
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(text) => Self::Invalid(text),
            Refusal::NotFound(text) => Self::NotFound(text),
        }
    }
}

/// One FHIR request, start to end.
async fn handle(
    State(view): State<Arc<FhirView>>,
    request: http::Request<axum::body::Body>,
) -> http::Response<axum::body::Body> {
    let span = tracing::info_span!(
        "gateway.fhir",
        fhir.interaction = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let (request, _body) = request.into_parts();
    let (status, body) = match answer(&view, &request, &span)
        .instrument(span.clone())
        .await
    {
        Ok(body) => (http::StatusCode::OK, body),
        Err(failure) => failure.answer(),
    };
    span.record("http.response.status_code", status.as_u16());
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = http::Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(FHIR_JSON),
    );
    if status == http::StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
    }
    response
}

async fn answer(
    view: &FhirView,
    request: &http::request::Parts,
    span: &tracing::Span,
) -> Result<Value, Failure> {
    if request.method != http::Method::GET {
        return Err(Failure::MethodNotAllowed);
    }
    let interaction = query::parse(request.uri.path(), request.uri.query())?;
    let base = base_url(request);
    let caller = AsCaller::new(view.proxy.clone(), request);
    let search_url = || match request.uri.query() {
        Some(query) => format!(
            "{base}{}?{query}",
            request.uri.path().trim_start_matches("/fhir")
        ),
        None => format!("{base}{}", request.uri.path().trim_start_matches("/fhir")),
    };
    match interaction {
        Interaction::Capabilities => {
            span.record("fhir.interaction", "capabilities");
            Ok(samsyn_fhir::capability_statement(&base, &query::SUPPORTED))
        }
        Interaction::ReadPatient(id) => {
            span.record("fhir.interaction", "read");
            let participant =
                get_participant(&caller, &id).await.map_err(
                    |status| match Failure::from_status(&status) {
                        // Unknown to the service but not to the gate: still no existence leak.
                        Failure::NotFound(_) => Failure::Forbidden,
                        other => other,
                    },
                )?;
            // The gateway let this reader read the participant: identity may be shown.
            Ok(samsyn_fhir::patient(&participant, true))
        }
        Interaction::PatientByIdentifier(search) => {
            span.record("fhir.interaction", "search-type");
            let entries = match search {
                IdentifierSearch::ParticipantId(id) => {
                    hidden_as_empty(get_participant(&caller, &id).await)?
                        .map(|p| vec![samsyn_fhir::patient(&p, true)])
                        .unwrap_or_default()
                }
                IdentifierSearch::PersonalIdentityNumber(pin) => {
                    patients_by_identity_number(&caller, pin).await?
                }
            };
            Ok(bundle(entries, &search_url()))
        }
        Interaction::ByPatient {
            resource_type,
            participant_id,
        } => {
            span.record("fhir.interaction", "search-type");
            let entries = by_patient(view, &caller, resource_type, &participant_id).await?;
            Ok(bundle(entries, &search_url()))
        }
    }
}

/// A searchset whose total is what the reader sees.
fn bundle(entries: Vec<Value>, self_url: &str) -> Value {
    let total = entries.len() as u64;
    samsyn_fhir::search_bundle(entries, total, self_url)
}

/// `https://{host}/fhir`, from the request's authority when it is a plain host name.
fn base_url(request: &http::request::Parts) -> String {
    let host = request
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!("https://{host}/fhir")
}

/// `Ok(None)` for a refusal or an unknown record, which a search shows as no match.
fn hidden_as_empty<T>(result: Result<T, tonic::Status>) -> Result<Option<T>, Failure> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(status) if matches!(status.code(), Code::PermissionDenied | Code::NotFound) => Ok(None),
        Err(status) => Err(Failure::from_status(&status)),
    }
}

fn participant_id(id: &str) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: id.to_owned(),
    })
}

async fn get_participant(caller: &AsCaller, id: &str) -> Result<Participant, tonic::Status> {
    ParticipantsServiceClient::new(caller.clone())
        .get_participant(GetParticipantRequest {
            participant_id: participant_id(id),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The Patients with this personal identity number that the list call shows the reader
/// (the gateway narrows its rows), each read in full by a call of its own.
async fn patients_by_identity_number(
    caller: &AsCaller,
    pin: String,
) -> Result<Vec<Value>, Failure> {
    let listed = ParticipantsServiceClient::new(caller.clone())
        .list_participants(ListParticipantsRequest {
            page: Some(PageRequest {
                page_size: MAX_PATIENT_MATCHES,
                page_token: String::new(),
            }),
            personal_identity_number: pin,
            ..Default::default()
        })
        .await
        .map_err(|status| match status.code() {
            Code::InvalidArgument => {
                Failure::Invalid("identifier: not a valid personal identity number".into())
            }
            _ => Failure::from_status(&status),
        })?
        .into_inner();
    let mut entries = Vec::new();
    for row in listed.participants {
        let Some(id) = row.participant_id else {
            continue;
        };
        if let Some(participant) = hidden_as_empty(get_participant(caller, &id.value).await)? {
            entries.push(samsyn_fhir::patient(&participant, true));
        }
    }
    Ok(entries)
}

/// The resources of `resource_type` about one participant, as far as the reader may see.
async fn by_patient(
    view: &FhirView,
    caller: &AsCaller,
    resource_type: &str,
    id: &str,
) -> Result<Vec<Value>, Failure> {
    let entries = match resource_type {
        "EpisodeOfCare" => hidden_as_empty(get_participant(caller, id).await)?
            .map(|p| vec![samsyn_fhir::episode_of_care(&p, &view.region)]),
        "CareTeam" => hidden_as_empty(
            ParticipantsServiceClient::new(caller.clone())
                .get_care_team(GetCareTeamRequest {
                    participant_id: participant_id(id),
                    include_history: false,
                })
                .await,
        )?
        .map(|team| vec![samsyn_fhir::care_team(team.get_ref())]),
        "CarePlan" => {
            let mut plans = PlansServiceClient::new(caller.clone());
            let listed = hidden_as_empty(
                plans
                    .list_plans(ListPlansRequest {
                        participant_id: participant_id(id),
                    })
                    .await,
            )?;
            match listed {
                None => None,
                Some(listed) => {
                    let mut entries = Vec::new();
                    for summary in listed.into_inner().plans.iter().take(MAX_PLANS) {
                        let plan = hidden_as_empty(
                            plans
                                .get_plan(GetPlanRequest {
                                    participant_id: participant_id(id),
                                    plan_id: summary.id.clone(),
                                })
                                .await,
                        )?;
                        if let Some(plan) = plan {
                            entries.push(samsyn_fhir::care_plan(plan.get_ref()));
                        }
                    }
                    Some(entries)
                }
            }
        }
        "Consent" => hidden_as_empty(
            ConsentServiceClient::new(caller.clone())
                .list_consents(ListConsentsRequest {
                    participant_id: participant_id(id),
                    page: Some(PageRequest {
                        page_size: MAX_CONSENTS,
                        page_token: String::new(),
                    }),
                })
                .await,
        )?
        .map(|listed| {
            listed
                .get_ref()
                .consents
                .iter()
                .map(samsyn_fhir::consent)
                .collect()
        }),
        // The trail of who read the participant's data: auditors only, as over gRPC.
        "AuditEvent" => hidden_as_empty(
            AuditServiceClient::new(caller.clone())
                .list_events(ListEventsRequest {
                    participant_id: participant_id(id),
                    page: Some(PageRequest {
                        page_size: MAX_AUDIT_EVENTS,
                        page_token: String::new(),
                    }),
                    ..Default::default()
                })
                .await,
        )?
        .map(|listed| {
            listed
                .get_ref()
                .events
                .iter()
                .map(samsyn_fhir::audit_event)
                .collect()
        }),
        _ => return Err(Failure::NotFound("resource type not supported".into())),
    };
    Ok(entries.unwrap_or_default())
}
