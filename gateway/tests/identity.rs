//! Production identity end to end, with a real OpenID provider (`oidc-provider` from the npm
//! registry, `tests/oidc/provider.mjs`) over HTTPS: tokens from the region's and a
//! municipality's issuers found by discovery, HSA-style claims mapped, RS256, PS256 and
//! ES256, key rotation without a restart, revocation, and a journal system reading a FHIR
//! CarePlan on behalf of a clinician with a certificate-bound token (RFC 8705).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use samsyn_gateway::auth::IssuerSettings;
use samsyn_gateway::links::{LinkConfig, SystemKind, fingerprint_hex};
use samsyn_gateway::settings::AccessSettings;
use samsyn_kit::tls;
use samsyn_proto::audit::v1 as audit_pb;
use samsyn_proto::audit::v1::audit_service_client::AuditServiceClient;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use serde_json::{Value, json};
use support::*;
use tonic::Code;

/// Where the identity provider's script and its installed packages live.
fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc")
}

const AUDIENCE: &str = "urn:samsyn:gateway";
/// The journal system that may act for its users.
const ACTING_LINK: &str = "journal-acting";
/// Another journal system that may act for users: a token bound to the first is not its.
const OTHER_ACTING_LINK: &str = "journal-acting-2";
/// The clinician on the participant's care team.
const CLINICIAN: &str = "SE2321000255-K01";
/// A clinician of the same region on no care team of the participant.
const STRANGER: &str = "SE2321000255-K99";
/// The FACT team the staff accounts belong to.
const TEAM: &str = "0198c0de-0000-7000-8000-0000000000aa";
const FHIR_RPCS: [&str; 3] = [
    "/samsyn.participants.v1.ParticipantsService/GetParticipant",
    "/samsyn.plans.v1.PlansService/ListPlans",
    "/samsyn.plans.v1.PlansService/GetPlan",
];

/// One running identity provider.
struct Provider {
    child: Child,
    issuer: String,
    port: u16,
    config: PathBuf,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider with `config` (written to `dir/<name>.json`) on `port` (0: any).
fn start_provider(dir: &Path, name: &str, mut config: Value, port: u16) -> Provider {
    let node_modules = provider_dir().join("node_modules/oidc-provider");
    assert!(
        node_modules.exists(),
        "oidc-provider is not installed: run `npm ci --prefix tests/oidc` (the README's test command does)"
    );
    config["port"] = json!(port);
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    start_provider_from(path)
}

/// How long one start of the provider may take; it is ready in about a second.
const PROVIDER_START: Duration = Duration::from_secs(15);

fn start_provider_from(config: PathBuf) -> Provider {
    // A provider now and then does not answer at all (about one start in 25 on this
    // machine, with nothing on its stderr but Node's version warning; not understood yet):
    // one more start, then the test fails with what it said.
    let mut said = String::new();
    for _ in 0..2 {
        match spawn_provider(&config) {
            Ok((child, ready)) => {
                let issuer = ready["issuer"].as_str().unwrap().to_owned();
                let port = issuer.rsplit(':').next().unwrap().parse().unwrap();
                return Provider {
                    child,
                    issuer,
                    port,
                    config,
                };
            }
            Err(stderr) => said = stderr,
        }
    }
    panic!("the identity provider did not start twice; it said: {said}")
}

/// One start: the running provider and its ready line, or what it said on stderr.
fn spawn_provider(config: &Path) -> Result<(Child, Value), String> {
    let mut child = Command::new("node")
        .arg(provider_dir().join("provider.mjs"))
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Node.js 20) is needed for the identity tests");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let heard = std::sync::Arc::clone(&said);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut heard = heard.lock().unwrap();
            heard.push_str(&line);
            heard.push('\n');
        }
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(ready) = serde_json::from_str::<Value>(&line)
                && ready.get("issuer").is_some()
            {
                let _ = sender.send(ready);
            }
        }
    });
    match receiver.recv_timeout(PROVIDER_START) {
        Ok(ready) => Ok((child, ready)),
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            let said = said.lock().unwrap().clone();
            Err(format!("({error}) {said}"))
        }
    }
}

