//! Pushing changes to SIP planning tools (seed 004: participation and the named coordinators
//! registered in the SIP tool, not typed twice). The participants and plans feeds become
//! FHIR R4 resources in the durable outbox; every message is admitted as a read by the link
//! ([`Gateway::admit_as`]: the decision of any call) and audited before it is queued, so only
//! what the link may read leaves.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use ring::digest::{SHA256, digest};
use samsyn_outbox::{
    Deliverer, DeliveryConfig, Leading, Link, LinkId, OutboundMessage, Outbox, OutboxError,
    Takeover,
};
use samsyn_proto::common::v1::{Change, OrganisationId, ParticipantId, WatchChangesRequest};
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::participants::v1::{GetCareTeamRequest, GetParticipantRequest};
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use samsyn_proto::plans::v1::{GetActivePlanRequest, GetPlanRequest, Plan};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::Code;
use tonic::codec::Streaming;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::access_view::FeedName;
use crate::audit::Outcome;
use crate::links::{LinkConfig, Links};
use crate::proxy::{Admission, Gateway, GatewayError, current_trace_id};

/// The read a pushed participant record stands for.
const GET_PARTICIPANT: &str = "/samsyn.participants.v1.ParticipantsService/GetParticipant";
/// The read a pushed care team stands for.
const GET_CARE_TEAM: &str = "/samsyn.participants.v1.ParticipantsService/GetCareTeam";
/// The read a pushed plan stands for.
const GET_PLAN: &str = "/samsyn.plans.v1.PlansService/GetPlan";
/// How long to wait for the access view to apply a participants change before retrying.
const VIEW_WAIT: Duration = Duration::from_secs(5);
/// The wait before retrying a change that could not be queued.
const RETRY: Duration = Duration::from_millis(250);
/// The pushes' name as a feed consumer in metrics.
const CONSUMER: &str = "gateway.push";
/// Retries (about five seconds) after which a change that cannot be queued is logged.
const STUCK_AFTER: u32 = 20;

/// One link Samsyn pushes to.
#[derive(Debug, Clone)]
pub struct PushTarget {
    /// The link: its organisation and allowed reads decide what it receives.
    pub link: LinkConfig,
    /// Its FHIR base URL.
    pub endpoint: http::Uri,
    /// The CA its server certificate must chain to.
    pub server_ca: PathBuf,
}

/// The certificate Samsyn presents to pushed-to systems.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The feeds pushes are made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushFeed {
    Participants,
    Plans,
}

impl PushFeed {
    /// The outbox cursor's name.
    fn consumer(self) -> &'static str {
        match self {
            Self::Participants => "push.participants",
            Self::Plans => "push.plans",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Participants => "participants",
            Self::Plans => "plans",
        }
    }
}

/// Pushing, running while this replica holds the outbox's pusher lock: then one consumer
/// per feed and one deliverer per link; otherwise waiting to take over.
#[derive(Debug)]
pub struct Pushes {
    leading: Leading,
}

impl Pushes {
    /// Stops consuming, lets sends in flight finish and gives the pusher lock up; what is
    /// queued stays queued.
    pub async fn stop(self) {
        self.leading.stop().await;
    }

    /// Whether this replica is the one pushing now.
    pub fn is_pushing(&self) -> bool {
        self.leading.is_leading()
    }
}

/// Starts pushing to `targets` through `outbox` — from this replica only while it holds
/// the outbox's pusher lock; another replica takes over within `takeover` after it dies.
pub fn start(
    gateway: Arc<Gateway>,
    outbox: Outbox,
    targets: Vec<PushTarget>,
    identity: &ClientIdentity,
    delivery: DeliveryConfig,
    takeover: Takeover,
) -> Result<Pushes, OutboxError> {
    let mut links = Vec::new();
    for target in &targets {
        let link = Link {
            id: target.link.id.parse::<LinkId>()?,
            endpoint: target.endpoint.clone(),
            server_ca: target.server_ca.clone(),
            client_cert: identity.cert.clone(),
            client_key: identity.key.clone(),
        };
        link.check()?;
        links.push(link);
    }
    let pusher = Arc::new(Pusher {
        gateway,
        outbox: outbox.clone(),
        targets,
        reading: tokio::sync::Mutex::new(()),
    });
    let leading = samsyn_outbox::lead(&outbox, takeover, move |stop| {
        push(Arc::clone(&pusher), links.clone(), delivery.clone(), stop)
    });
    Ok(Pushes { leading })
}

