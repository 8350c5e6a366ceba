//! One trace per call: the real `samsyn up` exports to an OTLP receiver in this test (the real
//! OTLP/gRPC protocol); a call through the gateway is one trace from the gateway's server span
//! through its steps to the service's server span, a failed call is marked as an error, and
//! no span carries the personal identity number or the name of the test's person.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::Up;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_kit::tls;
use samsyn_proto::common::v1::{OrganisationId, OrganisationKind, StaffRef};
use samsyn_proto::participants::v1 as pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;

const CREATE_REFERRAL: &str = "/samsyn.participants.v1.ParticipantsService/CreateReferral";
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

/// Keeps every exported span.
#[derive(Default, Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
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
        reason: "Behov av samordnat stöd".into(),
        criteria: Some(pb::AdmissionCriteria {
            long_term_needs_from_both_principals: true,
            diagnosis_criteria_met: true,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_the_gateway_is_one_trace_without_personal_data() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{collector}");
    let up = Up::start_configured(
        dir.path(),
        &[],
        None,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", "always_on"),
            (
                "RUST_LOG",
                "warn,samsyn_kit::telemetry=info,samsyn_gateway::proxy=info,sea_orm=info",
            ),
        ],
    );
    let certs = dir.path().join("certs");
    let token = DevIssuer::at(&certs)
        .issue(
            &Principal {
                id: "SE2321000255-cm01".into(),
                kind: PrincipalKind::Staff,
                organisation: Some("SE2321000255".into()),
                unit: None,
                roles: vec!["case_manager".into()],
                teams: vec![],
                purpose: Some("care".into()),
            },
            Duration::from_secs(600),
        )
        .unwrap();
    let client =
        tls::client_config(tls::DevPki::at(&certs).trust_anchors().unwrap(), None).unwrap();
    let channel = tls::channel(up.addr("gateway"), "localhost", client).unwrap();
    let bearer: tonic::metadata::AsciiMetadataValue = format!("Bearer {token}").parse().unwrap();
    let mut participants = ParticipantsServiceClient::with_interceptor(
        channel,
        move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            Ok(request)
        },
    );
    // One call that succeeds, one the service refuses (the same person again).
    let pin = pin();
    participants
        .create_referral(referral(&pin, NAME))
        .await
        .unwrap();
    let refused = participants
        .create_referral(referral(&pin, NAME))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists);
    // SIGTERM flushes the exporter.
    drop(up);

    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = receiver.spans.lock().unwrap().clone();
        let forwards = spans.iter().filter(|s| s.name == "gateway.forward").count();
        if forwards >= 2 || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_id: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();
    let mut forwards: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.name == "gateway.forward"
                && attribute(s, "rpc.method").as_deref() == Some(CREATE_REFERRAL)
        })
        .collect();
    forwards.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(
        forwards.len(),
        2,
        "{:#?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );

    for (forward, failed) in forwards.iter().zip([false, true]) {
        let trace = &forward.trace_id;
        let in_trace: Vec<&Span> = spans.iter().filter(|s| &s.trace_id == trace).collect();
        let named = |name: &str| in_trace.iter().filter(|s| s.name == name).count();
        // The gateway's server span, its steps, and the service's server span: one trace.
        assert_eq!(
            named("grpc.server"),
            2,
            "gateway and participants server spans"
        );
        assert_eq!(named("gateway.authenticate"), 1);
        assert_eq!(named("gateway.decide"), 1);
        assert_eq!(named("gateway.audit.commit"), 1);
        let service = in_trace
            .iter()
            .find(|s| s.name == "grpc.server" && s.parent_span_id == forward.span_id)
            .expect("the service's server span is a child of the forwarding span");
        assert_eq!(
            attribute(service, "rpc.method").as_deref(),
            Some(CREATE_REFERRAL)
        );
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
    assert_ne!(
        forwards[0].trace_id, forwards[1].trace_id,
        "one trace per call"
    );

    // No personal data anywhere in what was exported.
    let exported = format!("{spans:?}");
    for secret in [pin.as_str(), NAME, "Åström", &pin[2..]] {
        assert!(!exported.contains(secret), "{secret:?} was exported");
    }
}
