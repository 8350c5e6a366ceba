//! The gateway against the plain proxies users would otherwise put in front of the services.
//!
//! `GetParticipant` of one demo participant, five ways to the same participants service of
//! one `samsyn up --demo` (this package's release binary): direct over mutual TLS; through
//! nginx (`grpc_pass`) and through HAProxy (HTTP mode, HTTP/2 both sides), each with TLS in,
//! mutual TLS out with a certificate from the development CA and kept-alive upstream
//! connections, no policy and no audit; through `samsyn-peer-proxy` ("stack proxy": the
//! gateway's own server and forwarding, none of its work, so the stack's cost and the
//! gateway's show apart); and through the Samsyn gateway (a demo case manager's bearer
//! token, decision, durable audit, mutual TLS out). One closed-loop load
//! generator (this process) drives each path in turn at each concurrency, the order rotated
//! every round; each figure is the median of the rounds.
//!
//! Optional rows: `PEERS_BEFORE_BIN` names another `samsyn` binary (e.g. main's) started the
//! same way, measured direct and through its gateway ("direct, before", "gateway, before"); `PEERS_POSTGRES=1` adds a `samsyn up --demo`
//! whose participants service stores in a fresh PostgreSQL schema (the server of
//! `SAMSYN_TEST_DATABASE_URL`), measured direct (and the before binary likewise).
//!
//! Everything listens on 127.0.0.1; every process started here is stopped by its id when the
//! benchmark ends, fails or panics. Needs nginx and HAProxy (`bench/requirements.sh`).
//! Run: `cargo bench -p samsyn --bench peers` (`PEERS_SECONDS`, `PEERS_ROUNDS`,
//! `PEERS_CONCURRENCY` and `PEERS_PATHS` to change the run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::free_port;

use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_kit::tls::{self, DevPki};
use samsyn_proto::common::v1::ParticipantId;
use samsyn_proto::participants::v1::GetParticipantRequest;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use tonic::transport::Channel;

/// The demo person who reads, and the participant read (on her care team).
const READER: &str = "anna";
const PARTICIPANT: &str = "orjan";
/// The certificate the proxies present on both sides.
const PROXY_IDENTITY: &str = "peer-proxy";
/// The row of `samsyn-peer-proxy`: the gateway's stack, none of its work.
const STACK_PROXY: &str = "stack proxy";
/// Connections per path: a client pool, so a multi-process proxy can use every core.
const MAX_CONNECTIONS: usize = 4;
/// Load before each measurement, not counted.
const WARM_UP: Duration = Duration::from_millis(500);
/// The most one call may take before it counts as a failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a started process may take to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A process started here: stopped by its id (SIGTERM, then SIGKILL after five seconds) when
/// dropped, also while unwinding from a panic.
struct Process {
    name: &'static str,
    child: Child,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start ({e}); see bench/requirements.sh"));
        Self { name, child }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop on SIGTERM: killed", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `samsyn up --demo` on free ports, with the addresses it announced.
struct Samsyn {
    _process: Process,
    data_dir: PathBuf,
    participants: SocketAddr,
    gateway: SocketAddr,
}

impl Samsyn {
    /// Starts `binary` and waits until the demo is seeded.
    fn start(binary: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::File::create(data_dir.join("samsyn.log")).unwrap();
        let mut command = Command::new(binary);
        command
            .args(["up", "--demo", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for part in common::PARTS {
            command.env(
                format!("SAMSYN_{}__LISTEN", part.to_uppercase()),
                "127.0.0.1:0",
            );
        }
        command.envs(env.iter().copied());
        let mut process = Process::spawn("samsyn", &mut command);
        let stdout = process.child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut participants, mut gateway) = (None, None);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "{} did not seed the demo; see {}",
                    binary.display(),
                    data_dir.join("samsyn.log").display()
                )
            });
            if let Some((part, url)) = line.split_once(" listening on https://") {
                let addr: SocketAddr = url.parse().unwrap();
                match part {
                    "participants" => participants = Some(addr),
                    "gateway" => gateway = Some(addr),
                    _ => {}
                }
            }
            if line.starts_with("demo programme") {
                break;
            }
        }
        Self {
            _process: process,
            data_dir: data_dir.to_owned(),
            participants: participants.expect("participants announced"),
            gateway: gateway.expect("gateway announced"),
        }
    }

    fn certs(&self) -> PathBuf {
        self.data_dir.join("certs")
    }

    /// The demo roster entry of `key`.
    fn person(&self, key: &str) -> serde_json::Value {
        let roster: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.data_dir.join("demo.json")).unwrap())
                .unwrap();
        roster["people"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == key)
            .unwrap_or_else(|| panic!("no demo person {key}"))
            .clone()
    }

    /// The demo participant read by every path.
    fn participant_id(&self) -> String {
        self.person(PARTICIPANT)["id"].as_str().unwrap().to_owned()
    }

    /// A development token of the reader, as `samsyn as anna` makes one.
    fn reader_token(&self) -> String {
        let person = self.person(READER);
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let principal = Principal {
            id: person["id"].as_str().unwrap().to_owned(),
            kind: PrincipalKind::Staff,
            organisation: person["organisation"].as_str().map(str::to_owned),
            unit: person["unit"].as_str().map(str::to_owned),
            roles: strings(&person["roles"]),
            teams: strings(&person["teams"]),
            purpose: Some("care".to_owned()),
            acting_through: None,
        };
        DevIssuer::at(self.certs())
            .issue(&principal, Duration::from_secs(3600))
            .unwrap()
    }

    /// `count` mutual-TLS channels straight to the participants service.
    fn direct(&self, count: usize) -> Vec<Channel> {
        let pki = DevPki::at(self.certs());
        let identity = pki.identity("gateway").unwrap();
        let config = tls::client_config(pki.trust_anchors().unwrap(), Some(&identity)).unwrap();
        (0..count)
            .map(|_| tls::channel(self.participants, "localhost", config.clone()).unwrap())
            .collect()
    }
}

