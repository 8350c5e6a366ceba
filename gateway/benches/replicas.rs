//! Gateways scaled out (issue 21): audited reads through one and through two gateway
//! replicas in front of the same services, both writing one audit trail on PostgreSQL, at
//! concurrency 16 and 64 (one machine, so CPU bounds it: the ratio is what to read); the
//! audit commits per second per replica; and how stale replica B's access view is after a
//! write answered by replica A, without a consistency token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use samsyn_gateway::access_view::FeedName;
use samsyn_gateway::audit::store::AuditStore;
use samsyn_gateway::proxy::{CONSISTENCY_HEADER, Upstreams};
use samsyn_gateway::settings::AccessSettings;
use samsyn_kit::testing::fresh_postgres_url;
use samsyn_proto::common::v1::DataCategory;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use support::*;

const CASE_MANAGER: &str = "SE2321000255-cm01";
const ROUND: Duration = Duration::from_secs(5);
const STALENESS_SAMPLES: usize = 50;

struct Replica {
    gateway: Arc<samsyn_gateway::proxy::Gateway>,
    store: Arc<AuditStore>,
    channel: tonic::transport::Channel,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn replica(stack: &Stack, audit_url: &str, dir: &std::path::Path) -> Replica {
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
        audit: None,
    };
    let trail: Arc<dyn samsyn_gateway::audit::AuditTrail> = store.clone();
    let (gateway, addr, stop) =
        serve_with_trail(&stack.certs(), AccessSettings::default(), upstreams, trail).await;
    Replica {
        gateway,
        store,
        channel: stack.channel_to(addr),
        _stop: stop,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

/// Reads at `concurrency` for [`ROUND`], spread over `replicas`; reads per second and the
/// commits each replica's audit store made.
async fn round(
    replicas: &[&Replica],
    concurrency: usize,
    token: &str,
    participant: &str,
) -> (f64, Vec<u64>) {
    let done = Arc::new(AtomicU64::new(0));
    let commits_before: Vec<u64> = replicas.iter().map(|r| r.store.commits()).collect();
    let deadline = Instant::now() + ROUND;
    let mut tasks = Vec::new();
    for n in 0..concurrency {
        let channel = replicas[n % replicas.len()].channel.clone();
        let token = token.to_owned();
        let participant = participant.to_owned();
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut client =
                ParticipantsServiceClient::with_interceptor(channel, Credentials::bearer(&token));
            while Instant::now() < deadline {
                client
                    .get_participant(participants_pb::GetParticipantRequest {
                        participant_id: pid(&participant),
                    })
                    .await
                    .unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let commits = replicas
        .iter()
        .zip(commits_before)
        .map(|(r, before)| r.store.commits() - before)
        .collect();
    (
        done.load(Ordering::Relaxed) as f64 / ROUND.as_secs_f64(),
        commits,
    )
}

async fn bench() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit_url = fresh_postgres_url().await.unwrap();
    let a = replica(&stack, &audit_url, dir.path()).await;
    let b = replica(&stack, &audit_url, dir.path()).await;
    let participant = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &["hbg-coord-1"],
        },
    )
    .await;
    for replica in [&a, &b] {
        for (feed, channel) in [
            (FeedName::Participants, &stack.participants.channel),
            (FeedName::Consent, &stack.consent.channel),
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
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));
    println!(
        "cores: {}, audited GetParticipant through the gateway, audit on PostgreSQL, {} s rounds",
        std::thread::available_parallelism().map_or(0, usize::from),
        ROUND.as_secs()
    );
    for concurrency in [16, 64] {
        let (one, one_commits) = round(&[&a], concurrency, &token, &participant).await;
        let (two, two_commits) = round(&[&a, &b], concurrency, &token, &participant).await;
        let per_second = |commits: &[u64]| -> Vec<String> {
            commits
                .iter()
                .map(|c| format!("{:.0}", *c as f64 / ROUND.as_secs_f64()))
                .collect()
        };
        println!(
            "  concurrency {concurrency:>2}: one replica {one:>7.0}/s (commits/s {:?}), two replicas {two:>7.0}/s (commits/s per replica {:?}), two ÷ one {:.2}",
            per_second(&one_commits),
            per_second(&two_commits),
            two / one
        );
    }
    let verification = a.store.verify().await.unwrap();
    assert_eq!(verification.first_broken, None);
    println!(
        "  one trail of {} events from both replicas verifies",
        verification.events
    );

    // Staleness without a consistency token: a consent recorded through A by the region's
    // case manager (staff of the disclosing organisation; A answers once its own view has
    // it) until B's view has applied it.
    let mut consent =
        ConsentServiceClient::with_interceptor(a.channel.clone(), Credentials::bearer(&token));
    let mut staleness = Vec::with_capacity(STALENESS_SAMPLES);
    for n in 0..STALENESS_SAMPLES {
        let answer = consent
            .record_consent({
                let mut request = consent_request(
                    &participant,
                    samsyn_proto::consent::v1::ConsentKind::InformationSharing,
                    region_to_helsingborg(&[DataCategory::Board]),
                    None,
                );
                request.idempotency_key = format!("staleness-{n}");
                // The gateway fills in who recorded it: the caller.
                request.recorded_by = None;
                request
            })
            .await
            .unwrap();
        let answered = Instant::now();
        let position: u64 = answer
            .metadata()
            .get(CONSISTENCY_HEADER)
            .unwrap()
            .to_str()
            .unwrap()
            .split_once(':')
            .unwrap()
            .1
            .parse()
            .unwrap();
        b.gateway
            .gate()
            .view()
            .wait_for(FeedName::Consent, position, Duration::from_secs(5))
            .await
            .unwrap();
        staleness.push(answered.elapsed());
    }
    staleness.sort();
    println!(
        "  B's view behind A's answer, no token, x{STALENESS_SAMPLES}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        staleness[STALENESS_SAMPLES / 2].as_secs_f64() * 1e3,
        staleness[STALENESS_SAMPLES * 99 / 100].as_secs_f64() * 1e3,
        staleness[STALENESS_SAMPLES - 1].as_secs_f64() * 1e3,
    );
    stack.stop().await;
}
