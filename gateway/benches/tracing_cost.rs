//! The cost of tracing, in one run: reads through the gateway with no tracing, and with spans
//! exported over OTLP/gRPC to a receiver in this process at 100 % and at 1 % sampling; several
//! rounds, the order rotated each round, each figure the median of its rounds.
//!
//! A process installs its tracing subscriber once, so the three are switches on one: "off"
//! turns the OpenTelemetry layer's filter off for every span (with no other layer, no span is
//! built at all), and the sampling ratio is switched inside one sampler. It decides whole calls
//! as Samsyn's telemetry does: a call whose trace is not sampled builds no spans for export.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample};
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use support::*;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;

const CASE_MANAGER: &str = "SE2321000255-cm01";
const CONCURRENCY: usize = 16;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(4);
/// Rounds of the three measurements.
const ROUNDS: usize = 3;

/// Counts exported spans.
#[derive(Clone, Default)]
struct Receiver(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A parent-based ratio sampler whose ratio can change between runs (parts per million).
#[derive(Debug, Clone)]
struct Switchable(Arc<AtomicU64>);

impl ShouldSample for Switchable {
    fn should_sample(
        &self,
        parent: Option<&opentelemetry::Context>,
        trace_id: opentelemetry::trace::TraceId,
        name: &str,
        kind: &opentelemetry::trace::SpanKind,
        attributes: &[opentelemetry::KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> SamplingResult {
        let ratio = self.0.load(Ordering::Relaxed) as f64 / 1e6;
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
            .should_sample(parent, trace_id, name, kind, attributes, links)
    }
}

/// Reads at `CONCURRENCY` for the measured window; reads per second.
async fn load(stack: &Stack, token: &str, id: &str) -> f64 {
    let client =
        ParticipantsServiceClient::with_interceptor(stack.channel(), Credentials::bearer(token));
    let start = Instant::now();
    let measuring = start + WARM_UP;
    let end = measuring + MEASURE;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let mut client = client.clone();
        let id = id.to_owned();
        tasks.spawn(async move {
            let mut done = 0u64;
            while Instant::now() < end {
                client
                    .get_participant(participants_pb::GetParticipantRequest {
                        participant_id: pid(&id),
                    })
                    .await
                    .unwrap();
                if Instant::now() >= measuring {
                    done += 1;
                }
            }
            done
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.unwrap();
    }
    total as f64 / MEASURE.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let stack = Stack::start().await;
    let id = enrolled(
        &stack,
        &pin("19790321", "482"),
        "Örjan Åkesson",
        Team {
            region: &[CASE_MANAGER],
            municipal: &[],
        },
    )
    .await;
    stack.settle().await;
    let token = stack.token(&staff(CASE_MANAGER, REGION, &["case_manager"]));

    // Tracing on: the same exporter Samsyn uses, to a receiver in this process.
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let ratio = Arc::new(AtomicU64::new(1_000_000));
    let tracing_on = Arc::new(AtomicBool::new(false));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{collector}"))
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(samsyn_kit::telemetry::sample_calls_with(Switchable(
            Arc::clone(&ratio),
        )))
        .build();
    let on = Arc::clone(&tracing_on);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("bench"))
                .with_filter(
                    samsyn_kit::telemetry::exported_calls_only()
                        .and(filter_fn(move |_| on.load(Ordering::Relaxed))),
                ),
        );
    tracing::subscriber::set_global_default(subscriber).unwrap();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );

    // (tracing on, sampling in parts per million) of "off", "100 %" and "1 %".
    let settings = [(false, 0), (true, 1_000_000), (true, 10_000)];
    let mut rates = [[0.0; ROUNDS]; 3];
    let mut exported = [[0u64; ROUNDS]; 3];
    for round in 0..ROUNDS {
        for turn in 0..settings.len() {
            let which = (round + turn) % settings.len();
            let (on, parts) = settings[which];
            tracing_on.store(on, Ordering::Relaxed);
            ratio.store(parts, Ordering::Relaxed);
            let before = receiver.0.load(Ordering::Relaxed);
            rates[which][round] = load(&stack, &token, &id).await;
            provider.force_flush().unwrap();
            exported[which][round] = receiver.0.load(Ordering::Relaxed) - before;
        }
    }
    let [off, all, one_percent] = rates.map(median);
    let [_, exported_all, exported_one] = exported.map(|runs| runs.iter().sum::<u64>());

    println!(
        "GetParticipant through the gateway, concurrency {CONCURRENCY}, median of {ROUNDS} \
         rounds of {MEASURE:?} (order rotated), one process (client, gateway, services), 2 cores"
    );
    println!(
        "  tracing off          {off:>8.0} req/s  (rounds {:.0?})",
        rates[0]
    );
    println!(
        "  sampling 100 %       {all:>8.0} req/s  ({:.1} % of off; rounds {:.0?}; {exported_all} \
         spans exported)",
        all / off * 100.0,
        rates[1]
    );
    println!(
        "  sampling 1 %         {one_percent:>8.0} req/s  ({:.1} % of off; rounds {:.0?}; \
         {exported_one} spans exported)",
        one_percent / off * 100.0,
        rates[2]
    );
    let _ = provider.shutdown();
}

/// The middle of `runs`.
fn median(mut runs: [f64; ROUNDS]) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[ROUNDS / 2]
}
