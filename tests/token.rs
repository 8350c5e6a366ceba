//! `samsyn token`: development tokens the gateway's verifier accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use samsyn_gateway::auth::{DevIssuer, PrincipalKind};

fn token(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_samsyn"))
        .arg("token")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_staff_token_carries_who_the_person_is() {
    let data = tempfile::tempdir().unwrap();
    let output = token(
        data.path(),
        &[
            "--id",
            "SE2321000016-CM01",
            "--org",
            "SE2321000016-PSYK",
            "--unit",
            "fact-nw",
            "--role",
            "case_manager",
            "--team",
            "fact-nw",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let verifier = DevIssuer::at(data.path().join("certs")).verifier().unwrap();
    let principal = verifier.verify(token.trim()).unwrap();
    assert_eq!(principal.id, "SE2321000016-CM01");
    assert_eq!(principal.kind, PrincipalKind::Staff);
    assert_eq!(principal.organisation.as_deref(), Some("SE2321000016-PSYK"));
    assert_eq!(principal.roles, ["case_manager"]);
    assert_eq!(principal.teams, ["fact-nw"]);
    assert_eq!(principal.purpose.as_deref(), Some("care"));
}

#[test]
fn staff_without_an_organisation_gets_no_token() {
    let data = tempfile::tempdir().unwrap();
    let output = token(data.path(), &["--id", "SE2321000016-CM01"]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
}

#[test]
fn a_participant_token_needs_an_internal_id_not_a_personal_identity_number() {
    let data = tempfile::tempdir().unwrap();
    let refused = token(data.path(), &["--participant", "--id", "19121212-1212"]);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    let accepted = token(
        data.path(),
        &[
            "--participant",
            "--id",
            "0193a3c2-7d2e-7b4a-9a51-3f0c2d1e4b5a",
        ],
    );
    assert!(accepted.status.success());
}

#[test]
fn a_production_gateway_without_an_issuer_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_samsyn"))
        .args(["serve", "gateway", "--data-dir"])
        .arg(data.path())
        .env("SAMSYN_GATEWAY__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`samsyn serve gateway` without an issuer kept running");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success());
    assert!(
        stderr.contains("access.issuers") && stderr.contains("development_issuer"),
        "the refusal says what to configure: {stderr}"
    );
}