/// Consumes the feeds and delivers to every link until told to stop.
async fn push(
    pusher: Arc<Pusher>,
    links: Vec<Link>,
    delivery: DeliveryConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut deliverers = Vec::new();
    for link in links {
        let id = link.id.clone();
        match Deliverer::spawn(&pusher.outbox, link, delivery.clone(), None) {
            Ok(deliverer) => deliverers.push(deliverer),
            Err(error) => tracing::error!(%error, link = %id, "cannot deliver to link"),
        }
    }
    // A set, so that dropping this future (an abort) ends the consumers too.
    let mut consumers = JoinSet::new();
    for feed in [PushFeed::Participants, PushFeed::Plans] {
        consumers.spawn(consume(Arc::clone(&pusher), feed));
    }
    let _ = stop.wait_for(|stop| *stop).await;
    consumers.abort_all();
    for deliverer in deliverers {
        deliverer.stop().await;
    }
}

struct Pusher {
    gateway: Arc<Gateway>,
    outbox: Outbox,
    targets: Vec<PushTarget>,
    /// Held from reading the current records to queueing them: both feeds' consumers push
    /// a participant's plan, and a version read later must not be queued before one read
    /// earlier.
    reading: tokio::sync::Mutex<()>,
}

/// Resources a change pushes that one read stands for: decided together.
struct Pushed {
    rpc: &'static str,
    resources: Vec<serde_json::Value>,
}

/// Reasons a change could not be queued yet; each is retried.
#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error("access view not current: {0}")]
    View(String),
    #[error("not decided: {0}")]
    Undecided(GatewayError),
    #[error("audit trail: {0}")]
    Audit(String),
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error("service: {0}")]
    Service(tonic::Code),
}

