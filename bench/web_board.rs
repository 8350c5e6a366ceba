//! The web board's server time and live latency, against one `samsyn up --demo`.
//!
//! - The board page with 40 entries: the demo's eight plus 32 enrolled participants put on
//!   the board by their case managers through the gateway; `GET /board/` as Anna, one at a
//!   time on one HTTPS (HTTP/2) connection, p50/p99.
//! - The timeline of a long stay: one participant given a status assessment a day for six
//!   months' worth (180 assessments; the board stamps them with the time of the call, so the
//!   stay's length is in the count, not the dates), `GET …/timeline`, p50/p99.
//! - Live latency at 50 open boards: 50 browsers' worth of connections as Anna, each with
//!   the event stream open and a second connection for its rows; a status change is made
//!   through the gateway's gRPC, and each board fetches `/board/rows` when its event comes.
//!   The latency is from the change's call to each board's event, and to each board holding
//!   its new rows, p50/p99/max over every board and change.
//!
//! Run: `cargo bench -p samsyn --bench web_board` (`WEB_BOARD_REQUESTS`, `WEB_BOARD_BOARDS`,
//! `WEB_BOARD_CHANGES` to change the run). Prints the machine's load average with the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_kit::tls::{self, DevPki};
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{ParticipantId, Revision};
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use serde_json::Value;
use tonic::transport::Channel;

