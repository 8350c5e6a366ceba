//! Forwarding: every Samsyn RPC arrives here, is authenticated, described, decided, audited,
//! forwarded to its owning service over internal mutual TLS, and narrowed on the way back.
//!
//! Messages pass through as bytes; only what a decision needs is decoded (the participant id
//! of the request, the rows of a list), by the access annotations in the descriptor set.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use chrono::Utc;
use prost::Message;
use samsyn_proto::MethodAccess;
use samsyn_proto::board::v1::{BoardEntry, BoardUpdate, BoardUpdateKind};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Code, Request, Response, Status};
use tracing::Instrument;

use crate::access_view::{FeedName, Follower};
use crate::audit::{AuditEvent, AuditTrail, ExportAudit, Outcome, RowAccess};
use crate::auth::{AuthError, Principal};
use crate::authenticate::{Authenticated, Authenticator};
use crate::case_terms;
use crate::describe::{CallDescriber, DescribeError};
use crate::gate::{Gate, GateError, Verdict};
use crate::page_token::{Cursor, PageTokens};

/// Metadata key of an emergency reason in UTF-8 (binary metadata, so Swedish text fits).
pub const EMERGENCY_REASON_BIN: &str = "samsyn-emergency-reason-bin";
/// Metadata key of an emergency reason in plain ASCII.
pub const EMERGENCY_REASON: &str = "samsyn-emergency-reason";
/// Metadata the gateway adds to a forwarded call: who the caller is (services behind the
/// gateway trust it, since only Samsyn's own components reach them).
pub use samsyn_kit::caller::{
    PRINCIPAL_ID, PRINCIPAL_KIND, PRINCIPAL_ORGANISATION, PRINCIPAL_UNIT,
};
/// Longest emergency reason accepted, in bytes.
const MAX_EMERGENCY_REASON_BYTES: usize = 500;
/// How often a live board stream re-checks what it shows when nothing else happens: a
/// consent can expire without any change on a feed.
const STREAM_RECHECK: Duration = Duration::from_secs(5);
/// Path of the board stream, whose rows are re-checked whenever access may have changed.
const WATCH_BOARD: &str = "/samsyn.board.v1.BoardService/WatchBoard";
/// Rows in a filled page when the caller asks for none (the services' default).
const DEFAULT_FILL_PAGE: usize = 50;
/// Most rows in a filled page (the services' maximum).
const MAX_FILL_PAGE: usize = 500;
/// Rows of each service page a filled page reads (the services' maximum).
const SERVICE_PAGE: u32 = 500;
/// Most service pages one filled page may read; the caller goes on with the next page.
const MAX_FILL_FETCHES: usize = 400;
/// How often a live stream's shown rows become one audit event.
const STREAM_AUDIT_EVERY: Duration = Duration::from_secs(10);

/// The internal channels to the services the gateway forwards to.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// The participants service.
    pub participants: Channel,
    /// The consent service.
    pub consent: Channel,
    /// The plans service.
    pub plans: Channel,
    /// The board service.
    pub board: Channel,
    /// The audit follow-up service the gateway serves from its own trail, when it has one.
    pub audit: Option<Channel>,
    /// The reports service, when one runs.
    pub reports: Option<Channel>,
}

impl Upstreams {
    /// The channel of the service that owns `path`, and the feed the access view follows
    /// from it, if any.
    fn route(&self, path: &str) -> Option<(&Channel, Option<FeedName>)> {
        let package = path.strip_prefix("/samsyn.")?.split('.').next()?;
        Some(match package {
            "participants" => (&self.participants, Some(FeedName::Participants)),
            "consent" => (&self.consent, Some(FeedName::Consent)),
            "plans" => (&self.plans, None),
            "board" => (&self.board, Some(FeedName::Board)),
            "audit" => (self.audit.as_ref()?, None),
            "reports" => (self.reports.as_ref()?, None),
            _ => return None,
        })
    }
}

/// Everything a forwarded call needs, shared by all calls.
#[derive(Debug)]
pub struct Gateway {
    describer: CallDescriber,
    authenticator: Authenticator,
    gate: Gate,
    upstreams: Upstreams,
    audit: Arc<dyn AuditTrail>,
    pages: PageTokens,
    max_request_bytes: usize,
    default_deadline: Duration,
    /// Keeps the access view following the feeds for as long as the gateway lives.
    _follower: Option<Follower>,
}

impl Gateway {
    /// Assembles the gateway.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        describer: CallDescriber,
        authenticator: Authenticator,
        gate: Gate,
        upstreams: Upstreams,
        audit: Arc<dyn AuditTrail>,
        pages: PageTokens,
        limits: &samsyn_kit::config::Limits,
        follower: Option<Follower>,
    ) -> Self {
        Self {
            describer,
            authenticator,
            gate,
            upstreams,
            audit,
            pages,
            max_request_bytes: limits.max_request_bytes,
            default_deadline: limits.default_deadline(),
            _follower: follower,
        }
    }

    /// The decision maker.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// What each method reads or writes.
    pub fn describer(&self) -> &CallDescriber {
        &self.describer
    }

    /// The channels to the services.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// The audit trail.
    pub fn audit(&self) -> &Arc<dyn AuditTrail> {
        &self.audit
    }
}

/// The catch-all gRPC service of the gateway.
#[derive(Debug, Clone)]
pub struct Proxy {
    gateway: Arc<Gateway>,
}

impl Proxy {
    /// A proxy for `gateway`.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<B> tower::Service<http::Request<B>> for Proxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let gateway = Arc::clone(&self.gateway);
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let Some((_, streaming)) = gateway.describer.method_access(&path) else {
                return Ok(Status::unimplemented("unknown method").into_http());
            };
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .apply_max_message_size_config(Some(gateway.max_request_bytes), None);
            let trace = caller_trace_id(request.headers()).unwrap_or_else(new_trace_id);
            let call = Call {
                gateway,
                path,
                trace,
            };
            Ok(if streaming {
                grpc.server_streaming(call, request).await
            } else {
                grpc.unary(call, request).await
            })
        })
    }
}

/// One call on its way through.
struct Call {
    gateway: Arc<Gateway>,
    path: String,
    /// The trace id the audit trail records when no trace is being exported: the caller's
    /// `traceparent`, or one made up for this call.
    trace: String,
}

/// A call that may be forwarded.
struct Admitted {
    principal: Principal,
    /// Ties a write's intent event to its outcome event.
    call_id: String,
    /// When the caller's token or link certificate expires (seconds since the epoch); a
    /// stream ends then.
    expires_at: Option<u64>,
    /// The caller's token session: a stream ends when it is revoked.
    session: Option<crate::auth::Session>,
    verdict: Verdict,
    participant_id: Option<String>,
    emergency_reason: Option<String>,
    message: Bytes,
    timeout: Option<Duration>,
}

