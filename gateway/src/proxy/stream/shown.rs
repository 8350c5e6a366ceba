//! What a live stream shows is in the trail: the participants its messages showed become one
//! audit event every [`STREAM_AUDIT_EVERY`] and one at its end, not one commit per message.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::Status;
use tower::{Service, ServiceExt};

use super::super::layers::layer_pair;
use super::super::{Admission, Call};
use super::{Messages, Opened, Passing, Shown, spawn_stage};
use crate::audit::RowAccess;

/// How often a live stream's shown rows become one audit event.
pub(super) const STREAM_AUDIT_EVERY: Duration = Duration::from_secs(10);

layer_pair! {
    /// Audits the rows an opened stream's messages show, in batches, and passes the messages
    /// on.
    ShownLayer, ShownAudit, Passing => Opened<Bytes>, over Opened<Shown>
}

impl<S: Service<Passing, Response = Opened<Shown>, Error = Status>> ShownAudit<S> {
    async fn run(inner: S, passing: Passing) -> Result<Opened<Bytes>, Status> {
        let Opened { passing, answer } = inner.oneshot(passing).await?;
        let call = passing.call.clone();
        let admission = passing.admitted.admission.clone();
        let answer = answer.map(|messages| {
            spawn_stage(move |sender| audit_shown(call, admission, messages, sender))
        });
        Ok(Opened { passing, answer })
    }
}

/// Hands `messages` on, noting whom they show; the batch goes to the trail on every tick and
/// when the stream ends, whoever ends it (the service, the caller's credentials, or the
/// caller leaving).
async fn audit_shown(
    call: Call,
    admission: Admission,
    mut messages: Messages<Shown>,
    sender: mpsc::Sender<Result<Bytes, Status>>,
) {
    let mut batch = BTreeMap::new();
    let mut every = tokio::time::interval(STREAM_AUDIT_EVERY);
    every.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(Shown { message, rows })) => {
                    for (participant, disclosure) in rows {
                        *batch.entry(participant).or_default() |= disclosure;
                    }
                    if sender.send(Ok(message)).await.is_err() {
                        break;
                    }
                }
                Some(Err(status)) => {
                    let _ = sender.send(Err(status)).await;
                    break;
                }
                None => break,
            },
            _ = every.tick() => record(&call, &admission, &mut batch).await,
            () = sender.closed() => break,
        }
    }
    record(&call, &admission, &mut batch).await;
}

/// One audit event for the participants shown since the last one, if any.
async fn record(call: &Call, admission: &Admission, batch: &mut BTreeMap<String, bool>) {
    if batch.is_empty() {
        return;
    }
    let rows = std::mem::take(batch)
        .into_iter()
        .map(|(participant_id, disclosure)| RowAccess {
            participant_id,
            disclosure,
        })
        .collect();
    let event = admission.shown_event(Some(call.trace_id()), rows);
    // A trail that cannot commit ends nothing here: the stream's opening is audited, and
    // the failure is logged and counted when it is recorded.
    let _ = call.record(event).await;
}
