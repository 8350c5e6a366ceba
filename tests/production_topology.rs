//! The production topology, for real: each service a `samsyn serve` process on PostgreSQL
//! (a schema each), two `samsyn serve gateway` replicas on one gateway schema sharing one
//! data directory's certificates (the same development CA, audit signing key and page
//! token key), and HAProxy from Debian's packages in TCP mode in front of the replicas,
//! checking each replica's `/readyz`. Under a bounded write and read load through the
//! balancer one replica is SIGKILLed: the clients, retrying on `UNAVAILABLE`, carry on
//! through the other; afterwards every acknowledged write is readable, every acknowledged
//! call is in the audit trail, the trail verifies, a page token from one replica opens on
//! the other, and the killed replica, restarted, continues the chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Up, eventually, free_port, http_get};
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_kit::tls;
use samsyn_proto::audit::v1 as audit_pb;
use samsyn_proto::audit::v1::audit_service_client::AuditServiceClient;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{OrganisationId, PageRequest};
use tonic::transport::Channel;

const REGION: &str = "SE2321000255";
const TEAM_LEADER: &str = "SE2321000255-tl01";
const AUDITOR: &str = "SE2321000255-au01";
/// Clients, each on its own connection through the balancer.
const CLIENTS: usize = 6;
/// Writes per client, each followed by a read.
const WRITES_PER_CLIENT: usize = 25;
/// Acknowledged writes after which one replica is killed.
const KILL_AFTER: usize = 40;
/// How long one call may keep retrying.
const CALL_BUDGET: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(60);

/// HAProxy in the foreground, stopped by its process id when dropped.
struct Haproxy {
    child: Child,
}