impl Provider {
    /// Stops it and starts it again on the same port with fresh signing keys.
    fn rotate(mut self) -> Provider {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.config).unwrap()).unwrap();
        config["port"] = json!(self.port);
        std::fs::write(&self.config, config.to_string()).unwrap();
        let config = std::mem::take(&mut self.config);
        std::mem::forget(self);
        start_provider_from(config)
    }

    /// An access token for `username` from `client`, presenting `certificate` (a PKI name
    /// under `pki`) when given.
    fn token(
        &self,
        ca: &Path,
        client: &str,
        username: &str,
        certificate: Option<(&tls::DevPki, &str)>,
    ) -> String {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(ca)
            .args(["-u", &format!("{client}:secret-{client}")])
            .args(["-d", "grant_type=urn:samsyn:params:grant-type:test-user"])
            .args(["-d", &format!("username={username}")]);
        if let Some((pki, name)) = certificate {
            curl.arg("--cert")
                .arg(pki.cert(name))
                .arg("--key")
                .arg(pki.key(name));
        }
        let output = curl.arg(format!("{}/token", self.issuer)).output().unwrap();
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            panic!(
                "token endpoint: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {answer}"))
            .to_owned()
    }
}

/// The claims of a token, unverified (for its `jti`).
fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let body = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap(),
    )
    .unwrap()
}

fn header_of(token: &str) -> Value {
    use base64::Engine;
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(head)
            .unwrap(),
    )
    .unwrap()
}

/// An HSA-style account: the claim names of a Swedish SAML-to-OIDC bridge.
fn account(hsa_id: &str, organisation: &str, rights: &[&str]) -> Value {
    json!({
        "employeeHsaId": hsa_id,
        "healthCareProviderHsaId": organisation,
        "healthCareUnitHsaId": format!("{organisation}-FACT"),
        "commissionRight": rights,
        "commissionPurpose": "Vård och behandling",
        "fact_teams": [TEAM],
    })
}

fn provider_config(pki: &tls::DevPki, accounts: Value, clients: Value) -> Value {
    json!({
        "tls": {
            "cert": pki.cert("idp"), "key": pki.key("idp"), "ca": pki.ca_cert(),
        },
        "audience": AUDIENCE,
        "algorithms": ["RS256", "PS256", "ES256"],
        "clients": clients,
        "accounts": accounts,
    })
}

fn issuer_settings(provider: &Provider, ca: PathBuf, organisations: &[&str]) -> IssuerSettings {
    serde_json::from_value(json!({
        "issuer": provider.issuer,
        "audience": AUDIENCE,
        "ca_cert": ca,
        "organisations": organisations,
        "min_refresh_seconds": 1,
        "leeway_seconds": 0,
        "claims": {
            "subject": "employeeHsaId",
            "organisation": "healthCareProviderHsaId",
            "unit": "healthCareUnitHsaId",
            "roles": "commissionRight",
            "teams": "fact_teams",
            "purpose": "commissionPurpose",
            "role_values": {
                "Kontaktperson": "case_manager",
                "Läkare": "physician",
                "Säkerhetsgranskare": "security_auditor",
            },
            "purpose_values": {"Vård och behandling": "care"},
        },
    }))
    .unwrap()
}

/// A GET of the FHIR view over a TLS connection presenting `identity`, with `token`.
async fn fhir_get(
    stack: &Stack,
    identity: &tls::Identity,
    token: &str,
    path: &str,
) -> Result<(u16, Value), String> {
    fhir_get_with(stack, identity, token, path, &[]).await
}

/// [`fhir_get`] with more request headers.
async fn fhir_get_with(
    stack: &Stack,
    identity: &tls::Identity,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Value), String> {
    let config = tls::client_config(
        tls::DevPki::at(stack.certs()).trust_anchors().unwrap(),
        Some(identity),
    )
    .unwrap();
    let mut config = rustls::ClientConfig::clone(&config);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = http::Request::get(path)
        .header(http::header::HOST, "localhost")
        .header(http::header::ACCEPT, "application/fhir+json")
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Empty::<Bytes>::new()).unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

async fn list_participants(stack: &Stack, token: &str) -> Result<usize, Code> {
    participants_client(stack, token)
        .list_participants(participants_pb::ListParticipantsRequest::default())
        .await
        .map(|r| r.into_inner().participants.len())
        .map_err(|status| status.code())
}

fn participants_client(
    stack: &Stack,
    token: &str,
) -> samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credentials>,
> {
    samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient::with_interceptor(
        stack.channel(),
        Credentials::bearer(token),
    )
}

