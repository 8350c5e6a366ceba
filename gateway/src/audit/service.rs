//! The audit follow-up API (`samsyn.audit.v1.AuditService`), served by the gateway itself
//! from its [`AuditStore`]: auditors list their scope's events and emergency accesses, mark
//! emergencies reviewed, verify the chain and purge what is past retention; a participant
//! reads who accessed their data.
//!
//! The gateway's policies decide every call before it gets here; this adapter checks the
//! caller again from the forwarded principal metadata (defence in depth): auditor calls need
//! staff of an organisation and see only events that organisation made or whose data it
//! owns; a participant reads only their own access log.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hyper_util::rt::TokioIo;
use samsyn_kit::paging::Page;
use samsyn_kit::time::{parse_timestamp, to_timestamp};
use samsyn_kit::{ApiError, FieldViolations};
use samsyn_proto::audit::v1 as pb;
use samsyn_proto::audit::v1::audit_service_server::{AuditService, AuditServiceServer};
use samsyn_proto::common::v1 as common;
use samsyn_proto::ids::ParticipantId;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

use super::store::{AuditStore, AuditStoreError, Filter, StoredEvent};
use crate::proxy::{PRINCIPAL_ID, PRINCIPAL_KIND, PRINCIPAL_ORGANISATION};

/// The longest principal, organisation or unit id accepted in a filter.
const MAX_ID_CHARS: usize = 64;
/// Events read per query while the access log skips the events it does not show.
const SCAN_BATCH: u64 = 500;
/// Connections waiting to be served by the in-process server.
const IN_PROCESS_BACKLOG: usize = 16;
/// Buffer of one in-memory connection, in bytes.
const IN_PROCESS_BUFFER: usize = 64 * 1024;

/// The handlers of `AuditService`, over the gateway's audit store.
#[derive(Debug, Clone)]
pub struct AuditApi {
    store: Arc<AuditStore>,
}

impl AuditApi {
    /// Handlers over `store`.
    pub fn new(store: Arc<AuditStore>) -> Self {
        Self { store }
    }

    /// The tonic service serving these handlers.
    pub fn into_server(self) -> AuditServiceServer<Self> {
        AuditServiceServer::new(self)
    }
}

/// A channel to an `AuditService` served in this process over in-memory connections, for the
/// gateway to forward `samsyn.audit.v1` calls to like any upstream. Must be called inside a
/// tokio runtime; the server stops once every clone of the channel is dropped.
pub fn in_process(store: Arc<AuditStore>) -> Channel {
    let (connections, incoming) =
        tokio::sync::mpsc::channel::<std::io::Result<tokio::io::DuplexStream>>(IN_PROCESS_BACKLOG);
    let server = AuditApi::new(store).into_server();
    tokio::spawn(async move {
        let served = Server::builder()
            .add_service(server)
            .serve_with_incoming(ReceiverStream::new(incoming))
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "in-process audit service stopped");
        }
    });
    Endpoint::from_static("http://audit.internal").connect_with_connector_lazy(tower::service_fn(
        move |_: http::Uri| {
            let connections = connections.clone();
            async move {
                let (client, server) = tokio::io::duplex(IN_PROCESS_BUFFER);
                connections
                    .send(Ok(server))
                    .await
                    .map_err(|_| std::io::Error::other("in-process audit service stopped"))?;
                Ok::<_, std::io::Error>(TokioIo::new(client))
            }
        },
    ))
}

/// Which kind of principal the gateway forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallerKind {
    Staff,
    System,
    Participant,
}

/// The caller as the gateway forwarded it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Caller {
    id: String,
    kind: CallerKind,
    organisation: Option<String>,
    /// A security auditor also follows up events no organisation can be held to.
    security_auditor: bool,
}

/// A member of staff acting for an organisation: whom the auditor calls are open to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Auditor {
    id: String,
    organisation: String,
    security_auditor: bool,
}

/// The role that also lists unauthenticated and unattributable calls.
pub const SECURITY_AUDITOR: &str = "security_auditor";

