//! Whole-call sampling: whether a call's trace is exported is decided once, as the call
//! arrives, so that the spans of a call whose trace will be dropped are never built.
//!
//! Building every span of every call and letting the exporter's sampler drop 99 of 100 cost
//! the gateway about a tenth of its throughput at 1 % sampling. Now a call that is not
//! sampled runs inside a task-local scope holding the `traceparent` it passes on (flag `00`,
//! so the services it calls decide alike and build nothing either); [`exported_calls_only`]
//! keeps every span made in that scope from the OpenTelemetry layer, while the log layers
//! still see them and log lines still name the call's trace.

use std::future::Future;
use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SamplingDecision, SamplingResult, ShouldSample,
};
use tracing_subscriber::filter::DynFilterFn;

/// The name of a call's root span.
pub(super) const SERVER_SPAN: &str = "grpc.server";

tokio::task_local! {
    /// The `traceparent` an unsampled call passes on.
    static UNSAMPLED: String;
}

/// The sampler that decides whole calls, once one is installed.
static CALLS: OnceLock<Box<dyn ShouldSample>> = OnceLock::new();

/// Makes `sampler` decide each call as it arrives; the answer is the sampler to give the
/// tracer provider, which keeps those decisions.
///
/// Pair it with [`exported_calls_only`] on the OpenTelemetry layer. Without it, every span
/// is built and the tracer's sampler decides span by span.
pub fn sample_calls_with<S: ShouldSample + Clone + 'static>(sampler: S) -> KeepCallDecisions {
    let _ = CALLS.set(Box::new(sampler.clone()));
    KeepCallDecisions(Box::new(sampler))
}

/// A filter for the OpenTelemetry layer: spans and events of calls that are not sampled
/// never reach it.
pub fn exported_calls_only<S: tracing::Subscriber>()
-> impl tracing_subscriber::layer::Filter<S> + Send + Sync + 'static {
    // Dynamic, so that the answer is asked for every span and never cached per call site.
    DynFilterFn::new(|_, _| UNSAMPLED.try_with(|_| ()).is_err())
}

/// The tracer's sampler under [`sample_calls_with`]: a call's root span was decided before
/// it was built (an unsampled one never reaches the tracer), so it is kept; every other
/// span is decided by the wrapped sampler.
#[derive(Debug, Clone)]
pub struct KeepCallDecisions(Box<dyn ShouldSample>);

impl ShouldSample for KeepCallDecisions {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let root = !parent_context.is_some_and(|c| c.span().span_context().is_valid());
        if root && name == SERVER_SPAN {
            return SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// The `traceparent` a call continuing `parent` passes on when its trace is not sampled;
/// `None` when it is sampled, or when no sampler decides whole calls.
pub(super) fn unsampled(parent: &opentelemetry::Context) -> Option<String> {
    let sampler = CALLS.get()?;
    let ids = RandomIdGenerator::default();
    let span = parent.span();
    let caller = span.span_context();
    let (trace_id, parent) = if caller.is_valid() {
        (caller.trace_id(), Some(parent))
    } else {
        (ids.new_trace_id(), None)
    };
    let decision = sampler
        .should_sample(parent, trace_id, SERVER_SPAN, &SpanKind::Server, &[], &[])
        .decision;
    (decision != SamplingDecision::RecordAndSample)
        .then(|| format!("00-{trace_id}-{}-00", ids.new_span_id()))
}

/// Runs `make` as part of the unsampled call passing on `traceparent`.
pub(super) fn within<R>(traceparent: String, make: impl FnOnce() -> R) -> R {
    UNSAMPLED.sync_scope(traceparent, make)
}

/// Runs `call` as the unsampled call passing on `traceparent`.
pub(super) fn scope<F: Future>(traceparent: String, call: F) -> impl Future<Output = F::Output> {
    UNSAMPLED.scope(traceparent, call)
}

/// The `traceparent` of the unsampled call this task is running, if it runs one.
pub(super) fn current() -> Option<String> {
    UNSAMPLED.try_with(Clone::clone).ok()
}
