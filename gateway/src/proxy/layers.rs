//! The unary call path as tower layers, assembled in one place ([`unary_path`]).
//!
//! Each layer is a `FooLayer` + `Foo<S>` pair over one call type: an [`Arrived`] call before
//! admission, a [`Passing`] call after it. The layers hold no state of their own (what they
//! need travels with the call), so the stack costs nothing to build per call.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use samsyn_proto::MethodAccess;
use tonic::{Code, Request, Response, Status};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use super::error::GatewayError;
use super::forward::scrub;
use super::metadata::written_sequence;
use super::{Admitted, BoxFuture, CONSISTENCY_HEADER, Call, filled};
use crate::access_view::FeedName;
use crate::audit::{ExportAudit, Outcome};

/// A call as it arrives: where it goes and the caller's request.
pub(super) type Arrived = (Call, Request<Bytes>);

/// An admitted call on its way through the layers.
pub(super) struct Passing {
    pub(super) call: Call,
    pub(super) admitted: Admitted,
}

impl Passing {
    /// The method's access annotation, to keep while the call moves on.
    fn access(&self) -> Result<MethodAccess, Status> {
        self.call.access().cloned()
    }

    /// How long the service may take: the caller's deadline, never more than the gateway's.
    fn limit(&self) -> Duration {
        let default = self.call.gateway.default_deadline;
        self.admitted.timeout.map_or(default, |t| t.min(default))
    }
}

/// What the owning service answered to a forwarded call.
pub(super) struct Forwarded {
    pub(super) passing: Passing,
    /// The service's answer; an error is already scrubbed for the caller.
    pub(super) answer: Result<Response<Bytes>, Status>,
    /// The feed and sequence a write landed at, once the access view has applied it.
    pub(super) written: Option<(FeedName, u64)>,
}

/// Declares a layer that holds nothing of its own: `$layer` wraps an inner service `S` (which
/// takes a [`Passing`] call and answers `$inner`) in `$service<S>`, which takes a `$request`
/// and answers `$response`, whatever its own `run` makes of it. The stream path's layers are
/// declared with it too.
macro_rules! layer_pair {
    ($(#[$doc:meta])* $layer:ident, $service:ident, $request:ty => $response:ty, over $inner:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub(super) struct $layer;

        impl<S> tower::Layer<S> for $layer {
            type Service = $service<S>;
            fn layer(&self, inner: S) -> $service<S> {
                $service { inner }
            }
        }

        #[doc = concat!("See [`", stringify!($layer), "`].")]
        #[derive(Debug, Clone)]
        pub(super) struct $service<S> {
            inner: S,
        }

        impl<S> tower::Service<$request> for $service<S>
        where
            S: tower::Service<crate::proxy::layers::Passing, Response = $inner, Error = tonic::Status>
                + Clone
                + Send
                + 'static,
            S::Future: Send,
        {
            type Response = $response;
            type Error = tonic::Status;
            type Future = crate::proxy::BoxFuture<Result<$response, tonic::Status>>;

            fn poll_ready(
                &mut self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), tonic::Status>> {
                // Nothing of its own to wait for; the inner service is awaited in `run`.
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: $request) -> Self::Future {
                Box::pin(Self::run(self.inner.clone(), request))
            }
        }
    };
}
pub(super) use layer_pair;

/// The unary call path, outermost first. Why each layer sits where it does:
pub(super) fn unary_path()
-> impl Service<Arrived, Response = Response<Bytes>, Error = Status, Future: Send> + Clone {
    ServiceBuilder::new()
        // First: nothing reaches a service, or the trail as an admitted call, before the
        // caller is known and the call decided; a refusal is audited here and ends the call.
        .layer(AdmitLayer)
        // Before anything is sent: a write's intent is in the trail even if the gateway stops
        // mid-call or the outcome cannot be recorded.
        .layer(IntentLayer)
        // A narrowed, paged list leaves the path here: it is forwarded page by page and
        // narrowed as it fills, so the single-answer layers below never see it.
        .layer(FillLayer)
        // Around forwarding, not inside it: the answer is checked, narrowed and sealed, and
        // how the call ended recorded, only once the service has answered, and before the
        // answer leaves.
        .layer(NarrowLayer)
        .service(Forward)
}

/// Admits an arrived call (see `admit.rs`); only an admitted call goes on. The first layer of
/// the unary path and of the stream path alike.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct AdmitLayer;

impl<S> Layer<S> for AdmitLayer {
    type Service = Admit<S>;
    fn layer(&self, inner: S) -> Admit<S> {
        Admit { inner }
    }
}

/// See [`AdmitLayer`].
#[derive(Debug, Clone)]
pub(super) struct Admit<S> {
    inner: S,
}

impl<S> Service<Arrived> for Admit<S>
where
    S: Service<Passing, Error = Status> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = Status;
    type Future = BoxFuture<Result<S::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        // Nothing of its own to wait for; the inner service is awaited once admitted.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (call, request): Arrived) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let admitted = call.admit(request).await?;
            inner.oneshot(Passing { call, admitted }).await
        })
    }
}

