//! What the gateway costs a read: `GetParticipant` through the gateway (TLS in, token,
//! decision, audit, mutual TLS to the service) against the same read straight to the
//! participants service over its mutual-TLS channel, on loopback, in one process. Closed-loop
//! load (requests/s, p50, p99) at concurrency 1 and at a moderate concurrency, the decision
//! alone, and a cheap breakdown of where the gateway's time goes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use samsyn_gateway::audit::store::AuditStore;
use samsyn_gateway::audit::{AuditEvent, AuditTrail, RecordFuture};
use samsyn_gateway::auth::DevIssuer;
use samsyn_gateway::describe::CallDescriber;
use samsyn_gateway::proxy::Upstreams;
use samsyn_gateway::settings::AccessSettings;
use samsyn_kit::config::Limits;
use samsyn_kit::{serve, tls};
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use support::*;
use tonic::transport::Channel;

const CASE_MANAGER: &str = "SE2321000255-cm01";
const COORDINATOR: &str = "hbg-soc-7";
const GET_PARTICIPANT: &str = "/samsyn.participants.v1.ParticipantsService/GetParticipant";
/// Concurrent callers of the moderate load.
const MODERATE: usize = 16;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
/// A participant id nobody has: refused after authentication and decision, never forwarded.
const UNKNOWN_PARTICIPANT: &str = "0198c0de-0000-7000-8000-00000000dead";
const DECISIONS: usize = 100_000;
const VERIFICATIONS: usize = 10_000;
/// Target: the gateway keeps at least this share of the direct throughput.
const TARGET_RATIO: f64 = 0.5;
/// Target: the gateway adds at most this to p99 at the moderate load.
const TARGET_ADDED_P99: Duration = Duration::from_millis(1);

type CallFuture = Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;
/// One `GetParticipant` over one channel.
type Caller = Arc<dyn Fn() -> CallFuture + Send + Sync>;

fn get(id: &str) -> participants_pb::GetParticipantRequest {
    participants_pb::GetParticipantRequest {
        participant_id: pid(id),
    }
}

fn direct_caller(channel: Channel, id: &str) -> Caller {
    let client = ParticipantsServiceClient::new(channel);
    let id = id.to_owned();
    Arc::new(move || {
        let mut client = client.clone();
        let request = get(&id);
        Box::pin(async move { client.get_participant(request).await.map(|_| ()) })
    })
}

fn gateway_caller(channel: Channel, token: &str, id: &str) -> Caller {
    let client = ParticipantsServiceClient::with_interceptor(channel, Credentials::bearer(token));
    let id = id.to_owned();
    Arc::new(move || {
        let mut client = client.clone();
        let request = get(&id);
        Box::pin(async move { client.get_participant(request).await.map(|_| ()) })
    })
}

/// The outcome of one closed-loop run.
struct Run {
    label: String,
    concurrency: usize,
    channels: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// Process CPU time per request in the measured window (all threads: client, gateway,
    /// services), in µs.
    cpu_us: f64,
}

/// CPU time of this process so far (user + system, all threads), from `/proc/self/stat`.
fn process_cpu() -> Duration {
    // Clock ticks are 1/100 s on Linux x86_64 and aarch64 (USER_HZ).
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15; after the name, indices 11 and 12.
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / TICKS_PER_SECOND)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `concurrency` tasks, each calling again as soon as its call returns, spread over
/// `callers` (one per channel); a warm-up, then the measured window.
/// Every call must end with `expect` (`None`: succeed).
async fn closed_loop(
    label: &str,
    callers: &[Caller],
    concurrency: usize,
    expect: Option<tonic::Code>,
) -> Run {
    let start = Instant::now();
    let measuring = start + WARM_UP;
    let end = measuring + MEASURE;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..concurrency {
        let caller = Arc::clone(&callers[i % callers.len()]);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(100_000);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let result = caller().await;
                let took = sent.elapsed();
                let code = result.err().map(|status| status.code());
                assert_eq!(code, expect, "a benchmarked call ended unexpectedly");
                if sent >= measuring {
                    latencies.push(took);
                }
            }
            latencies
        });
    }
    tokio::time::sleep_until(measuring.into()).await;
    let cpu_before = process_cpu();
    tokio::time::sleep_until(end.into()).await;
    let cpu = process_cpu().saturating_sub(cpu_before);
    let mut all = Vec::new();
    while let Some(latencies) = tasks.join_next().await {
        all.extend(latencies.unwrap());
    }
    all.sort_unstable();
    Run {
        label: label.to_owned(),
        concurrency,
        channels: callers.len().min(concurrency),
        per_second: all.len() as f64 / MEASURE.as_secs_f64(),
        p50: percentile(&all, 50.0),
        p99: percentile(&all, 99.0),
        max: all.last().copied().unwrap_or_default(),
        cpu_us: cpu.as_secs_f64() * 1e6 / all.len().max(1) as f64,
    }
}

