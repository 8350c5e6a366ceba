//! Following another service's change feed into this service's own database: one task per
//! feed, resuming after the stored cursor after any break or restart. Changes that arrive
//! together are handed over in one batch, which the sink applies in one transaction with the
//! cursor, so nothing is lost or applied twice.
//!
//! Why a feed and not a call: services meet only through contracts and change feeds; a
//! service keeps what it needs of another's data from that service's feed.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use samsyn_proto::common::v1::{Change, WatchChangesRequest};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::codec::Streaming;

use crate::feed::HEARTBEAT;

/// Where the changes of one feed go: the cursor and the changes, written together.
pub trait FeedSink: Clone + Send + Sync + 'static {
    /// A storage failure; the follower logs it and retries from the stored cursor.
    type Error: std::fmt::Display + Send;

    /// The last sequence of `feed` applied (0 for none).
    fn cursor(&self, feed: &'static str) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Applies `changes` of `feed` (heartbeats left out; possibly none) and moves its cursor
    /// to `through`, in one transaction.
    fn apply(
        &self,
        feed: &'static str,
        changes: Vec<Change>,
        through: u64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How a feed is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowSettings {
    /// How often an idle feed sends a heartbeat; three missed ones reopen it.
    pub heartbeat_seconds: u32,
    /// The first wait before reconnecting; it doubles after each failed attempt.
    pub initial_backoff: Duration,
    /// The longest wait before reconnecting.
    pub max_backoff: Duration,
    /// Most changes applied in one transaction.
    pub batch: usize,
}

impl Default for FollowSettings {
    fn default() -> Self {
        Self {
            heartbeat_seconds: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            batch: 500,
        }
    }
}

/// A running follower of one feed; dropping the last handle stops it.
#[derive(Debug)]
pub struct Following {
    applied: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Following {
    /// A receiver of the last sequence applied, for whoever must wait for it.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Waits until the feed has been applied up to `sequence`; `false` on timeout.
    pub async fn wait_for(&self, sequence: u64, timeout: Duration) -> bool {
        let mut applied = self.applied.clone();
        tokio::time::timeout(timeout, applied.wait_for(|at| *at >= sequence))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Follows the feed `name`, opened by `open` (a `WatchChanges` call on the other service),
/// into `sink`, until the returned [`Following`] is dropped.
pub fn follow<S, O, Fut>(
    name: &'static str,
    open: O,
    sink: S,
    settings: FollowSettings,
) -> Following
where
    S: FeedSink,
    O: Fn(WatchChangesRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Streaming<Change>, Status>> + Send + 'static,
{
    let (tx, applied) = watch::channel(0);
    let task = tokio::spawn(run(name, open, sink, settings, tx));
    Following { applied, task }
}

async fn run<S, O, Fut>(
    name: &'static str,
    open: O,
    sink: S,
    settings: FollowSettings,
    applied: watch::Sender<u64>,
) where
    S: FeedSink,
    O: Fn(WatchChangesRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Streaming<Change>, Status>> + Send + 'static,
{
    let mut backoff = settings.initial_backoff;
    let silence = Duration::from_secs(u64::from(settings.heartbeat_seconds.max(1)) * 3);
    loop {
        match sink.cursor(name).await {
            Ok(after) => {
                applied.send_replace(after);
                let request = WatchChangesRequest {
                    after_sequence: after,
                    heartbeat_seconds: settings.heartbeat_seconds,
                };
                match open(request).await {
                    Ok(mut stream) => {
                        tracing::info!(feed = name, after, "following change feed");
                        loop {
                            let first = match tokio::time::timeout(silence, stream.message()).await
                            {
                                Ok(Ok(Some(change))) => change,
                                Ok(Ok(None) | Err(_)) | Err(_) => {
                                    tracing::warn!(feed = name, "change feed ended; reopening");
                                    break;
                                }
                            };
                            backoff = settings.initial_backoff;
                            match take_batch(&sink, name, &mut stream, first, settings.batch).await
                            {
                                Ok(Some(sequence)) => {
                                    applied.send_replace(sequence);
                                }
                                Ok(None) => {}
                                Err(()) => break,
                            }
                        }
                    }
                    Err(status) => {
                        tracing::warn!(feed = name, code = ?status.code(), "cannot open change feed");
                    }
                }
            }
            Err(error) => {
                tracing::error!(feed = name, %error, "cannot read the feed cursor");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(settings.max_backoff);
    }
}

/// Applies `first` and whatever else has already arrived (up to `limit`) in one batch; the
/// last sequence applied, `None` for a heartbeat alone, `Err` to reopen the feed.
async fn take_batch<S: FeedSink>(
    sink: &S,
    name: &'static str,
    stream: &mut Streaming<Change>,
    first: Change,
    limit: usize,
) -> Result<Option<u64>, ()> {
    let mut changes = Vec::new();
    let mut last = None;
    let mut ended = false;
    let mut next = Some(first);
    let mut taken = 0;
    while let Some(change) = next.take() {
        taken += 1;
        if change.change_kind != HEARTBEAT {
            last = Some(change.sequence);
            changes.push(change);
        }
        if taken >= limit {
            break;
        }
        match stream.message().now_or_never() {
            Some(Ok(Some(change))) => next = Some(change),
            Some(Ok(None) | Err(_)) => ended = true,
            None => {}
        }
    }
    if let Some(through) = last
        && let Err(error) = sink.apply(name, changes, through).await
    {
        tracing::error!(feed = name, %error, "cannot apply changes of the feed");
        return Err(());
    }
    if ended {
        return Err(());
    }
    Ok(last)
}