impl Haproxy {
    /// TCP mode, round robin over the replicas, each checked by its `/readyz`.
    fn start(dir: &Path, listen: SocketAddr, replicas: &[(SocketAddr, SocketAddr)]) -> Self {
        let mut config = format!(
            "global\n    maxconn 256\n\
             defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 60s\n    \
             timeout server 60s\n    retries 3\n    option redispatch\n\
             frontend gateways\n    bind {listen}\n    default_backend gateways\n\
             backend gateways\n    balance roundrobin\n    option httpchk GET /readyz\n    \
             default-server inter 300ms fall 2 rise 2\n"
        );
        for (n, (grpc, probe)) in replicas.iter().enumerate() {
            config.push_str(&format!(
                "    server gateway{n} {grpc} check port {}\n",
                probe.port()
            ));
        }
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("haproxy runs (tests/production/requirements.sh installs it)");
        Self { child }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A random page token key, as the configuration reads it: 32 bytes, base64.
fn page_token_key() -> String {
    use base64::Engine;
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn token(certs: &Path, id: &str, roles: &[&str]) -> String {
    DevIssuer::at(certs)
        .issue(
            &Principal {
                id: id.into(),
                kind: PrincipalKind::Staff,
                organisation: Some(REGION.into()),
                unit: None,
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                teams: vec![],
                purpose: Some("care".into()),
                acting_through: None,
            },
            Duration::from_secs(1800),
        )
        .unwrap()
}

/// A request with the bearer token and a fresh trace; returns the trace id too.
fn request<T>(token: &str, message: T) -> (tonic::Request<T>, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
    metadata.insert(
        "traceparent",
        format!("00-{trace_id}-{span_id}-01").parse().unwrap(),
    );
    (request, trace_id)
}

/// Whether a failed call may be sent again: the balancer or a replica was unavailable, or
/// the replica died under the call (a cut connection). Every write carries an idempotency
/// key, so a call that did happen answers the same again.
fn retryable(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::Unavailable => true,
        tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::Internal => {
            let message = status.message().to_ascii_lowercase();
            [
                "transport",
                "connection",
                "h2 protocol",
                "broken pipe",
                "reset",
            ]
            .iter()
            .any(|cut| message.contains(cut))
        }
        _ => false,
    }
}

/// Calls until the answer is not retryable or the budget is spent; the answer and the
/// trace id of the attempt that gave it.
async fn with_retries<T, F, Fut>(
    retries: &AtomicUsize,
    mut call: F,
) -> (Result<T, tonic::Status>, String)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (Result<T, tonic::Status>, String)>,
{
    let deadline = Instant::now() + CALL_BUDGET;
    loop {
        let (answer, trace_id) = call().await;
        match &answer {
            Err(status) if retryable(status) && Instant::now() < deadline => {
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return (answer, trace_id),
        }
    }
}

fn create_team(request_id: &str) -> board_pb::CreateTeamRequest {
    board_pb::CreateTeamRequest {
        request_id: request_id.into(),
        name: format!("FACT {request_id}"),
        owner_organisation_id: Some(OrganisationId {
            value: REGION.into(),
        }),
        coordinators: Vec::new(),
        criteria: Vec::new(),
        status_levels: Vec::new(),
    }
}

/// Every team, read page by page.
async fn all_teams(channel: Channel, token: &str) -> Vec<String> {
    let mut board = BoardServiceClient::new(channel);
    let mut ids = Vec::new();
    let mut page_token = String::new();
    loop {
        let (request, _) = request(
            token,
            board_pb::ListTeamsRequest {
                page: Some(PageRequest {
                    page_size: 100,
                    page_token: page_token.clone(),
                }),
            },
        );
        let page = board.list_teams(request).await.unwrap().into_inner();
        ids.extend(page.teams.into_iter().map(|t| t.team_id));
        page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            return ids;
        }
    }
}

/// The audit trail's events of `principal`, by trace id.
async fn audited(channel: Channel, token: &str, principal: &str) -> HashMap<String, Vec<i32>> {
    let mut audit = AuditServiceClient::new(channel);
    let mut by_trace: HashMap<String, Vec<i32>> = HashMap::new();
    let mut page_token = String::new();
    loop {
        let (request, _) = request(
            token,
            audit_pb::ListEventsRequest {
                principal_id: principal.into(),
                page: Some(PageRequest {
                    page_size: 500,
                    page_token: page_token.clone(),
                }),
                ..Default::default()
            },
        );
        let page = audit.list_events(request).await.unwrap().into_inner();
        for event in page.events {
            by_trace
                .entry(event.trace_id)
                .or_default()
                .push(event.status_code);
        }
        page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            return by_trace;
        }
    }
}

async fn verify(channel: Channel, token: &str) -> audit_pb::VerifyAuditResponse {
    let (request, _) = request(token, audit_pb::VerifyAuditRequest {});
    AuditServiceClient::new(channel)
        .verify_audit(request)
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_behind_haproxy_lose_nothing_when_one_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // One data directory's certificates for every process: the development CA, the
    // token issuer's key and (made by the first gateway) the audit signing key.
    let certs_made = Command::new(env!("CARGO_BIN_EXE_samsyn"))
        .arg("certs")
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(certs_made.status.success());
    let certs = data.join("certs");
    DevIssuer::at(&certs).ensure().unwrap();
    let key_file = data.join("page-token.key");
    std::fs::write(&key_file, page_token_key()).unwrap();
    let config_file = data.join("samsyn.toml");
    std::fs::write(
        &config_file,
        format!(
            "[[access.page_token_keys]]\nid = 1\nsecret_file = \"{}\"\n",
            key_file.display()
        ),
    )
    .unwrap();

    let listen: Vec<(String, String)> = ["participants", "consent", "plans", "board"]
        .iter()
        .map(|part| {
            (
                format!("SAMSYN_{}__LISTEN", part.to_uppercase()),
                format!("127.0.0.1:{}", free_port()),
            )
        })
        .collect();
    let mut env: Vec<(String, String)> = listen.clone();
    env.extend([
        ("SAMSYN_CONFIG".into(), config_file.display().to_string()),
        ("SAMSYN_ACCESS__DEVELOPMENT_ISSUER".into(), "true".into()),
    ]);
    let serve = |part: &str, log: &str, url: &str, extra: &[(&str, String)]| {
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("DATABASE_URL", url));
        env.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        Up::serve(data, part, &env, &data.join(log))
    };
    let mut services = Vec::new();
    for part in ["participants", "consent", "plans", "board"] {
        let url = samsyn_kit::testing::fresh_postgres_url().await.unwrap();
        services.push(serve(part, &format!("{part}.log"), &url, &[]));
    }
    // Two replicas on one gateway database; the first makes the audit signing key.
    let gateway_url = samsyn_kit::testing::fresh_postgres_url().await.unwrap();
    let replica_env = |port: u16| {
        [
            ("SAMSYN_GATEWAY__LISTEN", format!("127.0.0.1:{port}")),
            ("SAMSYN_GATEWAY__PROBE_LISTEN", "127.0.0.1:0".to_owned()),
        ]
    };
    let (port_a, port_b) = (free_port(), free_port());
    let gateway_a = serve(
        "gateway",
        "gateway-a.log",
        &gateway_url,
        &replica_env(port_a),
    );
    let gateway_b = serve(
        "gateway",
        "gateway-b.log",
        &gateway_url,
        &replica_env(port_b),
    );
    let (addr_a, probe_a) = (gateway_a.addr("gateway"), gateway_a.probe("gateway"));
    let (addr_b, probe_b) = (gateway_b.addr("gateway"), gateway_b.probe("gateway"));
    for probe in [probe_a, probe_b] {
        eventually(WAIT, "both replicas ready", || async {
            http_get(probe, "/readyz").await == Some(200)
        })
        .await;
    }
    let balancer = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let haproxy = Haproxy::start(data, balancer, &[(addr_a, probe_a), (addr_b, probe_b)]);