/// `count` TLS channels (no client certificate) to `addr`, trusting the development CA.
fn tls_channels(certs: &Path, addr: SocketAddr, count: usize) -> Vec<Channel> {
    let config = tls::client_config(DevPki::at(certs).trust_anchors().unwrap(), None).unwrap();
    (0..count)
        .map(|_| tls::channel(addr, "localhost", config.clone()).unwrap())
        .collect()
}

/// Waits until something accepts TCP connections at `addr`.
fn wait_listening(name: &str, addr: SocketAddr, process: &mut Process, log: &Path) {
    let deadline = Instant::now() + START_TIMEOUT;
    while std::net::TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("{name} exited ({status}); see {}", log.display());
        }
        assert!(
            Instant::now() < deadline,
            "{name} does not listen at {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nginx in front of `upstream`: two workers, `grpc_pass` over mutual TLS, upstream
/// connections kept alive.
fn start_nginx(dir: &Path, certs: &Path, upstream: SocketAddr) -> (Process, SocketAddr) {
    let dir = dir.join("nginx");
    std::fs::create_dir_all(dir.join("temp")).unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let pki = DevPki::at(certs);
    let (cert, key, ca) = (
        pki.cert(PROXY_IDENTITY),
        pki.key(PROXY_IDENTITY),
        pki.ca_cert(),
    );
    let temp = dir.join("temp");
    let t = temp.display();
    let config = format!(
        "daemon off;\nmaster_process on;\nworker_processes 2;\nuser root;\n\
         pid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n\
           client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n\
           fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n\
           upstream participants {{\n    server {upstream};\n    keepalive 128;\n    \
             keepalive_requests 10000000;\n    keepalive_timeout 60s;\n  }}\n\
           server {{\n    listen {listen} ssl http2;\n    \
             ssl_certificate {cert};\n    ssl_certificate_key {key};\n    \
             keepalive_requests 10000000;\n    keepalive_timeout 60s;\n    \
             location / {{\n      grpc_pass grpcs://participants;\n      \
               grpc_ssl_certificate {cert};\n      grpc_ssl_certificate_key {key};\n      \
               grpc_ssl_trusted_certificate {ca};\n      grpc_ssl_verify on;\n      \
               grpc_ssl_name localhost;\n      grpc_ssl_server_name on;\n      \
               grpc_ssl_session_reuse on;\n    }}\n  }}\n}}\n",
        dir = dir.display(),
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, config).unwrap();
    let log = dir.join("error.log");
    let mut process = Process::spawn(
        "nginx",
        Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(&log)
            .arg("-c")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr.log")).unwrap(),
            )),
    );
    wait_listening("nginx", listen, &mut process, &dir.join("stderr.log"));
    (process, listen)
}

