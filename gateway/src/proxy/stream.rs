//! Server streams: forwarded once, then re-decided message by message.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use samsyn_proto::MethodAccess;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::Streaming;
use tonic::{Code, Request, Response, Status};

use super::codec::RawCodec;
use super::error::GatewayError;
use super::forward::scrub;
use super::{Call, Gateway};
use crate::audit::{AuditEvent, Outcome, RowAccess};
use crate::auth::Principal;
use crate::policy::Action;

/// How often a live board stream re-checks what it shows when nothing else happens: a
/// consent can expire without any change on a feed.
pub(super) const STREAM_RECHECK: Duration = Duration::from_secs(5);
/// Path of the board stream, whose rows are re-checked whenever access may have changed.
pub(super) const WATCH_BOARD: &str = "/samsyn.board.v1.BoardService/WatchBoard";
/// How often a live stream's shown rows become one audit event.
pub(super) const STREAM_AUDIT_EVERY: Duration = Duration::from_secs(10);

impl Call {
    pub(super) async fn server_streaming(
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
        let principal = admitted.admission.principal.clone();
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
pub(super) struct Stream {
    pub(super) gateway: Arc<Gateway>,
    pub(super) path: String,
    pub(super) trace: String,
    pub(super) access: MethodAccess,
    pub(super) principal: Principal,
    pub(super) sender: mpsc::Sender<Result<Bytes, Status>>,
    /// When the caller's credentials expire: the stream ends then, UNAUTHENTICATED.
    pub(super) expires_at: Option<tokio::time::Instant>,
    /// The caller's token session: the stream ends, UNAUTHENTICATED, when it is revoked.
    pub(super) session: Option<crate::auth::Session>,
    /// Participants shown since the last audit event (and whether as a disclosure).
    pub(super) shown: std::sync::Mutex<BTreeMap<String, bool>>,
}

impl Stream {
    /// Runs the stream until it ends, its caller leaves or its credentials expire; what it
    /// showed is audited every `STREAM_AUDIT_EVERY` and at the end, one event per batch.
    pub(super) async fn run(self, upstream: Streaming<Bytes>) {
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
                        .send(Err(GatewayError::SessionRevoked.into()))
                        .await;
                    break;
                }
                () = &mut expiry => {
                    let _ = self
                        .sender
                        .send(Err(GatewayError::CredentialsExpired.into()))
                        .await;
                    break;
                }
                _ = audit.tick() => self.audit_shown().await,
            }
        }
        self.audit_shown().await;
    }

    /// Notes the participants a message showed, for the next batch's audit event.
    pub(super) fn note_shown(&self, rows: impl IntoIterator<Item = (String, bool)>) {
        let mut shown = self
            .shown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (participant, disclosure) in rows {
            *shown.entry(participant).or_default() |= disclosure;
        }
    }

    /// One audit event for what the stream showed since the last one, if anything.
    pub(super) async fn audit_shown(&self) {
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
            action: Some(Action::of(&self.access)),
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

    pub(super) async fn send(&self, item: Result<Bytes, Status>) -> bool {
        self.sender.send(item).await.is_ok()
    }

    /// Any stream: each message is narrowed (a list) or the call re-decided (one named
    /// participant) before it passes.
    pub(super) async fn run_plain(&self, mut upstream: Streaming<Bytes>) {
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
}