struct World {
    stack: Stack,
    _dir: tempfile::TempDir,
    external: tls::DevPki,
    region: Provider,
    municipality: Provider,
    participant: String,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    // The identity providers' and the acting journal systems' certificates come from a CA of
    // their own, as they would from the region's.
    let external = tls::DevPki::at(dir.path().join("external"));
    external
        .ensure(&["idp", ACTING_LINK, OTHER_ACTING_LINK])
        .unwrap();
    let staff_clients = json!([
        {"client_id": "staff-rs256", "client_secret": "secret-staff-rs256", "alg": "RS256"},
        {"client_id": "staff-ps256", "client_secret": "secret-staff-ps256", "alg": "PS256"},
        {"client_id": "staff-es256", "client_secret": "secret-staff-es256", "alg": "ES256"},
        {"client_id": "staff-short", "client_secret": "secret-staff-short", "alg": "ES256", "ttl": 1},
        {"client_id": "staff-elsewhere", "client_secret": "secret-staff-elsewhere", "alg": "ES256",
         "audience": "urn:another:service"},
        {"client_id": "journal", "client_secret": "secret-journal", "alg": "ES256", "bound": true},
    ]);
    let region = start_provider(
        dir.path(),
        "region",
        provider_config(
            &external,
            json!({
                "anna": account(CLINICIAN, REGION, &["Kontaktperson"]),
                "kim": account(STRANGER, REGION, &["Kontaktperson"]),
                "sara": account("SE2321000255-S01", REGION, &["Säkerhetsgranskare"]),
            }),
            staff_clients.clone(),
        ),
        0,
    );
    let municipality = start_provider(
        dir.path(),
        "municipality",
        provider_config(
            &external,
            json!({
                "lisa": account("SE1283-C01", HELSINGBORG, &["Kontaktperson"]),
                // The municipality's IdP claiming a region clinician.
                "mallory": account("SE2321000255-K02", REGION, &["Läkare"]),
            }),
            staff_clients,
        ),
        0,
    );
    let leaf = |name: &str| fingerprint_hex(external.identity(name).unwrap().leaf().unwrap());
    let acting_link = |id: &str| LinkConfig {
        id: id.into(),
        kind: SystemKind::JournalSystem,
        organisation: REGION.into(),
        ca_cert: external.ca_cert(),
        certificate_sha256: vec![leaf(id)],
        allowed_rpcs: FHIR_RPCS.iter().map(|s| (*s).to_owned()).collect(),
        acts_for_users: true,
        decision_codes: Default::default(),
    };
    let settings = AccessSettings {
        issuers: vec![
            issuer_settings(&region, external.ca_cert(), &[REGION]),
            issuer_settings(&municipality, external.ca_cert(), &[HELSINGBORG]),
        ],
        links: vec![acting_link(ACTING_LINK), acting_link(OTHER_ACTING_LINK)],
        // Participants' own tokens (for their access log) come from the development issuer.
        development_issuer: true,
        ..AccessSettings::default()
    };
    let stack = Stack::start_with(settings).await;
    let participant = enrolled(
        &stack,
        &pin("19800101", "123"),
        "Anna Testsson",
        Team {
            region: &[CLINICIAN],
            municipal: &["SE1283-C01"],
        },
    )
    .await;
    PlansServiceClient::new(stack.plans.channel.clone())
        .create_plan(plans_pb::CreatePlanRequest {
            participant_id: pid(&participant),
            content: Some(plans_pb::PlanContent {
                goals: vec![plans_pb::Goal {
                    id: String::new(),
                    text: "Ett eget boende".into(),
                }],
                ..Default::default()
            }),
            supersede_active: false,
            request_id: "plan-1".into(),
        })
        .await
        .unwrap();
    stack.settle().await;
    World {
        stack,
        _dir: dir,
        external,
        region,
        municipality,
        participant,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_log_in_at_real_identity_providers_and_keys_rotate_without_a_restart() {
    let w = world().await;
    let ca = w.external.ca_cert();

    // RS256, PS256 and ES256 tokens of the region's provider, HSA-style claims mapped.
    let mut kids = HashMap::new();
    for client in ["staff-rs256", "staff-ps256", "staff-es256"] {
        let token = w.region.token(&ca, client, "anna", None);
        kids.insert(
            client,
            header_of(&token)["kid"].as_str().unwrap().to_owned(),
        );
        assert_eq!(list_participants(&w.stack, &token).await, Ok(1), "{client}");
    }
    let event = w.stack.trail.events().pop().unwrap();
    let principal = event.principal.unwrap();
    assert_eq!(
        (
            principal.id.as_str(),
            principal.organisation.as_deref(),
            principal.unit.as_deref()
        ),
        (CLINICIAN, Some(REGION), Some("SE2321000255-FACT"))
    );
    assert_eq!(principal.roles, ["case_manager"]);
    assert_eq!(principal.purpose.as_deref(), Some("care"));

    // The municipality's provider speaks for its own staff, never for the region's.
    let lisa = w.municipality.token(&ca, "staff-es256", "lisa", None);
    assert!(list_participants(&w.stack, &lisa).await.is_ok());
    let mallory = w.municipality.token(&ca, "staff-es256", "mallory", None);
    assert_eq!(
        list_participants(&w.stack, &mallory).await,
        Err(Code::Unauthenticated),
        "a municipality's issuer claiming a region clinician"
    );

    // An unknown issuer, another audience, an expired token: refused.
    let stranger_dir = tempfile::tempdir().unwrap();
    let unknown = start_provider(
        stranger_dir.path(),
        "unknown",
        provider_config(
            &w.external,
            json!({"anna": account(CLINICIAN, REGION, &["Kontaktperson"])}),
            json!([{"client_id": "staff-es256", "client_secret": "secret-staff-es256", "alg": "ES256"}]),
        ),
        0,
    );
    let foreign = unknown.token(&ca, "staff-es256", "anna", None);
    assert_eq!(
        list_participants(&w.stack, &foreign).await,
        Err(Code::Unauthenticated),
        "unknown issuer"
    );
    let elsewhere = w.region.token(&ca, "staff-elsewhere", "anna", None);
    assert_eq!(
        list_participants(&w.stack, &elsewhere).await,
        Err(Code::Unauthenticated),
        "audience"
    );
    let short = w.region.token(&ca, "staff-short", "anna", None);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        list_participants(&w.stack, &short).await,
        Err(Code::Unauthenticated),
        "expired"
    );

    // The provider rotates its keys (a restart with new ones): the next token, signed by a
    // key the gateway has never seen, works at once, without restarting the gateway.
    let old = w.region.token(&ca, "staff-es256", "anna", None);
    let region = w.region.rotate();
    let rotated = region.token(&ca, "staff-es256", "anna", None);
    assert_ne!(header_of(&rotated)["kid"], header_of(&old)["kid"]);
    assert_ne!(
        header_of(&rotated)["kid"].as_str().unwrap(),
        kids["staff-es256"]
    );
    assert_eq!(
        list_participants(&w.stack, &rotated).await,
        Ok(1),
        "a new key's token"
    );
    // The retired key is gone from the issuer's key set, so its tokens no longer verify.
    assert_eq!(
        list_participants(&w.stack, &old).await,
        Err(Code::Unauthenticated)
    );

    // Revocation: one token by its id, then every token of a subject, on the next call and
    // on an open stream.
    let auditor = region.token(&ca, "staff-es256", "sara", None);
    let anna = region.token(&ca, "staff-rs256", "anna", None);
    let anna_too = region.token(&ca, "staff-ps256", "anna", None);
    assert_eq!(list_participants(&w.stack, &anna).await, Ok(1));
    let mut audit =
        AuditServiceClient::with_interceptor(w.stack.channel(), Credentials::bearer(&auditor));
    audit
        .revoke_sessions(audit_pb::RevokeSessionsRequest {
            issuer: region.issuer.clone(),
            token_id: claims_of(&anna)["jti"].as_str().unwrap().to_owned(),
            subject: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        list_participants(&w.stack, &anna).await,
        Err(Code::Unauthenticated),
        "revoked jti"
    );
    assert_eq!(
        list_participants(&w.stack, &anna_too).await,
        Ok(1),
        "another session"
    );
    let missing = audit
        .revoke_sessions(audit_pb::RevokeSessionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    let not_auditor =
        AuditServiceClient::with_interceptor(w.stack.channel(), Credentials::bearer(&anna_too))
            .revoke_sessions(audit_pb::RevokeSessionsRequest {
                subject: "SE2321000255-S01".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
    assert_eq!(not_auditor.code(), Code::PermissionDenied);

    let team = board_team(&w.stack).await;
    w.stack.settle().await;
    let mut board =
        samsyn_proto::board::v1::board_service_client::BoardServiceClient::with_interceptor(
            w.stack.channel(),
            Credentials::bearer(&anna_too),
        );
    let mut stream = board
        .watch_board(board_pb::WatchBoardRequest {
            team_id: team,
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    audit
        .revoke_sessions(audit_pb::RevokeSessionsRequest {
            issuer: String::new(),
            token_id: String::new(),
            subject: CLINICIAN.into(),
        })
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status.code()),
            }
        }
    })
    .await
    .expect("the open stream ends once its session is revoked");
    assert_eq!(ended, Some(Code::Unauthenticated));
    assert_eq!(
        list_participants(&w.stack, &anna_too).await,
        Err(Code::Unauthenticated)
    );
    // A fresh login after the revocation is a new session.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = region.token(&ca, "staff-es256", "anna", None);
    assert_eq!(list_participants(&w.stack, &again).await, Ok(1));
    drop(region);
    w.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_system_reads_a_care_plan_for_a_clinician_with_a_bound_token() {
    let w = world().await;
    let ca = w.external.ca_cert();
    let acting = w.external.identity(ACTING_LINK).unwrap();
    let other = w.external.identity(OTHER_ACTING_LINK).unwrap();
    let care_plans = format!("/fhir/CarePlan?patient=Patient/{}", w.participant);

    // The clinician on the care team, through the journal system, bound to its certificate.
    let bound = w
        .region
        .token(&ca, "journal", "anna", Some((&w.external, ACTING_LINK)));
    assert!(claims_of(&bound)["cnf"]["x5t#S256"].is_string());
    let (status, bundle) = fhir_get(&w.stack, &acting, &bound, &care_plans)
        .await
        .unwrap();
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(
        bundle["entry"].as_array().map_or(0, Vec::len),
        1,
        "{bundle}"
    );
    let read = w
        .stack
        .trail
        .events()
        .into_iter()
        .rev()
        .find(|e| e.rpc.ends_with("ListPlans"))
        .unwrap();
    let principal = read.principal.unwrap();
    assert_eq!(
        (
            principal.id.as_str(),
            principal.unit.as_deref(),
            principal.acting_through.as_deref()
        ),
        (CLINICIAN, Some("SE2321000255-FACT"), Some(ACTING_LINK)),
        "the audit event names clinician, care unit and system"
    );
    // The participant's own access log shows the clinician's organisation and unit.
    let own = participant_token(&w, &w.participant);
    let log = AuditServiceClient::with_interceptor(w.stack.channel(), Credentials::bearer(&own))
        .get_my_access_log(audit_pb::GetMyAccessLogRequest {
            participant_id: pid(&w.participant),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        log.entries.iter().any(|e| e.rpc.ends_with("ListPlans")
            && e.organisation_id.as_ref().map(|o| o.value.as_str()) == Some(REGION)
            && e.unit_id == "SE2321000255-FACT"),
        "{:?}",
        log.entries
    );

    // The FHIR view passes a consistency token on: one this gateway cannot reach in time is
    // 503, never an answer decided on an older view.
    let (status, _) = fhir_get_with(
        &w.stack,
        &acting,
        &bound,
        &care_plans,
        &[("samsyn-consistency", "consent:999999999")],
    )
    .await
    .unwrap();
    assert_eq!(status, 503);

    // A clinician of the same region on no care team sees no plan through the same system.
    let kim = w
        .region
        .token(&ca, "journal", "kim", Some((&w.external, ACTING_LINK)));
    let (status, bundle) = fhir_get(&w.stack, &acting, &kim, &care_plans)
        .await
        .unwrap();
    assert!(
        status != 200 || bundle["entry"].as_array().map_or(0, Vec::len) == 0,
        "{status} {bundle}"
    );

    // The same bound token over another link's certificate: refused.
    let (status, _) = fhir_get(&w.stack, &other, &bound, &care_plans)
        .await
        .unwrap();
    assert_eq!(status, 401, "a token bound to another certificate");
    // A link not allowed to act for users: refused, even with a token bound to its own
    // certificate.
    let pki = tls::DevPki::at(w.stack.certs());
    let journal = pki.identity(JOURNAL).unwrap();
    let bound_to_plain = w
        .region
        .token(&ca, "journal", "anna", Some((&pki, JOURNAL)));
    let (status, _) = fhir_get(&w.stack, &journal, &bound_to_plain, &care_plans)
        .await
        .unwrap();
    assert_eq!(status, 401, "a link without on-behalf-of permission");
    // The bound token alone, without the system's certificate: refused.
    let alone = list_participants(&w.stack, &bound).await;
    assert_eq!(alone, Err(Code::Unauthenticated));
    w.stack.stop().await;
}

/// A participant's own token, from the development issuer this gateway also trusts.
fn participant_token(w: &World, participant: &str) -> String {
    w.stack.token(&person(participant))
}
