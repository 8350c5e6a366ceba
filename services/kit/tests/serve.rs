//! Serving over real sockets and mutual TLS: the change feed as a gRPC stream resumed from a
//! cursor, and request size limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use samsyn_kit::config::Limits;
use samsyn_kit::feed::{ChangeFeed, ChangeStream, NewChange, migration::CreateChangeFeed};
use samsyn_kit::serve::Part;
use samsyn_kit::testing::{self, ServedPart};
use samsyn_proto::common::v1::WatchChangesRequest;
use samsyn_proto::kit::v1::feed_probe_service_client::FeedProbeServiceClient;
use samsyn_proto::kit::v1::feed_probe_service_server::{FeedProbeService, FeedProbeServiceServer};
use sea_orm::TransactionTrait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_stream::StreamExt;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

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

fn part(service: FeedOnly, limits: &Limits) -> Part {
    let feeds = vec![service.feed.clone()];
    let mut routes = RoutesBuilder::default();
    routes.add_service(
        FeedProbeServiceServer::new(service).max_decoding_message_size(limits.max_request_bytes),
    );
    Part {
        name: "test",
        routes,
        services: vec![],
        feeds,
        readiness: Default::default(),
        http1: false,
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
async fn a_consumer_resumes_the_grpc_feed_after_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let url = testing::fresh_sqlite_url(dir.path());
    let db = samsyn_kit::db::connect::<Migrator>(&url).await.unwrap();
    let feed = ChangeFeed::new(db.clone());
    let service = FeedOnly { feed: feed.clone() };
    let served = ServedPart::start(part(service.clone(), &Limits::default())).await;
    for n in 1..=3 {
        commit(&feed, &db, n).await;
    }
    let mut client = FeedProbeServiceClient::new(served.channel.clone());
    let mut stream = client
        .watch_changes(WatchChangesRequest {
            after_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    let mut cursor = 0;
    for _ in 0..2 {
        let change = stream.next().await.unwrap().unwrap();
        cursor = change.sequence;
        ids.push(change.entity_id);
    }
    drop(stream);
    drop(client);
    served.stop().await;

    // The service restarts on the same database; more changes arrive meanwhile.
    db.close().await.unwrap();
    let db = samsyn_kit::db::connect::<Migrator>(&url).await.unwrap();
    let feed = ChangeFeed::new(db.clone());
    for n in 4..=5 {
        commit(&feed, &db, n).await;
    }
    let service = FeedOnly { feed: feed.clone() };
    let served = ServedPart::start(part(service, &Limits::default())).await;
    let mut stream = FeedProbeServiceClient::new(served.channel.clone())
        .watch_changes(WatchChangesRequest {
            after_sequence: cursor,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for _ in 0..3 {
        let change = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        ids.push(change.entity_id);
    }
    let expected: Vec<_> = (1..=5).map(|n| format!("referral-{n}")).collect();
    assert_eq!(ids, expected);
}

/// A message with the same path but a large unknown field: what an oversized request looks
/// like on the wire.
#[derive(Clone, PartialEq, prost::Message)]
struct Oversized {
    #[prost(bytes = "vec", tag = "15")]
    filler: Vec<u8>,
}

#[tokio::test]
async fn requests_over_the_size_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = samsyn_kit::db::connect::<Migrator>(&testing::fresh_sqlite_url(dir.path()))
        .await
        .unwrap();
    let limits = Limits {
        max_request_bytes: 1024,
        ..Limits::default()
    };
    let service = FeedOnly {
        feed: ChangeFeed::new(db),
    };
    let served = ServedPart::start_with_limits(part(service, &limits), limits.clone()).await;
    let mut grpc = tonic::client::Grpc::new(served.channel.clone());
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/samsyn.kit.v1.FeedProbeService/WatchChanges");
    let status = grpc
        .server_streaming::<_, samsyn_proto::common::v1::Change, _>(
            Request::new(Oversized {
                filler: vec![b'x'; 2048],
            }),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_feed_streams_instead_of_waiting_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = samsyn_kit::db::connect::<Migrator>(&testing::fresh_sqlite_url(dir.path()))
        .await
        .unwrap();
    let feed = ChangeFeed::new(db.clone());
    let served = ServedPart::start(part(FeedOnly { feed: feed.clone() }, &Limits::default())).await;
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

    let started = std::time::Instant::now();
    served.stop().await;
    let stopped_in = started.elapsed();
    assert!(
        stopped_in < Duration::from_secs(2),
        "shutdown waited {stopped_in:?} for a stream that never ends on its own"
    );
    let end = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
    assert!(
        matches!(end, Ok(None | Some(Err(_)))),
        "the consumer sees its stream end and can reconnect elsewhere"
    );
}