/// Reads the caller from the gateway's principal metadata; without it, unauthenticated.
fn caller(metadata: &MetadataMap) -> Result<Caller, Status> {
    let text = |key: &str| {
        metadata
            .get(key)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let unauthenticated = || Status::unauthenticated("no principal");
    let id = text(PRINCIPAL_ID).ok_or_else(unauthenticated)?;
    let kind = match text(PRINCIPAL_KIND).as_deref() {
        Some("staff") => CallerKind::Staff,
        Some("system") => CallerKind::System,
        Some("participant") => CallerKind::Participant,
        _ => return Err(unauthenticated()),
    };
    Ok(Caller {
        id,
        kind,
        organisation: text(PRINCIPAL_ORGANISATION),
        security_auditor: text(samsyn_kit::caller::PRINCIPAL_ROLES)
            .is_some_and(|roles| roles.split(',').any(|r| r == SECURITY_AUDITOR)),
    })
}

/// Auditor calls are open to staff acting for an organisation (the gateway checks the role).
fn auditor(caller: Caller) -> Result<Auditor, ApiError> {
    match (caller.kind, caller.organisation) {
        (CallerKind::Staff, Some(organisation)) => Ok(Auditor {
            id: caller.id,
            organisation,
            security_auditor: caller.security_auditor,
        }),
        _ => Err(ApiError::PermissionDenied),
    }
}

/// A participant reads only their own access log.
fn own_log(caller: &Caller, participant: &uuid::Uuid) -> Result<(), ApiError> {
    let is_them = caller.kind == CallerKind::Participant
        && uuid::Uuid::try_parse(&caller.id).is_ok_and(|id| id == *participant);
    if is_them {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied)
    }
}

fn store_error(error: AuditStoreError) -> ApiError {
    match error {
        AuditStoreError::Database(error) => ApiError::from(error),
        AuditStoreError::TooRecent => ApiError::FailedPrecondition(error.to_string()),
        AuditStoreError::Key { .. } | AuditStoreError::Writer(_) => ApiError::internal(error),
    }
}

fn status(error: impl Into<ApiError>) -> Status {
    Status::from(error.into())
}

/// A page request with its cursor: the position of the last event of the previous page.
fn page_of(request: Option<&common::PageRequest>) -> Result<(Page, u64), ApiError> {
    let page = Page::from_request(request, "page")?;
    let after = match &page.after {
        None => 0,
        Some(token) => token
            .parse::<u64>()
            .map_err(|_| ApiError::invalid("page.page_token", "not a token this server issued"))?,
    };
    Ok((page, after))
}

/// A participant id in its one spelling (`samsyn_proto::ids`), or the field named.
fn participant_id(
    v: &mut FieldViolations,
    field: &str,
    value: &common::ParticipantId,
) -> Option<uuid::Uuid> {
    v.id(ParticipantId::from_field(field, Some(value)))
        .map(ParticipantId::uuid)
}

/// An optional principal, organisation or unit id of a filter.
fn filter_id(v: &mut FieldViolations, field: &str, value: &str) -> Option<String> {
    if value.chars().count() > MAX_ID_CHARS || value.chars().any(char::is_control) {
        v.add(
            field,
            format!("must be 1 to {MAX_ID_CHARS} printable characters"),
        );
        return None;
    }
    Some(value.to_owned())
}

fn organisation_id(
    v: &mut FieldViolations,
    field: &str,
    value: Option<&common::OrganisationId>,
) -> Option<String> {
    let value = value?;
    if value.value.is_empty() {
        v.add(format!("{field}.value"), "required");
        return None;
    }
    filter_id(v, &format!("{field}.value"), &value.value)
}

fn timestamp(
    v: &mut FieldViolations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    v.check(field, parse_timestamp(value?))
}

