//! The web board's production login in a real headless Chromium: `samsyn up --demo` with
//! `[access.web_login]` at a real OpenID provider (`oidc-provider`, `tests/oidc/provider.mjs`)
//! over HTTPS, then `tests/browser/login.py` (Selenium) logs in as Anna through the
//! provider's own login and consent pages and checks the board, the session cookie, and
//! that a wrong `state` and a replayed code are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use common::Up;
use serde_json::{Value, json};

const INSTALL: &str = "bash tests/browser/requirements.sh && npm ci --prefix tests/oidc";
const AUDIENCE: &str = "urn:samsyn:gateway";
const CLIENT_ID: &str = "samsyn-board";
/// The provider's access token lifetime (its default for a client it has no `ttl` for).
const TOKEN_TTL: u64 = 600;

/// The running provider, killed when dropped.
struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tests/oidc/provider.mjs` with `config`; the provider and its issuer URL.
fn start_provider(dir: &Path, config: &Value) -> (Provider, String) {
    let oidc = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/oidc");
    assert!(
        Path::new(oidc).join("node_modules/oidc-provider").exists(),
        "oidc-provider is missing: run `{INSTALL}`"
    );
    let path = dir.join("provider.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut child = Command::new("node")
        .arg(Path::new(oidc).join("provider.mjs"))
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (Node.js 20) runs the identity provider");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(ready) = serde_json::from_str::<Value>(&line)
                && let Some(issuer) = ready["issuer"].as_str()
            {
                let _ = sender.send(issuer.to_owned());
            }
        }
    });
    let provider = Provider(child);
    // Node loads oidc-provider in a second or two, but far slower while the machine compiles
    // (once past 15 s, with a release build beside the tests): bounded, with room for that.
    let issuer = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the identity provider announces its issuer");
    (provider, issuer)
}

/// Registers the board's client at the provider (RFC 7591) for `redirect_uri`.
fn register_client(issuer: &str, ca: &Path, redirect_uri: &str) {
    let metadata = json!({
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["-H", "content-type: application/json", "-d"])
        .arg(metadata.to_string())
        .arg(format!("{issuer}/reg"))
        .output()
        .expect("curl runs");
    let answer: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("registration: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(answer["client_id"], CLIENT_ID, "registered: {answer}");
}

#[test]
fn the_web_board_logs_in_at_the_openid_provider_in_a_real_browser() {
    let browser = common::browser_tools();
    let dir = tempfile::tempdir().unwrap();
    let external = samsyn_kit::tls::DevPki::at(dir.path().join("external"));
    external.ensure(&["idp"]).unwrap();
    let accounts = dir.path().join("accounts.json");
    std::fs::write(&accounts, "{}").unwrap();
    let secret = "web-login-test-secret";
    let (_provider, issuer) = start_provider(
        dir.path(),
        &json!({
            "port": 0,
            "tls": {
                "cert": external.cert("idp"), "key": external.key("idp"),
                "ca": external.ca_cert(),
            },
            "audience": AUDIENCE,
            "algorithms": ["RS256"],
            "clients": [],
            "accounts_file": accounts,
            "web_client": { "client_id": CLIENT_ID, "client_secret": secret },
        }),
    );
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let config = dir.path().join("samsyn.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[access.issuers]]
issuer = "{issuer}"
audience = "{AUDIENCE}"
ca_cert = "{ca}"
organisations = ["SE2321000255"]
algorithms = ["RS256"]

[access.web_login]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "{secret_file}"
scopes = ["samsyn"]
"#,
            ca = external.ca_cert().display(),
            secret_file = secret_file.display(),
        ),
    )
    .unwrap();
    let config_env = config.display().to_string();
    let up = Up::start_configured(
        dir.path(),
        &["--demo"],
        Some("demo programme"),
        &[("SAMSYN_CONFIG", config_env.as_str())],
    );
    let roster: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("demo.json")).unwrap())
            .unwrap();
    let anna = roster["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "anna")
        .expect("Anna in the roster");
    let anna_id = anna["id"].as_str().unwrap();
    let anna_name = anna["name"].as_str().unwrap();
    let anna_name = anna_name.split(" — ").next().unwrap();
    // The provider's account for Anna carries the claims the issuer's default mapping reads.
    std::fs::write(
        &accounts,
        json!({
            anna_id: {
                "name": anna_name,
                "org": anna["organisation"], "unit": anna["unit"],
                "roles": anna["roles"], "teams": anna["teams"], "purpose": "care",
            }
        })
        .to_string(),
    )
    .unwrap();
    let board = format!("https://{}/board/", up.addr("gateway"));
    register_client(&issuer, &external.ca_cert(), &format!("{board}callback"));
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-login");
    std::fs::create_dir_all(&shots).unwrap();
    let status = Command::new("python3")
        .arg(browser.join("login.py"))
        .env("BOARD_URL", &board)
        .env("ISSUER", &issuer)
        .env("PERSON_LOGIN", anna_id)
        .env("PERSON_NAME", anna_name)
        .env("EXPECTED_ROWS", "8")
        .env("TOKEN_TTL", TOKEN_TTL.to_string())
        .env("SHOTS", &shots)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "the browser test passed (see its output)");
    assert!(
        shots.join("logged-in.png").exists(),
        "screenshot of the board"
    );
}