async fn open(
    feed: PushFeed,
    channel: Channel,
    after: u64,
) -> Result<Streaming<Change>, tonic::Status> {
    let request = WatchChangesRequest {
        after_sequence: after,
        heartbeat_seconds: 5,
    };
    Ok(match feed {
        PushFeed::Participants => {
            ParticipantsServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
        PushFeed::Plans => {
            PlansServiceClient::new(channel)
                .watch_changes(request)
                .await?
        }
    }
    .into_inner())
}

/// Follows `feed` from the outbox's cursor, queueing each change before moving on.
async fn consume(pusher: Arc<Pusher>, feed: PushFeed) {
    let channel = match feed {
        PushFeed::Participants => pusher.gateway.upstreams().participants.clone(),
        PushFeed::Plans => pusher.gateway.upstreams().plans.clone(),
    };
    let mut backoff = RETRY;
    loop {
        let after = match pusher.outbox.cursor(feed.consumer()).await {
            Ok(after) => after,
            Err(error) => {
                tracing::warn!(%error, feed = feed.as_str(), "push cursor unreadable");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        match open(feed, channel.clone(), after).await {
            Ok(mut stream) => {
                tracing::info!(feed = feed.as_str(), after, "pushing from change feed");
                backoff = RETRY;
                while let Ok(Some(change)) = stream.message().await {
                    if change.change_kind == samsyn_kit::feed::HEARTBEAT {
                        continue;
                    }
                    let mut attempts = 0u32;
                    while let Err(error) = pusher.queue(feed, &change).await {
                        attempts += 1;
                        // At start the access view is briefly not current: only a change
                        // that stays stuck is worth an operator's attention.
                        if attempts >= STUCK_AFTER {
                            tracing::warn!(
                                %error,
                                feed = feed.as_str(),
                                sequence = change.sequence,
                                attempts,
                                "change not queued for push yet; retrying"
                            );
                        } else {
                            tracing::debug!(%error, feed = feed.as_str(), "retrying push");
                        }
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
            Err(status) => {
                tracing::warn!(feed = feed.as_str(), code = ?status.code(), "cannot open change feed for push");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(Duration::from_secs(30));
    }
}

impl Pusher {
    /// Decides, audits and queues what `change` pushes to each link, and moves the cursor.
    async fn queue(&self, feed: PushFeed, change: &Change) -> Result<(), PushError> {
        let span = tracing::info_span!(
            parent: None,
            "push.queue",
            samsyn.feed = feed.as_str(),
            samsyn.feed.sequence = change.sequence,
            samsyn.feed.entity_kind = change.entity_kind.as_str(),
        );
        samsyn_kit::telemetry::link_to(&span, &change.traceparent);
        crate::metrics::change_taken_up(CONSUMER, feed.as_str(), change);
        self.queue_change(feed, change).instrument(span).await
    }

    async fn queue_change(&self, feed: PushFeed, change: &Change) -> Result<(), PushError> {
        let Some(participant_id) = change.participant_id.as_ref().map(|p| p.value.clone()) else {
            return self.skip(feed, change).await;
        };
        let gate = self.gateway.gate();
        if feed == PushFeed::Participants {
            // Decide with the facts this change brings (a new care team member, a move).
            gate.view()
                .wait_for(FeedName::Participants, change.sequence, VIEW_WAIT)
                .await
                .map_err(|e| PushError::View(e.to_string()))?;
        }
        let _reading = self.reading.lock().await;
        let pushes = self.resources(feed, change, &participant_id).await?;
        let mut messages = Vec::new();
        for target in &self.targets {
            let principal = Links::principal(&target.link);
            let link = target.link.id.parse::<LinkId>()?;
            for pushed in &pushes {
                // Admitted as the link's own read of the same records would be.
                let admission = match self
                    .gateway
                    .admit_as(&principal, pushed.rpc, &participant_id)
                {
                    Ok(admission) => admission,
                    // The link may not read this: nothing is queued for it.
                    Err(GatewayError::NotPermitted) => continue,
                    Err(error) => return Err(PushError::Undecided(error)),
                };
                for resource in &pushed.resources {
                    let kind = resource["resourceType"].as_str().unwrap_or_default();
                    let id = resource["id"].as_str().unwrap_or_default();
                    messages.push(OutboundMessage::fhir_json(
                        message_id(&target.link.id, feed, change.sequence, kind),
                        link.clone(),
                        participant_id.clone(),
                        http::Method::PUT,
                        format!("/{kind}/{id}"),
                        resource.to_string(),
                    ));
                }
                self.audit(&admission).await?;
            }
        }
        self.outbox
            .enqueue_from(messages, feed.consumer(), change.sequence)
            .await?;
        Ok(())
    }

    /// Moves past a change that pushes nothing.
    async fn skip(&self, feed: PushFeed, change: &Change) -> Result<(), PushError> {
        self.outbox
            .enqueue_from(Vec::new(), feed.consumer(), change.sequence)
            .await?;
        Ok(())
    }

    /// The disclosure, in the trail before the message can leave: the event of an admitted
    /// read, as for any call.
    async fn audit(&self, admission: &Admission) -> Result<(), PushError> {
        let event = admission.event(current_trace_id(), Vec::new(), Code::Ok, Outcome::Forwarded);
        self.gateway
            .record(event)
            .await
            .map_err(|e| PushError::Audit(e.to_string()))
    }

    /// The FHIR resources a change becomes. A change to a participation or care team
    /// pushes the participant's current picture (participation, care team, active plan): a
    /// link that has just been given access, by an assignment on the care team, then holds
    /// all of it, not only what changed afterwards.
    async fn resources(
        &self,
        feed: PushFeed,
        change: &Change,
        participant_id: &str,
    ) -> Result<Vec<Pushed>, PushError> {
        let id = || {
            Some(ParticipantId {
                value: participant_id.to_owned(),
            })
        };
        let upstreams = self.gateway.upstreams();
        let unreadable = |_| PushError::Service(tonic::Code::DataLoss);
        match (feed, change.entity_kind.as_str()) {
            (PushFeed::Participants, "participant" | "care_team") => {
                let mut participants =
                    ParticipantsServiceClient::new(upstreams.participants.clone());
                let participant = participants
                    .get_participant(GetParticipantRequest {
                        participant_id: id(),
                    })
                    .await
                    .map_err(|s| PushError::Service(s.code()))?
                    .into_inner();
                let team = participants
                    .get_care_team(GetCareTeamRequest {
                        participant_id: id(),
                        include_history: false,
                    })
                    .await
                    .map_err(|s| PushError::Service(s.code()))?
                    .into_inner();
                let plan = match PlansServiceClient::new(upstreams.plans.clone())
                    .get_active_plan(GetActivePlanRequest {
                        participant_id: id(),
                    })
                    .await
                {
                    Ok(plan) => Some(plan.into_inner()),
                    Err(status) if status.code() == tonic::Code::NotFound => None,
                    Err(status) => return Err(PushError::Service(status.code())),
                };
                let region = OrganisationId {
                    value: self.gateway.gate().settings().region_organisation.clone(),
                };
                let mut pushes = vec![
                    Pushed {
                        rpc: GET_PARTICIPANT,
                        resources: vec![
                            samsyn_fhir::patient(&participant, true),
                            samsyn_fhir::episode_of_care(&participant, &region),
                        ],
                    },
                    Pushed {
                        rpc: GET_CARE_TEAM,
                        resources: vec![samsyn_fhir::care_team(&team)],
                    },
                ];
                if let Some(plan) = plan {
                    pushes.push(Pushed {
                        rpc: GET_PLAN,
                        resources: vec![samsyn_fhir::care_plan(&plan)],
                    });
                }
                Ok(pushes)
            }
            (PushFeed::Plans, "plan") => {
                let changed = Plan::decode(change.payload.as_slice()).map_err(unreadable)?;
                // The plan as it is now: never older than what the other feed queued.
                let plan = PlansServiceClient::new(upstreams.plans.clone())
                    .get_plan(GetPlanRequest {
                        participant_id: id(),
                        plan_id: changed.id,
                    })
                    .await
                    .map_err(|s| PushError::Service(s.code()))?
                    .into_inner();
                Ok(vec![Pushed {
                    rpc: GET_PLAN,
                    resources: vec![samsyn_fhir::care_plan(&plan)],
                }])
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// A message id that is the same every time the same change is queued for the same link,
/// so a change consumed again after a crash is not sent twice.
fn message_id(link: &str, feed: PushFeed, sequence: u64, resource_type: &str) -> uuid::Uuid {
    let key = format!("{link}\n{}\n{sequence}\n{resource_type}", feed.as_str());
    let hash = digest(&SHA256, key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_distinct() {
        let a = message_id("sip", PushFeed::Plans, 7, "CarePlan");
        assert_eq!(a, message_id("sip", PushFeed::Plans, 7, "CarePlan"));
        for other in [
            message_id("sip2", PushFeed::Plans, 7, "CarePlan"),
            message_id("sip", PushFeed::Participants, 7, "CarePlan"),
            message_id("sip", PushFeed::Plans, 8, "CarePlan"),
            message_id("sip", PushFeed::Plans, 7, "Patient"),
        ] {
            assert_ne!(a, other);
        }
    }
}
