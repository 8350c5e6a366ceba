//! Every message of a live stream is decided again as it passes, for the caller as access
//! stands now: a consent revoked after the stream opened holds for its next message. The
//! board, which shows many participants at once, is also decided again whenever access may
//! have changed (see `board.rs`).

use bytes::Bytes;
use samsyn_proto::MethodAccess;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::Status;
use tower::{Service, ServiceExt};

use super::super::Call;
use super::super::layers::layer_pair;
use super::{Messages, Opened, Passing, Shown, spawn_stage};
use crate::audit::RowAccess;
use crate::auth::Principal;

/// Path of the board stream, whose rows are re-checked whenever access may have changed.
pub(super) const WATCH_BOARD: &str = "/samsyn.board.v1.BoardService/WatchBoard";

layer_pair! {
    /// Decides each message of an opened stream before it goes on, with the participants it
    /// shows.
    RedecideLayer, Redecide, Passing => Opened<Shown>, over Opened<Bytes>
}

impl<S: Service<Passing, Response = Opened<Bytes>, Error = Status>> Redecide<S> {
    async fn run(inner: S, passing: Passing) -> Result<Opened<Shown>, Status> {
        let access = passing.call.access()?.clone();
        let Opened { passing, answer } = inner.oneshot(passing).await?;
        let watcher = Watcher {
            call: passing.call.clone(),
            principal: passing.admitted.admission.principal.clone(),
            access,
        };
        let answer = answer.map(|upstream| {
            if passing.call.path == WATCH_BOARD {
                spawn_stage(move |sender| watcher.board(upstream, sender))
            } else {
                spawn_stage(move |sender| watcher.each(upstream, sender))
            }
        });
        Ok(Opened { passing, answer })
    }
}

/// A stream's caller and method: what its messages are decided for.
pub(super) struct Watcher {
    pub(super) call: Call,
    pub(super) principal: Principal,
    pub(super) access: MethodAccess,
}

impl Watcher {
    /// Any stream but the board: each message narrowed (a list) and stripped of what the
    /// caller may not read before it passes; the first that cannot be is the last.
    async fn each(self, mut upstream: Messages, sender: mpsc::Sender<Result<Shown, Status>>) {
        loop {
            let message = tokio::select! {
                message = upstream.next() => message,
                () = sender.closed() => return,
            };
            let Some(message) = message else { return };
            let decided = message.and_then(|message| {
                let (message, rows) = self.call.narrow(&self.principal, &self.access, message)?;
                Ok(Shown {
                    message,
                    rows: rows.into_iter().map(shown_row).collect(),
                })
            });
            let last = decided.is_err();
            if sender.send(decided).await.is_err() || last {
                return;
            }
        }
    }
}

fn shown_row(row: RowAccess) -> (String, bool) {
    (row.participant_id, row.disclosure)
}