layer_pair! {
    /// Records a write's intent before the write is forwarded; reads pass untouched.
    IntentLayer, Intent, Passing => Response<Bytes>, over Response<Bytes>
}

impl<S: Service<Passing, Response = Response<Bytes>, Error = Status>> Intent<S> {
    async fn run(inner: S, passing: Passing) -> Result<Response<Bytes>, Status> {
        if passing.call.access()?.action() == samsyn_proto::common::v1::Action::Write {
            passing.call.audit_intent(&passing.admitted).await?;
        }
        inner.oneshot(passing).await
    }
}

layer_pair! {
    /// Answers a narrowed, paged list by filling it with visible rows (see `fill.rs`); any other
    /// call goes on.
    FillLayer, Fill, Passing => Response<Bytes>, over Response<Bytes>
}

impl<S: Service<Passing, Response = Response<Bytes>, Error = Status>> Fill<S> {
    async fn run(inner: S, passing: Passing) -> Result<Response<Bytes>, Status> {
        let Passing { call, .. } = &passing;
        if !filled(&call.gateway, call.access()?, &call.path) {
            return inner.oneshot(passing).await;
        }
        let access = passing.access()?;
        let limit = passing.limit();
        let Passing { call, admitted } = passing;
        call.unary_filled(admitted, &access, limit).await
    }
}

layer_pair! {
    /// Checks the service's answer against the decision, narrows a list to the rows the caller
    /// may see and seals its page token, then records how the call ended before it answers.
    NarrowLayer, Narrow, Passing => Response<Bytes>, over Forwarded
}

impl<S: Service<Passing, Response = Forwarded, Error = Status>> Narrow<S> {
    async fn run(inner: S, passing: Passing) -> Result<Response<Bytes>, Status> {
        let access = passing.access()?;
        let Forwarded {
            passing: Passing { call, admitted },
            answer,
            written,
        } = inner.oneshot(passing).await?;
        let response = match answer {
            Ok(response) => response,
            Err(status) => {
                call.audit_forwarded(admitted, Vec::new(), status.code())
                    .await?;
                return Err(status);
            }
        };
        let export = ExportAudit::of(response.metadata());
        let body = response.into_inner();
        if let Err(status) = call.check_answer(&admitted, &access, &body) {
            call.audit_forwarded(admitted, Vec::new(), status.code())
                .await?;
            return Err(status);
        }
        let (body, rows) = match call.narrow(&admitted.admission.principal, &access, body) {
            Ok(narrowed) => narrowed,
            Err(status) => {
                call.audit_forwarded(admitted, Vec::new(), status.code())
                    .await?;
                return Err(status);
            }
        };
        let body = match call.gateway.pages.seal_response(
            &call.path,
            &admitted.admission.principal.id,
            &body,
        ) {
            Ok(Some(sealed)) => Bytes::from(sealed),
            Ok(None) => body,
            Err(error) => {
                let status = Status::from(GatewayError::internal("sealing a page token")(error));
                call.audit_forwarded(admitted, rows, status.code()).await?;
                return Err(status);
            }
        };
        let mut event = call.admitted_event(&admitted, rows, Code::Ok, Outcome::Forwarded);
        event.export = export;
        call.record(event).await?;
        let mut response = Response::new(body);
        if let Some((feed, sequence)) = written
            && let Ok(token) = format!("{}:{sequence}", feed.as_str()).parse()
        {
            response.metadata_mut().insert(CONSISTENCY_HEADER, token);
        }
        Ok(response)
    }
}

/// Sends the call to its owning service (see `forward.rs`) and, for a write, waits until the
/// access view has applied it. `Err` only when the call has nowhere to go.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Forward;

impl Service<Passing> for Forward {
    type Response = Forwarded;
    type Error = Status;
    type Future = BoxFuture<Result<Forwarded, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, passing: Passing) -> Self::Future {
        Box::pin(async move {
            let limit = passing.limit();
            let (result, feed) = passing
                .call
                .forward_unary(&passing.admitted, passing.admitted.message.clone(), limit)
                .await?;
            let (answer, written) = match result {
                Ok(response) => {
                    let written = feed.zip(written_sequence(response.metadata()));
                    if let Some((feed, sequence)) = written {
                        passing.call.settle(feed, sequence).await;
                    }
                    (Ok(response), written)
                }
                Err(status) => (Err(scrub(&status)), None),
            };
            Ok(Forwarded {
                passing,
                answer,
                written,
            })
        })
    }
}

#[cfg(test)]
mod tests;
