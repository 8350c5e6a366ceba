//! Readiness that means ready: real `samsyn serve` processes with their plain-HTTP probe
//! listeners. A service on PostgreSQL is ready while its schema is there and migrated, and
//! reports NOT_SERVING (gRPC health) and 503 (`/readyz`) once it is gone; a gateway is
//! ready while its access view is current. `/livez` answers 200 throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{Up, eventually, free_port, http_get};
use samsyn_kit::tls::{self, DevPki};
use sea_orm::{ConnectionTrait, Database};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const WAIT: Duration = Duration::from_secs(30);

/// The part's overall gRPC health, asked over mutual TLS with a development certificate.
async fn health(addr: SocketAddr, certs: &Path) -> Option<ServingStatus> {
    let pki = DevPki::at(certs);
    pki.ensure(&["probe-test"]).unwrap();
    let client = tls::client_config(
        pki.trust_anchors().unwrap(),
        Some(&pki.identity("probe-test").unwrap()),
    )
    .unwrap();
    let channel = tls::channel(addr, "localhost", client).unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        HealthClient::new(channel).check(HealthCheckRequest::default()),
    )
    .await
    .ok()?
    .ok()?;
    Some(answer.into_inner().status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_ready_only_while_its_database_is_there_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let url = samsyn_kit::testing::fresh_postgres_url().await.unwrap();
    let schema = url.rsplit("search_path%3D").next().unwrap().to_owned();
    let log = dir.path().join("consent.log");
    let consent = Up::serve(
        dir.path(),
        "consent",
        &[
            ("DATABASE_URL", url.as_str()),
            ("SAMSYN_CONSENT__PROBE_LISTEN", "127.0.0.1:0"),
        ],
        &log,
    );
    let probe = consent.probe("consent");
    let grpc = consent.addr("consent");
    let certs = dir.path().join("certs");
    assert_eq!(http_get(probe, "/readyz").await, Some(200));
    assert_eq!(http_get(probe, "/livez").await, Some(200));
    assert_eq!(health(grpc, &certs).await, Some(ServingStatus::Serving));
    assert_eq!(http_get(probe, "/metrics").await, Some(404), "probes only");

    // The database goes away under the running service.
    let admin = Database::connect(
        std::env::var(samsyn_kit::testing::TEST_DATABASE_URL_VAR)
            .unwrap_or_else(|_| samsyn_kit::testing::DEFAULT_TEST_DATABASE_URL.to_owned()),
    )
    .await
    .unwrap();
    admin
        .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    eventually(WAIT, "readyz to say 503", || async {
        http_get(probe, "/readyz").await == Some(503)
    })
    .await;
    assert_eq!(health(grpc, &certs).await, Some(ServingStatus::NotServing));
    assert_eq!(
        http_get(probe, "/livez").await,
        Some(200),
        "alive all the same"
    );

    // An empty schema is there but not migrated: still not ready.
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    for _ in 0..3 {
        tokio::time::sleep(samsyn_kit::ready::CHECK_INTERVAL).await;
        assert_eq!(http_get(probe, "/readyz").await, Some(503));
    }
    assert_eq!(health(grpc, &certs).await, Some(ServingStatus::NotServing));
    assert_eq!(http_get(probe, "/livez").await, Some(200));
    drop(consent);
    admin
        .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_is_ready_while_its_access_view_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let listen: Vec<(String, String)> = common::PARTS
        .iter()
        .map(|part| {
            (
                format!("SAMSYN_{}__LISTEN", part.to_uppercase()),
                format!("127.0.0.1:{}", free_port()),
            )
        })
        .collect();
    let mut env: Vec<(&str, &str)> = listen
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend([
        ("SAMSYN_ACCESS__DEVELOPMENT_ISSUER", "true"),
        ("SAMSYN_ACCESS__MAX_VIEW_LAG_SECONDS", "3"),
        ("SAMSYN_GATEWAY__PROBE_LISTEN", "127.0.0.1:0"),
    ]);
    let serve = |part: &str| {
        Up::serve(
            dir.path(),
            part,
            &env,
            &dir.path().join(format!("{part}.log")),
        )
    };
    let services: Vec<Up> = ["participants", "plans", "board"]
        .into_iter()
        .map(serve)
        .collect();
    let consent = serve("consent");
    let gateway = serve("gateway");
    let probe = gateway.probe("gateway");
    let certs = dir.path().join("certs");
    eventually(WAIT, "the gateway to be ready", || async {
        http_get(probe, "/readyz").await == Some(200)
    })
    .await;
    assert_eq!(
        health(gateway.addr("gateway"), &certs).await,
        Some(ServingStatus::Serving)
    );

    // The consent service dies: its feed falls behind, and so does the view.
    consent.kill();
    eventually(WAIT, "readyz to say 503", || async {
        http_get(probe, "/readyz").await == Some(503)
    })
    .await;
    assert_eq!(
        health(gateway.addr("gateway"), &certs).await,
        Some(ServingStatus::NotServing)
    );
    assert_eq!(http_get(probe, "/livez").await, Some(200));

    // Back on its port: the view catches up and the gateway is ready again.
    let consent = serve("consent");
    eventually(WAIT, "the gateway to be ready again", || async {
        http_get(probe, "/readyz").await == Some(200)
    })
    .await;
    drop(gateway);
    drop(consent);
    drop(services);
}
