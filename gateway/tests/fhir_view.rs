//! The FHIR view over real HTTPS (HTTP/1.1, mutual TLS) in front of the real services: a
//! regional journal system's link reads Patients and their records, sees none of the
//! municipality's data without a covering consent, cannot widen a search with leaky
//! parameters, and every read lands in the audit trail as the link's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use samsyn_gateway::access_view::FeedName;
use samsyn_gateway::audit::{MemoryTrail, Outcome};
use samsyn_gateway::auth::{Principal, PrincipalKind};
use samsyn_gateway::links::{LinkConfig, SystemKind, fingerprint_hex};
use samsyn_gateway::proxy::{Gateway, Upstreams};
use samsyn_gateway::settings::{AccessSettings, DataOwners, Owner};
use samsyn_kit::tls;
use samsyn_proto::common::v1::{DataCategory, OrganisationId};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use serde_json::Value;
use support::*;

/// The journal system's FHIR link.
const FHIR_LINK: &str = "journal-fhir";
/// What the FHIR view needs its link to allow.
const FHIR_RPCS: [&str; 6] = [
    "/samsyn.participants.v1.ParticipantsService/ListParticipants",
    "/samsyn.participants.v1.ParticipantsService/GetParticipant",
    "/samsyn.participants.v1.ParticipantsService/GetCareTeam",
    "/samsyn.plans.v1.PlansService/ListPlans",
    "/samsyn.plans.v1.PlansService/GetPlan",
    "/samsyn.consent.v1.ConsentService/ListConsents",
];
const PERSONNUMMER: &str = "http://electronichealth.se/identifier/personnummer";

/// A gateway of its own in front of the stack's services: the FHIR link, and plans owned
/// by the home municipality, so that the region needs the participant's consent to them.
struct FhirGateway {
    gateway: Arc<Gateway>,
    trail: Arc<MemoryTrail>,
    addr: SocketAddr,
    /// Serving ends when this is dropped.
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

async fn fhir_gateway(stack: &Stack) -> FhirGateway {
    fhir_gateway_pinning(stack, Vec::new()).await
}

/// [`fhir_gateway`], the link also pinning the certificates `also_pinned`.
async fn fhir_gateway_pinning(stack: &Stack, also_pinned: Vec<String>) -> FhirGateway {
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::DevPki::at(stack.certs());
    pki.ensure(&[FHIR_LINK]).unwrap();
    let mut pinned = vec![fingerprint_hex(
        pki.identity(FHIR_LINK).unwrap().leaf().unwrap(),
    )];
    pinned.extend(also_pinned);
    let settings = AccessSettings {
        owners: DataOwners {
            plan: Owner::HomeMunicipality,
            ..DataOwners::default()
        },
        links: vec![LinkConfig {
            id: FHIR_LINK.into(),
            kind: SystemKind::JournalSystem,
            organisation: REGION.into(),
            ca_cert: pki.ca_cert(),
            certificate_sha256: pinned,
            allowed_rpcs: FHIR_RPCS.iter().map(|s| (*s).to_owned()).collect(),
            acts_for_users: false,
            decision_codes: Default::default(),
        }],
        ..AccessSettings::default()
    };
    let upstreams = Upstreams {
        participants: stack.participants.channel.clone(),
        consent: stack.consent.channel.clone(),
        plans: stack.plans.channel.clone(),
        board: stack.board.channel.clone(),
        audit: None,
        reports: None,
    };
    let served = serve_gateway(&stack.certs(), dir.path(), settings, upstreams).await;
    FhirGateway {
        gateway: served.gateway,
        trail: served.trail,
        addr: served.addr,
        _stop: served.stop,
        _dir: dir,
    }
}

impl FhirGateway {
    /// Waits until this gateway's access view has applied everything the services wrote.
    async fn settle(&self, stack: &Stack) {
        let view = self.gateway.gate().view();
        for (feed, channel) in [
            (FeedName::Participants, &stack.participants.channel),
            (FeedName::Consent, &stack.consent.channel),
            (FeedName::Board, &stack.board.channel),
        ] {
            let head = feed_head(feed, channel.clone()).await;
            view.wait_for(feed, head, Duration::from_secs(5))
                .await
                .unwrap();
        }
    }
}

/// An HTTP/1.1 client on one TLS connection, presenting `identity`'s certificate if named.
struct FhirClient {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    /// A bearer token sent with every request (staff), if any.
    bearer: Option<String>,
    /// Every JSON body received, for the validator.
    bodies: Vec<Value>,
}

/// One answer: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

impl FhirClient {
    async fn connect(stack: &Stack, addr: SocketAddr, identity: Option<&str>) -> Self {
        let pki = tls::DevPki::at(stack.certs());
        let identity = identity.map(|name| pki.identity(name).unwrap());
        let stream = connect_tls(stack, addr, identity.as_ref()).await.unwrap();
        assert_eq!(
            stream.get_ref().1.alpn_protocol(),
            Some(&b"http/1.1"[..]),
            "the gateway offers HTTP/1.1 by ALPN"
        );
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Self {
            sender,
            bearer: None,
            bodies: Vec::new(),
        }
    }

