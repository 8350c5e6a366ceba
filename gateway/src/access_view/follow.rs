//! Following the feeds: one task per feed, resuming from the view's cursor after any break.

use std::sync::Arc;
use std::time::Duration;

use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{Change, WatchChangesRequest};
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::codec::Streaming;
use tonic::transport::Channel;

use super::{AccessView, FeedName};

/// How the view follows the feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowSettings {
    /// How often an idle feed sends a heartbeat (whole seconds, 1 to 300). Keep it well
    /// under the view's bound, or an idle feed reads as behind between heartbeats.
    pub heartbeat: Duration,
    /// The first wait before reconnecting; it doubles after each failed attempt.
    pub initial_backoff: Duration,
    /// The longest wait before reconnecting.
    pub max_backoff: Duration,
}

impl Default for FollowSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl FollowSettings {
    fn heartbeat_seconds(&self) -> u32 {
        u32::try_from(self.heartbeat.as_secs().clamp(1, 300)).unwrap_or(300)
    }

    /// A stream silent this long is taken for dead (a half-open connection) and reopened.
    fn silence(&self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_seconds()) * 3)
    }
}

/// The channels to the services whose feeds the view follows.
#[derive(Debug, Clone)]
pub struct FeedChannels {
    /// The participants service.
    pub participants: Channel,
    /// The consent service.
    pub consent: Channel,
    /// The board service.
    pub board: Channel,
}

/// The running feed tasks; dropping it stops them.
#[derive(Debug)]
pub struct Follower {
    tasks: Vec<JoinHandle<()>>,
}

impl Follower {
    /// Stops following.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Keeps `view` current from the participants, consent and board services' feeds, one task
/// per feed, until the returned [`Follower`] is dropped. The channels reconnect by themselves;
/// each new stream resumes after the view's cursor, so nothing is lost or applied twice.
pub fn follow(view: Arc<AccessView>, channels: FeedChannels, settings: FollowSettings) -> Follower {
    if Duration::from_secs(u64::from(settings.heartbeat_seconds())) >= view.max_lag() {
        tracing::warn!(
            heartbeat_s = settings.heartbeat_seconds(),
            max_lag_ms = u64::try_from(view.max_lag().as_millis()).unwrap_or(u64::MAX),
            "feed heartbeat is not shorter than the access view's bound; idle feeds will read as behind"
        );
    }
    let tasks = [
        (FeedName::Participants, channels.participants),
        (FeedName::Consent, channels.consent),
        (FeedName::Board, channels.board),
    ]
    .into_iter()
    .map(|(feed, channel)| tokio::spawn(run(Arc::clone(&view), feed, channel, settings.clone())))
    .collect();
    Follower { tasks }
}

async fn open(
    feed: FeedName,
    channel: Channel,
    request: WatchChangesRequest,
) -> Result<Streaming<Change>, Status> {
    let response = match feed {
        FeedName::Participants => {
            ParticipantsServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
        FeedName::Consent => {
            ConsentServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
        FeedName::Board => {
            BoardServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
    };
    Ok(response.into_inner())
}

/// The span of applying one change: a trace of its own, linked to the call that made the
/// change, so an operator can go from "the board did not update" to the consumer's work.
fn apply_span(feed: FeedName, change: &Change) -> tracing::Span {
    if change.change_kind == samsyn_kit::feed::HEARTBEAT {
        return tracing::Span::none();
    }
    crate::metrics::change_taken_up(CONSUMER, feed.as_str(), change);
    let span = tracing::info_span!(
        parent: None,
        "feed.apply",
        samsyn.feed.consumer = CONSUMER,
        samsyn.feed = feed.as_str(),
        samsyn.feed.sequence = change.sequence,
        samsyn.feed.entity_kind = change.entity_kind.as_str(),
        samsyn.feed.change_kind = change.change_kind.as_str(),
    );
    samsyn_kit::telemetry::link_to(&span, &change.traceparent);
    span
}

/// The consumer's name in spans and metrics.
const CONSUMER: &str = "gateway.access_view";

async fn run(view: Arc<AccessView>, feed: FeedName, channel: Channel, settings: FollowSettings) {
    let mut backoff = settings.initial_backoff;
    loop {
        let after = view.cursor(feed);
        let request = WatchChangesRequest {
            after_sequence: after,
            heartbeat_seconds: settings.heartbeat_seconds(),
        };
        match open(feed, channel.clone(), request).await {
            Ok(mut stream) => {
                tracing::info!(feed = feed.as_str(), after, "following change feed");
                loop {
                    match tokio::time::timeout(settings.silence(), stream.message()).await {
                        Ok(Ok(Some(change))) => {
                            backoff = settings.initial_backoff;
                            // An unreadable change is logged by the view and withholds its
                            // participant; the feed goes on.
                            let _ =
                                apply_span(feed, &change).in_scope(|| view.apply(feed, &change));
                        }
                        Ok(Ok(None)) => {
                            tracing::info!(feed = feed.as_str(), "change feed ended");
                            break;
                        }
                        Ok(Err(status)) => {
                            tracing::warn!(
                                feed = feed.as_str(),
                                code = ?status.code(),
                                "change feed interrupted"
                            );
                            break;
                        }
                        Err(_) => {
                            tracing::warn!(feed = feed.as_str(), "change feed silent; reopening");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::warn!(
                    feed = feed.as_str(),
                    code = ?status.code(),
                    retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    "cannot open change feed"
                );
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(settings.max_backoff);
    }
}
