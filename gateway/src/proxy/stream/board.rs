//! The board stream: the whole board kept as the service sent it, the caller shown what they
//! may see now.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use samsyn_proto::board::v1::{BoardEntry, BoardUpdate, BoardUpdateKind};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::Status;

use super::super::error::GatewayError;
use super::super::withhold::withhold;
use super::redecide::Watcher;
use super::{Messages, Shown};
use crate::access_view::FeedName;

/// How often a live board stream re-checks what it shows when nothing else happens: a
/// consent can expire without any change on a feed.
pub(super) const STREAM_RECHECK: Duration = Duration::from_secs(5);

impl Watcher {
    /// Shows the caller only the entries they may see now: when access changes (a consent
    /// revoked, a care team changed, a consent expired, a participant put on or taken off a
    /// FACT team's board), a fresh snapshot without the withheld rows goes out.
    pub(super) async fn board(
        self,
        mut upstream: Messages,
        sender: mpsc::Sender<Result<Shown, Status>>,
    ) {
        let view = Arc::clone(self.call.gateway.gate.view());
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
                message = upstream.next() => match message {
                    Some(Ok(bytes)) => self.board_message(&mut board, &bytes),
                    Some(Err(status)) => Err(status),
                    None => return,
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
                () = sender.closed() => return,
            };
            let shown = match result {
                Ok(Some(update)) => self.shown(update),
                Ok(None) => continue,
                Err(status) => Err(status),
            };
            let last = shown.is_err();
            if sender.send(shown).await.is_err() || last {
                return;
            }
        }
    }

    /// An update as the caller sees it: without the fields of another category they may not
    /// read, with the participants it shows.
    fn shown(&self, update: BoardUpdate) -> Result<Shown, Status> {
        let rows = update
            .entries
            .iter()
            .filter_map(|entry| {
                let participant = entry.participant_id.as_ref()?.value.clone();
                let disclosure = self
                    .call
                    .gateway
                    .gate
                    .decide_row(&self.principal, &self.access, &participant)
                    .is_ok_and(|verdict| verdict.decision.disclosure);
                Some((participant, disclosure))
            })
            .collect();
        let message = withhold(
            &self.call.gateway,
            &self.principal,
            &self.call.path,
            &self.access,
            Bytes::from(update.encode_to_vec()),
        )?;
        Ok(Shown { message, rows })
    }

    fn visible(&self, entry: &BoardEntry) -> Result<bool, Status> {
        let Some(participant) = entry.participant_id.as_ref().map(|p| p.value.as_str()) else {
            return Ok(false);
        };
        if participant.is_empty() {
            return Ok(false);
        }
        self.call
            .gateway
            .gate
            .decide_row(&self.principal, &self.access, participant)
            .map(|verdict| verdict.decision.allowed)
            .map_err(|e| GatewayError::ViewUnavailable(e).into())
    }

    fn board_message(
        &self,
        board: &mut Board,
        bytes: &[u8],
    ) -> Result<Option<BoardUpdate>, Status> {
        let update = BoardUpdate::decode(bytes)
            .map_err(GatewayError::internal("decoding a board update"))?;
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
