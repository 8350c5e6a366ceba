//! Following the consent service's change feed: which participation consents exist and
//! still count, so `Enrol` can check the one it names, and when one stops counting, so the
//! participation enrolled under it is flagged (or ended, per the programme).
//!
//! Why a feed and not a call: services meet only through contracts and change feeds and take
//! calls only from the gateway; a service keeps what it needs of another's data from that
//! service's feed. The cursor is stored with what each change did, so a restart resumes after
//! the last change applied and nothing is lost or applied twice.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use samsyn_proto::common::v1::{Change, WatchChangesRequest};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::domain::{ConsentReference, KnownConsent, OnConsentRevoked, ParticipantId};
use crate::store::{ConsentFact, ParticipantStore};

/// How often an idle consent feed sends a heartbeat, in seconds.
const HEARTBEAT_SECONDS: u32 = 2;
/// The first wait before reopening the feed; it doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before reopening the feed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The running follower: the last sequence applied, watched by enrolment; dropping the last
/// handle stops it.
#[derive(Debug, Clone)]
pub struct ConsentFollower {
    applied: watch::Receiver<u64>,
    _task: Arc<StopOnDrop>,
}

#[derive(Debug)]
struct StopOnDrop(JoinHandle<()>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ConsentFollower {
    /// Follows the consent service's feed over `channel` into `store`.
    pub fn start(store: ParticipantStore, channel: Channel, on_revoked: OnConsentRevoked) -> Self {
        let (tx, applied) = watch::channel(0);
        let task = tokio::spawn(run(store, channel, on_revoked, tx));
        Self {
            applied,
            _task: Arc::new(StopOnDrop(task)),
        }
    }

    /// A receiver that wakes whenever another change has been applied.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }
}

/// What one consent-feed change says about a participation consent; `None` for anything
/// else (sharing and research consents, restrictions).
fn fact(change: &Change) -> Option<ConsentFact> {
    if change.entity_kind != "consent" {
        return None;
    }
    let consent = consent_pb::Consent::decode(change.payload.as_slice()).ok()?;
    if consent.kind != consent_pb::ConsentKind::Participation as i32 {
        return None;
    }
    let participant_id = ParticipantId::parse(&consent.participant_id?.value).ok()?;
    Some(ConsentFact {
        consent: ConsentReference::parse(&consent.id).ok()?,
        known: KnownConsent {
            participant_id,
            active: consent.state == consent_pb::ConsentState::Recorded as i32,
        },
    })
}

async fn run(
    store: ParticipantStore,
    channel: Channel,
    on_revoked: OnConsentRevoked,
    applied: watch::Sender<u64>,
) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        if let Err(reason) = follow_once(&store, &channel, on_revoked, &applied, &mut backoff).await
        {
            tracing::warn!(
                reason,
                retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                "consent feed interrupted"
            );
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

/// Opens the feed after the stored cursor and applies changes until it breaks.
async fn follow_once(
    store: &ParticipantStore,
    channel: &Channel,
    on_revoked: OnConsentRevoked,
    applied: &watch::Sender<u64>,
    backoff: &mut Duration,
) -> Result<(), &'static str> {
    let after = store
        .consent_cursor()
        .await
        .map_err(|_| "cannot read the cursor")?;
    let mut stream = ConsentServiceClient::new(channel.clone())
        .watch_changes(WatchChangesRequest {
            after_sequence: after,
            heartbeat_seconds: HEARTBEAT_SECONDS,
        })
        .await
        .map_err(|_| "cannot open the consent feed")?
        .into_inner();
    let silence = Duration::from_secs(u64::from(HEARTBEAT_SECONDS) * 3);
    loop {
        let change = match tokio::time::timeout(silence, stream.message()).await {
            Ok(Ok(Some(change))) => change,
            Ok(Ok(None)) => return Err("the consent feed ended"),
            Ok(Err(_)) => return Err("the consent feed failed"),
            Err(_) => return Err("the consent feed went silent"),
        };
        *backoff = INITIAL_BACKOFF;
        if change.change_kind == samsyn_kit::feed::HEARTBEAT {
            continue;
        }
        store
            .apply_consent_change(change.sequence, fact(&change), on_revoked)
            .await
            .map_err(|_| "cannot apply a consent change")?;
        applied.send_replace(change.sequence);
    }
}