fn decision_code(decision: pb::Decision) -> Option<&'static str> {
    match decision {
        pb::Decision::Unspecified => None,
        pb::Decision::Allowed => Some("allowed"),
        pb::Decision::Disclosure => Some("disclosure"),
        pb::Decision::Emergency => Some("emergency"),
        pb::Decision::Denied => Some("denied"),
    }
}

fn decision_of(code: &str) -> pb::Decision {
    match code {
        "allowed" => pb::Decision::Allowed,
        "disclosure" => pb::Decision::Disclosure,
        "emergency" => pb::Decision::Emergency,
        "denied" => pb::Decision::Denied,
        _ => pb::Decision::Unspecified,
    }
}

fn action_of(code: Option<&str>) -> common::Action {
    match code {
        Some("read") => common::Action::Read,
        Some("write") => common::Action::Write,
        _ => common::Action::Unspecified,
    }
}

fn category_of(code: &str) -> common::DataCategory {
    common::DataCategory::from_str_name(&format!("DATA_CATEGORY_{}", code.to_ascii_uppercase()))
        .unwrap_or_default()
}

fn time_of(at: &str) -> Option<prost_types::Timestamp> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| to_timestamp(t.with_timezone(&Utc)))
}

fn organisation(value: Option<&String>) -> Option<common::OrganisationId> {
    value.map(|value| common::OrganisationId {
        value: value.clone(),
    })
}

/// The wire form of a stored event, for auditors.
fn event(stored: StoredEvent) -> pb::AuditEvent {
    let record = stored.record;
    let principal = record.principal_id.as_ref().map(|id| pb::Principal {
        id: id.clone(),
        kind: match record.principal_kind.as_deref() {
            Some("staff") => pb::PrincipalKind::Staff,
            Some("system") => pb::PrincipalKind::System,
            Some("participant") => pb::PrincipalKind::Participant,
            _ => pb::PrincipalKind::Unspecified,
        }
        .into(),
        organisation_id: organisation(record.organisation.as_ref()),
        unit_id: record.unit.clone().unwrap_or_default(),
        roles: record.roles.clone(),
        purpose: record.purpose.clone().unwrap_or_default(),
        acting_through: record.acting_through.clone().unwrap_or_default(),
    });
    let (reviewed_by, reviewed_at) = match stored.reviewed {
        Some((by, at)) => (by, Some(to_timestamp(at))),
        None => (String::new(), None),
    };
    pb::AuditEvent {
        position: stored.position,
        time: time_of(&record.at),
        principal,
        action: action_of(record.action.as_deref()).into(),
        category: category_of(&record.category).into(),
        participant_id: record
            .participant_id
            .map(|value| common::ParticipantId { value }),
        owner_organisation_id: organisation(record.owner_organisation.as_ref()),
        decision: decision_of(&record.decision).into(),
        policies: record.policies,
        emergency_reason: record.emergency_reason.unwrap_or_default(),
        rows: record
            .rows
            .into_iter()
            .map(|(value, disclosure)| pb::ShownRow {
                participant_id: Some(common::ParticipantId { value }),
                disclosure,
            })
            .collect(),
        outcome: match record.outcome.as_str() {
            "refused" => pb::Outcome::Refused,
            "forwarded" => pb::Outcome::Forwarded,
            "intended" => pb::Outcome::Intended,
            _ => pb::Outcome::Unspecified,
        }
        .into(),
        status_code: record.status,
        trace_id: record.trace_id.unwrap_or_default(),
        rpc: record.rpc,
        reviewed_by,
        reviewed_at,
        export: record.export.map(|e| pb::ExportDetail {
            study_id: e.study_id,
            row_count: e.row_count,
        }),
    }
}

/// Whether a participant's access log shows the event: a call by someone else that was
/// allowed and forwarded (their own calls, and refusals, accessed nothing of theirs).
fn shown_to_participant(stored: &StoredEvent) -> bool {
    // Refused attempts too: the participant has a right to know that someone tried.
    stored.record.principal_kind.as_deref() != Some("participant")
}

