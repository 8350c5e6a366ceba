//! The server-streaming call path as tower layers, assembled in one place ([`stream_path`]).
//!
//! A stream is admitted like a unary call and forwarded once; then each stage between the
//! service and the caller works on the live stream of messages: it runs as its own task,
//! reading the stage inside it and handing on to the one outside, and stops when that one
//! stops listening (so a caller who leaves stops the whole chain, down to the service).

mod board;
mod lifetime;
mod redecide;
mod shown;

use std::future::Future;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Response, Status};
use tower::{Service, ServiceBuilder, ServiceExt};

use super::BoxFuture;
use super::codec::RawCodec;
use super::forward::scrub;
use super::layers::{AdmitLayer, Arrived, Passing, layer_pair};
use lifetime::LifetimeLayer;
use redecide::RedecideLayer;
use shown::ShownLayer;

/// A live stream's messages on their way out; an `Err` is the last.
pub(super) type Messages<T = Bytes> =
    std::pin::Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A stream the service opened, or its refusal, as one layer hands it to the next.
pub(super) struct Opened<T> {
    pub(super) passing: Passing,
    /// The messages as this layer passes them on; or the service's refusal, scrubbed.
    pub(super) answer: Result<Messages<T>, Status>,
}

/// A decided message, and the participants it shows to the caller (with whether each is shown
/// as a disclosure), for the trail.
pub(super) struct Shown {
    pub(super) message: Bytes,
    pub(super) rows: Vec<(String, bool)>,
}

/// The stream path, outermost first. Why each layer sits where it does:
pub(super) fn stream_path()
-> impl Service<Arrived, Response = Response<Messages>, Error = Status, Future: Send> + Clone {
    ServiceBuilder::new()
        // First, as for a unary call: nothing reaches a service, or the trail as an admitted
        // call, before the caller is known and the call decided.
        .layer(AdmitLayer)
        // Around everything the open stream does: the opening (or the service's refusal) is
        // in the trail before the answer, and so any message, can leave.
        .layer(OpenLayer)
        // Outside the lifetime: a stream that the caller's credentials ended still has what
        // it showed audited, after the status that ended it.
        .layer(ShownLayer)
        // Outside the re-decision: the stream ends when the session is revoked or the
        // credentials expire, whatever the re-decision is waiting for (a quiet feed, a board
        // that does not change).
        .layer(LifetimeLayer)
        // Innermost, on the service's own messages: nothing undecided reaches the trail or
        // the caller.
        .layer(RedecideLayer)
        .service(ForwardStream)
}

/// Runs one stage of a live stream as its own task, handing what it sends to the returned
/// stream; the stage learns that the caller left from its sender (`closed`, or a failed send).
pub(super) fn spawn_stage<T, Fut>(
    stage: impl FnOnce(mpsc::Sender<Result<T, Status>>) -> Fut,
) -> Messages<T>
where
    T: Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // A few messages ahead: a slow caller holds the stream back rather than the gateway
    // holding the stream for it.
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(stage(sender));
    Box::pin(ReceiverStream::new(receiver))
}

layer_pair! {
    /// Records the stream's opening, or the service's refusal with its code, before it
    /// answers.
    OpenLayer, Open, Passing => Response<Messages>, over Opened<Bytes>
}

impl<S: Service<Passing, Response = Opened<Bytes>, Error = Status>> Open<S> {
    async fn run(inner: S, passing: Passing) -> Result<Response<Messages>, Status> {
        let Opened {
            passing: Passing { call, admitted },
            answer,
        } = inner.oneshot(passing).await?;
        match answer {
            Ok(messages) => {
                // One event for the opening; the rows shown later are audited in batches.
                call.audit_forwarded(admitted, Vec::new(), Code::Ok).await?;
                Ok(Response::new(messages))
            }
            Err(status) => {
                call.audit_forwarded(admitted, Vec::new(), status.code())
                    .await?;
                Err(status)
            }
        }
    }
}

/// Opens the stream at its owning service (see `forward.rs`), under the caller's deadline
/// only: a live stream has no deadline of the gateway's. Its errors are scrubbed as they come.
/// `Err` only when the call has nowhere to go.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ForwardStream;

impl Service<Passing> for ForwardStream {
    type Response = Opened<Bytes>;
    type Error = Status;
    type Future = BoxFuture<Result<Opened<Bytes>, Status>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Status>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, passing: Passing) -> Self::Future {
        Box::pin(async move {
            let Passing { call, admitted } = &passing;
            let (result, _) = call
                .forward(
                    admitted,
                    admitted.message.clone(),
                    admitted.timeout,
                    |mut grpc, outgoing, path| async move {
                        grpc.server_streaming(outgoing, path, RawCodec).await
                    },
                )
                .await?;
            let answer = match result {
                Ok(response) => {
                    let messages = response
                        .into_inner()
                        .map(|message| message.map_err(|status| scrub(&status)));
                    Ok(Box::pin(messages) as Messages)
                }
                Err(status) => Err(scrub(&status)),
            };
            Ok(Opened { passing, answer })
        })
    }
}

#[cfg(test)]
mod tests;