/// What the audit event of a refused call knows.
struct Refused {
    principal: Option<Principal>,
    participant_id: Option<String>,
    verdict: Option<Verdict>,
    emergency_reason: Option<String>,
    status: Status,
}

impl Refused {
    fn new(status: Status) -> Self {
        Self {
            principal: None,
            participant_id: None,
            verdict: None,
            emergency_reason: None,
            status,
        }
    }
}

impl Call {
    /// The call's trace id: the exported trace's, else the caller's or a made-up one.
    fn trace_id(&self) -> String {
        samsyn_kit::telemetry::current_traceparent()
            .and_then(|tp| trace_id_of(&tp))
            .unwrap_or_else(|| self.trace.clone())
    }

    fn access(&self) -> Result<&MethodAccess, Status> {
        self.gateway
            .describer
            .method_access(&self.path)
            .map(|(access, _)| access)
            .ok_or_else(|| Status::unimplemented("unknown method"))
    }

    /// Authenticates, catches up with the caller's consistency token, describes and decides;
    /// every refusal is audited here.
    async fn admit(&self, request: Request<Bytes>) -> Result<Admitted, Status> {
        let admitted = match self.authenticate(&request).await {
            Ok(authenticated) => {
                let request = self
                    .in_samsyn_terms(request, &authenticated.principal)
                    .await?;
                match self.catch_up(request.metadata()).await {
                    Ok(()) => self.try_admit(request, authenticated),
                    Err(status) => Err(Box::new(Refused {
                        principal: Some(authenticated.principal),
                        ..Refused::new(status)
                    })),
                }
            }
            Err(refused) => Err(refused),
        };
        match admitted {
            Ok(admitted) => Ok(admitted),
            Err(refused) => {
                let status = refused.status.clone();
                crate::metrics::refusal(status.code());
                self.audit_refusal(*refused).await?;
                Err(status)
            }
        }
    }

    /// A linked case system's push in its own terms, translated before it is decided (see
    /// [`crate::case_terms`]); anything else passes unchanged. A push that cannot be
    /// translated is refused and audited here.
    async fn in_samsyn_terms(
        &self,
        request: Request<Bytes>,
        principal: &Principal,
    ) -> Result<Request<Bytes>, Status> {
        if self.path != case_terms::PUSH_DECISION || !case_terms::in_case_terms(request.get_ref()) {
            return Ok(request);
        }
        // Anyone but a case system linked for this call goes on unchanged, to be refused by
        // the usual admission (not permitted, or no participant id).
        if principal.kind != crate::auth::PrincipalKind::System
            || !self.gateway.gate.links().allows(&principal.id, &self.path)
        {
            return Ok(request);
        }
        match case_terms::translate(&self.gateway, principal, request.get_ref()).await {
            Ok(message) => {
                let (metadata, extensions, _) = request.into_parts();
                Ok(Request::from_parts(metadata, extensions, message))
            }
            Err(untranslated) => {
                let status = untranslated.status.clone();
                crate::metrics::refusal(status.code());
                self.audit_refusal(Refused {
                    principal: Some(principal.clone()),
                    participant_id: untranslated.participant_id,
                    ..Refused::new(untranslated.status)
                })
                .await?;
                Err(status)
            }
        }
    }