/// HAProxy in front of `upstream`: HTTP mode, HTTP/2 on both sides, two threads, mutual TLS
/// out, idle upstream connections reused by every client.
fn start_haproxy(dir: &Path, certs: &Path, upstream: SocketAddr) -> (Process, SocketAddr) {
    let dir = dir.join("haproxy");
    std::fs::create_dir_all(&dir).unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let pki = DevPki::at(certs);
    // HAProxy reads the certificate and its key from one file.
    let combined = dir.join("peer-proxy.pem");
    let mut pem = std::fs::read_to_string(pki.cert(PROXY_IDENTITY)).unwrap();
    pem.push_str(&std::fs::read_to_string(pki.key(PROXY_IDENTITY)).unwrap());
    samsyn_kit::tls::write_private(&combined, &pem).unwrap();
    let config = format!(
        "global\n  maxconn 4096\n  nbthread 2\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  \
         timeout server 60s\n  http-reuse always\n\
         frontend participants\n  bind {listen} ssl crt {crt} alpn h2\n  \
         default_backend participants\n\
         backend participants\n  server participants {upstream} ssl verify required \
         ca-file {ca} crt {crt} alpn h2 sni str(localhost) verifyhost localhost\n",
        crt = combined.display(),
        ca = pki.ca_cert().display(),
    );
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let log = dir.join("haproxy.log");
    let mut process = Process::spawn(
        "haproxy",
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr.log")).unwrap(),
            )),
    );
    wait_listening("haproxy", listen, &mut process, &dir.join("stderr.log"));
    (process, listen)
}

/// `samsyn-peer-proxy` in front of `upstream`: the gateway's own server and forwarding
/// (tonic, hyper, rustls) with none of its work, so the table tells the stack's cost from
/// the gateway's.
fn start_stack_proxy(dir: &Path, certs: &Path, upstream: SocketAddr) -> (Process, SocketAddr) {
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = dir.join("peer-proxy.log");
    let mut process = Process::spawn(
        "samsyn-peer-proxy",
        Command::new(env!("CARGO_BIN_EXE_samsyn-peer-proxy"))
            .arg(listen.to_string())
            .arg(upstream.to_string())
            .arg(certs)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap())),
    );
    wait_listening("samsyn-peer-proxy", listen, &mut process, &log);
    (process, listen)
}

/// One way to the participants service.
struct Route {
    label: String,
    channels: Vec<Channel>,
    participant_id: String,
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Route {
    async fn call(&self, n: usize) -> Result<(), tonic::Status> {
        let mut client =
            ParticipantsServiceClient::new(self.channels[n % self.channels.len()].clone());
        let mut request = tonic::Request::new(GetParticipantRequest {
            participant_id: Some(ParticipantId {
                value: self.participant_id.clone(),
            }),
        });
        request.set_timeout(CALL_TIMEOUT);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        client.get_participant(request).await.map(|_| ())
    }
}

/// What one measurement saw.
#[derive(Debug, Clone, Copy)]
struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    failed: usize,
    /// Share of the machine's CPU time left idle while it was counted; `None` without
    /// `/proc/stat`.
    idle: Option<f64>,
}

/// The machine's CPU time so far from `/proc/stat`: (idle and waiting on I/O, all), in ticks.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    (ticks.len() == 8).then(|| (ticks[3] + ticks[4], ticks.iter().sum()))
}

/// `concurrency` callers in a closed loop on `path` for `length` after a warm-up.
async fn measure(path: &Arc<Route>, concurrency: usize, length: Duration) -> Measured {
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for n in 0..concurrency {
        let (path, counting, stop) = (path.clone(), counting.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let outcome = path.call(n).await;
                if counting.load(Ordering::Relaxed) {
                    match outcome {
                        Ok(()) => latencies.push(started.elapsed()),
                        Err(_) => failed += 1,
                    }
                }
            }
            (latencies, failed)
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let ticks_before = cpu_ticks();
    tokio::time::sleep(length).await;
    counting.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let idle = match (ticks_before, cpu_ticks()) {
        (Some((idle_before, all_before)), Some((idle_after, all_after)))
            if all_after > all_before =>
        {
            Some((idle_after - idle_before) as f64 / (all_after - all_before) as f64)
        }
        _ => None,
    };
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (l, f) = task.await.unwrap();
        latencies.extend(l);
        failed += f;
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measured {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        failed,
        idle,
    }
}

/// A share as a whole percentage, or a dash when unknown.
fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".to_owned(), |s| format!("{:.0} %", s * 100.0))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is not valid")))
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

