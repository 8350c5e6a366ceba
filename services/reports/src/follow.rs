//! Following the feeds: one task per feed, resuming after the stored cursor after any break
//! or restart. Changes that arrive together are applied in one transaction (a catch-up of a
//! year's history is thousands of changes), the cursor with them.

use std::time::Duration;

use futures::FutureExt;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{Change, WatchChangesRequest};
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::codec::Streaming;
use tonic::transport::Channel;

use crate::domain::{Feed, Update};
use crate::store::Store;
use crate::wire;

/// The channels to the services whose feeds the read model follows.
#[derive(Debug, Clone)]
pub struct FeedChannels {
    /// The participants service.
    pub participants: Channel,
    /// The consent service.
    pub consent: Channel,
    /// The plans service.
    pub plans: Channel,
    /// The board service.
    pub board: Channel,
}

/// How the feeds are followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowSettings {
    /// How often an idle feed sends a heartbeat.
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
            heartbeat_seconds: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            batch: 500,
        }
    }
}

/// The running feed tasks; dropping it stops them.
#[derive(Debug)]
pub struct Follower {
    tasks: Vec<JoinHandle<()>>,
    progress: Progress,
}

impl Follower {
    /// How far each feed has been applied.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }
}

/// How far each feed has been applied, for whoever must wait for the read model.
#[derive(Debug, Clone)]
pub struct Progress {
    applied: Vec<(Feed, watch::Receiver<u64>)>,
}

impl Progress {
    /// Waits until `feed` has been applied up to `sequence`; `false` on timeout.
    pub async fn wait_for(&self, feed: Feed, sequence: u64, timeout: Duration) -> bool {
        let Some((_, applied)) = self.applied.iter().find(|(f, _)| *f == feed) else {
            return false;
        };
        let mut applied = applied.clone();
        tokio::time::timeout(timeout, applied.wait_for(|at| *at >= sequence))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Keeps `store` current from the four feeds until the returned [`Follower`] is dropped.
pub fn follow(store: Store, channels: FeedChannels, settings: FollowSettings) -> Follower {
    let mut tasks = Vec::new();
    let mut applied = Vec::new();
    for (feed, channel) in [
        (Feed::Participants, channels.participants),
        (Feed::Consent, channels.consent),
        (Feed::Plans, channels.plans),
        (Feed::Board, channels.board),
    ] {
        let (tx, rx) = watch::channel(0);
        applied.push((feed, rx));
        tasks.push(tokio::spawn(run(
            store.clone(),
            feed,
            channel,
            settings.clone(),
            tx,
        )));
    }
    Follower {
        tasks,
        progress: Progress { applied },
    }
}

async fn open(
    feed: Feed,
    channel: Channel,
    request: WatchChangesRequest,
) -> Result<Streaming<Change>, Status> {
    let response = match feed {
        Feed::Participants => {
            ParticipantsServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
        Feed::Consent => {
            ConsentServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
        Feed::Plans => {
            PlansServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
        Feed::Board => {
            BoardServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
    };
    Ok(response.into_inner())
}

/// Why following stopped for now.
enum Break {
    /// The stream ended or failed; reconnect.
    Stream,
    /// The read model could not be written; retry from the stored cursor.
    Store,
}

async fn run(
    store: Store,
    feed: Feed,
    channel: Channel,
    settings: FollowSettings,
    applied: watch::Sender<u64>,
) {
    let mut backoff = settings.initial_backoff;
    let silence = Duration::from_secs(u64::from(settings.heartbeat_seconds) * 3);
    loop {
        let after = match store.cursor(feed).await {
            Ok(after) => after,
            Err(error) => {
                tracing::error!(feed = feed.as_str(), %error, "cannot read the feed cursor");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(settings.max_backoff);
                continue;
            }
        };
        applied.send_replace(after);
        let request = WatchChangesRequest {
            after_sequence: after,
            heartbeat_seconds: settings.heartbeat_seconds,
        };
        match open(feed, channel.clone(), request).await {
            Ok(mut stream) => {
                tracing::info!(feed = feed.as_str(), after, "following change feed");
                loop {
                    let first = match tokio::time::timeout(silence, stream.message()).await {
                        Ok(Ok(Some(change))) => change,
                        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                            tracing::warn!(feed = feed.as_str(), "change feed ended; reopening");
                            break;
                        }
                    };
                    backoff = settings.initial_backoff;
                    match take_batch(&store, feed, &mut stream, first, settings.batch).await {
                        Ok(Some(sequence)) => {
                            applied.send_replace(sequence);
                        }
                        Ok(None) => {}
                        Err(Break::Stream | Break::Store) => break,
                    }
                }
            }
            Err(status) => {
                tracing::warn!(
                    feed = feed.as_str(),
                    code = ?status.code(),
                    "cannot open change feed"
                );
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(settings.max_backoff);
    }
}

/// Applies `first` and whatever else has already arrived (up to `limit`) in one
/// transaction; the last sequence applied, `None` for a heartbeat alone.
async fn take_batch(
    store: &Store,
    feed: Feed,
    stream: &mut Streaming<Change>,
    first: Change,
    limit: usize,
) -> Result<Option<u64>, Break> {
    let mut updates: Vec<Update> = Vec::new();
    let mut last = None;
    let mut ended = false;
    let mut next = Some(first);
    let mut taken = 0;
    while let Some(change) = next.take() {
        taken += 1;
        if change.change_kind != samsyn_kit::feed::HEARTBEAT {
            match wire::update(feed, &change) {
                Ok(Some(update)) => updates.push(update),
                Ok(None) => {}
                Err(error) => {
                    // Counted nowhere rather than stopping the feed; named by sequence only.
                    tracing::warn!(
                        feed = feed.as_str(),
                        sequence = change.sequence,
                        %error,
                        "change skipped by the reports read model"
                    );
                }
            }
            last = Some(change.sequence);
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
    if let Some(sequence) = last
        && let Err(error) = store.apply(feed, updates, sequence).await
    {
        tracing::error!(feed = feed.as_str(), %error, "cannot apply changes to the read model");
        return Err(Break::Store);
    }
    if ended {
        return Err(Break::Stream);
    }
    Ok(last)
}