    async fn get(&mut self, path_and_query: &str) -> Answer {
        let mut request = http::Request::get(path_and_query)
            .header(http::header::HOST, "localhost")
            .header(http::header::ACCEPT, "application/fhir+json");
        if let Some(token) = &self.bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Empty::<Bytes>::new()).unwrap();
        self.sender.ready().await.unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path_and_query}: not JSON ({e})"));
        if body["resourceType"] == "Bundle" {
            let entries = body["entry"].as_array().map_or(0, Vec::len);
            assert_eq!(
                body["total"].as_u64(),
                Some(entries as u64),
                "{path_and_query}: Bundle.total counts the entries the reader sees"
            );
        }
        self.bodies.push(body.clone());
        Answer {
            status,
            content_type,
            body,
        }
    }
}

fn entries(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|x| &x["resource"]).collect())
        .unwrap_or_default()
}

fn patient_search(pin: &str) -> String {
    format!("/fhir/Patient?identifier={PERSONNUMMER}%7C{pin}")
}

fn issue(answer: &Answer) -> (&str, &str) {
    let issue = &answer.body["issue"][0];
    (
        issue["code"].as_str().unwrap_or_default(),
        issue["diagnostics"].as_str().unwrap_or_default(),
    )
}

async fn create_plan(stack: &Stack, participant: &str) -> plans_pb::Plan {
    PlansServiceClient::new(stack.plans.channel.clone())
        .create_plan(plans_pb::CreatePlanRequest {
            participant_id: pid(participant),
            content: Some(plans_pb::PlanContent {
                goals: vec![plans_pb::Goal {
                    id: String::new(),
                    text: "Ett eget boende och en meningsfull sysselsättning".into(),
                }],
                strengths: "Stöd från sin syster".into(),
                ..Default::default()
            }),
            supersede_active: false,
            request_id: format!("plan-{participant}"),
        })
        .await
        .unwrap()
        .into_inner()
}

