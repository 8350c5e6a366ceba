//! What a token costs the gateway (issue 20): verification with the issuer's keys already
//! held, per algorithm (RS256, PS256, ES256), each token seen for the first time (the
//! signature is checked) and again (remembered); and one refresh of an issuer's keys from a
//! real OpenID provider (`tests/oidc/provider.mjs`: discovery, then the key set, over HTTPS).
//! Prints p50 and p99 of each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use samsyn_gateway::auth::{DevIssuer, Issuer, IssuerSettings, TokenVerifier};
use serde_json::{Value, json};

const TOKENS: usize = 2_000;
const REFRESHES: usize = 100;

fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// A private key (PKCS#8 PEM) and its public JWK, made by Node's crypto (ring cannot make
/// RSA keys).
fn key_pair(kind: &str) -> (String, Value) {
    let options = if kind == "rsa" {
        "{modulusLength: 2048}"
    } else {
        "{namedCurve: 'P-256'}"
    };
    let script = format!(
        "const c = require('crypto'); const k = c.generateKeyPairSync('{kind}', {options}); \
         console.log(JSON.stringify({{pem: k.privateKey.export({{type: 'pkcs8', format: 'pem'}}), \
         jwk: k.publicKey.export({{format: 'jwk'}})}}))"
    );
    let output = Command::new("node")
        .args(["-e", &script])
        .output()
        .expect("node");
    let pair: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        pair["pem"].as_str().unwrap().to_owned(),
        pair["jwk"].clone(),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let (rsa_pem, rsa_jwk) = key_pair("rsa");
    let (ec_pem, ec_jwk) = key_pair("ec");
    let mut keys = Vec::new();
    for (alg, jwk) in [("RS256", &rsa_jwk), ("PS256", &rsa_jwk), ("ES256", &ec_jwk)] {
        let mut jwk = jwk.clone();
        jwk["kid"] = json!(format!("bench-{alg}"));
        jwk["alg"] = json!(alg);
        jwk["use"] = json!("sig");
        keys.push(jwk);
    }
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": keys }).to_string()).unwrap();
    let settings = IssuerSettings {
        issuer: "https://idp.bench.example".into(),
        jwks_file: Some(jwks),
        algorithms: vec!["RS256".into(), "PS256".into(), "ES256".into()],
        organisations: vec!["SE2321000255".into()],
        participants: false,
        claims: Default::default(),
        ..DevIssuer::settings()
    };
    let verifier = TokenVerifier::new(
        vec![Issuer::from_settings(&settings).unwrap()],
        Arc::default(),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    println!("token verification, {TOKENS} distinct tokens per algorithm (µs, p50 / p99):");
    for (alg, algorithm, key) in [
        (
            "RS256",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap(),
        ),
        (
            "PS256",
            Algorithm::PS256,
            EncodingKey::from_rsa_pem(rsa_pem.as_bytes()).unwrap(),
        ),
        (
            "ES256",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(ec_pem.as_bytes()).unwrap(),
        ),
    ] {
        let mut header = Header::new(algorithm);
        header.kid = Some(format!("bench-{alg}"));
        let tokens: Vec<String> = (0..TOKENS)
            .map(|n| {
                let claims = json!({
                    "iss": settings.issuer, "aud": settings.audience, "sub": format!("SE2321000255-B{n:05}"),
                    "exp": now + 600, "iat": now, "jti": format!("{alg}-{n}"),
                    "org": "SE2321000255", "unit": "SE2321000255-FACT",
                    "roles": ["case_manager"], "purpose": "care",
                });
                jsonwebtoken::encode(&header, &claims, &key).unwrap()
            })
            .collect();
        let mut first = Vec::with_capacity(TOKENS);
        let mut again = Vec::with_capacity(TOKENS);
        for token in &tokens {
            let started = Instant::now();
            verifier.verify_at(token, now).unwrap();
            first.push(started.elapsed());
            let started = Instant::now();
            verifier.verify_at(token, now).unwrap();
            again.push(started.elapsed());
        }
        let (p50, p99) = percentiles(first);
        let (r50, r99) = percentiles(again);
        println!(
            "  {alg}: signature checked {p50:>8.1} / {p99:>8.1}    remembered {r50:>5.2} / {r99:>5.2}"
        );
    }

    // One refresh from a real provider: discovery document and key set over HTTPS.
    let pki = samsyn_kit::tls::DevPki::at(dir.path().join("pki"));
    pki.ensure(&["idp"]).unwrap();
    let provider_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc");
    let config = dir.path().join("idp.json");
    std::fs::write(
        &config,
        json!({
            "port": 0,
            "tls": {"cert": pki.cert("idp"), "key": pki.key("idp"), "ca": pki.ca_cert()},
            "audience": "urn:samsyn:gateway",
            "algorithms": ["RS256", "PS256", "ES256"],
            "clients": [],
            "accounts": {},
        })
        .to_string(),
    )
    .unwrap();
    let mut child = Command::new("node")
        .arg(provider_dir.join("provider.mjs"))
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node, and `npm ci --prefix tests/oidc`");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let issuer = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "provider did not start"
        );
        if let Ok(ready) = serde_json::from_str::<Value>(&line)
            && let Some(issuer) = ready["issuer"].as_str()
        {
            break issuer.to_owned();
        }
    };
    let discovering = IssuerSettings {
        issuer,
        ca_cert: Some(pki.ca_cert()),
        jwks_file: None,
        ..settings.clone()
    };
    let issuer = Issuer::from_settings(&discovering).unwrap();
    issuer.refresh(None, true).await.unwrap();
    let mut refreshes = Vec::with_capacity(REFRESHES);
    for _ in 0..REFRESHES {
        let started = Instant::now();
        assert!(issuer.refresh(None, true).await.unwrap());
        refreshes.push(started.elapsed());
    }
    assert_eq!(issuer.key_ids().len(), 3);
    let (p50, p99) = percentiles(refreshes);
    println!(
        "key refresh from oidc-provider (discovery + key set over HTTPS, new connection), x{REFRESHES}: \
         {:.2} / {:.2} ms",
        p50 / 1000.0,
        p99 / 1000.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