/// The participant's view of an event: organisation, unit, time and what; never who.
///
/// The staff id is left out on purpose: in psychiatry, telling a patient which individual
/// clinician read their record is a known safety risk for staff (threats, stalking). The
/// organisation and unit answer the participant's right to know who accessed their data;
/// the individual is traceable by the organisation's auditors.
fn access_log_entry(stored: StoredEvent, participant: &str) -> pb::AccessLogEntry {
    let record = stored.record;
    // A list row that showed the participant: a disclosure if their row was one.
    let shown_row = record
        .rows
        .iter()
        .find(|(id, _)| id == participant)
        .filter(|_| record.participant_id.as_deref() != Some(participant));
    pb::AccessLogEntry {
        time: time_of(&record.at),
        organisation_id: organisation(record.organisation.as_ref()),
        unit_id: record.unit.unwrap_or_default(),
        category: category_of(&record.category).into(),
        action: action_of(record.action.as_deref()).into(),
        // A call the service refused (the organisation was not entitled to the act) is a
        // refusal to the participant too.
        decision: if record.status == tonic::Code::PermissionDenied as i32 {
            pb::Decision::Denied
        } else {
            match shown_row {
                Some((_, true)) => pb::Decision::Disclosure,
                Some((_, false)) => pb::Decision::Allowed,
                None => decision_of(&record.decision),
            }
        }
        .into(),
        rpc: record.rpc,
    }
}

impl AuditApi {
    /// One page of events matching `filter`, with the next page token.
    async fn events_page(
        &self,
        filter: &Filter,
        page: &Page,
        after: u64,
    ) -> Result<(Vec<pb::AuditEvent>, common::PageResponse), ApiError> {
        let mut rows = self.store.query(filter, after, page.fetch_limit()).await?;
        let next_page_token = page.finish(&mut rows, |e| e.position.to_string());
        Ok((
            rows.into_iter().map(event).collect(),
            common::PageResponse { next_page_token },
        ))
    }
}