/// Calls at a fixed `rate` (per second) whatever the answers take, spread over `callers`;
/// each latency counts from the moment the call was due, so a slow answer cannot hide the
/// calls queued behind it.
async fn open_loop(label: &str, callers: &[Caller], rate: f64) -> Run {
    let start = Instant::now();
    let measuring = start + WARM_UP;
    let end = measuring + MEASURE;
    let mut tasks = tokio::task::JoinSet::new();
    let mut cpu_before = None;
    let mut n: u64 = 0;
    loop {
        let due = start + Duration::from_secs_f64(n as f64 / rate);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        if cpu_before.is_none() && due >= measuring {
            cpu_before = Some(process_cpu());
        }
        let caller = Arc::clone(&callers[(n as usize) % callers.len()]);
        tasks.spawn(async move {
            caller()
                .await
                .expect("a benchmarked call ended unexpectedly");
            (due, due.elapsed())
        });
        n += 1;
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (due, took) = joined.unwrap();
        if due >= measuring {
            all.push(took);
        }
    }
    let cpu = process_cpu().saturating_sub(cpu_before.unwrap_or_default());
    all.sort_unstable();
    Run {
        label: label.to_owned(),
        concurrency: 0,
        channels: callers.len(),
        per_second: all.len() as f64 / MEASURE.as_secs_f64(),
        p50: percentile(&all, 50.0),
        p99: percentile(&all, 99.0),
        max: all.last().copied().unwrap_or_default(),
        cpu_us: cpu.as_secs_f64() * 1e6 / all.len().max(1) as f64,
    }
}

/// Times `f` `n` times; p50 and p99 in µs.
fn time_each(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f();
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (
        us(percentile(&samples, 50.0)),
        us(percentile(&samples, 99.0)),
    )
}

/// An audit trail that keeps nothing: the gateway without the cost of the in-memory trail.
#[derive(Debug)]
struct NullTrail;

