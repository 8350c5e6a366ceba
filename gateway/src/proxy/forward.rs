//! Forwarding an admitted call to its owning service.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tracing::Instrument;

use super::codec::RawCodec;
use super::error::GatewayError;
use super::{Admitted, Call};
use crate::access_view::FeedName;

impl Call {
    pub(super) fn upstream(
        &self,
    ) -> Result<(tonic::client::Grpc<Channel>, Option<FeedName>), Status> {
        let (channel, feed) = self
            .gateway
            .upstreams
            .route(&self.path)
            .ok_or(GatewayError::UnknownMethod)?;
        Ok((tonic::client::Grpc::new(channel.clone()), feed))
    }

    /// The call as the service receives it: built afresh (nothing the caller sent in
    /// metadata passes), with the principal the services bind every actor field to.
    pub(super) fn outgoing(
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
        let principal = &admitted.admission.principal;
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
        let cannot = || Status::from(GatewayError::ClaimsCannotTravel);
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
    pub(super) async fn forward<T, Fut>(
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
            .map_err(|_| GatewayError::UnknownMethod)?;
        let result = async {
            match grpc.ready().await {
                Ok(()) => call(grpc, outgoing, path).await,
                Err(error) => Err(GatewayError::ServiceUnavailable(error.to_string()).into()),
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
    pub(super) async fn forward_unary(
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
                        Err(GatewayError::DeadlineExceeded.into())
                    }
                    Ok(answer) => answer,
                    Err(_) => Err(GatewayError::DeadlineExceeded.into()),
                }
            },
        )
        .await
    }

    /// Waits until the access view has applied a change this call wrote, so the caller's
    /// next call is decided with it (a revoked consent is in force at once).
    pub(super) async fn settle(&self, feed: FeedName, sequence: u64) {
        let gate = &self.gateway.gate;
        if let Err(error) = gate
            .view()
            .wait_for(feed, sequence, gate.settings().write_settle_timeout())
            .await
        {
            tracing::warn!(%error, feed = feed.as_str(), sequence, "access view did not settle");
        }
    }
}

/// The client span of forwarding one call to its service; the service's server span is its
/// child (the trace context goes along in the call's metadata).
pub(super) fn forward_span(path: &str) -> tracing::Span {
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
pub(super) fn record_status(span: &tracing::Span, error: Option<&Status>) {
    let code = error.map_or(Code::Ok, Status::code);
    span.record("rpc.grpc.status_code", code as i32);
    if error.is_some() {
        span.record("otel.status_code", "ERROR");
    }
}

/// A service's status as the caller may see it: code, message and details, without the
/// service's metadata.
pub(super) fn scrub(status: &Status) -> Status {
    if status.code() == Code::Unavailable || status.code() == Code::Unknown {
        // Transport errors name internal addresses: logged, not shown.
        let cause = format!("{:?}: {}", status.code(), status.message());
        return GatewayError::ServiceUnavailable(cause).into();
    }
    Status::with_details(
        status.code(),
        status.message(),
        status.details().to_vec().into(),
    )
}
