//! `samsyn up` end to end: the real binary, real sockets, real mutual TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

mod common;

use common::{PARTS, Up};
use samsyn_kit::tls::{self, DevPki};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Health of `service` ("" for the server as a whole) as seen by a client with `identity`.
async fn health(
    addr: SocketAddr,
    roots: &Path,
    identity: Option<&tls::Identity>,
    service: &str,
) -> Result<ServingStatus, tonic::Status> {
    let config = tls::client_config(tls::trust_anchors(roots).unwrap(), identity).unwrap();
    let channel = tls::channel(addr, "localhost", config).unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_every_part_over_mutual_tls() {
    let data = tempfile::tempdir().unwrap();
    let up = Up::start(data.path());
    let announced: Vec<_> = up.addrs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        announced, PARTS,
        "one line per part, services before the gateway"
    );

    let pki = DevPki::at(data.path().join("certs"));
    assert!(pki.ca_cert().exists(), "the CA is where the README says");
    pki.ensure(&["e2e-client"]).unwrap();
    let client = pki.identity("e2e-client").unwrap();

    for (part, service) in [
        ("participants", "samsyn.participants.v1.ParticipantsService"),
        ("consent", "samsyn.consent.v1.ConsentService"),
        ("plans", "samsyn.plans.v1.PlansService"),
        ("board", "samsyn.board.v1.BoardService"),
    ] {
        let addr = up.addr(part);
        for name in ["", service] {
            let status = health(addr, &pki.ca_cert(), Some(&client), name).await;
            assert_eq!(status.unwrap(), ServingStatus::Serving, "{part} {name:?}");
        }
        // SQLite file per service under the data directory.
        assert!(data.path().join(format!("{part}.db")).exists());
    }
    let gateway = up.addr("gateway");
    assert_eq!(
        health(gateway, &pki.ca_cert(), Some(&client), "")
            .await
            .unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        health(gateway, &pki.ca_cert(), None, "").await.unwrap(),
        ServingStatus::Serving,
        "the gateway takes clients without a certificate (staff bring a token)"
    );

    // `samsyn status` finds every part where the configuration says it is.
    let mut status = Command::new(env!("CARGO_BIN_EXE_samsyn"));
    status.arg("status").arg("--data-dir").arg(data.path());
    for (part, addr) in &up.addrs {
        status.env(
            format!("SAMSYN_{}__LISTEN", part.to_uppercase()),
            addr.to_string(),
        );
    }
    let output = status.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    for part in PARTS {
        let line = stdout.lines().find(|l| l.starts_with(part)).unwrap();
        assert!(line.ends_with("SERVING"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_refuse_clients_without_a_certificate_from_the_internal_ca() {
    let data = tempfile::tempdir().unwrap();
    let up = Up::start(data.path());
    let pki = DevPki::at(data.path().join("certs"));

    let elsewhere = tempfile::tempdir().unwrap();
    let other_ca = DevPki::at(elsewhere.path());
    other_ca.ensure(&["intruder"]).unwrap();
    let intruder = other_ca.identity("intruder").unwrap();

    for part in ["participants", "consent", "plans", "board", "reports"] {
        let addr = up.addr(part);
        let anonymous = health(addr, &pki.ca_cert(), None, "").await;
        assert!(
            anonymous.is_err(),
            "{part} answered a client without a certificate"
        );
        let foreign = health(addr, &pki.ca_cert(), Some(&intruder), "").await;
        assert!(
            foreign.is_err(),
            "{part} answered a certificate from another CA"
        );
    }
    let foreign = health(up.addr("gateway"), &pki.ca_cert(), Some(&intruder), "").await;
    assert!(
        foreign.is_err(),
        "the gateway answered a certificate from another CA"
    );

    // A client that does not trust the server's CA refuses the server, too.
    let wrong_roots = health(up.addr("participants"), &other_ca.ca_cert(), None, "").await;
    assert!(wrong_roots.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_reuses_the_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let ca_before = {
        let _up = Up::start(data.path());
        std::fs::read(data.path().join("certs/ca.pem")).unwrap()
    };
    let up = Up::start(data.path());
    let ca_after = std::fs::read(data.path().join("certs/ca.pem")).unwrap();
    assert_eq!(ca_before, ca_after, "the CA is created once, then kept");
    let pki = DevPki::at(data.path().join("certs"));
    pki.ensure(&["e2e-client"]).unwrap();
    let client = pki.identity("e2e-client").unwrap();
    let status = health(up.addr("board"), &pki.ca_cert(), Some(&client), "").await;
    assert_eq!(status.unwrap(), ServingStatus::Serving);
}
