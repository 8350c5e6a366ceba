//! Telemetry: `tracing` with an optional OpenTelemetry OTLP exporter, and W3C trace-context
//! propagation through gRPC metadata.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::TelemetryConfig;

mod sampling;

pub use sampling::{KeepCallDecisions, exported_calls_only, sample_calls_with};

/// Telemetry that could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("log filter does not parse: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// The OTLP exporter could not be built.
    #[error("otlp exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// `OTEL_TRACES_SAMPLER` or its argument is not one the OpenTelemetry spec defines.
    #[error("{0}")]
    Sampler(String),
    /// A global subscriber is already installed.
    #[error("telemetry already initialised: {0}")]
    AlreadyInitialised(#[from] tracing_subscriber::util::TryInitError),
}

/// Flushes and stops the exporters when dropped; keep it alive for the life of the process.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl TelemetryGuard {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("telemetry shutdown: {error}");
        }
        if let Some(meters) = self.meters.take()
            && let Err(error) = meters.shutdown()
        {
            eprintln!("metrics shutdown: {error}");
        }
    }
}

/// The collector endpoint: the configured one, else the standard OTel variable.
pub fn otlp_endpoint(config: &TelemetryConfig) -> Option<String> {
    config.otlp_endpoint.clone().or_else(|| {
        std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .ok()
            .filter(|e| !e.is_empty())
    })
}

/// Installs the global subscriber: logs to stderr, and spans and metrics to OTLP when an
/// endpoint is set.
///
/// `OTEL_SERVICE_NAME` overrides `service_name`; `RUST_LOG` overrides the configured filter;
/// `OTEL_METRIC_EXPORT_INTERVAL` (ms) sets how often metrics are sent.
pub fn init(
    service_name: &str,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::try_new(directive)?,
        _ => EnvFilter::try_new(&config.log_filter)?,
    };
    let fmt = if config.json_logs {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let endpoint = otlp_endpoint(config);
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| service_name.into());
    let resource = || {
        opentelemetry_sdk::Resource::builder()
            .with_service_name(name.clone())
            .build()
    };
    let provider = match &endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_sampler(QuietRootQueries(sample_calls_with(sampler(
                        std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref(),
                        std::env::var("OTEL_TRACES_SAMPLER_ARG").ok().as_deref(),
                        config.sample_ratio,
                    )?)))
                    .with_resource(resource())
                    .build(),
            )
        }
        None => None,
    };
    let meters = match &endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(metrics_endpoint().unwrap_or_else(|| endpoint.clone()))
                .build()?;
            let meters = SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(exporter).build())
                .with_resource(resource())
                .build();
            opentelemetry::global::set_meter_provider(meters.clone());
            Some(meters)
        }
        None => None,
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("samsyn"))
            .with_filter(exported_calls_only())
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(TelemetryGuard { provider, meters })
}

/// The standard metrics-only endpoint variable, which wins over the shared one.
fn metrics_endpoint() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
}

/// The sampler named by the standard `OTEL_TRACES_SAMPLER` (and `_ARG`) variables, else a
/// parent-based ratio sampler at the configured ratio.
fn sampler(name: Option<&str>, arg: Option<&str>, ratio: f64) -> Result<Sampler, TelemetryError> {
    let ratio = match arg.filter(|a| !a.is_empty()) {
        None => ratio,
        Some(arg) => match arg.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                return Err(TelemetryError::Sampler(
                    "OTEL_TRACES_SAMPLER_ARG must be a number between 0 and 1".into(),
                ));
            }
        },
    };
    let parent = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(match name.filter(|n| !n.is_empty()) {
        None | Some("parentbased_traceidratio") => parent(Sampler::TraceIdRatioBased(ratio)),
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio),
        Some("parentbased_always_on") => parent(Sampler::AlwaysOn),
        Some("parentbased_always_off") => parent(Sampler::AlwaysOff),
        Some(other) => {
            return Err(TelemetryError::Sampler(format!(
                "OTEL_TRACES_SAMPLER {other:?} is not supported (always_on, always_off, \
                 traceidratio, parentbased_always_on, parentbased_always_off, \
                 parentbased_traceidratio)"
            )));
        }
    })
}

/// Drops database spans that belong to no call (the feeds' poll fallback, the audit writer's
/// batches): each would be a trace of its own, burying the calls operators look for.
#[derive(Debug, Clone)]
struct QuietRootQueries<S>(S);

