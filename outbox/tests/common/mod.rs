//! Test support: development PKIs for both sides, a SQLite outbox in a temporary directory, and an HTTPS
//! test double of the far side (mutual TLS, dedup by message id).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use samsyn_kit::tls::{self, DevPki, Identity};
use samsyn_outbox::{DeliveryConfig, Link, LinkId, MESSAGE_ID_HEADER, OutboundMessage, Outbox};
use sea_orm::{ConnectOptions, Database};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use uuid::Uuid;

/// Everything a test needs: our CA and client identity, the far side's CA and server
/// identities (good, from another CA, expired), each from the development PKI, and a
/// temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    ours: DevPki,
    far: DevPki,
    pub server: Identity,
    pub rogue_server: Identity,
    pub expired_server: Identity,
    pub link_id: LinkId,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ours = DevPki::at(dir.path().join("ours"));
        ours.ensure(&["samsyn-gateway"]).unwrap();
        let far = DevPki::at(dir.path().join("far"));
        far.ensure(&["sip-tool"]).unwrap();
        far.issue_expired("sip-tool-expired").unwrap();
        let rogue = DevPki::at(dir.path().join("rogue"));
        rogue.ensure(&["sip-tool"]).unwrap();
        Self {
            server: far.identity("sip-tool").unwrap(),
            expired_server: far.identity("sip-tool-expired").unwrap(),
            rogue_server: rogue.identity("sip-tool").unwrap(),
            dir,
            ours,
            far,
            link_id: "sip-test".parse().unwrap(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("gateway.db")
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.db_path().display())
    }

    /// The link to a far side at `addr`.
    pub fn link(&self, addr: SocketAddr) -> Link {
        Link {
            id: self.link_id.clone(),
            endpoint: format!("https://{addr}/fhir").parse().unwrap(),
            server_ca: self.far.ca_cert(),
            client_cert: self.ours.cert("samsyn-gateway"),
            client_key: self.ours.key("samsyn-gateway"),
        }
    }

    /// The far side's TLS configuration with `identity`, requiring our client certificate
    /// and speaking HTTP/1.1.
    pub fn server_config(&self, identity: &Identity) -> Arc<ServerConfig> {
        let config = tls::server_config(
            identity,
            self.ours.trust_anchors().unwrap(),
            tls::ClientAuth::Required,
        )
        .unwrap();
        tls::with_http1(&config)
    }

    /// A message for `participant`, its `n`th change.
    pub fn message(&self, participant: &str, n: u32) -> OutboundMessage {
        OutboundMessage::fhir_json(
            Uuid::new_v4(),
            self.link_id.clone(),
            participant,
            http::Method::PUT,
            format!("/CarePlan/{participant}-{n}"),
            format!(
                r#"{{"resourceType":"CarePlan","id":"{participant}-{n}","participant":"{participant}","n":{n}}}"#
            ),
        )
    }
}

/// Opens (or reopens) the outbox on an SQLite file.
pub async fn open_outbox(path: &Path) -> Outbox {
    open_url(&format!("sqlite://{}?mode=rwc", path.display())).await
}

/// Opens the outbox on a database URL (SQLite or PostgreSQL).
pub async fn open_url(url: &str) -> Outbox {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
        });
    }
    Outbox::open(Database::connect(options).await.unwrap())
        .await
        .unwrap()
}

/// A fresh PostgreSQL schema on the test server (`SAMSYN_TEST_DATABASE_URL`).
pub async fn postgres_url() -> String {
    samsyn_kit::testing::fresh_postgres_url().await.unwrap()
}

/// Fast retries for tests.
pub fn fast_config() -> DeliveryConfig {
    DeliveryConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        max_permanent_failures: 3,
        max_in_flight: 8,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(500),
        stop_timeout: Duration::from_secs(2),
    }
}

/// A request the double accepted for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub id: Uuid,
    pub participant: String,
    pub n: u64,
    /// [`Double::next_generation`] bumps it, e.g. at a simulated restart.
    pub generation: u32,
}