#[tokio::main]
async fn main() {
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("one crypto provider");
    let seconds: f64 = setting("PEERS_SECONDS", 2.0);
    let rounds: usize = setting("PEERS_ROUNDS", 3);
    let concurrencies: Vec<usize> = std::env::var("PEERS_CONCURRENCY")
        .unwrap_or_else(|_| "1,16,64".to_owned())
        .split(',')
        .map(|c| c.trim().parse().expect("PEERS_CONCURRENCY: numbers"))
        .collect();
    let before: Option<PathBuf> = std::env::var_os("PEERS_BEFORE_BIN").map(PathBuf::from);
    let postgres = std::env::var("PEERS_POSTGRES").is_ok_and(|v| v == "1");
    let length = Duration::from_secs_f64(seconds);

    let dir = tempfile::tempdir().unwrap();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_samsyn"));
    let started = Instant::now();
    let load_at_start = load_average();

    // Every process lives until the end of main (or the unwinding of a panic).
    let samsyn = Samsyn::start(&binary, &dir.path().join("after"), &[]);
    DevPki::at(samsyn.certs())
        .ensure(&[PROXY_IDENTITY])
        .unwrap();
    let (_nginx, nginx_addr) = start_nginx(dir.path(), &samsyn.certs(), samsyn.participants);
    let (_haproxy, haproxy_addr) = start_haproxy(dir.path(), &samsyn.certs(), samsyn.participants);
    let (_stack, stack_addr) = start_stack_proxy(dir.path(), &samsyn.certs(), samsyn.participants);

    let mut paths: Vec<Route> = Vec::new();
    let connections = MAX_CONNECTIONS;
    let id = samsyn.participant_id();
    paths.push(Route {
        label: "direct".into(),
        channels: samsyn.direct(connections),
        participant_id: id.clone(),
        token: None,
    });
    paths.push(Route {
        label: "nginx".into(),
        channels: tls_channels(&samsyn.certs(), nginx_addr, connections),
        participant_id: id.clone(),
        token: None,
    });
    paths.push(Route {
        label: "HAProxy".into(),
        channels: tls_channels(&samsyn.certs(), haproxy_addr, connections),
        participant_id: id.clone(),
        token: None,
    });
    paths.push(Route {
        label: STACK_PROXY.into(),
        channels: tls_channels(&samsyn.certs(), stack_addr, connections),
        participant_id: id.clone(),
        token: None,
    });
    paths.push(Route {
        label: "gateway".into(),
        channels: tls_channels(&samsyn.certs(), samsyn.gateway, connections),
        participant_id: id.clone(),
        token: Some(format!("Bearer {}", samsyn.reader_token()).parse().unwrap()),
    });

    let mut others = Vec::new();
    let mut add_direct = |label: &str, binary: &Path, env: &[(&str, &str)], name: &str| {
        let other = Samsyn::start(binary, &dir.path().join(name), env);
        paths.push(Route {
            label: label.to_owned(),
            channels: other.direct(connections),
            participant_id: other.participant_id(),
            token: None,
        });
        others.push(other);
    };
    if let Some(before) = &before {
        add_direct("direct, before", before, &[], "before");
    }
    if postgres {
        let url = samsyn_kit::testing::fresh_postgres_url().await.unwrap();
        add_direct(
            "direct, PostgreSQL",
            &binary,
            &[("SAMSYN_PARTICIPANTS__DATABASE_URL", url.as_str())],
            "postgres",
        );
        if let Some(before) = &before {
            let url = samsyn_kit::testing::fresh_postgres_url().await.unwrap();
            add_direct(
                "direct, PostgreSQL, before",
                before,
                &[("SAMSYN_PARTICIPANTS__DATABASE_URL", url.as_str())],
                "postgres-before",
            );
        }
    }
    // The before binary's own gateway (it was started first), so the door's change is a
    // ratio of one run.
    if before.is_some() {
        let other = &others[0];
        paths.push(Route {
            label: "gateway, before".into(),
            channels: tls_channels(&other.certs(), other.gateway, connections),
            participant_id: other.participant_id(),
            token: Some(format!("Bearer {}", other.reader_token()).parse().unwrap()),
        });
    }
    // `PEERS_PATHS=direct,gateway` measures only those (e.g. to profile one under load); a
    // label with a comma is named without it ("gateway before").
    if let Ok(only) = std::env::var("PEERS_PATHS") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        paths.retain(|p| only.contains(&p.label.replace(',', "").as_str()));
        assert!(!paths.is_empty(), "PEERS_PATHS names no path");
    }
    let paths: Vec<Arc<Route>> = paths.into_iter().map(Arc::new).collect();
    for path in &paths {
        if let Err(status) = path.call(0).await {
            panic!("{} does not answer GetParticipant: {status:?}", path.label);
        }
    }
    eprintln!(
        "ready after {:?}; {} paths × {} concurrencies × {rounds} rounds of {seconds} s (about {:.0} s)",
        started.elapsed(),
        paths.len(),
        concurrencies.len(),
        (paths.len() * concurrencies.len() * rounds) as f64 * (seconds + WARM_UP.as_secs_f64())
    );

    // results[path][concurrency] = one Measured per round
    let mut results = vec![vec![Vec::new(); concurrencies.len()]; paths.len()];
    for round in 0..rounds {
        for (c, &concurrency) in concurrencies.iter().enumerate() {
            for k in 0..paths.len() {
                let p = (k + round + c) % paths.len();
                let measured = measure(&paths[p], concurrency, length).await;
                eprintln!(
                    "round {} c={concurrency:<3} {:<26} {:>8.0}/s p50 {:>6} µs p99 {:>6} µs idle {}{}",
                    round + 1,
                    paths[p].label,
                    measured.per_second,
                    measured.p50.as_micros(),
                    measured.p99.as_micros(),
                    percent(measured.idle),
                    if measured.failed > 0 {
                        format!(" ({} failed)", measured.failed)
                    } else {
                        String::new()
                    }
                );
                results[p][c].push(measured);
            }
        }
    }

    let summary = |p: usize, c: usize| {
        let runs = &results[p][c];
        (
            median(runs.iter().map(|m| m.per_second).collect()),
            median(runs.iter().map(|m| m.p50.as_secs_f64() * 1e6).collect()),
            median(runs.iter().map(|m| m.p99.as_secs_f64() * 1e6).collect()),
            runs.iter().map(|m| m.failed).sum::<usize>(),
        )
    };
    let index = |label: &str| paths.iter().position(|p| p.label == label);
    println!();
    println!(
        "GetParticipant, calls/s (p50 / p99 µs), median of {rounds} rounds of {seconds} s; \
         load average at start {load_at_start}, at end {}",
        load_average()
    );
    // One column per path; the throughput table adds its ratios after them.
    let mut path_header = String::from("| concurrency |");
    let mut path_rule = String::from("|---|");
    for path in &paths {
        path_header.push_str(&format!(" {} |", path.label));
        path_rule.push_str("---|");
    }
    let (mut header, mut rule) = (path_header.clone(), path_rule.clone());
    let mut ratios: Vec<(String, usize, usize)> = Vec::new();
    for peer in ["nginx", "HAProxy"] {
        if let (Some(gateway), Some(peer_index)) = (index("gateway"), index(peer)) {
            ratios.push((format!("gateway ÷ {peer}"), gateway, peer_index));
        }
    }
    // What the stack costs against a plain proxy, and what the gateway's work costs on it.
    if let (Some(stack), Some(nginx)) = (index(STACK_PROXY), index("nginx")) {
        ratios.push((format!("{STACK_PROXY} ÷ nginx"), stack, nginx));
    }
    if let (Some(gateway), Some(stack)) = (index("gateway"), index(STACK_PROXY)) {
        ratios.push((format!("gateway ÷ {STACK_PROXY}"), gateway, stack));
    }
    if let (Some(after), Some(before)) = (index("direct"), index("direct, before")) {
        ratios.push(("direct ÷ before".into(), after, before));
    }
    if let (Some(after), Some(before)) = (index("gateway"), index("gateway, before")) {
        ratios.push(("gateway ÷ before".into(), after, before));
    }
    if let (Some(after), Some(before)) = (
        index("direct, PostgreSQL"),
        index("direct, PostgreSQL, before"),
    ) {
        ratios.push(("PostgreSQL ÷ before".into(), after, before));
    }
    for (label, _, _) in &ratios {
        header.push_str(&format!(" {label} |"));
        rule.push_str("---|");
    }
    println!("{header}\n{rule}");
    let mut failures = 0;
    for (c, concurrency) in concurrencies.iter().enumerate() {
        let mut row = format!("| {concurrency} |");
        for p in 0..paths.len() {
            let (per_second, p50, p99, failed) = summary(p, c);
            failures += failed;
            row.push_str(&format!(" {per_second:.0}/s ({p50:.0} / {p99:.0}) |"));
        }
        for (_, a, b) in &ratios {
            row.push_str(&format!(" {:.2} |", summary(*a, c).0 / summary(*b, c).0));
        }
        println!("{row}");
    }
    if failures > 0 {
        println!("{failures} calls failed or timed out (not counted)");
    }
    // A path that leaves the CPU idle under load is waiting on something other than the CPU.
    println!("\nCPU idle while counted, the whole machine, median of {rounds} rounds");
    println!("{path_header}\n{path_rule}");
    for (c, concurrency) in concurrencies.iter().enumerate() {
        let mut row = format!("| {concurrency} |");
        for runs in &results {
            let idle: Option<Vec<f64>> = runs[c].iter().map(|m| m.idle).collect();
            row.push_str(&format!(" {} |", percent(idle.map(median))));
        }
        println!("{row}");
    }
    drop(others);
}