    /// Who is calling: an unknown method is refused before anyone is looked for.
    async fn authenticate(&self, request: &Request<Bytes>) -> Result<Authenticated, Box<Refused>> {
        self.access()
            .map_err(|status| Box::new(Refused::new(status)))?;
        let peer_certs = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs);
        self.gateway
            .authenticator
            .authenticate(
                request.metadata(),
                peer_certs.as_ref().map(|c| c.as_slice()),
            )
            .instrument(tracing::info_span!("gateway.authenticate"))
            .await
            .map_err(|error| Box::new(Refused::new(unauthenticated(&error))))
    }

    fn try_admit(
        &self,
        request: Request<Bytes>,
        authenticated: Authenticated,
    ) -> Result<Admitted, Box<Refused>> {
        let gateway = &self.gateway;
        let access = self
            .access()
            .map_err(|status| Box::new(Refused::new(status)))?;
        let Authenticated {
            principal,
            expires_at,
            session,
        } = authenticated;
        let refuse = |status: Status| Refused {
            principal: Some(principal.clone()),
            ..Refused::new(status)
        };
        let timeout = grpc_timeout(request.metadata());
        let emergency_reason =
            emergency_reason(request.metadata()).map_err(|status| Box::new(refuse(status)))?;
        let message = request.into_inner();
        let call = gateway
            .describer
            .describe(&self.path, &message)
            .map_err(|error| {
                Box::new(refuse(match error {
                    DescribeError::Malformed => samsyn_kit::error::ApiError::invalid(
                        "request",
                        "does not decode as the method's request message",
                    )
                    .into(),
                    DescribeError::NoParticipant(field) => samsyn_kit::error::ApiError::invalid(
                        field,
                        "required: the id of the participant the call is about",
                    )
                    .into(),
                    DescribeError::UnknownMethod => Status::unimplemented("unknown method"),
                    DescribeError::Descriptors(_) => Status::internal("internal error"),
                }))
            })?;
        let participant_id = call.participant_id;
        let requested = call.act;
        let with_participant = |status: Status| Refused {
            participant_id: participant_id.clone(),
            emergency_reason: emergency_reason.clone(),
            ..refuse(status)
        };
        // Only outcomes go on the span: never who or about whom.
        let decide = tracing::info_span!(
            "gateway.decide",
            decision.allowed = tracing::field::Empty,
            decision.disclosure = tracing::field::Empty,
            decision.emergency = tracing::field::Empty,
        );
        let verdict = decide
            .in_scope(|| {
                gateway.gate.decide_act(
                    &principal,
                    access,
                    participant_id.as_deref(),
                    emergency_reason.is_some(),
                    &requested,
                )
            })
            .map_err(|error| Box::new(with_participant(view_unavailable(&error))))?;
        decide.record("decision.allowed", verdict.decision.allowed);
        decide.record("decision.disclosure", verdict.decision.disclosure);
        decide.record("decision.emergency", verdict.decision.emergency);
        crate::metrics::decision(verdict.decision.allowed, action(access), access.category());
        if verdict.decision.allowed && verdict.decision.emergency {
            crate::metrics::emergency_access(access.category());
        }
        if !verdict.decision.allowed {
            return Err(Box::new(Refused {
                verdict: Some(verdict),
                ..with_participant(permission_denied())
            }));
        }
        // A narrowed, paged list keeps the caller's token: its cursor is the gateway's own
        // (see `unary_filled`); other paged calls get the service's token back.
        let opened = if filled(gateway, access, &self.path) {
            gateway
                .pages
                .request_cursor(&self.path, &principal.id, &message)
                .map(|_| None)
        } else {
            gateway
                .pages
                .open_request(&self.path, &principal.id, &message)
        };
        let message = match opened {
            Ok(Some(opened)) => Bytes::from(opened),
            Ok(None) => message,
            Err(_) => {
                return Err(Box::new(Refused {
                    verdict: Some(verdict),
                    ..with_participant(
                        samsyn_kit::error::ApiError::invalid(
                            "page.page_token",
                            "not a page token this caller was given for this call",
                        )
                        .into(),
                    )
                }));
            }
        };
        Ok(Admitted {
            principal,
            call_id: uuid::Uuid::now_v7().to_string(),
            expires_at,
            session,
            verdict,
            participant_id,
            emergency_reason,
            message,
            timeout,
        })
    }

    async fn audit_refusal(&self, refused: Refused) -> Result<(), Status> {
        let access = self.access().ok();
        let verdict = refused.verdict.unwrap_or_else(|| Verdict {
            decision: crate::policy::Decision::default(),
            owner: None,
        });
        let event = AuditEvent {
            at: Utc::now(),
            principal: refused.principal,
            rpc: self.path.clone(),
            action: access.map(action),
            category: access.map_or(Default::default(), MethodAccess::category),
            participant_id: refused.participant_id,
            owner_organisation: verdict.owner,
            allowed: false,
            policies: verdict.decision.policies,
            disclosure: false,
            emergency: false,
            emergency_reason: refused.emergency_reason,
            rows: Vec::new(),
            outcome: Outcome::Refused,
            status: refused.status.code(),
            trace_id: Some(self.trace_id()),
            stakeholders: Vec::new(),
            call_id: None,
            export: None,
        };
        self.record(event).await
    }

    /// The event of an admitted call: its intent (a write, before forwarding) or how it ended.
    fn admitted_event(
        &self,
        admitted: &Admitted,
        rows: Vec<RowAccess>,
        status: Code,
        outcome: Outcome,
    ) -> Result<AuditEvent, Status> {
        let access = self.access()?;
        let write = access.action() == samsyn_proto::common::v1::Action::Write;
        Ok(AuditEvent {
            at: Utc::now(),
            principal: Some(admitted.principal.clone()),
            rpc: self.path.clone(),
            action: Some(action(access)),
            category: access.category(),
            participant_id: admitted.participant_id.clone(),
            owner_organisation: admitted.verdict.owner.clone(),
            allowed: true,
            policies: admitted.verdict.decision.policies.clone(),
            disclosure: admitted.verdict.decision.disclosure,
            emergency: admitted.verdict.decision.emergency,
            emergency_reason: admitted.emergency_reason.clone(),
            rows,
            outcome,
            status,
            trace_id: Some(self.trace_id()),
            stakeholders: Vec::new(),
            call_id: write.then(|| admitted.call_id.clone()),
            export: None,
        })
    }

    /// A write is in the trail before it happens: if the gateway stops or the trail refuses
    /// the outcome, the intent still says who decided to change what.
    async fn audit_intent(&self, admitted: &Admitted) -> Result<(), Status> {
        let event = self.admitted_event(admitted, Vec::new(), Code::Ok, Outcome::Intended)?;
        self.record(event).await
    }

    async fn audit_forwarded(
        &self,
        admitted: Admitted,
        rows: Vec<RowAccess>,
        status: Code,
    ) -> Result<(), Status> {
        let event = self.admitted_event(&admitted, rows, status, Outcome::Forwarded)?;
        self.record(event).await
    }

    async fn record(&self, mut event: AuditEvent) -> Result<(), Status> {
        // Every organisation with a stake finds the event: the named and shown participants'
        // home organisations, whoever called.
        event.stakeholders = self.gateway.gate.stakeholders(
            event
                .participant_id
                .iter()
                .chain(event.rows.iter().map(|r| &r.participant_id))
                .map(String::as_str),
        );
        let commit = tracing::info_span!("gateway.audit.commit");
        let started = std::time::Instant::now();
        let recorded = self.gateway.audit.record(event).instrument(commit).await;
        crate::metrics::audit_commit(started.elapsed(), recorded.is_ok());
        recorded.map_err(|error| {
            tracing::error!(%error, rpc = %self.path, "audit trail refused an event; call failed");
            Status::unavailable("audit trail unavailable")
        })
    }

    fn upstream(&self) -> Result<(tonic::client::Grpc<Channel>, Option<FeedName>), Status> {
        let (channel, feed) = self
            .gateway
            .upstreams
            .route(&self.path)
            .ok_or_else(|| Status::unimplemented("unknown method"))?;
        Ok((tonic::client::Grpc::new(channel.clone()), feed))
    }

    /// The call as the service receives it: built afresh (nothing the caller sent in
    /// metadata passes), with the principal the services bind every actor field to.
    fn outgoing(
        &self,
        admitted: &Admitted,
        message: Bytes,
        deadline: Option<Duration>,
    ) -> Result<Request<Bytes>, Status> {
        let mut request = Request::new(message);
        if let Some(deadline) = deadline {
            request.set_timeout(deadline);
        }
        samsyn_kit::telemetry::inject_current(request.metadata_mut());
        let principal = &admitted.principal;
        let caller = samsyn_kit::caller::Caller {
            id: principal.id.clone(),
            kind: match principal.kind {
                crate::auth::PrincipalKind::Staff => samsyn_kit::caller::CallerKind::Staff,
                crate::auth::PrincipalKind::System => samsyn_kit::caller::CallerKind::System,
                crate::auth::PrincipalKind::Participant => {
                    samsyn_kit::caller::CallerKind::Participant
                }
            },
            organisation: principal.organisation.clone(),
            unit: principal.unit.clone(),
        };
        // A principal that cannot travel is refused: a call without one would be taken for
        // one of Samsyn's own components.
        let cannot = || Status::unauthenticated("token claims cannot be forwarded");
        caller
            .write_to(request.metadata_mut())
            .map_err(|_| cannot())?;
        if !principal.roles.is_empty() {
            if principal.roles.iter().any(|r| r.contains(',')) {
                return Err(cannot());
            }
            let roles = principal.roles.join(",").parse().map_err(|_| cannot())?;
            request
                .metadata_mut()
                .insert(samsyn_kit::caller::PRINCIPAL_ROLES, roles);
        }
        Ok(request)
    }

    /// Sends an admitted call to its service, under a client span; the service's answer and
    /// the feed its writes land on. `Err` only when the call has nowhere to go.
    async fn forward<T, Fut>(
        &self,
        admitted: &Admitted,
        message: Bytes,
        deadline: Option<Duration>,
        call: impl FnOnce(tonic::client::Grpc<Channel>, Request<Bytes>, http::uri::PathAndQuery) -> Fut,
    ) -> Result<(Result<T, Status>, Option<FeedName>), Status>
    where
        Fut: Future<Output = Result<T, Status>>,
    {
        let span = forward_span(&self.path);
        let outgoing = span.in_scope(|| self.outgoing(admitted, message, deadline))?;
        let (mut grpc, feed) = self.upstream()?;
        let path = http::uri::PathAndQuery::from_str(&self.path)
            .map_err(|_| Status::unimplemented("unknown method"))?;
        let result = async {
            match grpc.ready().await {
                Ok(()) => call(grpc, outgoing, path).await,
                Err(_) => Err(Status::unavailable("service unavailable")),
            }
        }
        .instrument(span.clone())
        .await;
        record_status(&span, result.as_ref().err());
        Ok((result, feed))
    }

    /// Forwards one unary call that must end within `limit`. The deadline is the gateway's
    /// to keep: its own timer ends the call with DEADLINE_EXCEEDED, whatever the channel
    /// reports when it gives up.
    async fn forward_unary(
        &self,
        admitted: &Admitted,
        message: Bytes,
        limit: Duration,
    ) -> Result<(Result<Response<Bytes>, Status>, Option<FeedName>), Status> {
        self.forward(
            admitted,
            message,
            Some(limit),
            |mut grpc, outgoing, path| async move {
                match tokio::time::timeout(limit, grpc.unary(outgoing, path, RawCodec)).await {
                    // tonic's own client timer reports CANCELLED "Timeout expired".
                    Ok(Err(status))
                        if status.code() == Code::Cancelled
                            && status.message() == "Timeout expired" =>
                    {
                        Err(Status::deadline_exceeded("deadline exceeded"))
                    }
                    Ok(answer) => answer,
                    Err(_) => Err(Status::deadline_exceeded("deadline exceeded")),
                }
            },
        )
        .await
    }

    async fn unary(&self, request: Request<Bytes>) -> Result<Response<Bytes>, Status> {
        let admitted = self.admit(request).await?;
        let access = self.access()?.clone();
        if access.action() == samsyn_proto::common::v1::Action::Write {
            self.audit_intent(&admitted).await?;
        }
        let limit = admitted.timeout.map_or(self.gateway.default_deadline, |t| {
            t.min(self.gateway.default_deadline)
        });
        if filled(&self.gateway, &access, &self.path) {
            return self.unary_filled(admitted, &access, limit).await;
        }
        let (result, feed) = self
            .forward_unary(&admitted, admitted.message.clone(), limit)
            .await?;
        let response = match result {
            Ok(response) => response,
            Err(status) => {
                let status = scrub(&status);
                self.audit_forwarded(admitted, Vec::new(), status.code())
                    .await?;
                return Err(status);
            }
        };
        let written = feed.zip(written_sequence(response.metadata()));
        if let Some((feed, sequence)) = written {
            self.settle(feed, sequence).await;
        }
        let export = ExportAudit::of(response.metadata());
        let body = response.into_inner();
        if let Err(status) = self.check_answer(&admitted, &access, &body) {
            self.audit_forwarded(admitted, Vec::new(), status.code())
                .await?;
            return Err(status);
        }
        let (body, rows) = match self.narrow(&admitted.principal, &access, body) {
            Ok(narrowed) => narrowed,
            Err(status) => {
                self.audit_forwarded(admitted, Vec::new(), status.code())
                    .await?;
                return Err(status);
            }
        };
        let body = match self
            .gateway
            .pages
            .seal_response(&self.path, &admitted.principal.id, &body)
        {
            Ok(Some(sealed)) => Bytes::from(sealed),
            Ok(None) => body,
            Err(_) => {
                let status = Status::internal("internal error");
                self.audit_forwarded(admitted, rows, status.code()).await?;
                return Err(status);
            }
        };
        let mut event = self.admitted_event(&admitted, rows, Code::Ok, Outcome::Forwarded)?;
        event.export = export;
        self.record(event).await?;
        let mut response = Response::new(body);
        if let Some((feed, sequence)) = written
            && let Ok(token) = format!("{}:{sequence}", feed.as_str()).parse()
        {
            response.metadata_mut().insert(CONSISTENCY_HEADER, token);
        }
        Ok(response)
    }

    /// A narrowed, paged list, filled with visible rows only: every page is full unless it is
    /// the last visible one, and a next-page token exists only when a visible row follows,
    /// so neither a page's length nor its token tells how many rows were withheld. The token
    /// is the gateway's own cursor (a service page and the rows of it already gone through),
    /// sealed to the caller and the RPC.
    async fn unary_filled(
        &self,
        admitted: Admitted,
        access: &MethodAccess,
        limit: Duration,
    ) -> Result<Response<Bytes>, Status> {
        let gateway = &self.gateway;
        fn internal<E>(_: E) -> Status {
            Status::internal("internal error")
        }
        let principal = &admitted.principal;
        let (size, mut cursor) = gateway
            .pages
            .request_cursor(&self.path, &principal.id, &admitted.message)
            .map_err(internal)?
            .unwrap_or_default();
        let size = match usize::try_from(size) {
            Ok(0) | Err(_) => DEFAULT_FILL_PAGE,
            Ok(n) => n.min(MAX_FILL_PAGE),
        };
        let started = tokio::time::Instant::now();
        let mut shown = Vec::new();
        let mut shown_rows: BTreeMap<String, bool> = BTreeMap::new();
        let mut decided: HashMap<String, Option<bool>> = HashMap::new();
        let mut template = None;
        let mut next = None;
        let mut fetches = 0;
        loop {
            fetches += 1;
            let message = gateway
                .pages
                // The service's largest pages, always the same size: a cursor's `skip`
                // counts rows of such a page.
                .request_at(
                    &self.path,
                    &admitted.message,
                    &cursor.service_token,
                    SERVICE_PAGE,
                )
                .map_err(internal)?;
            let remaining = limit.saturating_sub(started.elapsed());
            let (result, _) = self
                .forward_unary(&admitted, Bytes::from(message), remaining)
                .await?;
            let body = match result {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    let status = scrub(&status);
                    self.audit_forwarded(admitted, Vec::new(), status.code())
                        .await?;
                    return Err(status);
                }
            };
            let service_next = gateway
                .pages
                .response_next(&self.path, &body)
                .map_err(internal)?;
            let rows = gateway
                .describer
                .rows_of(&self.path, &body)
                .map_err(internal)?;
            for (index, (row, participant)) in rows.into_iter().enumerate().skip(cursor.skip) {
                let Some(participant) = participant else {
                    continue;
                };
                let visible = match decided.get(&participant) {
                    Some(visible) => *visible,
                    None => {
                        let verdict = gateway
                            .gate
                            .decide_row(principal, access, &participant)
                            .map_err(|e| view_unavailable(&e))?;
                        let visible = verdict
                            .decision
                            .allowed
                            .then_some(verdict.decision.disclosure);
                        decided.insert(participant.clone(), visible);
                        visible
                    }
                };
                let Some(disclosure) = visible else { continue };
                if shown.len() == size {
                    // A visible row follows: the next page starts at it.
                    next = Some(Cursor {
                        service_token: cursor.service_token.clone(),
                        skip: index,
                    });
                    break;
                }
                shown.push(row);
                *shown_rows.entry(participant).or_default() |= disclosure;
            }
            template.get_or_insert(body);
            if next.is_some() || service_next.is_empty() {
                break;
            }
            cursor = Cursor {
                service_token: service_next,
                skip: 0,
            };
            if fetches >= MAX_FILL_FETCHES {
                // Bounded work per call: the caller goes on from here with the next page.
                next = Some(cursor);
                break;
            }
        }
        let body = template.unwrap_or_default();
        let body = gateway
            .describer
            .with_rows(&self.path, &body, shown)
            .and_then(|body| {
                gateway
                    .pages
                    .response_with(&self.path, &principal.id, &body, next.as_ref())
                    .map_err(|_| DescribeError::Malformed)
            })
            .map_err(|_| Status::internal("internal error"))?;
        let rows = shown_rows
            .into_iter()
            .map(|(participant_id, disclosure)| RowAccess {
                participant_id,
                disclosure,
            })
            .collect();
        self.audit_forwarded(admitted, rows, Code::Ok).await?;
        Ok(Response::new(Bytes::from(body)))
    }

    /// Waits (bounded) until this gateway's access view has applied the changes named by the
    /// caller's consistency token, which another replica handed out with a write: so "revoked,
    /// then the next call is refused" holds whichever replica the next call reaches.
    async fn catch_up(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let positions = consistency_token(metadata)?;
        let gate = &self.gateway.gate;
        for (feed, sequence) in positions {
            if let Err(error) = gate
                .view()
                .wait_for(feed, sequence, gate.settings().write_settle_timeout())
                .await
            {
                tracing::warn!(%error, feed = feed.as_str(), "consistency token not reached");
                return Err(Status::unavailable(
                    "access decisions not yet current with the consistency token; retry",
                ));
            }
        }
        Ok(())
    }

    /// Waits until the access view has applied a change this call wrote, so the caller's
    /// next call is decided with it (a revoked consent is in force at once).
    async fn settle(&self, feed: FeedName, sequence: u64) {
        let gate = &self.gateway.gate;
        if let Err(error) = gate
            .view()
            .wait_for(feed, sequence, gate.settings().write_settle_timeout())
            .await
        {
            tracing::warn!(%error, feed = feed.as_str(), sequence, "access view did not settle");
        }
    }

    /// Defence in depth: a single-record answer must be about the participant the call was
    /// decided for; a create's answer only about participants the caller may now read.
    /// Anything else is refused (`PERMISSION_DENIED`, audited), whatever the service said.
    fn check_answer(
        &self,
        admitted: &Admitted,
        access: &MethodAccess,
        body: &[u8],
    ) -> Result<(), Status> {
        if access.narrowed_list {
            return Ok(());
        }
        let named = self
            .gateway
            .describer
            .answer_participants(&self.path, body)
            .map_err(|_| Status::internal("internal error"))?;
        let read = MethodAccess {
            action: samsyn_proto::common::v1::Action::Read as i32,
            ..access.clone()
        };
        for participant in named {
            let fits = match &admitted.participant_id {
                Some(decided) => *decided == participant,
                None => {
                    self.gateway
                        .gate
                        .decide_row(&admitted.principal, &read, &participant)
                        .map_err(|e| view_unavailable(&e))?
                        .decision
                        .allowed
                }
            };
            if !fits {
                tracing::warn!(rpc = %self.path, "answer about another participant withheld");
                return Err(permission_denied());
            }
        }
        Ok(())
    }

    /// Withholds the rows of a list response that the caller may not see.
    fn narrow(
        &self,
        principal: &Principal,
        access: &MethodAccess,
        body: Bytes,
    ) -> Result<(Bytes, Vec<RowAccess>), Status> {
        if !access.narrowed_list {
            return Ok((body, Vec::new()));
        }
        let describer = &self.gateway.describer;
        let participants = describer
            .row_participants(&self.path, &body)
            .map_err(|_| Status::internal("internal error"))?;
        // Per participant: `Some(disclosure)` when shown, `None` when withheld.
        let mut decided: HashMap<String, Option<bool>> = HashMap::new();
        for participant in participants.into_iter().flatten() {
            if decided.contains_key(&participant) {
                continue;
            }
            let verdict = self
                .gateway
                .gate
                .decide_row(principal, access, &participant)
                .map_err(|e| view_unavailable(&e))?;
            let shown = verdict
                .decision
                .allowed
                .then_some(verdict.decision.disclosure);
            decided.insert(participant, shown);
        }
        let narrowed = describer
            .narrow(&self.path, &body, |participant| {
                decided.get(participant).is_some_and(Option::is_some)
            })
            .map_err(|_| Status::internal("internal error"))?;
        let mut rows: Vec<RowAccess> = decided
            .into_iter()
            .filter_map(|(participant_id, shown)| {
                shown.map(|disclosure| RowAccess {
                    participant_id,
                    disclosure,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
        Ok((Bytes::from(narrowed), rows))
    }

    async fn server_streaming(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<ReceiverStream<Result<Bytes, Status>>>, Status> {
        let admitted = self.admit(request).await?;
        let access = self.access()?.clone();
        let (result, _) = self
            .forward(
                &admitted,
                admitted.message.clone(),
                admitted.timeout,
                |mut grpc, outgoing, path| async move {
                    grpc.server_streaming(outgoing, path, RawCodec).await
                },
            )
            .await?;
        let upstream = match result {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let status = scrub(&status);
                self.audit_forwarded(admitted, Vec::new(), status.code())
                    .await?;
                return Err(status);
            }
        };
        let principal = admitted.principal.clone();
        let session = admitted.session.clone();
        let expires_at = admitted.expires_at.map(|exp| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            tokio::time::Instant::now() + Duration::from_secs(exp.saturating_sub(now))
        });
        // One event per call: the stream was opened. Rows it shows later are decided one by
        // one as they pass; the trail records the opening.
        self.audit_forwarded(admitted, Vec::new(), Code::Ok).await?;
        let (sender, receiver) = mpsc::channel(16);
        let stream = Stream {
            gateway: Arc::clone(&self.gateway),
            path: self.path.clone(),
            trace: self.trace.clone(),
            access,
            principal,
            sender,
            expires_at,
            session,
            shown: std::sync::Mutex::new(BTreeMap::new()),
        };
        tokio::spawn(stream.run(upstream));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// A live response stream, re-checked on every message (and, for the board, whenever access
/// may have changed).
struct Stream {
    gateway: Arc<Gateway>,
    path: String,
    trace: String,
    access: MethodAccess,
    principal: Principal,
    sender: mpsc::Sender<Result<Bytes, Status>>,
    /// When the caller's credentials expire: the stream ends then, UNAUTHENTICATED.
    expires_at: Option<tokio::time::Instant>,
    /// The caller's token session: the stream ends, UNAUTHENTICATED, when it is revoked.
    session: Option<crate::auth::Session>,
    /// Participants shown since the last audit event (and whether as a disclosure).
    shown: std::sync::Mutex<BTreeMap<String, bool>>,
}

impl Stream {
    /// Runs the stream until it ends, its caller leaves or its credentials expire; what it
    /// showed is audited every `STREAM_AUDIT_EVERY` and at the end, one event per batch.
    async fn run(self, upstream: Streaming<Bytes>) {
        let work = async {
            if self.path == WATCH_BOARD {
                self.run_board(upstream).await;
            } else {
                self.run_plain(upstream).await;
            }
        };
        tokio::pin!(work);
        let expiry = async {
            match self.expires_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expiry);
        let authenticator = &self.gateway.authenticator;
        let revoked = async {
            let Some(session) = &self.session else {
                return std::future::pending().await;
            };
            let mut changed = authenticator.tokens().revoked().changed();
            while !authenticator.is_revoked(session) {
                if changed.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        };
        tokio::pin!(revoked);
        let mut audit = tokio::time::interval(STREAM_AUDIT_EVERY);
        audit.tick().await;
        loop {
            tokio::select! {
                () = &mut work => break,
                () = &mut revoked => {
                    let _ = self
                        .sender
                        .send(Err(Status::unauthenticated("session revoked")))
                        .await;
                    break;
                }
                () = &mut expiry => {
                    let _ = self
                        .sender
                        .send(Err(Status::unauthenticated(
                            "credentials expired; reconnect with a fresh token and the cursor",
                        )))
                        .await;
                    break;
                }
                _ = audit.tick() => self.audit_shown().await,
            }
        }
        self.audit_shown().await;
    }

    /// Notes the participants a message showed, for the next batch's audit event.
    fn note_shown(&self, rows: impl IntoIterator<Item = (String, bool)>) {
        let mut shown = self
            .shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (participant, disclosure) in rows {
            *shown.entry(participant).or_default() |= disclosure;
        }
    }

    /// One audit event for what the stream showed since the last one, if anything.
    async fn audit_shown(&self) {
        let rows: Vec<RowAccess> = std::mem::take(
            &mut *self
                .shown
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_iter()
        .map(|(participant_id, disclosure)| RowAccess {
            participant_id,
            disclosure,
        })
        .collect();
        if rows.is_empty() {
            return;
        }
        let call = Call {
            gateway: Arc::clone(&self.gateway),
            path: self.path.clone(),
            trace: self.trace.clone(),
        };
        let event = AuditEvent {
            at: Utc::now(),
            principal: Some(self.principal.clone()),
            rpc: self.path.clone(),
            action: Some(action(&self.access)),
            category: self.access.category(),
            participant_id: None,
            owner_organisation: None,
            allowed: true,
            policies: vec!["stream-rows".to_owned()],
            disclosure: rows.iter().any(|r| r.disclosure),
            emergency: false,
            emergency_reason: None,
            rows,
            outcome: Outcome::Forwarded,
            status: Code::Ok,
            trace_id: Some(call.trace_id()),
            stakeholders: Vec::new(),
            call_id: None,
            export: None,
        };
        // A trail that cannot commit ends nothing here: the stream's opening is audited,
        // and the failure is logged and counted by `record`.
        let _ = call.record(event).await;
    }

    async fn send(&self, item: Result<Bytes, Status>) -> bool {
        self.sender.send(item).await.is_ok()
    }

    /// Any stream: each message is narrowed (a list) or the call re-decided (one named
    /// participant) before it passes.
    async fn run_plain(&self, mut upstream: Streaming<Bytes>) {
        loop {
            let message = tokio::select! {
                message = upstream.message() => message,
                () = self.sender.closed() => return,
            };
            match message {
                Ok(Some(bytes)) => {
                    let call = Call {
                        gateway: Arc::clone(&self.gateway),
                        path: self.path.clone(),
                        trace: self.trace.clone(),
                    };
                    let item =
                        call.narrow(&self.principal, &self.access, bytes)
                            .map(|(bytes, rows)| {
                                self.note_shown(
                                    rows.into_iter().map(|r| (r.participant_id, r.disclosure)),
                                );
                                bytes
                            });
                    let failed = item.is_err();
                    if !self.send(item).await || failed {
                        return;
                    }
                }
                Ok(None) => return,
                Err(status) => {
                    let _ = self.send(Err(scrub(&status))).await;
                    return;
                }
            }
        }
    }

    /// The board stream keeps the whole board as the service sent it, and shows the caller
    /// only the entries they may see now: when access changes (a consent revoked, a care
    /// team changed, a consent expired, a participant put on or taken off a FACT team's
    /// board), it sends a fresh snapshot without the withheld rows.
    async fn run_board(&self, mut upstream: Streaming<Bytes>) {
        let view = Arc::clone(self.gateway.gate.view());
        let mut participants_applied = view.applied(FeedName::Participants);
        let mut consent_applied = view.applied(FeedName::Consent);
        // The view may take up an entry after this stream has shown it; a FACT-team member
        // sees the row once the view knows the participant is on the team's board.
        let mut board_applied = view.applied(FeedName::Board);
        let mut recheck = tokio::time::interval(STREAM_RECHECK);
        recheck.tick().await;
        let mut board = Board::default();
        loop {
            let result = tokio::select! {
                message = upstream.message() => match message {
                    Ok(Some(bytes)) => self.board_message(&mut board, &bytes),
                    Ok(None) => return,
                    Err(status) => Err(scrub(&status)),
                },
                changed = participants_applied.changed() => match changed {
                    Ok(()) => self.board_recheck(&mut board),
                    Err(_) => return,
                },
                changed = consent_applied.changed() => match changed {
                    Ok(()) => self.board_recheck(&mut board),
                    Err(_) => return,
                },
                changed = board_applied.changed() => match changed {
                    Ok(()) => self.board_recheck(&mut board),
                    Err(_) => return,
                },
                _ = recheck.tick() => self.board_recheck(&mut board),
                () = self.sender.closed() => return,
            };
            match result {
                Ok(Some(update)) => {
                    self.note_shown(update.entries.iter().filter_map(|entry| {
                        let participant = entry.participant_id.as_ref()?.value.clone();
                        let disclosure = self
                            .gateway
                            .gate
                            .decide_row(&self.principal, &self.access, &participant)
                            .is_ok_and(|verdict| verdict.decision.disclosure);
                        Some((participant, disclosure))
                    }));
                    if !self.send(Ok(Bytes::from(update.encode_to_vec()))).await {
                        return;
                    }
                }
                Ok(None) => {}
                Err(status) => {
                    let _ = self.send(Err(status)).await;
                    return;
                }
            }
        }
    }

    fn visible(&self, entry: &BoardEntry) -> Result<bool, Status> {
        let Some(participant) = entry.participant_id.as_ref().map(|p| p.value.as_str()) else {
            return Ok(false);
        };
        if participant.is_empty() {
            return Ok(false);
        }
        self.gateway
            .gate
            .decide_row(&self.principal, &self.access, participant)
            .map(|verdict| verdict.decision.allowed)
            .map_err(|e| view_unavailable(&e))
    }

    fn board_message(
        &self,
        board: &mut Board,
        bytes: &[u8],
    ) -> Result<Option<BoardUpdate>, Status> {
        let update = BoardUpdate::decode(bytes).map_err(|_| Status::internal("internal error"))?;
        board.cursor = update.cursor;
        match update.kind() {
            BoardUpdateKind::Snapshot => {
                board.entries = update
                    .entries
                    .into_iter()
                    .filter(|e| e.taken_off_at.is_none())
                    .map(|e| (e.entry_id.clone(), e))
                    .collect();
                self.board_snapshot(board).map(Some)
            }
            BoardUpdateKind::EntryChanged | BoardUpdateKind::Unspecified => {
                let mut shown = Vec::new();
                for entry in update.entries {
                    let id = entry.entry_id.clone();
                    let visible = self.visible(&entry)?;
                    if entry.taken_off_at.is_some() {
                        board.entries.remove(&id);
                        if board.shown.remove(&id) {
                            if !visible {
                                // Taking off ended the caller's access (a FACT-team member
                                // off the care team): the row leaves without its last state.
                                return self.board_snapshot(board).map(Some);
                            }
                            shown.push(entry);
                        }
                    } else {
                        board.entries.insert(id.clone(), entry.clone());
                        if visible {
                            board.shown.insert(id);
                            shown.push(entry);
                        } else if board.shown.remove(&id) {
                            // It was shown and may no longer be: a snapshot replaces the view.
                            return self.board_snapshot(board).map(Some);
                        }
                    }
                }
                if shown.is_empty() {
                    return Ok(None);
                }
                Ok(Some(BoardUpdate {
                    cursor: board.cursor,
                    kind: BoardUpdateKind::EntryChanged as i32,
                    entries: shown,
                }))
            }
        }
    }

    fn board_snapshot(&self, board: &mut Board) -> Result<BoardUpdate, Status> {
        let mut entries = Vec::new();
        let mut shown = BTreeSet::new();
        for entry in board.entries.values() {
            if self.visible(entry)? {
                shown.insert(entry.entry_id.clone());
                entries.push(entry.clone());
            }
        }
        board.shown = shown;
        board.snapshot_sent = true;
        Ok(BoardUpdate {
            cursor: board.cursor,
            kind: BoardUpdateKind::Snapshot as i32,
            entries,
        })
    }

    fn board_recheck(&self, board: &mut Board) -> Result<Option<BoardUpdate>, Status> {
        if !board.snapshot_sent {
            return Ok(None);
        }
        let mut visible = BTreeSet::new();
        for entry in board.entries.values() {
            if self.visible(entry)? {
                visible.insert(entry.entry_id.clone());
            }
        }
        if visible == board.shown {
            return Ok(None);
        }
        self.board_snapshot(board).map(Some)
    }
}

/// A board as the service sent it, and which entries the caller has been shown.
#[derive(Default)]
struct Board {
    cursor: u64,
    entries: BTreeMap<String, BoardEntry>,
    shown: BTreeSet<String>,
    snapshot_sent: bool,
}

impl tonic::server::UnaryService<Bytes> for Call {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let call = Call {
            gateway: Arc::clone(&self.gateway),
            path: self.path.clone(),
            trace: self.trace.clone(),
        };
        Box::pin(async move { call.unary(request).await })
    }
}

impl tonic::server::ServerStreamingService<Bytes> for Call {
    type Response = Bytes;
    type ResponseStream = ReceiverStream<Result<Bytes, Status>>;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let call = Call {
            gateway: Arc::clone(&self.gateway),
            path: self.path.clone(),
            trace: self.trace.clone(),
        };
        Box::pin(async move { call.server_streaming(request).await })
    }
}

/// The client span of forwarding one call to its service; the service's server span is its
/// child (the trace context goes along in the call's metadata).
fn forward_span(path: &str) -> tracing::Span {
    tracing::info_span!(
        "gateway.forward",
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.method = %path,
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Records how a forwarded call ended on its span.
fn record_status(span: &tracing::Span, error: Option<&Status>) {
    let code = error.map_or(Code::Ok, Status::code);
    span.record("rpc.grpc.status_code", code as i32);
    if error.is_some() {
        span.record("otel.status_code", "ERROR");
    }
}

fn action(access: &MethodAccess) -> crate::policy::Action {
    match access.action() {
        samsyn_proto::common::v1::Action::Write => crate::policy::Action::Write,
        _ => crate::policy::Action::Read,
    }
}

/// The one refusal message: it never says whether the record exists.
fn permission_denied() -> Status {
    Status::permission_denied("not permitted")
}

fn unauthenticated(error: &AuthError) -> Status {
    tracing::debug!(%error, "unauthenticated call");
    Status::unauthenticated("valid credentials required")
}

fn view_unavailable(error: &GateError) -> Status {
    tracing::warn!(%error, "decision refused: access view cannot vouch for its facts");
    Status::unavailable("access decisions temporarily unavailable")
}

/// A service's status as the caller may see it: code, message and details, without the
/// service's metadata.
fn scrub(status: &Status) -> Status {
    if status.code() == Code::Unavailable || status.code() == Code::Unknown {
        // Transport errors name internal addresses.
        return Status::unavailable("service unavailable");
    }
    Status::with_details(
        status.code(),
        status.message(),
        status.details().to_vec().into(),
    )
}

/// Whether a call's list is filled with visible rows at the gateway: narrowed and paged.
fn filled(gateway: &Gateway, access: &MethodAccess, path: &str) -> bool {
    access.narrowed_list && gateway.pages.methods().is_paged(path)
}

/// The trace id of a `traceparent` (W3C: version-traceid-parentid-flags), when well formed.
fn trace_id_of(traceparent: &str) -> Option<String> {
    let id = traceparent.split('-').nth(1)?;
    let valid = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && id.bytes().any(|b| b != b'0');
    valid.then(|| id.to_owned())
}

/// The trace id a caller sent, if any.
fn caller_trace_id(headers: &http::HeaderMap) -> Option<String> {
    trace_id_of(headers.get("traceparent")?.to_str().ok()?)
}

/// A fresh random trace id for a call that came without one.
fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The consistency token: a write's answer names the feed position it produced
/// (`consent:42`); a later call may send it back, to any replica, to be decided with it.
pub const CONSISTENCY_HEADER: &str = "samsyn-consistency";

/// The feed positions of a caller's consistency token (`consent:42,participants:7`).
fn consistency_token(metadata: &MetadataMap) -> Result<Vec<(FeedName, u64)>, Status> {
    let Some(value) = metadata.get(CONSISTENCY_HEADER) else {
        return Ok(Vec::new());
    };
    let invalid = || -> Status {
        samsyn_kit::error::ApiError::invalid(
            CONSISTENCY_HEADER,
            "must be feed:position pairs as a write's answer gave them",
        )
        .into()
    };
    let text = value.to_str().map_err(|_| invalid())?;
    if text.len() > 256 {
        return Err(invalid());
    }
    text.split(',')
        .map(|pair| {
            let (feed, sequence) = pair.trim().split_once(':').ok_or_else(invalid)?;
            let feed = FeedName::ALL
                .into_iter()
                .find(|f| f.as_str() == feed)
                .ok_or_else(invalid)?;
            Ok((feed, sequence.parse().map_err(|_| invalid())?))
        })
        .collect()
}

fn written_sequence(metadata: &MetadataMap) -> Option<u64> {
    metadata
        .get(samsyn_kit::feed::WRITTEN_SEQUENCE_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The caller's `grpc-timeout`, if it sent a valid one.
fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    samsyn_kit::serve::grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)
}

/// The emergency reason of a call, if one was given; too long, not UTF-8 or blank is
/// refused rather than ignored, so a caller never believes an emergency was declared.
fn emergency_reason(metadata: &MetadataMap) -> Result<Option<String>, Status> {
    let invalid = |description: &str| -> Status {
        samsyn_kit::error::ApiError::invalid(EMERGENCY_REASON_BIN, description).into()
    };
    let bytes = if let Some(value) = metadata.get_bin(EMERGENCY_REASON_BIN) {
        value
            .to_bytes()
            .map_err(|_| invalid("not valid base64"))?
            .to_vec()
    } else if let Some(value) = metadata.get(EMERGENCY_REASON) {
        value.as_encoded_bytes().to_vec()
    } else {
        return Ok(None);
    };
    if bytes.len() > MAX_EMERGENCY_REASON_BYTES {
        return Err(invalid("at most 500 bytes"));
    }
    let reason = String::from_utf8(bytes).map_err(|_| invalid("must be UTF-8 text"))?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(invalid("must not be blank"));
    }
    Ok(Some(reason.to_owned()))
}

/// Passes messages through as the bytes they are (also for clients that call any RPC).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_settle_on_the_feed_of_the_service_they_went_to() {
        let lazy = || Channel::from_static("http://127.0.0.1:9").connect_lazy();
        let upstreams = Upstreams {
            participants: lazy(),
            consent: lazy(),
            plans: lazy(),
            board: lazy(),
            audit: None,
            reports: None,
        };
        for (path, feed) in [
            (
                "/samsyn.participants.v1.ParticipantsService/Enrol",
                Some(FeedName::Participants),
            ),
            (
                "/samsyn.consent.v1.ConsentService/RevokeConsent",
                Some(FeedName::Consent),
            ),
            (
                "/samsyn.board.v1.BoardService/TakeOffBoard",
                Some(FeedName::Board),
            ),
            ("/samsyn.plans.v1.PlansService/UpdatePlan", None),
        ] {
            assert_eq!(upstreams.route(path).map(|(_, f)| f), Some(feed), "{path}");
        }
        assert!(
            upstreams
                .route("/samsyn.audit.v1.AuditService/ListEvents")
                .is_none()
        );
    }

    #[test]
    fn grpc_timeouts_parse_as_the_protocol_says() {
        let mut metadata = MetadataMap::new();
        for (value, expected) in [
            ("250m", Some(Duration::from_millis(250))),
            ("3S", Some(Duration::from_secs(3))),
            ("1H", Some(Duration::from_secs(3600))),
            ("m", None),
            ("12x", None),
            ("1234567890S", None),
        ] {
            metadata.insert("grpc-timeout", value.parse().unwrap());
            assert_eq!(grpc_timeout(&metadata), expected, "{value}");
        }
    }

    #[test]
    fn emergency_reasons_are_checked() {
        let mut metadata = MetadataMap::new();
        assert_eq!(emergency_reason(&metadata).unwrap(), None);
        metadata.insert_bin(
            EMERGENCY_REASON_BIN,
            tonic::metadata::MetadataValue::from_bytes(
                "Akut suicidrisk, jourläkare på väg".as_bytes(),
            ),
        );
        assert_eq!(
            emergency_reason(&metadata).unwrap().as_deref(),
            Some("Akut suicidrisk, jourläkare på väg")
        );
        metadata.insert_bin(
            EMERGENCY_REASON_BIN,
            tonic::metadata::MetadataValue::from_bytes(&[b'x'; 501]),
        );
        assert_eq!(
            emergency_reason(&metadata).unwrap_err().code(),
            Code::InvalidArgument
        );
        metadata.insert_bin(
            EMERGENCY_REASON_BIN,
            tonic::metadata::MetadataValue::from_bytes(b"   "),
        );
        assert_eq!(
            emergency_reason(&metadata).unwrap_err().code(),
            Code::InvalidArgument
        );
    }
}
