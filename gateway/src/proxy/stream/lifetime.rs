//! A live stream lasts as long as the caller's credentials: it ends, UNAUTHENTICATED, when
//! the token session is revoked or the token (or link certificate) expires.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::Status;
use tower::{Service, ServiceExt};

use super::super::Gateway;
use super::super::error::GatewayError;
use super::super::layers::layer_pair;
use super::{Messages, Opened, Passing, Shown, spawn_stage};
use crate::auth::Session;

layer_pair! {
    /// Ends an opened stream when the caller's session is revoked or credentials expire.
    LifetimeLayer, Lifetime, Passing => Opened<Shown>, over Opened<Shown>
}

impl<S: Service<Passing, Response = Opened<Shown>, Error = Status>> Lifetime<S> {
    async fn run(inner: S, passing: Passing) -> Result<Opened<Shown>, Status> {
        let Opened { passing, answer } = inner.oneshot(passing).await?;
        let gateway = Arc::clone(&passing.call.gateway);
        let (expires_at, session) = (
            passing.admitted.expires_at,
            passing.admitted.session.clone(),
        );
        let answer = answer.map(|messages| {
            spawn_stage(move |sender| until(ended(gateway, expires_at, session), messages, sender))
        });
        Ok(Opened { passing, answer })
    }
}

/// Hands `messages` on until `end` says why the stream must end, or they end.
async fn until(
    end: impl Future<Output = GatewayError>,
    mut messages: Messages<Shown>,
    sender: mpsc::Sender<Result<Shown, Status>>,
) {
    tokio::pin!(end);
    loop {
        tokio::select! {
            // The end first: a revoked session shows nothing more, even if a message waits.
            biased;
            why = &mut end => {
                let _ = sender.send(Err(why.into())).await;
                return;
            }
            () = sender.closed() => return,
            message = messages.next() => {
                let Some(message) = message else { return };
                let last = message.is_err();
                if sender.send(message).await.is_err() || last {
                    return;
                }
            }
        }
    }
}

/// Resolves when the caller's credentials end: the session revoked, or expired at
/// `expires_at` (seconds since the epoch). Never, for credentials that do neither.
async fn ended(
    gateway: Arc<Gateway>,
    expires_at: Option<u64>,
    session: Option<Session>,
) -> GatewayError {
    let expiry = async {
        let Some(at) = expires_at else {
            return std::future::pending().await;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        tokio::time::sleep(Duration::from_secs(at.saturating_sub(now))).await;
    };
    let revoked = async {
        let Some(session) = &session else {
            return std::future::pending().await;
        };
        let authenticator = &gateway.authenticator;
        let mut changed = authenticator.tokens().revoked().changed();
        while !authenticator.is_revoked(session) {
            if changed.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    };
    tokio::select! {
        () = revoked => GatewayError::SessionRevoked,
        () = expiry => GatewayError::CredentialsExpired,
    }
}