impl<S: opentelemetry_sdk::trace::ShouldSample + Clone + 'static>
    opentelemetry_sdk::trace::ShouldSample for QuietRootQueries<S>
{
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: opentelemetry::trace::TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[opentelemetry::KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        let in_a_call = parent_context.is_some_and(|c| c.span().span_context().is_valid());
        if !in_a_call && name.starts_with("sea_orm.") {
            return opentelemetry_sdk::trace::SamplingResult {
                decision: opentelemetry_sdk::trace::SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: Default::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

struct MetadataInjector<'a>(&'a mut http::HeaderMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct MetadataExtractor<'a>(&'a http::HeaderMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's trace context into outgoing gRPC metadata (`traceparent`).
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    if let Some(traceparent) = sampling::current()
        && let Ok(value) = traceparent.parse()
    {
        metadata.insert("traceparent", value);
        return;
    }
    let mut headers = std::mem::take(metadata).into_headers();
    TraceContextPropagator::new().inject_context(
        &tracing::Span::current().context(),
        &mut MetadataInjector(&mut headers),
    );
    *metadata = tonic::metadata::MetadataMap::from_headers(headers);
}

/// Reads the caller's trace context from incoming request headers.
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&MetadataExtractor(headers))
}

/// The current call's W3C `traceparent`, when it belongs to a sampled or remote trace, or to
/// a call whose trace is not sampled.
pub fn current_traceparent() -> Option<String> {
    if let Some(traceparent) = sampling::current() {
        return Some(traceparent);
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

/// Links `span` to the span a W3C `traceparent` names (the call that made a change), when
/// it names one.
pub fn link_to(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let mut headers = http::HeaderMap::new();
    let Ok(value) = http::HeaderValue::from_str(traceparent) else {
        return;
    };
    headers.insert("traceparent", value);
    let context = extract(&headers);
    let linked = context.span().span_context().clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

/// A client interceptor that propagates the current trace to the called service.
pub fn propagate_trace(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    inject_current(request.metadata_mut());
    Ok(request)
}

/// The server span of one incoming gRPC request, continuing the caller's trace.
///
/// Only the method path is recorded, and only when it is one of Samsyn's methods: never
/// metadata, which may carry tokens.
pub fn server_span<B>(request: &http::Request<B>) -> tracing::Span {
    call_span(request).0
}

/// The server span of one incoming request and, when its trace is not sampled, the
/// `traceparent` the call passes on (its spans are then not built for export).
fn call_span<B>(request: &http::Request<B>) -> (tracing::Span, Option<String>) {
    let parent = extract(request.headers());
    let make = || {
        tracing::info_span!(
            "grpc.server",
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = crate::metrics::method_label(request.uri().path()),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        )
    };
    if let Some(traceparent) = sampling::unsampled(&parent) {
        let span = sampling::within(traceparent.clone(), make);
        // Log lines still name the trace, so the services' lines of one call go together.
        if let Some(trace_id) = traceparent.split('-').nth(1) {
            span.record("trace_id", trace_id);
        }
        return (span, Some(traceparent));
    }
    let span = make();
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    // On the span as a field too, so every log line of the call (JSON logs carry the current
    // span's fields) names the trace an operator can look up.
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
        span.record("span_id", tracing::field::display(span_context.span_id()));
    }
    (span, None)
}

/// Runs each incoming call in its server span, and a call whose trace is not sampled in the
/// scope that keeps its spans from being built for export.
#[derive(Debug, Clone)]
pub(crate) struct TracedCalls<S> {
    /// The served routes.
    pub(crate) inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TracedCalls<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let (span, unsampled) = call_span(&request);
        match unsampled {
            None => {
                let call = span.in_scope(|| self.inner.call(request));
                Box::pin(call.instrument(span))
            }
            Some(traceparent) => {
                let call = sampling::within(traceparent.clone(), || {
                    span.in_scope(|| self.inner.call(request))
                });
                Box::pin(sampling::scope(traceparent, call.instrument(span)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_standard_sampler_variables_choose_the_sampler() {
        let debug = |name, arg| format!("{:?}", sampler(name, arg, 0.25).unwrap());
        assert_eq!(
            debug(None, None),
            debug(Some("parentbased_traceidratio"), Some("0.25"))
        );
        assert!(debug(None, None).contains("0.25"));
        assert_eq!(debug(Some("always_on"), None), "AlwaysOn");
        assert_eq!(debug(Some("always_off"), None), "AlwaysOff");
        assert!(debug(Some("traceidratio"), Some("0.01")).contains("0.01"));
        assert!(debug(Some("parentbased_always_on"), None).starts_with("ParentBased(AlwaysOn"));
        for (name, arg) in [(Some("sometimes"), None), (Some("traceidratio"), Some("2"))] {
            assert!(sampler(name, arg, 1.0).is_err(), "{name:?} {arg:?}");
        }
    }

    #[test]
    fn database_spans_outside_any_call_are_not_sampled() {
        use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId};
        use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};
        let sampler = QuietRootQueries(Sampler::AlwaysOn);
        let decide = |parent: Option<&opentelemetry::Context>, name: &str| {
            sampler
                .should_sample(parent, TraceId::from(7), name, &SpanKind::Client, &[], &[])
                .decision
        };
        let call = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            TraceFlags::SAMPLED,
            true,
            Default::default(),
        ));
        assert_eq!(decide(None, "sea_orm.query_all"), SamplingDecision::Drop);
        assert_eq!(
            decide(Some(&opentelemetry::Context::new()), "sea_orm.execute"),
            SamplingDecision::Drop
        );
        assert_eq!(
            decide(Some(&call), "sea_orm.query_all"),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(None, "grpc.server"),
            SamplingDecision::RecordAndSample
        );
    }

    fn with_otel<T>(f: impl FnOnce() -> T) -> T {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    #[test]
    fn a_server_span_continues_the_callers_trace_and_passes_it_on() {
        with_otel(|| {
            let request = http::Request::builder()
                .uri("/samsyn.board.v1.BoardService/GetBoard")
                .header("traceparent", CALLER)
                .header("authorization", "Bearer secret")
                .body(())
                .unwrap();
            let span = server_span(&request);
            let _entered = span.enter();
            let context = tracing::Span::current().context();
            assert_eq!(
                context.span().span_context().trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "same trace as the caller"
            );
            let mut outgoing = tonic::metadata::MetadataMap::new();
            inject_current(&mut outgoing);
            let sent = outgoing.get("traceparent").unwrap().to_str().unwrap();
            assert!(
                sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{sent}"
            );
            assert_ne!(sent, CALLER, "a child span of ours, not the caller's span");
            assert_eq!(current_traceparent().as_deref(), Some(sent));
        });
    }

    /// Collects formatted log output.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_log_lines_of_a_call_name_its_trace() {
        let captured = Captured::default();
        let writer = captured.clone();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            let request = http::Request::builder()
                .uri("/samsyn.board.v1.BoardService/GetBoard")
                .header("traceparent", CALLER)
                .body(())
                .unwrap();
            let span = server_span(&request);
            let _entered = span.enter();
            tracing::info!("board read");
        });
        let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(logged.lines().last().unwrap()).unwrap();
        assert_eq!(
            line["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{logged}"
        );
    }

    #[test]
    fn a_call_whose_trace_is_not_sampled_builds_no_spans_and_says_so_downstream() {
        // Only callers' sampled traces are exported (set for the whole test process; the other
        // tests' callers are sampled, or have none and are not filtered).
        let _ = sample_calls_with(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("test"))
                .with_filter(exported_calls_only()),
        );
        let exported = |span: &tracing::Span| span.context().span().span_context().is_valid();
        tracing::subscriber::with_default(subscriber, || {
            let not_sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
            let request = http::Request::builder()
                .uri("/samsyn.board.v1.BoardService/GetBoard")
                .header("traceparent", not_sampled)
                .body(())
                .unwrap();
            let (span, unsampled) = call_span(&request);
            let traceparent = unsampled.expect("the caller's trace is not sampled");
            sampling::within(traceparent.clone(), || {
                let _entered = span.enter();
                assert!(!exported(&span), "no server span built for export");
                assert!(!exported(&tracing::info_span!("gateway.decide")));
                let mut outgoing = tonic::metadata::MetadataMap::new();
                inject_current(&mut outgoing);
                let sent = outgoing.get("traceparent").unwrap().to_str().unwrap();
                assert!(
                    sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
                        && sent.ends_with("-00"),
                    "the called service is told the trace is not sampled: {sent}"
                );
                assert_eq!(current_traceparent().as_deref(), Some(sent));
            });

            let request = http::Request::builder()
                .uri("/samsyn.board.v1.BoardService/GetBoard")
                .header("traceparent", CALLER)
                .body(())
                .unwrap();
            let (span, unsampled) = call_span(&request);
            assert_eq!(unsampled, None);
            assert!(
                exported(&span),
                "a sampled caller's call is traced as before"
            );
        });
    }

    #[test]
    fn without_a_caller_a_new_trace_starts() {
        with_otel(|| {
            let request = http::Request::builder()
                .uri("/samsyn.board.v1.BoardService/GetBoard")
                .body(())
                .unwrap();
            let span = server_span(&request);
            let _entered = span.enter();
            let traceparent = current_traceparent().unwrap();
            assert!(!traceparent.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
        });
    }

    #[test]
    fn extraction_ignores_a_malformed_traceparent() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", "garbage".parse().unwrap());
        assert!(!extract(&headers).span().span_context().is_valid());
    }
}
