//! One trace per call: the gateway and the services, each a real `samsyn serve` process,
//! export to an OTLP receiver in this test (the real OTLP/gRPC protocol, traces and metrics).
//! A call through the gateway is one trace from the gateway's server span through its steps
//! to the service's server span and its database spans, a failed call is marked as an error,
//! the gateway's work on the resulting change is linked to the call, the metrics an operator
//! watches are there, and no span, metric label or log line carries the personal identity
//! number, the name or the free text of the test's person.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::Up;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_kit::tls;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{OrganisationId, OrganisationKind, StaffRef};
use samsyn_proto::participants::v1 as pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;

const CREATE_REFERRAL: &str = "/samsyn.participants.v1.ParticipantsService/CreateReferral";
const CREATE_TEAM: &str = "/samsyn.board.v1.BoardService/CreateTeam";
/// Free text about the person, as staff write it.
const REASON: &str = "Behov av samordnat stöd efter inläggning";
/// A fictional name.
const NAME: &str = "Testperson Åström";

/// A synthetic personal identity number with a valid check digit (never a real person's).
fn pin() -> String {
    let nine = "800101238";
    let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
    format!(
        "19{nine}{}",
        samsyn_participants::domain::pin::check_digit(&digits)
    )
}

/// Keeps every exported span and metric.
#[derive(Default, Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    metrics: Arc<Mutex<Vec<Metric>>>,
}