    let client_tls =
        tls::client_config(tls::DevPki::at(&certs).trust_anchors().unwrap(), None).unwrap();
    let through = |addr: SocketAddr| tls::channel(addr, "localhost", client_tls.clone()).unwrap();
    let writer = token(&certs, TEAM_LEADER, &["case_manager", "team_leader"]);
    let auditor = token(&certs, AUDITOR, &["auditor"]);
    let retries = Arc::new(AtomicUsize::new(0));

    // The balancer is up once a call goes through it.
    let mut board = BoardServiceClient::new(through(balancer));
    let mut seeded = Vec::new();
    for n in 0..3 {
        let (answer, _) = with_retries(&retries, || {
            let (request, trace) = request(&writer, create_team(&format!("seed-{n}")));
            let mut board = board.clone();
            async move { (board.create_team(request).await, trace) }
        })
        .await;
        seeded.push(answer.unwrap().into_inner().team_id);
    }
    board = BoardServiceClient::new(through(balancer));
    drop(board);

    // A page token sealed by one replica opens on the other (the shared key).
    let (first, _) = request(
        &writer,
        board_pb::ListTeamsRequest {
            page: Some(PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
        },
    );
    let first = BoardServiceClient::new(through(addr_a))
        .list_teams(first)
        .await
        .unwrap()
        .into_inner();
    let next = first.page.unwrap().next_page_token;
    assert!(!next.is_empty());
    let (second, _) = request(
        &writer,
        board_pb::ListTeamsRequest {
            page: Some(PageRequest {
                page_size: 1,
                page_token: next,
            }),
        },
    );
    let second = BoardServiceClient::new(through(addr_b))
        .list_teams(second)
        .await
        .expect("replica B opens replica A's page token")
        .into_inner();
    assert_eq!(second.teams.len(), 1);
    assert_ne!(second.teams[0].team_id, first.teams[0].team_id);

    // The load: each client on its own connection through the balancer, a write then a
    // read of something it wrote, retrying what the dying replica cut.
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let board = BoardServiceClient::new(through(balancer));
        let writer = writer.clone();
        let acknowledged = Arc::clone(&acknowledged);
        let retries = Arc::clone(&retries);
        clients.spawn(async move {
            let mut written = Vec::new();
            let mut traces = Vec::new();
            for n in 0..WRITES_PER_CLIENT {
                let key = format!("load-{client}-{n}");
                let (answer, trace) = with_retries(&retries, || {
                    let (request, trace) = request(&writer, create_team(&key));
                    let mut board = board.clone();
                    async move { (board.create_team(request).await, trace) }
                })
                .await;
                let team = answer
                    .unwrap_or_else(|s| panic!("write {key} not acknowledged: {s:?}"))
                    .into_inner();
                acknowledged.fetch_add(1, Ordering::SeqCst);
                traces.push(trace);
                written.push(team.team_id);
                let id = written[n / 2].clone();
                let (answer, trace) = with_retries(&retries, || {
                    let (request, trace) = request(
                        &writer,
                        board_pb::GetTeamRequest {
                            team_id: id.clone(),
                        },
                    );
                    let mut board = board.clone();
                    async move { (board.get_team(request).await, trace) }
                })
                .await;
                let read = answer
                    .unwrap_or_else(|s| panic!("read of {id} failed: {s:?}"))
                    .into_inner();
                assert_eq!(read.team_id, id);
                traces.push(trace);
            }
            (written, traces)
        });
    }
    eventually(WAIT, "load under way", || async {
        acknowledged.load(Ordering::SeqCst) >= KILL_AFTER
    })
    .await;
    let gateway_a_pid = gateway_a.pid();
    gateway_a.kill();
    eprintln!("killed replica A (pid {gateway_a_pid}) after {KILL_AFTER} acknowledged writes");