fn list_events_filter(request: &pb::ListEventsRequest) -> Result<Filter, ApiError> {
    let mut v = FieldViolations::new();
    let participant = request
        .participant_id
        .as_ref()
        .and_then(|id| participant_id(&mut v, "participant_id", id));
    let principal_id = if request.principal_id.is_empty() {
        None
    } else {
        filter_id(&mut v, "principal_id", &request.principal_id)
    };
    let organisation = organisation_id(&mut v, "organisation_id", request.organisation_id.as_ref());
    let owner_organisation = organisation_id(
        &mut v,
        "owner_organisation_id",
        request.owner_organisation_id.as_ref(),
    );
    let decision = match pb::Decision::try_from(request.decision) {
        Ok(decision) => decision_code(decision),
        Err(_) => {
            v.add("decision", "unknown decision");
            None
        }
    };
    let period = request.period.as_ref();
    let from = timestamp(
        &mut v,
        "period.start",
        period.and_then(|p| p.start.as_ref()),
    );
    let until = timestamp(&mut v, "period.end", period.and_then(|p| p.end.as_ref()));
    if let (Some(from), Some(until)) = (from, until)
        && until <= from
    {
        v.add("period.end", "must be after the start");
    }
    v.finish()?;
    Ok(Filter {
        participant_id: participant.map(|id| id.hyphenated().to_string()),
        principal_id,
        organisation,
        owner_organisation,
        decision: decision.map(str::to_owned),
        from,
        until,
        ..Filter::default()
    })
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let auditor = auditor(caller(request.metadata())?).map_err(status)?;
        let request = request.into_inner();
        let mut filter = list_events_filter(&request).map_err(status)?;
        let (page, after) = page_of(request.page.as_ref()).map_err(status)?;
        filter.any_organisation = Some(auditor.organisation);
        filter.security_scope = auditor.security_auditor;
        let (events, page) = self
            .events_page(&filter, &page, after)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListEventsResponse {
            events,
            page: Some(page),
        }))
    }

    async fn list_unreviewed_emergencies(
        &self,
        request: Request<pb::ListUnreviewedEmergenciesRequest>,
    ) -> Result<Response<pb::ListUnreviewedEmergenciesResponse>, Status> {
        let auditor = auditor(caller(request.metadata())?).map_err(status)?;
        let (page, after) = page_of(request.get_ref().page.as_ref()).map_err(status)?;
        let filter = Filter {
            unreviewed_emergencies: true,
            any_organisation: Some(auditor.organisation),
            security_scope: auditor.security_auditor,
            ..Filter::default()
        };
        let (events, page) = self
            .events_page(&filter, &page, after)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListUnreviewedEmergenciesResponse {
            events,
            page: Some(page),
        }))
    }

    async fn mark_emergency_reviewed(
        &self,
        request: Request<pb::MarkEmergencyReviewedRequest>,
    ) -> Result<Response<pb::MarkEmergencyReviewedResponse>, Status> {
        let auditor = auditor(caller(request.metadata())?).map_err(status)?;
        let position = request.get_ref().position;
        if position == 0 {
            return Err(status(ApiError::invalid("position", "must be at least 1")));
        }
        // Only an emergency of the auditor's scope; any other position is "not found" alike.
        let scope = Filter {
            decision: Some("emergency".to_owned()),
            any_organisation: Some(auditor.organisation),
            ..Filter::default()
        };
        let found = self
            .store
            .query(&scope, position - 1, 1)
            .await
            .map_err(status)?;
        let Some(event) = found.into_iter().find(|e| e.position == position) else {
            return Err(status(ApiError::NotFound("emergency event")));
        };
        let already = || status(ApiError::FailedPrecondition("already reviewed".to_owned()));
        if event.reviewed.is_some() {
            return Err(already());
        }
        if !self
            .store
            .mark_reviewed(position, &auditor.id)
            .await
            .map_err(status)?
        {
            // Another auditor got there first.
            return Err(already());
        }
        tracing::info!(position, "emergency access reviewed");
        Ok(Response::new(pb::MarkEmergencyReviewedResponse {
            newly_marked: true,
        }))
    }

    async fn verify_audit(
        &self,
        request: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        auditor(caller(request.metadata())?).map_err(status)?;
        let verification = self.store.verify().await.map_err(status)?;
        if let Some(position) = verification.first_broken {
            tracing::error!(position, "audit chain broken");
        }
        Ok(Response::new(pb::VerifyAuditResponse {
            events_checked: verification.events,
            checkpoints_checked: verification.checkpoints,
            first_broken_position: verification.first_broken.unwrap_or(0),
            problem: verification.problem.unwrap_or_default(),
            intents_without_outcome: self
                .store
                .intents_without_outcome()
                .await
                .map_err(|e| status(ApiError::internal(e)))?,
        }))
    }

    async fn get_my_access_log(
        &self,
        request: Request<pb::GetMyAccessLogRequest>,
    ) -> Result<Response<pb::GetMyAccessLogResponse>, Status> {
        let caller = caller(request.metadata())?;
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let participant = match &request.participant_id {
            None => {
                v.add("participant_id", "required");
                None
            }
            Some(id) => participant_id(&mut v, "participant_id", id),
        };
        v.finish().map_err(status)?;
        let (page, mut after) = page_of(request.page.as_ref()).map_err(status)?;
        let Some(participant) = participant else {
            return Err(status(ApiError::invalid("participant_id", "required")));
        };
        own_log(&caller, &participant).map_err(status)?;
        let participant_text = participant.hyphenated().to_string();
        let filter = Filter {
            participant_id: Some(participant_text.clone()),
            ..Filter::default()
        };
        // Scan past the events the log does not show until the page (and one more) is full.
        let wanted = usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX);
        let mut shown = Vec::new();
        'scan: loop {
            let batch = self
                .store
                .query(&filter, after, SCAN_BATCH)
                .await
                .map_err(status)?;
            let exhausted = (batch.len() as u64) < SCAN_BATCH;
            for stored in batch {
                after = stored.position;
                if shown_to_participant(&stored) {
                    shown.push(stored);
                    if shown.len() >= wanted {
                        break 'scan;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        let next_page_token = page.finish(&mut shown, |e| e.position.to_string());
        Ok(Response::new(pb::GetMyAccessLogResponse {
            entries: shown
                .into_iter()
                .map(|stored| access_log_entry(stored, &participant_text))
                .collect(),
            page: Some(common::PageResponse { next_page_token }),
        }))
    }

    async fn purge_events(
        &self,
        request: Request<pb::PurgeEventsRequest>,
    ) -> Result<Response<pb::PurgeEventsResponse>, Status> {
        auditor(caller(request.metadata())?).map_err(status)?;
        let mut v = FieldViolations::new();
        let cutoff = timestamp(&mut v, "cutoff", request.get_ref().cutoff.as_ref());
        if request.get_ref().cutoff.is_none() {
            v.add("cutoff", "required");
        }
        v.finish().map_err(status)?;
        let Some(cutoff) = cutoff else {
            return Err(status(ApiError::invalid("cutoff", "required")));
        };
        let removed = self
            .store
            .purge_before(cutoff)
            .await
            .map_err(store_error)
            .map_err(status)?;
        tracing::info!(events_removed = removed, "audit events purged");
        Ok(Response::new(pb::PurgeEventsResponse {
            events_removed: removed,
        }))
    }

    async fn revoke_sessions(
        &self,
        request: Request<pb::RevokeSessionsRequest>,
    ) -> Result<Response<pb::RevokeSessionsResponse>, Status> {
        let auditor = auditor(caller(request.metadata())?).map_err(status)?;
        if !auditor.security_auditor {
            return Err(status(ApiError::PermissionDenied));
        }
        let revocation = revocation_of(request.get_ref(), unix_now()).map_err(status)?;
        let until = revocation.until;
        self.store
            .revoke(revocation)
            .await
            .map_err(|error| status(ApiError::from(error)))?;
        tracing::info!("sessions revoked");
        Ok(Response::new(pb::RevokeSessionsResponse {
            until: Some(prost_types::Timestamp {
                seconds: i64::try_from(until).unwrap_or(i64::MAX),
                nanos: 0,
            }),
        }))
    }
}

/// Longest token id or subject a revocation names.
const MAX_SESSION_FIELD: usize = 128;

/// Longest issuer a revocation names.
const MAX_ISSUER: usize = 512;

/// How long a revocation is kept: no configurable token lifetime (at most a day) outlives it.
const REVOCATION_KEPT_SECONDS: u64 = 86_400 + 300;

/// The revocation a request asks for at `now`.
fn revocation_of(
    request: &pb::RevokeSessionsRequest,
    now: u64,
) -> Result<crate::auth::Revocation, ApiError> {
    let mut v = FieldViolations::new();
    let field = |v: &mut FieldViolations, name: &str, value: &str, max: usize| {
        if value.chars().count() > max {
            v.add(name, format!("at most {max} characters"));
        }
        (!value.trim().is_empty()).then(|| value.to_owned())
    };
    let issuer = field(&mut v, "issuer", &request.issuer, MAX_ISSUER);
    let token_id = field(&mut v, "token_id", &request.token_id, MAX_SESSION_FIELD);
    let subject = field(&mut v, "subject", &request.subject, MAX_SESSION_FIELD);
    if token_id.is_none() && subject.is_none() {
        v.add("token_id", "a token id or a subject is required");
    }
    v.finish()?;
    Ok(crate::auth::Revocation {
        issuer,
        token_id,
        subject,
        revoked_at: now,
        until: now + REVOCATION_KEPT_SECONDS,
    })
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn metadata(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        for (key, value) in pairs {
            metadata.insert(*key, value.parse().unwrap());
        }
        metadata
    }

    const PARTICIPANT: &str = "0198c0de-0000-7000-8000-000000000001";

    /// Principal metadata as the gateway forwards it.
    type Pairs<'a> = &'a [(&'static str, &'a str)];

    #[test]
    fn who_may_call_what() {
        let staff = [
            (PRINCIPAL_ID, "SE2321000255-au01"),
            (PRINCIPAL_KIND, "staff"),
            (PRINCIPAL_ORGANISATION, "SE2321000255"),
        ];
        let own = uuid::Uuid::try_parse(PARTICIPANT).unwrap();
        let other = uuid::Uuid::try_parse("0198c0de-0000-7000-8000-000000000002").unwrap();
        let participant = [(PRINCIPAL_ID, PARTICIPANT), (PRINCIPAL_KIND, "participant")];
        let staff_without_organisation = [(PRINCIPAL_ID, "x"), (PRINCIPAL_KIND, "staff")];
        let system = [
            (PRINCIPAL_ID, "board"),
            (PRINCIPAL_KIND, "system"),
            (PRINCIPAL_ORGANISATION, "SE2321000255"),
        ];
        // (caller, may audit, may read own log of `own`, of `other`)
        let table: [(Pairs<'_>, bool, bool, bool); 4] = [
            (&staff, true, false, false),
            (&participant, false, true, false),
            (&staff_without_organisation, false, false, false),
            (&system, false, false, false),
        ];
        for (pairs, audits, reads_own, reads_other) in table {
            let caller = caller(&metadata(pairs)).unwrap();
            assert_eq!(auditor(caller.clone()).is_ok(), audits, "{pairs:?}");
            assert_eq!(own_log(&caller, &own).is_ok(), reads_own, "{pairs:?}");
            assert_eq!(own_log(&caller, &other).is_ok(), reads_other, "{pairs:?}");
        }
    }

    #[test]
    fn no_principal_is_unauthenticated() {
        for pairs in [
            &[][..],
            &[(PRINCIPAL_KIND, "staff")][..],
            &[(PRINCIPAL_ID, "x"), (PRINCIPAL_KIND, "robot")][..],
        ] {
            let err = caller(&metadata(pairs)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{pairs:?}");
        }
    }

    #[test]
    fn times_outside_protobufs_range_are_refused_naming_the_field() {
        use samsyn_kit::testing::new_year;
        let mut v = FieldViolations::new();
        assert!(timestamp(&mut v, "period.start", Some(&new_year(-1200))).is_none());
        assert!(timestamp(&mut v, "period.end", Some(&new_year(2026))).is_some());
        assert!(timestamp(&mut v, "cutoff", Some(&new_year(10_000))).is_none());
        let Err(ApiError::InvalidArgument(violations)) = v.finish() else {
            panic!("expected field violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["period.start", "cutoff"]);
    }

    #[test]
    fn a_participant_id_in_another_spelling_is_refused_naming_the_field() {
        let spelled = |value: &str| common::ParticipantId {
            value: value.to_owned(),
        };
        let mut v = FieldViolations::new();
        assert!(participant_id(&mut v, "participant_id", &spelled(PARTICIPANT)).is_some());
        let upper = PARTICIPANT.to_uppercase();
        assert!(participant_id(&mut v, "participant_id", &spelled(&upper)).is_none());
        let braced = format!("{{{PARTICIPANT}}}");
        assert!(participant_id(&mut v, "filter.participant_id", &spelled(&braced)).is_none());
        let Err(ApiError::InvalidArgument(violations)) = v.finish() else {
            panic!("expected field violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["participant_id.value", "filter.participant_id.value"]
        );
    }

    #[test]
    fn every_category_code_reads_back() {
        for category in [
            common::DataCategory::Enrolment,
            common::DataCategory::CareTeam,
            common::DataCategory::ChangeFeed,
            common::DataCategory::Audit,
        ] {
            assert_eq!(
                category_of(crate::policy::category_code(category)),
                category
            );
        }
        assert_eq!(category_of("nonsense"), common::DataCategory::Unspecified);
    }
}
