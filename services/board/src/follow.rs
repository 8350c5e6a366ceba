//! Following the plans and participants change feeds for the morning meeting: municipal
//! decisions recorded, changed or parked, and participations whose consent was revoked. The
//! board keeps what the agenda needs in its own database, the feed positions with it.

use prost::Message;
use samsyn_kit::follow::{FeedSink, FollowSettings, Following, follow};
use samsyn_kit::time::from_timestamp;
use samsyn_proto::common::v1::Change;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use tonic::transport::Channel;

use crate::domain::notice::{DecisionNotice, Fact, NoticeKind};
use crate::domain::{BoardError, ParticipantId};
use crate::store::Store;

/// The feed names, as stored with their cursors.
pub const PLANS: &str = "plans";
/// See [`PLANS`].
pub const PARTICIPANTS: &str = "participants";

/// Channels to the services whose feeds the board follows, over internal mutual TLS.
#[derive(Debug, Clone)]
pub struct BoardFeeds {
    /// The plans service: decisions and the decision inbox.
    pub plans: Channel,
    /// The participants service: participation consents revoked.
    pub participants: Channel,
}

/// The running followers; dropping them stops following.
#[derive(Debug)]
pub struct Followers {
    /// The plans feed.
    pub plans: Following,
    /// The participants feed.
    pub participants: Following,
}

#[derive(Debug, Clone)]
struct Sink(Store);

impl FeedSink for Sink {
    type Error = BoardError;

    async fn cursor(&self, feed: &'static str) -> Result<u64, BoardError> {
        self.0.feed_cursor(feed).await
    }

    async fn apply(
        &self,
        feed: &'static str,
        changes: Vec<Change>,
        through: u64,
    ) -> Result<(), BoardError> {
        let facts = changes.iter().filter_map(|c| fact(feed, c)).collect();
        self.0.apply_facts(feed, facts, through).await
    }
}

/// Follows both feeds into `store` until the returned followers are dropped.
pub fn start(store: Store, feeds: BoardFeeds, settings: FollowSettings) -> Followers {
    let plans = feeds.plans;
    let participants = feeds.participants;
    Followers {
        plans: follow(
            PLANS,
            move |request| {
                let channel = plans.clone();
                async move {
                    Ok(PlansServiceClient::new(channel)
                        .watch_changes(request)
                        .await?
                        .into_inner())
                }
            },
            Sink(store.clone()),
            settings.clone(),
        ),
        participants: follow(
            PARTICIPANTS,
            move |request| {
                let channel = participants.clone();
                async move {
                    Ok(ParticipantsServiceClient::new(channel)
                        .watch_changes(request)
                        .await?
                        .into_inner())
                }
            },
            Sink(store),
            settings,
        ),
    }
}

/// What one change of `feed` tells the board; `None` for anything it does not keep (and for
/// a payload it cannot read, which is logged by sequence only).
pub fn fact(feed: &str, change: &Change) -> Option<Fact> {
    let fact = match (feed, change.entity_kind.as_str()) {
        (PLANS, "decision") => decision(change),
        (PLANS, "decision_inbox") => parked(change),
        (PARTICIPANTS, "participant") => participation(change),
        _ => return None,
    };
    if fact.is_none() {
        tracing::warn!(
            feed,
            sequence = change.sequence,
            "change skipped by the board"
        );
    }
    fact
}

fn noted_at(change: &Change) -> chrono::DateTime<chrono::Utc> {
    change
        .recorded_at
        .as_ref()
        .and_then(from_timestamp)
        .unwrap_or_else(chrono::Utc::now)
}

fn notice(
    kind: NoticeKind,
    decision: &plans_pb::Decision,
    change: &Change,
) -> Option<(ParticipantId, DecisionNotice)> {
    let participant_id = ParticipantId::parse(&decision.participant_id.as_ref()?.value).ok()?;
    let (intervention_id, catalogue_code) = match &decision.subject {
        Some(plans_pb::decision::Subject::InterventionId(id)) => (id.clone(), String::new()),
        Some(plans_pb::decision::Subject::CatalogueCode(code)) => (String::new(), code.clone()),
        _ => (String::new(), String::new()),
    };
    Some((
        participant_id,
        DecisionNotice {
            kind,
            external_decision_id: decision.external_decision_id.clone(),
            organisation_id: decision
                .organisation_id
                .as_ref()
                .map(|o| o.value.clone())
                .unwrap_or_default(),
            outcome: decision.outcome,
            version: decision.version.max(1),
            change: decision.change,
            intervention_id,
            catalogue_code,
            inbox_id: String::new(),
            park_reason: 0,
            noted_at: noted_at(change),
        },
    ))
}

