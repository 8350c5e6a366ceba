//! Forwarding: every Samsyn RPC arrives here. A unary call goes through the layers
//! [`layers`] assembles, a server stream through those [`stream`] assembles; both begin
//! with the same admission:
//!
//! 1. [`admit`]: the method is known, the caller authenticated, a case system's push put in
//!    Samsyn's terms, the caller's consistency token caught up with, the call described and
//!    decided; a refusal is audited there and ends the call;
//! 2. [`trail`]: a write's intent is in the audit trail before it happens;
//! 3. [`forward`]: the call goes to its owning service over internal mutual TLS, built afresh
//!    with the principal, under the gateway's own deadline;
//! 4. [`narrow`]: the answer is checked against the decision and a list narrowed to what the
//!    caller may see, or [`fill`]ed with visible rows page by page; page tokens are sealed;
//! 5. [`trail`]: how the call ended, with the rows shown, and only then the answer leaves;
//! 6. [`stream`]: a stream's opening is audited, then each message re-decided (the board
//!    whenever access may have changed), the rows shown audited in batches, and the stream
//!    ended when the caller's session or credentials end.
//!
//! Messages pass through as bytes ([`RawCodec`]); only what a decision needs is decoded
//! (the participant id of the request, the rows of a list), by the access annotations in
//! the descriptor set.

mod admit;
mod codec;
mod error;
mod fill;
mod forward;
mod layers;
mod metadata;
mod narrow;
mod stream;
mod trail;
mod withhold;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use samsyn_proto::MethodAccess;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::access_view::{FeedName, Follower};
use crate::audit::AuditTrail;
use crate::auth::Principal;
use crate::authenticate::Authenticator;
use crate::describe::CallDescriber;
use crate::gate::{Gate, Verdict};
use crate::page_token::PageTokens;

pub use admit::Admission;
pub(crate) use error::GatewayError;
pub(crate) use metadata::current_trace_id;
use metadata::{caller_trace_id, new_trace_id};

pub use codec::RawCodec;
pub use metadata::{CONSISTENCY_HEADER, EMERGENCY_REASON, EMERGENCY_REASON_BIN};
/// Metadata the gateway adds to a forwarded call: who the caller is (services behind the
/// gateway trust it, since only Samsyn's own components reach them).
pub use samsyn_kit::caller::{
    PRINCIPAL_ID, PRINCIPAL_KIND, PRINCIPAL_ORGANISATION, PRINCIPAL_UNIT,
};

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
                return Ok(Status::from(GatewayError::UnknownMethod).into_http());
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
#[derive(Clone)]
struct Call {
    gateway: Arc<Gateway>,
    path: String,
    /// The trace id the audit trail records when no trace is being exported: the caller's
    /// `traceparent`, or one made up for this call.
    trace: String,
}

/// A call that may be forwarded: its admission, and what forwarding it needs.
struct Admitted {
    admission: Admission,
    /// When the caller's token or link certificate expires (seconds since the epoch); a
    /// stream ends then.
    expires_at: Option<u64>,
    /// The caller's token session: a stream ends when it is revoked.
    session: Option<crate::auth::Session>,
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
        current_trace_id().unwrap_or_else(|| self.trace.clone())
    }

    fn access(&self) -> Result<&MethodAccess, Status> {
        self.gateway
            .describer
            .method_access(&self.path)
            .map(|(access, _)| access)
            .ok_or_else(|| GatewayError::UnknownMethod.into())
    }
}

impl tonic::server::UnaryService<Bytes> for Call {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        Box::pin(tower::ServiceExt::oneshot(
            layers::unary_path(),
            (self.clone(), request),
        ))
    }
}

impl tonic::server::ServerStreamingService<Bytes> for Call {
    type Response = Bytes;
    type ResponseStream = stream::Messages;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        Box::pin(tower::ServiceExt::oneshot(
            stream::stream_path(),
            (self.clone(), request),
        ))
    }
}

/// Whether a call's list is filled with visible rows at the gateway: narrowed and paged.
fn filled(gateway: &Gateway, access: &MethodAccess, path: &str) -> bool {
    access.narrowed_list && gateway.pages.methods().is_paged(path)
}

#[cfg(test)]
pub(crate) mod tests;
