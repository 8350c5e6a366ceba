//! The README's tour, run as a newcomer would: `samsyn up --demo`, then the board as the
//! region's case manager and as a municipal coordinator (only consented rows), a revocation
//! and its effect, and the participant's own access log — all through the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

mod common;

use common::Up;
use serde_json::Value;

/// Runs `samsyn <args>` against the running demo; its standard output.
fn samsyn(data_dir: &Path, up: &Up, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_samsyn"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("SAMSYN_GATEWAY__LISTEN", up.addr("gateway").to_string())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "samsyn {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json(data_dir: &Path, up: &Up, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&samsyn(data_dir, up, &args)).unwrap()
}

/// The participant ids on a board as JSON.
fn board_participants(board: &Value) -> Vec<String> {
    board["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["participantId"]["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn person_id(roster: &Value, key: &str) -> String {
    roster["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .unwrap_or_else(|| panic!("{key} in the roster"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_readme_tour_shows_what_samsyn_is_for() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start_with(dir.path(), &["--demo"], Some("demo programme"));
    assert!(
        up.announced
            .iter()
            .any(|l| l.starts_with("demo programme seeded")),
        "{:?}",
        up.announced
    );
    let roster: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("demo.json")).unwrap())
            .unwrap();
    let orjan = person_id(&roster, "orjan");

    // 1. The board as the region's case manager: every row, as a readable table.
    let table = samsyn(dir.path(), &up, &["as", "anna", "board"]);
    assert!(table.contains("on the board"), "{table}");
    let region = board_participants(&json(dir.path(), &up, &["as", "anna", "board"]));
    // 2. The same board as Helsingborg's coordinator: only the rows a consent opens.
    let municipal = board_participants(&json(dir.path(), &up, &["as", "lisa", "board"]));
    // Anna sees every row through her FACT team, not through a care team on each.
    assert_eq!(region.len(), 8, "{region:?}");
    assert!(!municipal.is_empty() && municipal.len() < region.len());
    assert!(municipal.iter().all(|p| region.contains(p)));
    assert!(
        municipal.contains(&orjan),
        "Örjan consented to sharing the board"
    );

    // 3. Örjan revokes the consent that shares the board with the municipality...
    let consents = json(dir.path(), &up, &["as", "orjan", "consents", "orjan"]);
    let sharing = consents["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["kind"] == "CONSENT_KIND_INFORMATION_SHARING"
                && c["revocation"].is_null()
                && c["sharing"]["categories"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c == "DATA_CATEGORY_BOARD"))
        })
        .expect("a consent sharing the board")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = samsyn(
        dir.path(),
        &up,
        &["as", "orjan", "revoke-consent", "orjan", &sharing],
    );
    assert!(revoked.contains("revoked"), "{revoked}");
    // The write's consistency token is kept for the next `as` call, whichever gateway
    // replica answers it.
    let consistency = std::fs::read_to_string(dir.path().join("consistency-token")).unwrap();
    assert!(consistency.starts_with("consent:"), "{consistency}");
    // 4. ...and his row is gone from the municipal view at once, not from the region's.
    let after = board_participants(&json(dir.path(), &up, &["as", "lisa", "board"]));
    assert!(!after.contains(&orjan));
    assert_eq!(after.len(), municipal.len() - 1);
    let region_after = board_participants(&json(dir.path(), &up, &["as", "anna", "board"]));
    assert_eq!(region_after.len(), region.len());
    // Gösta shared nothing; once Anna records his consent, Lisa sees his row too.
    let gosta = person_id(&roster, "gosta");
    assert!(!after.contains(&gosta));
    let recorded = samsyn(
        dir.path(),
        &up,
        &[
            "as",
            "anna",
            "record-consent",
            "gosta",
            "--to",
            "1283",
            "--category",
            "board",
        ],
    );
    assert!(recorded.contains("recorded consent"), "{recorded}");
    let opened = board_participants(&json(dir.path(), &up, &["as", "lisa", "board"]));
    assert!(opened.contains(&gosta));
    assert_eq!(opened.len(), after.len() + 1);
    // A refusal reads as the gateway's answer.
    let refused = Command::new(env!("CARGO_BIN_EXE_samsyn"))
        .args(["as", "omar", "plan", "orjan", "--data-dir"])
        .arg(dir.path())
        .env("SAMSYN_GATEWAY__LISTEN", up.addr("gateway").to_string())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PermissionDenied: not permitted"));

    // 5. Lisa and Anna open Örjan's plan; Örjan's own access log then shows which
    // organisations read his data, never who.
    let plan = samsyn(dir.path(), &up, &["as", "lisa", "plan", "orjan"]);
    assert!(plan.contains("goal"), "{plan}");
    let plan = samsyn(dir.path(), &up, &["as", "anna", "plan", "orjan"]);
    assert!(plan.contains("follow-up"), "{plan}");
    let log = samsyn(dir.path(), &up, &["as", "orjan", "audit-log"]);
    assert!(log.contains("SE2321000255"), "the region read it: {log}");
    assert!(log.contains("1283"), "Helsingborg read it: {log}");
    let staff_ids: Vec<String> = roster["people"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "staff")
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        staff_ids.iter().all(|id| !log.contains(id.as_str())),
        "{log}"
    );
}
