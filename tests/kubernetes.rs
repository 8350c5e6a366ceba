//! The Kubernetes manifests render, validate against the Kubernetes schemas and keep the
//! conventions operators rely on (deploy/kubernetes/check.py, which says what it checks).
//!
//! Needs Python 3 with deploy/kubernetes/requirements.txt installed (the README's test
//! command does it); fails, not skips, without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn every_overlay_renders_validates_and_keeps_the_conventions() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new("python3")
        .arg(repo.join("deploy/kubernetes/check.py"))
        .arg("--self-test")
        .current_dir(&repo)
        .output()
        .expect("python3 runs (install Python 3 and deploy/kubernetes/requirements.txt)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "deploy/kubernetes/check.py failed:\n{stdout}\n{stderr}"
    );
    for overlay in ["dev:", "production:"] {
        assert!(
            stdout.contains(overlay),
            "{overlay} not rendered:\n{stdout}"
        );
    }
}
