//! Two gateway replicas in front of the same services, writing one audit database on
//! PostgreSQL and sharing configured page-token keys: a page token from A works on B, an
//! emergency declared on A counts from its first time on B, a revocation through A refuses
//! the next call on B carrying the consistency token A handed out, and the one trail
//! both wrote verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use samsyn_gateway::audit::store::AuditStore;
use samsyn_gateway::proxy::{CONSISTENCY_HEADER, Upstreams};
use samsyn_gateway::settings::{AccessSettings, PageTokenKey};
use samsyn_kit::testing::fresh_postgres_url;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{DataCategory, PageRequest};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use support::*;
use tonic::Code;

const CASE_MANAGER: &str = "SE2321000255-cm01";

struct Replica {
    gateway: Arc<samsyn_gateway::proxy::Gateway>,
    store: Arc<AuditStore>,
    channel: tonic::transport::Channel,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn replica(stack: &Stack, audit_url: &str, dir: &std::path::Path) -> Replica {
    std::fs::write(
        dir.join("page-token-1.key"),
        "cGFnZS10b2tlbnMtb2YtdGhlLXRlc3QtcmVwbGljYSE=",
    )
    .unwrap();
    let settings = AccessSettings {
        page_token_keys: vec![PageTokenKey {
            id: 1,
            secret_file: dir.join("page-token-1.key"),
        }],
        ..AccessSettings::default()
    };
    let store = Arc::new(
        AuditStore::open(audit_url, &dir.join("audit-signing-key"))
            .await
            .unwrap(),
    );
    let upstreams = Upstreams {
        participants: stack.participants.channel.clone(),
        consent: stack.consent.channel.clone(),
        plans: stack.plans.channel.clone(),
        board: stack.board.channel.clone(),
        reports: Some(stack.reports.channel.clone()),
        audit: Some(samsyn_gateway::audit::service::in_process(Arc::clone(
            &store,
        ))),
    };
    let trail: Arc<dyn samsyn_gateway::audit::AuditTrail> = store.clone();
    let (gateway, addr, stop) = serve_with_trail(&stack.certs(), settings, upstreams, trail).await;
    Replica {
        gateway,
        store,
        channel: stack.channel_to(addr),
        _stop: stop,
    }
}

async fn settle(stack: &Stack, replica: &Replica) {
    use samsyn_gateway::access_view::FeedName;
    for (feed, channel) in [
        (FeedName::Participants, &stack.participants.channel),
        (FeedName::Consent, &stack.consent.channel),
        (FeedName::Board, &stack.board.channel),
    ] {
        let head = feed_head(feed, channel.clone()).await;
        replica
            .gateway
            .gate()
            .view()
            .wait_for(feed, head, Duration::from_secs(5))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_page_tokens_emergencies_revocations_and_one_trail() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit_url = fresh_postgres_url().await.unwrap();
    let a = replica(&stack, &audit_url, dir.path()).await;
    let b = replica(&stack, &audit_url, dir.path()).await;
    let mut ids = Vec::new();
    for (n, name) in ["Örjan Åkesson", "Märta Ek", "Gösta Berg"]
        .iter()
        .enumerate()
    {
        ids.push(
            enrolled(
                &stack,
                &pin("19790321", &format!("48{n}")),
                name,
                Team {
                    region: &[CASE_MANAGER],
                    municipal: &["hbg-coord-1"],
                },
            )
            .await,
        );
    }
    settle(&stack, &a).await;
    settle(&stack, &b).await;
    let case_manager = staff(CASE_MANAGER, REGION, &["case_manager"]);
    let token = stack.token(&case_manager);
    let list = |channel: tonic::transport::Channel, page_token: String| {
        let token = token.clone();
        async move {
            ParticipantsServiceClient::with_interceptor(channel, Credentials::bearer(&token))
                .list_participants(participants_pb::ListParticipantsRequest {
                    page: Some(PageRequest {
                        page_size: 1,
                        page_token,
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };

    // 1. A page token from replica A works on replica B.
    let first = list(a.channel.clone(), String::new()).await;
    let next = first.page.clone().unwrap().next_page_token;
    assert!(!next.is_empty());
    let second = list(b.channel.clone(), next).await;
    assert_eq!(second.participants.len(), 1);
    assert_ne!(
        second.participants[0].participant_id,
        first.participants[0].participant_id
    );

    // 2. An emergency declared on A counts from its first time on B.
    let nurse = staff("hbg-nurse-1", HELSINGBORG, &["nurse"]);
    let nurse_token = stack.token(&nurse);
    ParticipantsServiceClient::with_interceptor(
        a.channel.clone(),
        Credentials::bearer(&nurse_token).emergency("Medvetslös vid hembesök"),
    )
    .get_participant(participants_pb::GetParticipantRequest {
        participant_id: pid(&ids[0]),
    })
    .await
    .unwrap();
    let declared_on_a = a
        .gateway
        .gate()
        .emergency_declared_at(&nurse.id, &ids[0])
        .expect("A remembers its declaration");
    let learned = Instant::now();
    let declared_on_b = loop {
        if let Some(at) = b.gateway.gate().emergency_declared_at(&nurse.id, &ids[0]) {
            break at;
        }
        assert!(
            learned.elapsed() < Duration::from_secs(5),
            "B learns A's declaration from the shared trail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // B counts from A's declaration as the trail recorded it (the audit event's time, a few
    // ms after A's decision), not from a declaration of its own.
    assert!(
        (declared_on_b - declared_on_a).num_milliseconds().abs() < 250,
        "{declared_on_a} on A, {declared_on_b} on B"
    );
    // Later than that, a declaration on B would be B's own time: it is not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ParticipantsServiceClient::with_interceptor(
        b.channel.clone(),
        Credentials::bearer(&nurse_token).emergency("Fortfarande medvetslös"),
    )
    .get_participant(participants_pb::GetParticipantRequest {
        participant_id: pid(&ids[0]),
    })
    .await
    .unwrap();
    assert_eq!(
        b.gateway.gate().emergency_declared_at(&nurse.id, &ids[0]),
        Some(declared_on_b),
        "asking again on B does not renew it"
    );

    // 3. Örjan revokes a consent through A; the next call, on B with the consistency token
    // A handed out, is decided with the revocation applied.
    let team_id = board_team(&stack).await;
    let entry_id = put_on_board(&stack, &team_id, &ids[1]).await;
    let sharing = share_with_helsingborg(&stack, &ids[1], &[DataCategory::Board], None).await;
    settle(&stack, &a).await;
    settle(&stack, &b).await;
    let mut coordinator = staff("hbg-coord-1", HELSINGBORG, &["coordinator"]);
    coordinator.unit = Some("hbg-ifo-1".into());
    let coordinator_token = stack.token(&coordinator);
    let read_entry = |channel: tonic::transport::Channel, consistency: Option<String>| {
        let mut credentials = Credentials::bearer(&coordinator_token);
        if let Some(token) = &consistency {
            credentials = credentials.header(CONSISTENCY_HEADER, token);
        }
        let entry_id = entry_id.clone();
        let participant = ids[1].clone();
        async move {
            BoardServiceClient::with_interceptor(channel, credentials)
                .get_entry(board_pb::GetEntryRequest {
                    entry_id,
                    participant_id: pid(&participant),
                })
                .await
        }
    };
    read_entry(b.channel.clone(), None)
        .await
        .expect("Helsingborg reads the board entry the consent opens");
    let participant = stack.token(&person(&ids[1]));
    let revoked = ConsentServiceClient::with_interceptor(
        a.channel.clone(),
        Credentials::bearer(&participant),
    )
    .revoke_consent(consent_pb::RevokeConsentRequest {
        participant_id: pid(&ids[1]),
        consent_id: sharing.id.clone(),
        revision: sharing.revision,
        revoked_by: Some(consent_pb::Actor {
            kind: consent_pb::ActorKind::Participant as i32,
            staff: None,
        }),
        reason: "Vill inte längre att kommunen ser tavlan".to_owned(),
    })
    .await
    .unwrap();
    let consistency = revoked
        .metadata()
        .get(CONSISTENCY_HEADER)
        .expect("a write's answer carries its consistency token")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(consistency.starts_with("consent:"), "{consistency}");
    let refused = read_entry(b.channel.clone(), Some(consistency.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "the next call, on B with A's token, is refused"
    );
    ConsentServiceClient::with_interceptor(
        b.channel.clone(),
        Credentials::bearer(&participant).header(CONSISTENCY_HEADER, &consistency),
    )
    .list_consents(consent_pb::ListConsentsRequest {
        participant_id: pid(&ids[1]),
        page: None,
    })
    .await
    .unwrap();
    let facts = b
        .gateway
        .gate()
        .view()
        .facts(&ids[1], Instant::now())
        .unwrap()
        .unwrap();
    assert!(
        facts
            .consents
            .iter()
            .any(|c| c.id == sharing.id && c.revoked_at.is_some()),
        "B decided with the revocation applied"
    );
    // A token B cannot reach within the bound is UNAVAILABLE, never a stale decision; a
    // malformed one is the caller's mistake.
    let started = Instant::now();
    let ahead = ConsentServiceClient::with_interceptor(
        b.channel.clone(),
        Credentials::bearer(&participant).header(CONSISTENCY_HEADER, "consent:999999999"),
    )
    .list_consents(consent_pb::ListConsentsRequest {
        participant_id: pid(&ids[1]),
        page: None,
    })
    .await
    .unwrap_err();
    assert_eq!(ahead.code(), Code::Unavailable);
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    let malformed = ConsentServiceClient::with_interceptor(
        b.channel.clone(),
        Credentials::bearer(&participant).header(CONSISTENCY_HEADER, "consent:lots"),
    )
    .list_consents(consent_pb::ListConsentsRequest {
        participant_id: pid(&ids[1]),
        page: None,
    })
    .await
    .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);

    // 4. One trail, written by both, verifies; every event of both is in it.
    let verification = b.store.verify().await.unwrap();
    assert_eq!(
        verification.first_broken, None,
        "{:?}",
        verification.problem
    );
    assert_eq!(
        verification,
        a.store.verify().await.unwrap(),
        "both replicas see the same trail"
    );
    stack.stop().await;
}
