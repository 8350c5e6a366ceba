//! Pushing to a SIP planning tool, end to end with real processes: a SIP-tool double (an HTTPS
//! server with its own CA, requiring Samsyn's client certificate) receives the demo
//! programme's participations, care teams and plans as FHIR resources; while it is down,
//! more changes are made and Samsyn is killed (SIGKILL) and restarted; once it is back every
//! message has arrived exactly once, the last state of each resource is the last change, and
//! every body is valid FHIR to an independent library. A tool whose certificate Samsyn
//! cannot verify receives nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Up;
use http_body_util::{BodyExt, Full};
use samsyn_kit::tls::{self, DevPki};
use samsyn_proto::common::v1::ParticipantId;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;

const LINK: &str = "sip-tool";
/// The plan's new text: Swedish, so the round trip is checked too.
const STRENGTHS: &str = "Tycker om att baka bröd åt grannarna – ändrad i planen";

/// One request the double accepted.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    path: String,
    body: String,
}

/// What the SIP tool has seen.
#[derive(Default)]
struct Seen {
    received: Vec<Received>,
    ids: HashSet<String>,
    duplicates: u64,
}

/// The SIP tool: HTTPS with its own CA, accepting only clients with Samsyn's certificates.
struct SipTool {
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    seen: Arc<Mutex<Seen>>,
    /// Answer every request 422 (a permanent refusal) while set.
    refusing: Arc<std::sync::atomic::AtomicBool>,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl SipTool {
    /// A tool presenting `identity_dir`'s `sip-tool` certificate, trusting `client_ca`.
    async fn new(identity_dir: &Path, client_ca: &Path) -> Self {
        let pki = DevPki::at(identity_dir);
        pki.ensure(&[LINK]).unwrap();
        let config = tls::server_config(
            &pki.identity(LINK).unwrap(),
            tls::trust_anchors(client_ca).unwrap(),
            tls::ClientAuth::Required,
        )
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut tool = Self {
            addr,
            tls: tls::with_http1(&config),
            seen: Arc::default(),
            refusing: Arc::default(),
            running: None,
        };
        tool.start().await;
        tool
    }

    async fn start(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.tls));
        let seen = Arc::clone(&self.seen);
        let refusing = Arc::clone(&self.refusing);
        self.running = Some(tokio::spawn(async move {
            // Owned by this task, so stopping the tool closes its open connections too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let tls = tls.clone();
                let seen = Arc::clone(&seen);
                let refusing = Arc::clone(&refusing);
                connections.spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let seen = Arc::clone(&seen);
                            let refusing = Arc::clone(&refusing);
                            async move {
                                let id = request
                                    .headers()
                                    .get("x-samsyn-message-id")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned();
                                let path = request.uri().path().to_owned();
                                let put = request.method() == http::Method::PUT;
                                let body = request.into_body().collect().await;
                                let mut seen = seen.lock().unwrap();
                                let Ok(body) = body.map(http_body_util::Collected::to_bytes) else {
                                    return http::Response::builder()
                                        .status(400)
                                        .body(Full::new(Bytes::new()));
                                };
                                if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                                    return http::Response::builder()
                                        .status(422)
                                        .body(Full::new(Bytes::new()));
                                }
                                if !put || id.is_empty() {
                                    return http::Response::builder()
                                        .status(400)
                                        .body(Full::new(Bytes::new()));
                                }
                                if seen.ids.insert(id.clone()) {
                                    seen.received.push(Received {
                                        id,
                                        path,
                                        body: String::from_utf8(body.to_vec()).unwrap(),
                                    });
                                } else {
                                    seen.duplicates += 1;
                                }
                                http::Response::builder()
                                    .status(200)
                                    .body(Full::new(Bytes::new()))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }

    fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().received.clone()
    }

    fn duplicates(&self) -> u64 {
        self.seen.lock().unwrap().duplicates
    }
}

/// A configuration pushing to the tool at `addr` and trusting `server_ca` for it.
fn config(dir: &Path, addr: SocketAddr, server_ca: &Path, tool_dir: &Path) -> PathBuf {
    let tool = DevPki::at(tool_dir);
    let identity = tool.identity(LINK).unwrap();
    let config = format!(
        r#"
[access]
[[access.links]]
id = "{LINK}"
kind = "sip_tool"
organisation = "SE2321000255"
ca_cert = "{ca}"
certificate_sha256 = ["{fingerprint}"]
allowed_rpcs = [
    "/samsyn.participants.v1.ParticipantsService/GetParticipant",
    "/samsyn.participants.v1.ParticipantsService/GetCareTeam",
    "/samsyn.plans.v1.PlansService/GetPlan",
]

[[access.pushes]]
link = "{LINK}"
endpoint = "https://127.0.0.1:{port}/fhir"
server_ca = "{server_ca}"
"#,
        ca = tool.ca_cert().display(),
        fingerprint = samsyn_gateway::links::fingerprint_hex(identity.leaf().unwrap()),
        port = addr.port(),
        server_ca = server_ca.display(),
    );
    let path = dir.join("samsyn.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// `samsyn outbox <args>`: what it printed.
fn outbox(dir: &Path, config: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_samsyn"))
        .arg("outbox")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `samsyn outbox status` for the link: (pending, delivered, dead).
fn outbox_status(dir: &Path, config: &Path) -> (u64, u64, u64) {
    let text = outbox(dir, config, &["status"]);
    let Some(line) = text.lines().find(|l| l.starts_with(&format!("{LINK}: "))) else {
        return (0, 0, 0);
    };
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

/// Waits until the tool has what `awaited` looks for and everything Samsyn queued: nothing
/// pending, and no new arrival for a while (the feeds may still be turning changes into
/// messages).
async fn settled(
    tool: &SipTool,
    dir: &Path,
    config: &Path,
    awaited: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = usize::MAX;
    let mut quiet_since = Instant::now();
    loop {
        let count = tool.received().len();
        if count != last {
            last = count;
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() > Duration::from_secs(3) && awaited(&tool.received()) {
            let (pending, delivered, dead) = outbox_status(dir, config);
            if pending == 0 {
                assert_eq!(dead, 0, "no dead letters");
                assert_eq!(
                    delivered as usize, count,
                    "the tool has every message Samsyn counts as delivered"
                );
                return tool.received();
            }
        }
        assert!(
            Instant::now() < deadline,
            "pushes did not settle: {count} received, outbox {:?}",
            outbox_status(dir, config)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn roster(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap()
}

fn person<'a>(roster: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    roster["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .unwrap()
}

/// Changes made at the services themselves, as any write would reach the feeds.
async fn change_coordinator_and_plan(
    up: &Up,
    dir: &Path,
    participant: &str,
    new: &serde_json::Value,
) {
    let certs = DevPki::at(dir.join("certs"));
    let client = tls::client_config(
        certs.trust_anchors().unwrap(),
        Some(&certs.identity("gateway").unwrap()),
    )
    .unwrap();
    let pid = || {
        Some(ParticipantId {
            value: participant.to_owned(),
        })
    };
    let mut participants = ParticipantsServiceClient::new(
        tls::channel(up.addr("participants"), "localhost", client.clone()).unwrap(),
    );
    let current = participants
        .get_participant(participants_pb::GetParticipantRequest {
            participant_id: pid(),
        })
        .await
        .unwrap()
        .into_inner();
    participants
        .assign_coordinator(participants_pb::AssignCoordinatorRequest {
            participant_id: pid(),
            revision: current.revision,
            principal: samsyn_proto::common::v1::OrganisationKind::Municipality as i32,
            rank: participants_pb::CoordinatorRank::Main as i32,
            staff: Some(samsyn_proto::common::v1::StaffRef {
                staff_id: new["id"].as_str().unwrap().to_owned(),
                organisation_id: Some(samsyn_proto::common::v1::OrganisationId {
                    value: new["organisation"].as_str().unwrap().to_owned(),
                }),
                unit_id: String::new(),
            }),
        })
        .await
        .unwrap();
    let mut plans =
        PlansServiceClient::new(tls::channel(up.addr("plans"), "localhost", client).unwrap());
    let plan = plans
        .get_active_plan(plans_pb::GetActivePlanRequest {
            participant_id: pid(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut content = plan.content.clone().unwrap();
    content.strengths = STRENGTHS.into();
    plans
        .update_plan(plans_pb::UpdatePlanRequest {
            participant_id: pid(),
            plan_id: plan.id.clone(),
            expected_revision: plan.revision,
            content: Some(content),
        })
        .await
        .unwrap();
}

/// Per resource, versions arrived in the order Samsyn made them (`meta.versionId` is the
/// record's revision). Returns whether some resource arrived in more than one version.
fn in_order(received: &[Received]) -> bool {
    let mut versions: HashMap<&str, Vec<u64>> = HashMap::new();
    for r in received {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if let Some(version) = body["meta"]["versionId"].as_str() {
            versions
                .entry(r.path.as_str())
                .or_default()
                .push(version.parse().unwrap());
        }
    }
    for (path, seen) in &versions {
        assert!(seen.is_sorted(), "{path} arrived out of order: {seen:?}");
    }
    versions.values().any(|v| v.first() != v.last())
}

/// Every body through the independent FHIR validator.
fn validate(received: &[Received]) {
    let out = tempfile::tempdir().unwrap();
    for (n, r) in received.iter().enumerate() {
        std::fs::write(out.path().join(format!("{n:05}.json")), &r.body).unwrap();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fhir/validate.py");
    let status = std::process::Command::new("python3")
        .arg(script)
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs (CI installs tests/fhir/requirements.txt)");
    assert!(status.success(), "pushed resources are valid FHIR R4");
}

/// A data directory, a SIP tool and a configuration pushing to it.
struct Scene {
    dir: tempfile::TempDir,
    tool: SipTool,
    config: PathBuf,
    _tools: tempfile::TempDir,
    _stranger: tempfile::TempDir,
}

impl Scene {
    /// Samsyn told to trust the tool's own CA, or with `stranger`, a CA that did not issue
    /// the tool's certificate.
    async fn new(stranger: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tools = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        // Samsyn's CA first: the tool accepts only clients it issued.
        DevPki::at(dir.path().join("certs"))
            .ensure(&["gateway"])
            .unwrap();
        DevPki::at(other.path()).ensure(&[]).unwrap();
        let tool = SipTool::new(tools.path(), &dir.path().join("certs/ca.pem")).await;
        let trusted = if stranger { other.path() } else { tools.path() };
        let config = config(
            dir.path(),
            tool.addr,
            &DevPki::at(trusted).ca_cert(),
            tools.path(),
        );
        Self {
            dir,
            tool,
            config,
            _tools: tools,
            _stranger: other,
        }
    }

    /// `samsyn up --demo` with the configuration; with `seeded`, once the demo is seeded.
    fn up(&self, seeded: bool) -> Up {
        let config = self.config.display().to_string();
        Up::start_configured(
            self.dir.path(),
            &["--demo"],
            seeded.then_some("demo programme seeded"),
            &[("SAMSYN_CONFIG", config.as_str())],
        )
    }

    fn status(&self) -> (u64, u64, u64) {
        outbox_status(self.dir.path(), &self.config)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_the_sip_tool_once_in_order_across_outage_and_kill() {
    let mut scene = Scene::new(false).await;
    let up = scene.up(true);
    let (dir, config) = (scene.dir.path().to_owned(), scene.config.clone());

    let roster = roster(&dir);
    let orjan = person(&roster, "orjan")["id"].as_str().unwrap().to_owned();
    let orjans = |kind: &str, received: &[Received], text: &str| {
        received
            .iter()
            .rev()
            .find(|r| {
                r.path.starts_with(&format!("/fhir/{kind}/"))
                    && r.body.contains(&orjan)
                    && r.body.contains(text)
            })
            .cloned()
    };
    let before = settled(&scene.tool, &dir, &config, |received| {
        orjans("CareTeam", received, "").is_some() && orjans("CarePlan", received, "").is_some()
    })
    .await;
    let kinds: HashSet<&str> = before
        .iter()
        .filter_map(|r| r.path.split('/').nth(2))
        .collect();
    for kind in ["Patient", "EpisodeOfCare", "CareTeam", "CarePlan"] {
        assert!(kinds.contains(kind), "{kind} pushed: {kinds:?}");
    }
    for r in &before {
        assert!(r.path.starts_with("/fhir/"), "{}", r.path);
    }
    // A pusher that falls behind the demo's seeding reads each record once it is final, so
    // only order, not change, is certain here.
    in_order(&before);

    // The tool goes down; a coordinator and the plan change; Samsyn is killed and restarted.
    scene.tool.stop();
    let nils = person(&roster, "nils").clone();
    change_coordinator_and_plan(&up, &dir, &orjan, &nils).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox_status(&dir, &config).0 == 0 {
        assert!(
            Instant::now() < deadline,
            "the changes wait in the outbox while the tool is down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    up.kill();
    let up = scene.up(false);
    scene.tool.start().await;

    let nils_id = nils["id"].as_str().unwrap();
    let after = settled(&scene.tool, &dir, &config, |received| {
        orjans("CareTeam", received, nils_id).is_some()
            && orjans("CarePlan", received, STRENGTHS).is_some()
    })
    .await;
    assert!(after.len() > before.len());
    assert_eq!(scene.tool.duplicates(), 0, "no message arrived twice");
    let ids: HashSet<&str> = after.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), after.len(), "every message id once");
    assert!(
        in_order(&after),
        "the changed plan arrived as a later version of the one pushed before"
    );
    // The last versions the tool holds are the changed ones, the Swedish text intact.
    let team = orjans("CareTeam", &after, "").unwrap();
    assert!(
        team.body.contains(nils_id),
        "the new coordinator: {}",
        team.body
    );
    let plan = orjans("CarePlan", &after, "").unwrap();
    assert!(
        plan.body.contains(STRENGTHS),
        "the changed plan: {}",
        plan.body
    );
    validate(&after);
    drop(up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_to_a_tool_samsyn_cannot_verify() {
    // Samsyn is told to trust another CA than the one that issued the tool's certificate.
    let scene = Scene::new(true).await;
    let up = scene.up(true);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (pending, delivered, _) = scene.status();
    assert!(pending > 0, "changes are queued");
    assert_eq!(delivered, 0);
    assert!(
        scene.tool.received().is_empty(),
        "the tool received nothing"
    );
    drop(up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_messages_become_dead_letters_that_an_operator_queues_again() {
    let scene = Scene::new(false).await;
    scene
        .tool
        .refusing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let up = scene.up(true);
    let (dir, config, tool) = (scene.dir.path(), &scene.config, &scene.tool);
    // Refused five times, each participant's first message is given up on; it holds back
    // that participant's later messages rather than letting them overtake it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let dead = loop {
        let (pending, _, dead) = outbox_status(dir, config);
        if dead > 0 && pending > 0 {
            break dead;
        }
        assert!(Instant::now() < deadline, "no dead letters");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let listed = outbox(dir, config, &["status"]);
    let dead_lines: Vec<&str> = listed
        .lines()
        .filter(|l| l.trim_start().starts_with("dead "))
        .collect();
    assert!(dead_lines.len() as u64 >= dead, "{listed}");
    assert!(
        dead_lines.iter().all(|l| l.contains("permanent_status")),
        "each dead letter says why, without the far side's words: {listed}"
    );
    assert!(tool.received().is_empty());

    // The tool is fixed; an operator queues the dead letters again, from another process.
    tool.refusing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let retried = outbox(dir, config, &["retry", LINK]);
    assert!(retried.contains("dead letters queued again"), "{retried}");
    let received = settled(tool, dir, config, |received| !received.is_empty()).await;
    assert_eq!(tool.duplicates(), 0);
    in_order(&received);
    drop(up);
}
