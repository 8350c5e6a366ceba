//! What a part allows its connections, over real sockets and TLS: silent ones are closed,
//! dead HTTP/2 peers are dropped, at most `max_connections` are open, and a live client
//! waiting on a stream is never cut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use samsyn_kit::config::Limits;
use samsyn_kit::feed::{ChangeFeed, ChangeStream, NewChange, migration::CreateChangeFeed};
use samsyn_kit::serve::Part;
use samsyn_kit::testing::{self, ServedPart};
use samsyn_proto::common::v1::WatchChangesRequest;
use samsyn_proto::kit::v1::feed_probe_service_client::FeedProbeServiceClient;
use samsyn_proto::kit::v1::feed_probe_service_server::{FeedProbeService, FeedProbeServiceServer};
use sea_orm::TransactionTrait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_stream::StreamExt;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

/// A part with no services of its own (health and reflection are added when serving).
fn empty_part() -> Part {
    Part {
        name: "test",
        routes: RoutesBuilder::default(),
        services: vec![],
        feeds: vec![],
        readiness: Default::default(),
        http1: false,
    }
}

/// Short timeouts that still pass validation.
fn short(idle_ms: u64) -> Limits {
    let limits = Limits {
        default_deadline_ms: 500,
        handshake_timeout_ms: 500,
        idle_timeout_ms: idle_ms,
        keepalive_interval_ms: 300,
        keepalive_timeout_ms: 300,
        ..Limits::default()
    };
    samsyn_kit::config::Validate::validate(&limits).unwrap();
    limits
}

async fn tls_connect(served: &ServedPart) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(served.addr).await?;
    TlsConnector::from(served.client_tls.clone())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// How long until the server closes `stream` (reading and dropping whatever it sends), or
/// `None` if it is still open after `within`.
async fn closed_after(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        while let Ok(1..) = stream.read(&mut buf).await {}
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

#[tokio::test]
async fn a_silent_tls_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(1000);
    let served = ServedPart::start_with_limits(empty_part(), short(1000)).await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tls_connect(&served).await.unwrap());
    }
    let first = closed_after(&mut silent[0], Duration::from_secs(5)).await;
    let first = first.expect("closed within 5 s");
    assert!(
        first >= idle / 2,
        "closed after {first:?}, before the idle timeout"
    );
    for stream in &mut silent[1..] {
        assert!(closed_after(stream, Duration::from_secs(2)).await.is_some());
    }
}

#[tokio::test]
async fn an_http2_client_that_does_not_answer_pings_is_dropped() {
    // The idle timeout is far off: what closes the connection is the unanswered ping.
    let served = ServedPart::start_with_limits(empty_part(), short(10_000)).await;
    let mut stream = tls_connect(&served).await.unwrap();
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing: not even an answer.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let closed = closed_after(&mut stream, Duration::from_secs(5)).await;
    assert!(closed.is_some_and(|after| after < Duration::from_secs(5)));
}

#[tokio::test]
async fn a_connection_that_never_finishes_the_tls_handshake_is_closed() {
    let served = ServedPart::start_with_limits(empty_part(), short(10_000)).await;
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    let closed = closed_after(&mut tcp, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "still open after 5 s, handshake timeout 500 ms"
    );
}

#[tokio::test]
async fn beyond_max_connections_a_new_connection_is_closed_at_once() {
    let limits = Limits {
        max_connections: 3,
        ..Limits::default()
    };
    let served = ServedPart::start_with_limits(empty_part(), limits).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(tls_connect(&served).await.unwrap());
    }

    let started = Instant::now();
    assert!(tls_connect(&served).await.is_err(), "a fourth is refused");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at accept, not at the 5 s handshake timeout"
    );
    for stream in &mut open {
        let closed = closed_after(stream, Duration::from_millis(200)).await;
        assert!(closed.is_none(), "the first three stay open");
    }

    let mut leaving = open.pop().unwrap();
    leaving.shutdown().await.unwrap();
    assert!(
        closed_after(&mut leaving, Duration::from_secs(2))
            .await
            .is_some()
    );
    // The server shuts the socket down just before it drops the connection and frees its
    // slot: a retry or two may still see it taken.
    let deadline = Instant::now() + Duration::from_secs(2);
    let newcomer = loop {
        match tls_connect(&served).await {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("no slot freed after a connection closed: {error}"),
        }
    };
    open.push(newcomer);
    assert!(tls_connect(&served).await.is_err(), "full again");
}

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateChangeFeed)]
    }
}

#[derive(Clone)]
struct FeedOnly {
    feed: ChangeFeed,
}

#[tonic::async_trait]
impl FeedProbeService for FeedOnly {
    type WatchChangesStream = ChangeStream;

    async fn watch_changes(
        &self,
        request: Request<WatchChangesRequest>,
    ) -> Result<Response<ChangeStream>, Status> {
        Ok(self.feed.watch_response(request))
    }
}

async fn commit(feed: &ChangeFeed, db: &sea_orm::DatabaseConnection, n: usize) {
    let txn = db.begin().await.unwrap();
    ChangeFeed::append(
        &txn,
        NewChange {
            entity_kind: "referral",
            entity_id: format!("referral-{n}"),
            change_kind: "created",
            participant_id: None,
            payload: vec![],
        },
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    feed.notify_committed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_waiting_on_a_stream_outlasts_the_idle_timeout() {
    let idle = Duration::from_millis(1000);
    let dir = tempfile::tempdir().unwrap();
    let db = samsyn_kit::db::connect::<Migrator>(&testing::fresh_sqlite_url(dir.path()))
        .await
        .unwrap();
    let feed = ChangeFeed::new(db.clone());
    let mut routes = RoutesBuilder::default();
    routes.add_service(FeedProbeServiceServer::new(FeedOnly { feed: feed.clone() }));
    let part = Part {
        routes,
        feeds: vec![feed.clone()],
        readiness: Default::default(),
        ..empty_part()
    };
    let served = ServedPart::start_with_limits(part, short(1000)).await;
    commit(&feed, &db, 1).await;
    let mut stream = FeedProbeServiceClient::new(served.channel.clone())
        .watch_changes(WatchChangesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stream.next().await.unwrap().unwrap().entity_id,
        "referral-1"
    );

    // The client sends nothing but its answers to the server's pings meanwhile.
    tokio::time::sleep(idle * 5 / 2).await;
    commit(&feed, &db, 2).await;
    let change = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("the stream is still open")
        .unwrap()
        .unwrap();
    assert_eq!(change.entity_id, "referral-2");
}
