//! On a machine where no PostgreSQL answers at the configured URL, the test support starts
//! a private throw-away cluster, and it is gone when the test process ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use samsyn_kit::testing::test_server_url_at;
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};

/// A URL at a port nothing listens on.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    format!("postgres://postgres@127.0.0.1:{port}/test")
}

#[tokio::test]
async fn a_private_cluster_answers_when_nothing_listens_at_the_configured_url() {
    let configured = closed_port_url();
    let url = test_server_url_at(&configured).await.unwrap();
    assert_ne!(url, configured);
    println!("private-cluster-url={url}");
    let db = Database::connect(url.as_str()).await.unwrap();
    db.execute_unprepared("CREATE SCHEMA private_check; CREATE ROLE private_role LOGIN")
        .await
        .expect("a superuser on a real server");
    let row = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT current_setting('server_version_num')::int AS v",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(row.try_get::<i32>("", "v").unwrap() >= 130_000);
    assert_eq!(
        test_server_url_at(&closed_port_url()).await.unwrap(),
        url,
        "one cluster per test process"
    );
}

#[test]
fn the_private_cluster_stops_when_the_test_process_ends() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_private_cluster_answers_when_nothing_listens_at_the_configured_url",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("private-cluster-url="))
        .expect("the child printed its cluster's URL");
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "{url} still answers after its process ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