#[derive(Default)]
pub struct Seen {
    pub arrivals: Vec<Arrival>,
    pub accepted: HashSet<Uuid>,
    /// Requests repeating an accepted message id (answered 200, not counted again).
    pub duplicates: u64,
    /// Requests answered with a refusal.
    pub refused: HashMap<String, u64>,
    pub generation: u32,
    /// Participants whose messages are answered with this status instead of 201.
    pub answers: HashMap<String, u16>,
    /// Each accepted request is answered this much later.
    pub delay: Duration,
    /// Each refusal is answered this much later (decided on arrival).
    pub refusal_delay: Duration,
    pub bad_requests: u64,
    /// Well-formed requests received, answered or not yet.
    pub received: u64,
}

/// The far side: an HTTPS server requiring our client certificate.
#[derive(Clone)]
pub struct Double {
    pub seen: Arc<Mutex<Seen>>,
}

/// A running double; dropping it does not stop it, [`Running::shutdown`] does.
pub struct Running {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops listening and drops every open connection.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

impl Double {
    pub fn new() -> Self {
        Self {
            seen: Arc::new(Mutex::new(Seen::default())),
        }
    }

    pub fn answer(&self, participant: &str, status: Option<u16>) {
        let mut seen = self.seen.lock().unwrap();
        match status {
            Some(status) => seen.answers.insert(participant.to_owned(), status),
            None => seen.answers.remove(participant),
        };
    }

    pub fn next_generation(&self) {
        self.seen.lock().unwrap().generation += 1;
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.seen.lock().unwrap().arrivals.clone()
    }

    /// The `n`s that arrived for `participant`, in arrival order.
    pub fn order_of(&self, participant: &str) -> Vec<u64> {
        self.arrivals()
            .iter()
            .filter(|a| a.participant == participant)
            .map(|a| a.n)
            .collect()
    }

    pub fn duplicates(&self) -> u64 {
        self.seen.lock().unwrap().duplicates
    }

    pub fn refused(&self, participant: &str) -> u64 {
        *self
            .seen
            .lock()
            .unwrap()
            .refused
            .get(participant)
            .unwrap_or(&0)
    }

    /// Serves on `listener` with `config`.
    pub fn serve(&self, listener: TcpListener, config: Arc<ServerConfig>) -> Running {
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(config);
        let seen = self.seen.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set: aborting the accept loop drops them all.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request| handle(seen.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Running { addr, task }
    }

    /// Binds a fresh port on loopback and serves.
    pub async fn start(&self, config: Arc<ServerConfig>) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.serve(listener, config)
    }
}

async fn handle(
    seen: Arc<Mutex<Seen>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let id = request
        .headers()
        .get(MESSAGE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok());
    let fhir = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/fhir+json");
    let body = request.into_body().collect().await.map(|b| b.to_bytes());
    let parsed = body
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let (Some(id), true, Some(json)) = (id, fhir, parsed) else {
        seen.lock().unwrap().bad_requests += 1;
        return Ok(answer(StatusCode::BAD_REQUEST));
    };
    let participant = json["participant"].as_str().unwrap_or_default().to_owned();
    let n = json["n"].as_u64().unwrap_or_default();
    let (refusal, delay) = {
        let mut seen = seen.lock().unwrap();
        seen.received += 1;
        match seen.answers.get(&participant).copied() {
            Some(status) => {
                *seen.refused.entry(participant.clone()).or_default() += 1;
                (Some(status), seen.refusal_delay)
            }
            None => (None, seen.delay),
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = refusal {
        return Ok(answer(StatusCode::from_u16(status).unwrap()));
    }
    let mut seen = seen.lock().unwrap();
    if !seen.accepted.insert(id) {
        seen.duplicates += 1;
        return Ok(answer(StatusCode::OK));
    }
    let generation = seen.generation;
    seen.arrivals.push(Arrival {
        id,
        participant,
        n,
        generation,
    });
    Ok(answer(StatusCode::CREATED))
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Waits until `condition` holds, checking every 10 ms, or fails after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