fn service_name(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> String {
    resource
        .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .unwrap_or_default()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = service_name(resource.resource.as_ref());
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut metrics = self.metrics.lock().unwrap();
        for resource in request.into_inner().resource_metrics {
            for scope in resource.scope_metrics {
                metrics.extend(scope.metrics);
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Every data point's attributes of the metric called `name`, as `key=value` strings.
fn labels(metrics: &[Metric], name: &str) -> Vec<Vec<String>> {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let show = |attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue]| {
        attributes
            .iter()
            .map(|a| {
                let value = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => s.clone(),
                    Some(Value::IntValue(i)) => i.to_string(),
                    other => format!("{other:?}"),
                };
                format!("{}={value}", a.key)
            })
            .collect::<Vec<_>>()
    };
    metrics
        .iter()
        .filter(|m| m.name == name)
        .flat_map(|m| match &m.data {
            Some(Data::Sum(sum)) => sum
                .data_points
                .iter()
                .map(|p| show(&p.attributes))
                .collect(),
            Some(Data::Histogram(h)) => h.data_points.iter().map(|p| show(&p.attributes)).collect(),
            Some(Data::Gauge(g)) => g.data_points.iter().map(|p| show(&p.attributes)).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// A port free right now on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            Value::IntValue(i) => i.to_string(),
            Value::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
}

fn referral(pin: &str, name: &str) -> pb::CreateReferralRequest {
    pb::CreateReferralRequest {
        idempotency_key: String::new(),
        personal_identity_number: pin.into(),
        name: name.into(),
        home_municipality_code: "1283".into(),
        referring_principal: OrganisationKind::Region as i32,
        referred_by: Some(StaffRef {
            staff_id: "SE2321000255-cm01".into(),
            organisation_id: Some(OrganisationId {
                value: "SE2321000255".into(),
            }),
            unit_id: String::new(),
        }),
        reason: REASON.into(),
        criteria: Some(pb::AdmissionCriteria {
            long_term_needs_from_both_principals: true,
            diagnosis_criteria_met: true,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_the_gateway_is_one_trace_across_processes_without_personal_data() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .add_service(MetricsServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let certs_made = std::process::Command::new(env!("CARGO_BIN_EXE_samsyn"))
        .arg("certs")
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(certs_made.status.success());
    let endpoint = format!("http://{collector}");
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
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
        ("SAMSYN_TELEMETRY__JSON_LOGS", "true"),
        // A development gateway: its tokens come from the development issuer.
        ("SAMSYN_ACCESS__DEVELOPMENT_ISSUER", "true"),
        // Everything Samsyn logs at debug, so the scan below sees every line it can write.
        (
            "RUST_LOG",
            "debug,h2=info,hyper=info,hyper_util=info,tower=info,rustls=info,sqlx=info,tonic=info",
        ),
    ]);
    // The services first, each in a process of its own; then the gateway.
    let mut running = Vec::new();
    for part in [
        "participants",
        "consent",
        "plans",
        "board",
        "reports",
        "gateway",
    ] {
        let log = dir.path().join(format!("{part}.log"));
        running.push((part, Up::serve(dir.path(), part, &env, &log), log));
    }
    let gateway_addr = running.last().unwrap().1.addr("gateway");
    let certs = dir.path().join("certs");
    let token = DevIssuer::at(&certs)
        .issue(
            &Principal {
                id: "SE2321000255-cm01".into(),
                kind: PrincipalKind::Staff,
                organisation: Some("SE2321000255".into()),
                unit: None,
                roles: vec!["case_manager".into(), "team_leader".into()],
                teams: vec![],
                purpose: Some("care".into()),
                acting_through: None,
            },
            Duration::from_secs(600),
        )
        .unwrap();
    let client =
        tls::client_config(tls::DevPki::at(&certs).trust_anchors().unwrap(), None).unwrap();
    let channel = tls::channel(gateway_addr, "localhost", client).unwrap();
    let bearer: tonic::metadata::AsciiMetadataValue = format!("Bearer {token}").parse().unwrap();
    let authorise = move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        Ok(request)
    };
    let mut participants =
        ParticipantsServiceClient::with_interceptor(channel.clone(), authorise.clone());
    let mut board = BoardServiceClient::with_interceptor(channel, authorise);
    // One call that succeeds (its change the gateway's access view then applies), one the
    // service refuses (its idempotency key again, for another request), and one to a second
    // service.
    let pin = pin();
    let keyed = |name: &str| pb::CreateReferralRequest {
        idempotency_key: "trace-referral-1".into(),
        ..referral(&pin, name)
    };
    // The gateway answers UNAVAILABLE until its access view has caught up with the feeds.
    let ready = Instant::now() + Duration::from_secs(20);
    loop {
        match participants.create_referral(keyed(NAME)).await {
            Err(status) if status.code() == tonic::Code::Unavailable && Instant::now() < ready => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => break result.map(drop).unwrap(),
        }
    }
    let refused = participants
        .create_referral(keyed("Annan Person"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists);
    let team = board
        .create_team(board_pb::CreateTeamRequest {
            request_id: String::new(),
            name: "FACT Nordväst".into(),
            owner_organisation_id: Some(OrganisationId {
                value: "SE2321000255".into(),
            }),
            coordinators: Vec::new(),
            criteria: Vec::new(),
            status_levels: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(team.name, "FACT Nordväst");
    // Metrics go out every half second; give the last calls' numbers time to leave.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // SIGTERM flushes the exporters; the gateway first, so it sends no more calls.
    let logs: Vec<std::path::PathBuf> = running.iter().map(|(_, _, log)| log.clone()).collect();
    while let Some((_, up, _)) = running.pop() {
        drop(up);
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = receiver.spans.lock().unwrap().clone();
        let forwards = spans
            .iter()
            .filter(|(_, s)| s.name == "gateway.forward")
            .count();
        if forwards >= 3 || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let service_of: HashMap<Vec<u8>, &str> = spans
        .iter()
        .map(|(service, s)| (s.span_id.clone(), service.as_str()))
        .collect();
    let spans: Vec<Span> = spans.iter().map(|(_, s)| s.clone()).collect();
    let by_id: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();
    let forwards_of = |method: &str| {
        let mut forwards: Vec<&Span> = spans
            .iter()
            .filter(|s| {
                s.name == "gateway.forward" && attribute(s, "rpc.method").as_deref() == Some(method)
            })
            .collect();
        forwards.sort_by_key(|s| s.start_time_unix_nano);
        forwards
    };
    let referrals = forwards_of(CREATE_REFERRAL);
    let teams = forwards_of(CREATE_TEAM);
    assert_eq!(
        (referrals.len(), teams.len()),
        (2, 1),
        "{:#?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );

    let calls = [
        (referrals[0], false, "samsyn-participants", CREATE_REFERRAL),
        (referrals[1], true, "samsyn-participants", CREATE_REFERRAL),
        (teams[0], false, "samsyn-board", CREATE_TEAM),
    ];
    for (forward, failed, service_name, method) in calls {
        let trace = &forward.trace_id;
        let in_trace: Vec<&Span> = spans.iter().filter(|s| &s.trace_id == trace).collect();
        let named = |name: &str| in_trace.iter().filter(|s| s.name == name).count();
        // The gateway's server span, its steps, and the service's server span: one trace.
        assert_eq!(named("grpc.server"), 2, "gateway and service server spans");
        assert_eq!(named("gateway.authenticate"), 1);
        assert_eq!(named("gateway.decide"), 1);
        // Writes all: the intent before forwarding, the outcome after.
        assert_eq!(named("gateway.audit.commit"), 2);
        let service = in_trace
            .iter()
            .find(|s| s.name == "grpc.server" && s.parent_span_id == forward.span_id)
            .expect("the service's server span is a child of the forwarding span");
        assert_eq!(attribute(service, "rpc.method").as_deref(), Some(method));
        // Each span was exported by the process that made it.
        assert_eq!(service_of[&service.span_id], service_name);
        assert_eq!(service_of[&forward.span_id], "samsyn-gateway");
        // The forwarding span hangs under the gateway's own server span.
        let parent = by_id.get(&forward.parent_span_id).expect("a parent span");
        assert_eq!(parent.name, "grpc.server");
        assert!(
            parent.parent_span_id.is_empty(),
            "the gateway's span is the root"
        );
        // The service's database work shows as client spans below its server span, with the
        // operation but never the statement (it may hold personal data).
        let database: Vec<&&Span> = in_trace
            .iter()
            .filter(|s| attribute(s, "db.system").as_deref() == Some("sqlite"))
            .collect();
        assert!(!database.is_empty(), "database spans in the trace");
        for span in &database {
            assert!(attribute(span, "db.operation").is_some());
            assert!(attribute(span, "db.statement").is_none_or(|s| s.is_empty()));
            assert_eq!(service_of[&span.span_id], service_name);
            let mut ancestor = by_id.get(&span.parent_span_id);
            while let Some(a) = ancestor
                && a.span_id != service.span_id
            {
                ancestor = by_id.get(&a.parent_span_id);
            }
            assert!(
                ancestor.is_some(),
                "{} is not under the service's span",
                span.name
            );
        }
        let decide = in_trace
            .iter()
            .find(|s| s.name == "gateway.decide")
            .unwrap();
        assert_eq!(
            attribute(decide, "decision.allowed").as_deref(),
            Some("true")
        );
        let status = forward.status.as_ref().map(|s| s.code());
        if failed {
            assert_eq!(status, Some(StatusCode::Error));
            assert_eq!(
                attribute(forward, "rpc.grpc.status_code").as_deref(),
                Some("6")
            );
        } else {
            assert_ne!(status, Some(StatusCode::Error));
        }
    }
    let traces: std::collections::HashSet<&Vec<u8>> =
        calls.iter().map(|(f, ..)| &f.trace_id).collect();
    assert_eq!(traces.len(), 3, "one trace per call");

    // The gateway applied the referral's change in a trace of its own, linked to the call.
    let applied = spans
        .iter()
        .find(|s| {
            s.name == "feed.apply"
                && attribute(s, "samsyn.feed").as_deref() == Some("participants")
                && s.links.iter().any(|l| l.trace_id == referrals[0].trace_id)
        })
        .expect("the referral's change is applied in a span linked to the call that made it");
    assert_ne!(applied.trace_id, referrals[0].trace_id);
    assert!(applied.parent_span_id.is_empty());
    // So is the team's, from the board feed (FACT-team membership comes from it).
    assert!(
        spans.iter().any(|s| s.name == "feed.apply"
            && attribute(s, "samsyn.feed").as_deref() == Some("board")
            && s.links.iter().any(|l| l.trace_id == teams[0].trace_id)),
        "the team's change is applied in a span linked to the call that made it"
    );

    // The metrics an operator watches, labelled with what they need and nothing more.
    let metrics = receiver.metrics.lock().unwrap().clone();
    let durations = labels(&metrics, "rpc.server.duration");
    for (part, method, code) in [
        ("gateway", CREATE_REFERRAL, "0"),
        ("gateway", CREATE_REFERRAL, "6"),
        ("participants", CREATE_REFERRAL, "6"),
        ("board", CREATE_TEAM, "0"),
    ] {
        let wanted = [
            format!("samsyn.part={part}"),
            format!("rpc.method={method}"),
            format!("rpc.grpc.status_code={code}"),
        ];
        assert!(
            durations
                .iter()
                .any(|point| wanted.iter().all(|w| point.contains(w))),
            "no duration for {wanted:?} in {durations:?}"
        );
    }
    assert!(
        labels(&metrics, "samsyn.gateway.decisions")
            .iter()
            .any(|p| p.contains(&"decision.outcome=allow".to_owned())
                && p.contains(&"samsyn.data_category=admin".to_owned()))
    );
    assert!(!labels(&metrics, "samsyn.audit.commit.duration").is_empty());
    for feed in ["participants", "board"] {
        assert!(
            labels(&metrics, "samsyn.feed.lag")
                .iter()
                .any(|p| p.contains(&format!("samsyn.feed={feed}"))),
            "no feed lag for {feed}"
        );
    }
    assert!(!labels(&metrics, "rpc.server.open_calls").is_empty());

    // No personal data anywhere in what was exported or logged.
    let mut logged = String::new();
    for log in &logs {
        logged.push_str(&std::fs::read_to_string(log).unwrap());
    }
    assert!(
        logged
            .lines()
            .any(|l| l.contains("\"trace_id\"") && l.contains("\"span_id\"")),
        "log lines of calls name their trace and span"
    );
    let exported = format!("{spans:?}\n{metrics:?}");
    for secret in [pin.as_str(), NAME, "Åström", &pin[2..], REASON] {
        assert!(!exported.contains(secret), "{secret:?} was exported");
        assert!(!logged.contains(secret), "{secret:?} was logged");
    }
}