    let mut written = HashSet::new();
    let mut traces = Vec::new();
    while let Some(finished) = clients.join_next().await {
        let (ids, client_traces) = finished.expect("a client carried on to the end");
        written.extend(ids);
        traces.extend(client_traces);
    }
    assert_eq!(
        written.len(),
        CLIENTS * WRITES_PER_CLIENT,
        "every write acknowledged"
    );
    eprintln!(
        "{} writes and reads acknowledged, {} retries",
        traces.len(),
        retries.load(Ordering::SeqCst)
    );

    // Every acknowledged write is readable, through the balancer.
    let teams: HashSet<String> = all_teams(through(balancer), &writer)
        .await
        .into_iter()
        .collect();
    let missing: Vec<_> = written
        .iter()
        .chain(&seeded)
        .filter(|id| !teams.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not readable: {missing:?}"
    );

    // Every acknowledged call is in the trail, answered OK, and the trail verifies.
    let events = audited(through(balancer), &auditor, TEAM_LEADER).await;
    let unaudited: Vec<_> = traces
        .iter()
        .filter(|trace| !events.get(*trace).is_some_and(|codes| codes.contains(&0)))
        .collect();
    assert!(
        unaudited.is_empty(),
        "acknowledged but not audited: {unaudited:?}"
    );
    let verified = verify(through(balancer), &auditor).await;
    assert_eq!(verified.first_broken_position, 0, "{}", verified.problem);
    assert!(verified.events_checked as usize >= traces.len());

    // The killed replica, restarted on its port, continues the one chain.
    let gateway_a = serve(
        "gateway",
        "gateway-a2.log",
        &gateway_url,
        &replica_env(port_a),
    );
    let restarted = gateway_a.addr("gateway");
    eventually(WAIT, "the restarted replica ready", || async {
        http_get(gateway_a.probe("gateway"), "/readyz").await == Some(200)
    })
    .await;
    for (n, addr) in [restarted, addr_b, restarted].into_iter().enumerate() {
        let (request, _) = request(&writer, create_team(&format!("after-{n}")));
        BoardServiceClient::new(through(addr))
            .create_team(request)
            .await
            .unwrap();
    }
    let after = verify(through(restarted), &auditor).await;
    assert_eq!(after.first_broken_position, 0, "{}", after.problem);
    assert!(after.events_checked > verified.events_checked);

    drop(haproxy);
    drop(gateway_a);
    drop(gateway_b);
    while let Some(service) = services.pop() {
        drop(service);
    }
}