impl AuditTrail for NullTrail {
    fn record(&self, event: AuditEvent) -> RecordFuture<'_> {
        drop(event);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A second gateway in front of the same services, auditing to `trail`; its address.
async fn second_gateway(stack: &Stack, trail: Arc<dyn AuditTrail>) -> SocketAddr {
    let upstreams = Upstreams {
        participants: stack.participants.channel.clone(),
        consent: stack.consent.channel.clone(),
        plans: stack.plans.channel.clone(),
        board: stack.board.channel.clone(),
        audit: None,
        reports: None,
    };
    let gateway = samsyn_gateway::build(
        AccessSettings {
            development_issuer: true,
            ..AccessSettings::default()
        },
        &stack.certs(),
        upstreams,
        trail,
        &Limits::default(),
    )
    .unwrap();
    let pki = tls::DevPki::at(stack.certs());
    let server = tls::server_config(
        &pki.identity("gateway").unwrap(),
        pki.trust_anchors().unwrap(),
        tls::ClientAuth::Optional,
    )
    .unwrap();
    let listener = serve::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Instant::now();
    while gateway
        .gate()
        .view()
        .ensure_current(Instant::now())
        .is_err()
    {
        assert!(started.elapsed() < Duration::from_secs(10), "view behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let part = samsyn_gateway::part(gateway);
    tokio::spawn(async move {
        serve::serve(part, listener, server, &Limits::default(), async {
            std::future::pending::<()>().await;
        })
        .await
    });
    addr
}

fn channel_to(stack: &Stack, addr: SocketAddr) -> Channel {
    let pki = tls::DevPki::at(stack.certs());
    let client = tls::client_config(pki.trust_anchors().unwrap(), None).unwrap();
    tls::channel(addr, "localhost", client).unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn print_runs(runs: &[Run]) {
    println!(
        "{:<44} {:>5} {:>4} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "run", "conc", "chan", "req/s", "p50 ms", "p99 ms", "max ms", "CPU µs/req"
    );
    for run in runs {
        println!(
            "{:<44} {:>5} {:>4} {:>8.0} {:>8} {:>8} {:>8} {:>10.0}",
            run.label,
            run.concurrency,
            run.channels,
            run.per_second,
            ms(run.p50),
            ms(run.p99),
            ms(run.max),
            run.cpu_us
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    println!(
        "cores: {}, warm-up {:?}, measured {:?} per run, one process (client, gateway and \
         services share the runtime)",
        std::thread::available_parallelism().map_or(0, usize::from),
        WARM_UP,
        MEASURE
    );
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[COORDINATOR],
        },
    )
    .await;
    stack.settle().await;
    let principal = staff(CASE_MANAGER, REGION, &["case_manager"]);
    let token = stack.token(&principal);

    // The read works both ways before anything is timed.
    let direct = vec![direct_caller(stack.participants.channel.clone(), &id)];
    let gateway_one = vec![gateway_caller(stack.channel(), &token, &id)];
    let gateway_four: Vec<Caller> = (0..4)
        .map(|_| gateway_caller(stack.channel(), &token, &id))
        .collect();
    for caller in direct.iter().chain(&gateway_one).chain(&gateway_four) {
        caller().await.unwrap();
    }

    // The pieces, no network.
    let describer = CallDescriber::samsyn().unwrap();
    let (access, _) = describer.method_access(GET_PARTICIPANT).unwrap();
    let gate = stack.gateway.gate();
    let verdict = gate
        .decide_call(&principal, access, Some(&id), false)
        .unwrap();
    assert!(verdict.decision.allowed, "the case manager may read");
    let decide = time_each(DECISIONS, || {
        let verdict = gate
            .decide_call(&principal, access, Some(&id), false)
            .unwrap();
        std::hint::black_box(verdict);
    });
    let verifier = DevIssuer::at(stack.certs()).verifier().unwrap();
    let verify = time_each(VERIFICATIONS, || {
        std::hint::black_box(verifier.verify(&token).unwrap());
    });
    let ring_verify = {
        use ring::signature::{self, KeyPair};
        let random = ring::rand::SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &random,
        )
        .unwrap();
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &random,
        )
        .unwrap();
        let message = token.as_bytes();
        let signed = pair.sign(&random, message).unwrap();
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            pair.public_key().as_ref().to_vec(),
        );
        time_each(VERIFICATIONS, || {
            public.verify(message, signed.as_ref()).unwrap();
        })
    };
    let encoded = prost::Message::encode_to_vec(&get(&id));
    let describe = time_each(DECISIONS, || {
        std::hint::black_box(describer.describe(GET_PARTICIPANT, &encoded).unwrap());
    });

    // Low load, then the moderate load; direct and through the gateway.
    let mut runs = Vec::new();
    runs.push(closed_loop("direct (mTLS to participants)", &direct, 1, None).await);
    runs.push(closed_loop("gateway", &gateway_one, 1, None).await);
    runs.push(closed_loop("direct (mTLS to participants)", &direct, MODERATE, None).await);
    runs.push(closed_loop("gateway, 1 client channel", &gateway_one, MODERATE, None).await);
    runs.push(closed_loop("gateway, 4 client channels", &gateway_four, MODERATE, None).await);
    // Moderate load: a fixed rate at a third of what the gateway sustains, the same for both.
    let rate = (runs[3].per_second / 3.0).max(50.0);
    let direct_open = open_loop("direct, open loop (conc 0 = fixed rate)", &direct, rate).await;
    let gateway_open = open_loop(
        "gateway, open loop (conc 0 = fixed rate)",
        &gateway_one,
        rate,
    )
    .await;

    // Where the time goes: the same gateway auditing to nothing.
    let null_addr = second_gateway(&stack, Arc::new(NullTrail)).await;
    let null_gateway = vec![gateway_caller(channel_to(&stack, null_addr), &token, &id)];
    null_gateway[0]().await.unwrap();
    runs.push(closed_loop("gateway, NullTrail audit", &null_gateway, 1, None).await);
    runs.push(closed_loop("gateway, NullTrail audit", &null_gateway, MODERATE, None).await);

    // The durable trail: the same gateway committing every event to SQLite before answering.
    let audit_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        AuditStore::open(
            &samsyn_kit::testing::fresh_sqlite_url(audit_dir.path()),
            &audit_dir.path().join("audit-signing-key"),
        )
        .await
        .unwrap(),
    );
    let durable_addr = second_gateway(&stack, Arc::clone(&store) as Arc<dyn AuditTrail>).await;
    let durable_gateway = vec![gateway_caller(
        channel_to(&stack, durable_addr),
        &token,
        &id,
    )];
    durable_gateway[0]().await.unwrap();
    let durable = closed_loop(
        "gateway, durable audit (SQLite)",
        &durable_gateway,
        MODERATE,
        None,
    )
    .await;
    let null = &runs[runs.len() - 1];
    let audited_ratio = durable.per_second / null.per_second;
    runs.push(durable);
    // The store alone: 64 callers appending as fast as commits allow.
    let appended = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let until = Instant::now() + MEASURE;
    let mut appenders = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let store = Arc::clone(&store);
        let appended = Arc::clone(&appended);
        let record = samsyn_gateway::audit::store::Record::of(&AuditEvent {
            at: chrono::Utc::now(),
            principal: Some(principal.clone()),
            rpc: GET_PARTICIPANT.into(),
            action: Some(samsyn_gateway::policy::Action::Read),
            category: samsyn_proto::common::v1::DataCategory::Enrolment,
            participant_id: Some(id.clone()),
            owner_organisation: None,
            allowed: true,
            policies: vec!["care-team-read".into()],
            disclosure: false,
            emergency: false,
            emergency_reason: None,
            rows: Vec::new(),
            outcome: samsyn_gateway::audit::Outcome::Forwarded,
            status: tonic::Code::Ok,
            trace_id: None,
            stakeholders: Vec::new(),
            call_id: None,
            export: None,
        });
        appenders.spawn(async move {
            while Instant::now() < until {
                store.append(record.clone()).await.unwrap();
                appended.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    while let Some(done) = appenders.join_next().await {
        done.unwrap();
    }
    let store_events_per_second =
        appended.load(std::sync::atomic::Ordering::Relaxed) as f64 / MEASURE.as_secs_f64();
    let verified = store.verify().await.unwrap();
    assert_eq!(verified.first_broken, None);

    // Where the time goes: refused early, so only part of the path runs.
    let anonymous = vec![Arc::new({
        let client = ParticipantsServiceClient::new(stack.channel());
        let id = id.clone();
        move || {
            let mut client = client.clone();
            let request = get(&id);
            Box::pin(async move { client.get_participant(request).await.map(|_| ()) }) as CallFuture
        }
    }) as Caller];
    let unknown = vec![gateway_caller(stack.channel(), &token, UNKNOWN_PARTICIPANT)];
    runs.push(
        closed_loop(
            "gateway, no token (TLS in + refusal only)",
            &anonymous,
            MODERATE,
            Some(tonic::Code::Unauthenticated),
        )
        .await,
    );
    runs.push(
        closed_loop(
            "gateway, unknown id (+verify+decide, no fwd)",
            &unknown,
            MODERATE,
            Some(tonic::Code::PermissionDenied),
        )
        .await,
    );
    let audited = stack.trail.events().len();
    runs.push(direct_open);
    runs.push(gateway_open);

    println!();
    print_runs(&runs);
    let (direct_low, gateway_low, direct_mod, gateway_mod) =
        (&runs[0], &runs[1], &runs[2], &runs[3]);
    let gateway_best = if runs[4].per_second > runs[3].per_second {
        &runs[4]
    } else {
        gateway_mod
    };
    let ratio = gateway_mod.per_second / direct_mod.per_second;
    let ratio_best = gateway_best.per_second / direct_mod.per_second;
    let added = |g: Duration, d: Duration| g.saturating_sub(d);
    println!();
    println!("summary (GetParticipant, loopback)");
    println!(
        "  throughput at {MODERATE}: direct {:.0} req/s, gateway {:.0} req/s (1 channel) -> \
         {:.1}% (target >= {:.0}%: {}); best gateway ({} channels) {:.1}%",
        direct_mod.per_second,
        gateway_mod.per_second,
        ratio * 100.0,
        TARGET_RATIO * 100.0,
        if ratio >= TARGET_RATIO {
            "met"
        } else {
            "MISSED"
        },
        gateway_best.channels,
        ratio_best * 100.0
    );
    println!(
        "  concurrency 1: p50 direct {} ms, gateway {} ms, added {} ms; p99 direct {} ms, \
         gateway {} ms, added {} ms",
        ms(direct_low.p50),
        ms(gateway_low.p50),
        ms(added(gateway_low.p50, direct_low.p50)),
        ms(direct_low.p99),
        ms(gateway_low.p99),
        ms(added(gateway_low.p99, direct_low.p99))
    );
    println!(
        "  concurrency {MODERATE} (saturated: latency is queueing on 2 shared cores): p50 \
         direct {} ms, gateway {} ms; p99 direct {} ms, gateway {} ms",
        ms(direct_mod.p50),
        ms(gateway_mod.p50),
        ms(direct_mod.p99),
        ms(gateway_mod.p99),
    );
    let (direct_open, gateway_open) = (&runs[runs.len() - 2], &runs[runs.len() - 1]);
    let added_p99 = added(gateway_open.p99, direct_open.p99);
    println!(
        "  moderate load, open loop at {rate:.0} req/s: p50 direct {} ms, gateway {} ms, \
         added {} ms; p99 direct {} ms, gateway {} ms, added {} ms (target <= {} ms: {})",
        ms(direct_open.p50),
        ms(gateway_open.p50),
        ms(added(gateway_open.p50, direct_open.p50)),
        ms(direct_open.p99),
        ms(gateway_open.p99),
        ms(added_p99),
        ms(TARGET_ADDED_P99),
        if added_p99 <= TARGET_ADDED_P99 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "  durable audit (SQLite, group commit) at {MODERATE}: {:.1}% of the gateway auditing \
         to nothing (target >= 80%: {}); the store alone commits {:.0} events/s (64 callers); \
         chain of {} events verified",
        audited_ratio * 100.0,
        if audited_ratio >= 0.8 {
            "met"
        } else {
            "MISSED"
        },
        store_events_per_second,
        verified.events
    );
    println!();
    println!("in-process pieces (no network), p50 / p99 in µs");
    println!(
        "  Gate::decide_call x{DECISIONS}: {:.2} / {:.2}",
        decide.0, decide.1
    );
    println!(
        "  TokenVerifier::verify (ES256, token remembered after the first) x{VERIFICATIONS}: {:.2} / {:.2}",
        verify.0, verify.1
    );
    println!(
        "  ring ECDSA P-256 verify of a token-sized message x{VERIFICATIONS}: {:.2} / {:.2}",
        ring_verify.0, ring_verify.1
    );
    println!(
        "  CallDescriber::describe x{DECISIONS}: {:.2} / {:.2}",
        describe.0, describe.1
    );
    println!("  events in the stack's MemoryTrail (unbounded) at the end: {audited}");
    stack.stop().await;
}