const CASE_MANAGERS: [&str; 4] = ["anna", "jonas", "sara", "mikael"];
/// Entries on the measured board.
const ENTRIES: usize = 40;
/// Status assessments of the long stay: one a day for six months.
const LONG_STAY: usize = 180;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn person(data_dir: &Path, key: &str) -> Value {
    let roster: Value =
        serde_json::from_slice(&std::fs::read(data_dir.join("demo.json")).unwrap()).unwrap();
    roster["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .unwrap()
        .clone()
}

fn token(data_dir: &Path, key: &str) -> String {
    let p = person(data_dir, key);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    DevIssuer::at(data_dir.join("certs"))
        .issue(
            &Principal {
                id: p["id"].as_str().unwrap().to_owned(),
                kind: PrincipalKind::Staff,
                organisation: p["organisation"].as_str().map(str::to_owned),
                unit: p["unit"].as_str().map(str::to_owned),
                roles: strings(&p["roles"]),
                teams: strings(&p["teams"]),
                purpose: Some("care".into()),
                acting_through: None,
            },
            Duration::from_secs(3600),
        )
        .unwrap()
}

#[derive(Clone)]
struct Bearer(tonic::metadata::AsciiMetadataValue);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

type Board = BoardServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

fn board_client(channel: &Channel, data_dir: &Path, key: &str) -> Board {
    let bearer = Bearer(format!("Bearer {}", token(data_dir, key)).parse().unwrap());
    BoardServiceClient::with_interceptor(channel.clone(), bearer)
}

/// Puts enrolled participants on the board until it holds `ENTRIES`, each by their case
/// manager.
async fn fill_board(channel: &Channel, data_dir: &Path, team_id: &str) {
    let mut on_board = board_client(channel, data_dir, "anna")
        .get_board(board_pb::GetBoardRequest {
            team_id: team_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .len();
    for key in CASE_MANAGERS {
        let id = person(data_dir, key)["id"].as_str().unwrap().to_owned();
        let bearer = Bearer(format!("Bearer {}", token(data_dir, key)).parse().unwrap());
        let listed = ParticipantsServiceClient::with_interceptor(channel.clone(), bearer)
            .list_participants(participants_pb::ListParticipantsRequest {
                status: participants_pb::ParticipantStatus::Enrolled as i32,
                staff_id: id,
                page: Some(samsyn_proto::common::v1::PageRequest {
                    page_size: 100,
                    page_token: String::new(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .participants;
        let mut board = board_client(channel, data_dir, key);
        for p in listed {
            if on_board >= ENTRIES {
                return;
            }
            let put = board
                .put_on_board(board_pb::PutOnBoardRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    team_id: team_id.into(),
                    participant_id: p.participant_id,
                    reason: "Ökad oro, täta kontakter".into(),
                    criteria: vec!["crisis".into()],
                    status: Some(board_pb::StatusAssessment {
                        level: 2,
                        trend: 2,
                        note: "Gul".into(),
                    }),
                    next_review_on: None,
                    actions: Vec::new(),
                    recorded_by: None,
                })
                .await;
            if put.is_ok() {
                on_board += 1;
            }
        }
    }
    assert!(on_board >= ENTRIES, "only {on_board} entries on the board");
}

/// The entry of `participant` on the board, and its revision.
async fn entry_of(board: &mut Board, team_id: &str, participant: &str) -> (String, u64) {
    let entry = board
        .get_board(board_pb::GetBoardRequest {
            team_id: team_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .find(|e| {
            e.participant_id
                .as_ref()
                .is_some_and(|p| p.value == participant)
        })
        .unwrap();
    (entry.entry_id, entry.revision.unwrap().value)
}

/// One more status assessment of the entry; its new revision.
async fn assess(
    board: &mut Board,
    entry_id: &str,
    participant: &str,
    revision: u64,
    n: usize,
) -> u64 {
    board
        .update_entry(board_pb::UpdateEntryRequest {
            entry_id: entry_id.into(),
            participant_id: Some(ParticipantId {
                value: participant.into(),
            }),
            expected_revision: Some(Revision { value: revision }),
            status: Some(board_pb::StatusAssessment {
                level: 1 + (n % 3) as u32,
                trend: 1 + (n % 3) as i32,
                note: format!("Dag {n}"),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .revision
        .unwrap()
        .value
}

/// One HTTPS connection to the gateway over HTTP/2, as a browser makes it (the gateway's
/// pings keep its event streams open).
async fn connect(addr: SocketAddr, data_dir: &Path) -> SendRequest<Full<Bytes>> {
    let roots = DevPki::at(data_dir.join("certs")).trust_anchors().unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    sender
}

fn request(method: &str, path: &str, cookie: &str, body: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// Status and body of one request on `sender`.
async fn fetch(
    sender: &mut SendRequest<Full<Bytes>>,
    r: http::Request<Full<Bytes>>,
) -> (u16, String, http::HeaderMap) {
    sender.ready().await.unwrap();
    let response = sender.send_request(r).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

fn cookie_of(headers: &http::HeaderMap) -> String {
    headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Anna's session cookie, through the development login form.
async fn log_in(sender: &mut SendRequest<Full<Bytes>>) -> String {
    let (_, page, headers) = fetch(sender, request("GET", "/board/login", "", "")).await;
    let anonymous = cookie_of(&headers);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, headers) = fetch(
        sender,
        request(
            "POST",
            "/board/login",
            &anonymous,
            &format!("csrf={csrf}&person=anna"),
        ),
    )
    .await;
    assert_eq!(status, 303);
    cookie_of(&headers)
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

async fn timed(
    sender: &mut SendRequest<Full<Bytes>>,
    cookie: &str,
    path: &str,
    count: usize,
) -> Vec<f64> {
    let mut ms = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let (status, _, _) = fetch(sender, request("GET", path, cookie, "")).await;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200, "{path}");
    }
    ms
}

/// One open board: waits for each event and fetches its rows; reports when it has them.
async fn open_board(
    addr: SocketAddr,
    data_dir: std::path::PathBuf,
    cookie: String,
    updated: tokio::sync::mpsc::UnboundedSender<(Instant, Instant)>,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
) {
    // One connection per board, as a browser's page: its event stream and its fetches.
    let mut events_conn = connect(addr, &data_dir).await;
    let mut rows_conn = events_conn.clone();
    events_conn.ready().await.unwrap();
    let response = events_conn
        .send_request(request("GET", "/board/events", &cookie, ""))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut first = true;
    loop {
        let frame = match body.frame().await {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => panic!("event stream broke: {error}"),
            None => panic!("event stream ended"),
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        // One frame may carry several events: one fetch of the rows answers them all.
        let events = String::from_utf8_lossy(data)
            .matches("event: board")
            .count();
        if events == 0 {
            continue;
        }
        let heard = Instant::now();
        let (status, _, _) =
            fetch(&mut rows_conn, request("GET", "/board/rows", &cookie, "")).await;
        assert_eq!(status, 200);
        for _ in 0..events {
            if first {
                first = false;
                let _ = ready.send(());
            } else if updated.send((heard, Instant::now())).is_err() {
                return;
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let requests = setting("WEB_BOARD_REQUESTS", 200);
    let boards = setting("WEB_BOARD_BOARDS", 50);
    let changes = setting("WEB_BOARD_CHANGES", 20);
    let dir = tempfile::tempdir().unwrap();
    let up = common::Up::start_with(dir.path(), &["--demo"], Some("demo programme"));
    let data_dir = dir.path().to_owned();
    let addr = up.addr("gateway");
    let roster: Value =
        serde_json::from_slice(&std::fs::read(data_dir.join("demo.json")).unwrap()).unwrap();
    let team_id = roster["team_id"].as_str().unwrap().to_owned();
    let pki = DevPki::at(data_dir.join("certs"));
    let channel = tls::channel(
        addr,
        "localhost",
        tls::client_config(pki.trust_anchors().unwrap(), None).unwrap(),
    )
    .unwrap();
    fill_board(&channel, &data_dir, &team_id).await;
    let orjan = person(&data_dir, "orjan")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut anna = board_client(&channel, &data_dir, "anna");
    let (entry, mut revision) = entry_of(&mut anna, &team_id, &orjan).await;
    for n in 0..LONG_STAY {
        revision = assess(&mut anna, &entry, &orjan, revision, n).await;
    }

    let mut sender = connect(addr, &data_dir).await;
    let cookie = log_in(&mut sender).await;
    let (_, page, _) = fetch(&mut sender, request("GET", "/board/", &cookie, "")).await;
    let rows = page.matches("<tr data-participant").count();
    assert!(rows >= ENTRIES, "{rows} rows");
    let _ = timed(&mut sender, &cookie, "/board/", 10).await;
    let (p50, p99, max) = percentiles(timed(&mut sender, &cookie, "/board/", requests).await);
    println!(
        "board page, {rows} entries: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({requests} requests)"
    );
    let path = format!("/board/participants/{orjan}/timeline");
    let (_, page, _) = fetch(&mut sender, request("GET", &path, &cookie, "")).await;
    let steps = page.matches("class=\"status-step").count();
    let _ = timed(&mut sender, &cookie, &path, 10).await;
    let (p50, p99, max) = percentiles(timed(&mut sender, &cookie, &path, requests).await);
    println!(
        "timeline, {steps} status steps: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({requests} requests)"
    );

    let (updated_tx, mut updated_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut open = Vec::new();
    for _ in 0..boards {
        open.push(tokio::spawn(open_board(
            addr,
            data_dir.clone(),
            cookie.clone(),
            updated_tx.clone(),
            ready_tx.clone(),
        )));
    }
    for _ in 0..boards {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv())
            .await
            .expect("every board opens")
            .unwrap();
    }
    let gosta = person(&data_dir, "gosta")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (entry, mut revision) = entry_of(&mut anna, &team_id, &gosta).await;
    let mut latencies = Vec::new();
    let mut heard_after = Vec::new();
    for n in 0..changes {
        let started = Instant::now();
        revision = assess(&mut anna, &entry, &gosta, revision, n).await;
        for _ in 0..boards {
            let at = tokio::time::timeout(Duration::from_secs(60), updated_rx.recv())
                .await
                .expect("every board hears of the change")
                .unwrap();
            heard_after.push(at.0.duration_since(started).as_secs_f64() * 1000.0);
            latencies.push(at.1.duration_since(started).as_secs_f64() * 1000.0);
        }
        // The change's events are all in; the next change starts on a quiet board.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while updated_rx.try_recv().is_ok() {}
    }
    let (p50, p99, max) = percentiles(heard_after);
    println!(
        "live event at {boards} open boards (event arrived): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({changes} changes)"
    );
    let (p50, p99, max) = percentiles(latencies);
    println!(
        "live update at {boards} open boards (event + rows fetched): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({changes} changes)"
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for board in open {
        board.abort();
    }
}