fn decision(change: &Change) -> Option<Fact> {
    let kind = match change.change_kind.as_str() {
        "recorded" => NoticeKind::Recorded,
        "changed" => NoticeKind::Changed,
        _ => return None,
    };
    let decision = plans_pb::Decision::decode(change.payload.as_slice()).ok()?;
    let (participant_id, notice) = notice(kind, &decision, change)?;
    Some(Fact::Decision {
        participant_id,
        notice,
    })
}

fn parked(change: &Change) -> Option<Fact> {
    let kind = match change.change_kind.as_str() {
        "parked" => NoticeKind::Parked,
        "changed" => NoticeKind::Changed,
        "linked" => NoticeKind::Linked,
        "dismissed" => NoticeKind::Dismissed,
        _ => return None,
    };
    let parked = plans_pb::ParkedDecision::decode(change.payload.as_slice()).ok()?;
    let (participant_id, mut notice) = notice(kind, parked.decision.as_ref()?, change)?;
    notice.inbox_id = parked.inbox_id;
    notice.park_reason = parked.reason;
    if !parked.intervention_id.is_empty() {
        notice.intervention_id = parked.intervention_id;
    }
    Some(Fact::Decision {
        participant_id,
        notice,
    })
}

fn participation(change: &Change) -> Option<Fact> {
    let summary = participants_pb::ParticipantSummary::decode(change.payload.as_slice()).ok()?;
    let participant_id = ParticipantId::parse(&summary.participant_id.as_ref()?.value).ok()?;
    let revoked_at = match &summary.participation_consent_revoked_at {
        Some(at) => Some(from_timestamp(at)?),
        None => None,
    };
    Some(Fact::ParticipationConsent {
        participant_id,
        revoked_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsyn_proto::common::v1::{OrganisationId, ParticipantId as PbId};

    fn change(entity_kind: &str, change_kind: &str, payload: Vec<u8>) -> Change {
        Change {
            sequence: 7,
            entity_kind: entity_kind.into(),
            change_kind: change_kind.into(),
            recorded_at: Some(samsyn_kit::time::to_timestamp(chrono::Utc::now())),
            payload,
            ..Change::default()
        }
    }

    fn pushed(participant: &str) -> plans_pb::Decision {
        plans_pb::Decision {
            external_decision_id: "BES-1".into(),
            organisation_id: Some(OrganisationId {
                value: "1283".into(),
            }),
            participant_id: Some(PbId {
                value: participant.into(),
            }),
            subject: Some(plans_pb::decision::Subject::CatalogueCode(
                "municipality.housing_support".into(),
            )),
            outcome: plans_pb::DecisionOutcome::Granted as i32,
            version: 2,
            change: plans_pb::DecisionChange::Amended as i32,
            ..plans_pb::Decision::default()
        }
    }

    #[test]
    fn decisions_parked_ones_and_revoked_participations_are_kept_and_the_rest_is_not() {
        let id = ParticipantId::generate().to_string();
        let recorded = fact(
            PLANS,
            &change("decision", "changed", pushed(&id).encode_to_vec()),
        );
        let Some(Fact::Decision { notice, .. }) = recorded else {
            panic!("a changed decision is kept: {recorded:?}");
        };
        assert_eq!(notice.kind, NoticeKind::Changed);
        assert_eq!(notice.version, 2);
        assert_eq!(notice.catalogue_code, "municipality.housing_support");

        let parked = plans_pb::ParkedDecision {
            inbox_id: "inbox-1".into(),
            decision: Some(pushed(&id)),
            reason: plans_pb::ParkReason::NoActivePlan as i32,
            ..plans_pb::ParkedDecision::default()
        };
        let Some(Fact::Decision { notice, .. }) = fact(
            PLANS,
            &change("decision_inbox", "parked", parked.encode_to_vec()),
        ) else {
            panic!("a parked decision is kept");
        };
        assert_eq!(notice.kind, NoticeKind::Parked);
        assert_eq!(notice.inbox_id, "inbox-1");

        let summary = participants_pb::ParticipantSummary {
            participant_id: Some(PbId { value: id.clone() }),
            participation_consent_revoked_at: Some(samsyn_kit::time::to_timestamp(
                chrono::Utc::now(),
            )),
            ..participants_pb::ParticipantSummary::default()
        };
        assert!(matches!(
            fact(
                PARTICIPANTS,
                &change(
                    "participant",
                    "participation_consent_revoked",
                    summary.encode_to_vec()
                )
            ),
            Some(Fact::ParticipationConsent {
                revoked_at: Some(_),
                ..
            })
        ));

        assert_eq!(fact(PLANS, &change("plan", "created", vec![])), None);
        assert_eq!(
            fact(PLANS, &change("decision", "recorded", vec![0xff])),
            None
        );
        assert_eq!(
            fact(
                PARTICIPANTS,
                &change("decision", "recorded", pushed(&id).encode_to_vec())
            ),
            None,
            "only the plans feed speaks of decisions"
        );
    }
}