/// An information-sharing consent from Helsingborg to the region for `categories`.
async fn share_with_region(stack: &Stack, participant: &str, categories: &[DataCategory]) {
    let sharing = consent_pb::Sharing {
        from_organisation_id: Some(OrganisationId {
            value: HELSINGBORG.into(),
        }),
        to_organisation_id: Some(OrganisationId {
            value: REGION.into(),
        }),
        categories: categories.iter().map(|c| *c as i32).collect(),
        unit_id: String::new(),
        staff_id: String::new(),
    };
    ConsentServiceClient::new(stack.consent.channel.clone())
        .record_consent(consent_request(
            participant,
            consent_pb::ConsentKind::InformationSharing,
            Some(sharing),
            None,
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_system_reads_fhir_through_the_gateways_own_decisions() {
    let stack = Stack::start().await;
    let fhir = fhir_gateway(&stack).await;
    let anna_pin = pin("19800101", "123");
    let bo_pin = pin("19750505", "456");
    // The region cares for Anna; only the municipality has an assignment for Bo.
    let anna = enrolled(
        &stack,
        &anna_pin,
        "Anna Testsson",
        Team {
            region: &["SE2321000255-K01"],
            municipal: &["hbg-sam-01"],
        },
    )
    .await;
    let bo = enrolled(
        &stack,
        &bo_pin,
        "Bo Testsson",
        Team {
            region: &[],
            municipal: &["hbg-sam-02"],
        },
    )
    .await;
    create_plan(&stack, &anna).await;
    fhir.settle(&stack).await;

    let mut journal = FhirClient::connect(&stack, fhir.addr, Some(FHIR_LINK)).await;

    // 1. Metadata, and the enrolled participant found by personnummer with the identifier.
    let metadata = journal.get("/fhir/metadata").await;
    assert_eq!(metadata.status, 200);
    assert!(metadata.content_type.starts_with("application/fhir+json"));
    assert_eq!(metadata.body["resourceType"], "CapabilityStatement");
    assert_eq!(metadata.body["fhirVersion"], "4.0.1");

    let found = journal.get(&patient_search(&anna_pin)).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["type"], "searchset");
    let patients = entries(&found.body);
    assert_eq!(patients.len(), 1);
    assert_eq!(patients[0]["id"], anna.as_str());
    let identifiers = patients[0]["identifier"].as_array().unwrap();
    assert!(
        identifiers
            .iter()
            .any(|i| i["system"] == PERSONNUMMER && i["value"] == anna_pin.as_str()),
        "{identifiers:?}"
    );
    assert_eq!(patients[0]["name"][0]["text"], "Anna Testsson");
    let read = journal.get(&format!("/fhir/Patient/{anna}")).await;
    assert_eq!(
        (read.status, &read.body["id"]),
        (200, &Value::from(anna.as_str()))
    );
    for resource in ["EpisodeOfCare", "CareTeam", "Consent"] {
        let answer = journal
            .get(&format!("/fhir/{resource}?patient=Patient/{anna}"))
            .await;
        assert_eq!(answer.status, 200, "{resource}: {}", answer.body);
        let found = entries(&answer.body);
        assert!(!found.is_empty(), "{resource}");
        assert!(found.iter().all(|r| r["resourceType"] == resource));
    }

    // 2. None of the municipality's data without a covering consent: Bo (no region
    // assignment) does not exist as far as searches tell; Anna's plan (the municipality's
    // here) stays hidden until she consents.
    let hidden = journal.get(&patient_search(&bo_pin)).await;
    assert_eq!(
        (hidden.status, hidden.body["total"].as_u64()),
        (200, Some(0))
    );
    assert!(hidden.body.get("entry").is_none());
    let refused = journal.get(&format!("/fhir/Patient/{bo}")).await;
    assert_eq!((refused.status, issue(&refused).0), (403, "forbidden"));
    let unknown = journal
        .get("/fhir/Patient/0199a6f0-0000-7000-8000-000000000000")
        .await;
    assert_eq!(
        (unknown.status, &unknown.body),
        (403, &refused.body),
        "an unknown patient reads exactly like a forbidden one"
    );
    for resource in ["EpisodeOfCare", "CareTeam", "CarePlan", "Consent"] {
        let answer = journal.get(&format!("/fhir/{resource}?patient={bo}")).await;
        assert_eq!(
            (answer.status, answer.body["total"].as_u64()),
            (200, Some(0)),
            "{resource} of Bo"
        );
    }
    let plan_search = format!("/fhir/CarePlan?patient={anna}");
    let before = journal.get(&plan_search).await;
    assert_eq!(before.body["total"].as_u64(), Some(0), "{}", before.body);

    share_with_region(&stack, &anna, &[DataCategory::Plan]).await;
    fhir.settle(&stack).await;
    let after = journal.get(&plan_search).await;
    assert_eq!(after.body["total"].as_u64(), Some(1), "{}", after.body);
    assert_eq!(entries(&after.body)[0]["resourceType"], "CarePlan");
    let disclosed = fhir
        .trail
        .events()
        .into_iter()
        .filter(|e| e.rpc.ends_with("/GetPlan") && e.allowed)
        .collect::<Vec<_>>();
    assert_eq!(disclosed.len(), 1);
    assert!(disclosed[0].disclosure, "a read by consent is a disclosure");
    assert_eq!(
        disclosed[0].policies,
        ["system-consent-disclosure-read".to_owned()]
    );

    // 3. Leaky or unsupported parameters: 400 naming the parameter, no call made.
    let events_before = fhir.trail.events().len();
    for (query, name) in [
        (
            format!("CarePlan?patient={anna}&_include=CarePlan:subject"),
            "_include",
        ),
        (
            format!("CarePlan?patient={anna}&_revinclude=Provenance:target"),
            "_revinclude",
        ),
        (
            format!("Patient?_has:CarePlan:patient:status=active&_id={anna}"),
            "_has",
        ),
        (
            format!("CarePlan?patient.identifier={PERSONNUMMER}%7C{anna_pin}"),
            "patient.identifier",
        ),
        (
            format!("Patient?identifier={PERSONNUMMER}%7C{anna_pin}&_summary=count"),
            "_summary",
        ),
        (
            format!("Patient?identifier={PERSONNUMMER}%7C{anna_pin}&_total=accurate"),
            "_total",
        ),
        (format!("Consent?patient={anna}&_elements=id"), "_elements"),
        (
            format!("Consent?patient={anna}&_contained=true"),
            "_contained",
        ),
        (
            format!("Patient?identifier={PERSONNUMMER}%7C{anna_pin}&name=Anna"),
            "name",
        ),
        (
            format!("Patient?identifier={PERSONNUMMER}%7C{}", "1".repeat(65)),
            "identifier",
        ),
        (
            format!("Patient?identifier={PERSONNUMMER}%7C{}", "9".repeat(12)),
            "identifier",
        ),
        (format!("CarePlan?patient={}", "a".repeat(2100)), "URI"),
    ] {
        let answer = journal.get(&format!("/fhir/{query}")).await;
        let (code, diagnostics) = issue(&answer);
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(answer.body["resourceType"], "OperationOutcome", "{query}");
        assert_eq!(code, "invalid", "{query}");
        assert!(diagnostics.contains(name), "{query}: {diagnostics}");
    }
    // Only the malformed personnummer reached the gateway (refused there as invalid): no
    // refused parameter made a call, and nothing was read.
    let made: Vec<_> = fhir.trail.events()[events_before..].to_vec();
    assert!(
        made.iter().all(|e| e.rows.is_empty()
            && e.outcome == Outcome::Forwarded
            && e.status == tonic::Code::InvalidArgument),
        "{made:?}"
    );
    assert!(made.len() <= 1);

    // 4. Each FHIR read is in the audit trail as the link's read.
    let events = fhir.trail.events();
    let by_link = |rpc: &str| {
        events
            .iter()
            .filter(|e| {
                e.rpc.ends_with(rpc) && e.principal.as_ref().is_some_and(|p| p.id == FHIR_LINK)
            })
            .collect::<Vec<_>>()
    };
    let listed = by_link("/ListParticipants");
    assert!(
        listed
            .iter()
            .any(|e| e.allowed && e.rows.iter().any(|r| r.participant_id == anna)),
        "the personnummer search is audited with the row it showed"
    );
    assert!(
        listed
            .iter()
            .all(|e| e.rows.iter().all(|r| r.participant_id != bo)),
        "Bo's row was never shown"
    );
    let reads = by_link("/GetParticipant");
    assert!(
        reads
            .iter()
            .any(|e| e.allowed && e.participant_id.as_deref() == Some(anna.as_str()))
    );
    assert!(
        reads
            .iter()
            .any(|e| !e.allowed && e.participant_id.as_deref() == Some(bo.as_str())),
        "the refused read of Bo is audited as refused"
    );
    assert!(!by_link("/GetCareTeam").is_empty());
    assert!(!by_link("/ListConsents").is_empty());

    // The trail through FHIR: a system never reads it; the region's auditor does, and sees
    // the link's reads of Anna by the link's id, never a member of staff.
    let trail_search = format!("/fhir/AuditEvent?patient={anna}");
    let answer = journal.get(&trail_search).await;
    assert_eq!(
        (answer.status, answer.body["total"].as_u64()),
        (200, Some(0))
    );
    let mut auditor = FhirClient::connect(&stack, fhir.addr, None).await;
    auditor.bearer = Some(stack.token(&Principal {
        id: "SE2321000255-granskare1".into(),
        kind: PrincipalKind::Staff,
        organisation: Some(REGION.into()),
        unit: None,
        roles: vec!["auditor".into()],
        teams: vec![],
        purpose: Some("audit".into()),
        acting_through: None,
    }));
    let answer = auditor.get(&trail_search).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = entries(&answer.body);
    assert!(
        !events.is_empty(),
        "the auditor sees the link's reads of Anna"
    );
    // Every access to Anna so far was the link's, and each event names it.
    assert!(
        events.iter().all(|e| e.to_string().contains(FHIR_LINK)),
        "{events:?}"
    );

    // 6. An unmapped client certificate, and no credentials at all, are refused.
    let mut unlinked = FhirClient::connect(&stack, fhir.addr, Some("unlinked-system")).await;
    let answer = unlinked.get(&patient_search(&anna_pin)).await;
    assert_eq!((answer.status, issue(&answer).0), (401, "login"));
    let mut anonymous = FhirClient::connect(&stack, fhir.addr, None).await;
    let answer = anonymous.get(&format!("/fhir/Patient/{anna}")).await;
    assert_eq!((answer.status, issue(&answer).0), (401, "login"));

    // Latency of a Patient search by personnummer over HTTP/1.1 (two audited calls each).
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let started = Instant::now();
        let answer = journal.get(&patient_search(&anna_pin)).await;
        times.push(started.elapsed());
        assert_eq!(answer.body["total"].as_u64(), Some(1));
    }
    times.sort();
    println!(
        "fhir patient search by personnummer: median {:?}, p90 {:?} over {} requests",
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times.len()
    );

    // 5. Every body the view returned validates as FHIR R4.
    let out = tempfile::tempdir().unwrap();
    let bodies = journal
        .bodies
        .iter()
        .take(60)
        .chain(&unlinked.bodies)
        .chain(&anonymous.bodies)
        .chain(&auditor.bodies);
    for (i, body) in bodies.enumerate() {
        std::fs::write(
            out.path().join(format!("{i:03}.json")),
            serde_json::to_vec_pretty(body).unwrap(),
        )
        .unwrap();
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fhir/validate.py");
    let validated = std::process::Command::new("python3")
        .arg(&script)
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
}

#[tokio::test]
async fn writes_and_unknown_endpoints_answer_operation_outcomes() {
    let stack = Stack::start().await;
    let fhir = fhir_gateway(&stack).await;
    let mut journal = FhirClient::connect(&stack, fhir.addr, Some(FHIR_LINK)).await;
    let unknown = journal.get("/fhir/Observation?patient=p-1").await;
    assert_eq!((unknown.status, issue(&unknown).0), (404, "not-found"));
    let read_other = journal.get("/fhir/CarePlan/some-plan").await;
    assert_eq!(read_other.status, 400);
    let request = http::Request::delete("/fhir/Patient/p-1")
        .header(http::header::HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    journal.sender.ready().await.unwrap();
    let response = journal.sender.send_request(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers().get(http::header::ALLOW).unwrap(), "GET");
    assert!(fhir.trail.events().is_empty(), "nothing was called");
}

/// A TLS connection to the gateway offering HTTP/1.1, presenting `identity` if given.
async fn connect_tls(
    stack: &Stack,
    addr: SocketAddr,
    identity: Option<&tls::Identity>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let pki = tls::DevPki::at(stack.certs());
    let config = tls::client_config(pki.trust_anchors().unwrap(), identity).unwrap();
    let mut config = rustls::ClientConfig::clone(&config);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
}

/// One GET over a fresh TLS connection presenting `identity`: the HTTP status, or the TLS
/// error that ended the connection. Plain reads and writes, so a refusal always surfaces as
/// the alert the gateway sent, whenever it arrives.
async fn attempt(stack: &Stack, addr: SocketAddr, identity: &tls::Identity) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tls_error = |e: std::io::Error| format!("{e:?}");
    let mut stream = connect_tls(stack, addr, Some(identity))
        .await
        .map_err(tls_error)?;
    stream
        .write_all(b"GET /fhir/Patient?_id=00000000-0000-7000-8000-000000000000 HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .map_err(tls_error)?;
    let mut head = Vec::new();
    while !head.windows(2).any(|w| w == b"\r\n") {
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.map_err(tls_error)?;
        if n == 0 {
            return Err("closed without an answer".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_certificate_from_another_ca_or_expired_is_refused_even_when_pinned() {
    let stack = Stack::start().await;
    let pki = tls::DevPki::at(stack.certs());
    // An expired certificate from the link's own CA, and one from a CA nobody configured.
    pki.issue_expired("journal-expired").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger_pki = tls::DevPki::at(elsewhere.path());
    stranger_pki.ensure(&[FHIR_LINK]).unwrap();
    let expired = pki.identity("journal-expired").unwrap();
    let stranger = stranger_pki.identity(FHIR_LINK).unwrap();
    // Both are pinned, so only the certificate's validity and its CA can refuse them.
    let fhir = fhir_gateway_pinning(
        &stack,
        vec![
            fingerprint_hex(expired.leaf().unwrap()),
            fingerprint_hex(stranger.leaf().unwrap()),
        ],
    )
    .await;
    fhir.settle(&stack).await;
    let link = pki.identity(FHIR_LINK).unwrap();
    assert_eq!(
        attempt(&stack, fhir.addr, &link).await,
        Ok(200),
        "the link's own certificate is served"
    );
    for (what, identity) in [("expired", &expired), ("another CA's", &stranger)] {
        let answer = attempt(&stack, fhir.addr, identity).await;
        // The handshake itself refuses it: the gateway answers with a TLS alert, before
        // any request reaches the FHIR view.
        assert!(
            answer.as_ref().is_err_and(|e| e.contains("AlertReceived")),
            "an {what} certificate is refused: {answer:?}"
        );
    }
}
