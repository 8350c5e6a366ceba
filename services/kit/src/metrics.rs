//! Metrics every part records for its calls: how many, how long, with what status, and how
//! many are open (streams stay open for their whole life); and for its connections: how many
//! are open and how many were refused at the bound.
//!
//! Labels carry only method paths of Samsyn's own API and status codes: a path a client made
//! up (which could hold anything, a personal identity number included) is recorded as
//! [`UNKNOWN_METHOD`].

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use prost::Message;

/// The method label of a path that is not one of Samsyn's methods.
pub const UNKNOWN_METHOD: &str = "unknown";

/// The meter Samsyn's instruments belong to; a no-op until telemetry exports metrics.
pub fn meter() -> Meter {
    opentelemetry::global::meter("samsyn")
}

/// Every gRPC method path Samsyn serves, health and reflection included.
static METHODS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut methods = HashSet::new();
    if let Ok(set) = prost_types::FileDescriptorSet::decode(samsyn_proto::FILE_DESCRIPTOR_SET) {
        for file in set.file {
            for service in &file.service {
                let full = match file.package() {
                    "" => service.name().to_owned(),
                    package => format!("{package}.{}", service.name()),
                };
                for method in &service.method {
                    methods.insert(format!("/{full}/{}", method.name()));
                }
            }
        }
    }
    for standard in [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        methods.insert(standard.to_owned());
    }
    methods
});

/// The method label of every request to the gateway's FHIR view (its paths name records).
pub const FHIR_METHOD: &str = "fhir";

/// `path` when it names one of Samsyn's gRPC methods, [`FHIR_METHOD`] for the FHIR view,
/// else [`UNKNOWN_METHOD`]: safe to record as a span attribute or metric label.
pub fn method_label(path: &str) -> &str {
    if METHODS.contains(path) {
        path
    } else if path == "/fhir" || path.starts_with("/fhir/") {
        FHIR_METHOD
    } else {
        UNKNOWN_METHOD
    }
}

struct RpcInstruments {
    duration: Histogram<f64>,
    open: UpDownCounter<i64>,
}

static RPC: LazyLock<RpcInstruments> = LazyLock::new(|| {
    let meter = meter();
    RpcInstruments {
        duration: meter
            .f64_histogram("rpc.server.duration")
            .with_unit("ms")
            .with_description("Time from a call's arrival to its last response byte")
            .with_boundaries(vec![
                0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0,
                60000.0,
            ])
            .build(),
        open: meter
            .i64_up_down_counter("rpc.server.open_calls")
            .with_description("Calls in progress; a watch stream counts for as long as it is open")
            .build(),
    }
});

struct ConnectionInstruments {
    open: UpDownCounter<i64>,
    refused: Counter<u64>,
}

static CONNECTIONS: LazyLock<ConnectionInstruments> = LazyLock::new(|| {
    let meter = meter();
    ConnectionInstruments {
        open: meter
            .i64_up_down_counter("samsyn.server.open_connections")
            .with_description("Accepted connections not yet closed, TLS handshakes included")
            .build(),
        refused: meter
            .u64_counter("samsyn.server.refused_connections")
            .with_description("Connections closed at accept because the part held its maximum")
            .build(),
    }
});

/// Counts a connection of `part` opened (`+1`) or closed (`-1`).
pub(crate) fn connections_open(part: &'static str, change: i64) {
    CONNECTIONS
        .open
        .add(change, &[KeyValue::new("samsyn.part", part)]);
}

/// Counts a connection to `part` refused at the bound.
pub(crate) fn connection_refused(part: &'static str) {
    CONNECTIONS
        .refused
        .add(1, &[KeyValue::new("samsyn.part", part)]);
}

/// A tower layer recording [`rpc.server.duration`](RpcMetrics) and open calls for a part.
#[derive(Debug, Clone, Copy)]
pub struct RpcMetricsLayer {
    part: &'static str,
}

impl RpcMetricsLayer {
    /// Records calls to `part` (`participants`, `gateway`).
    pub fn new(part: &'static str) -> Self {
        Self { part }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            part: self.part,
        }
    }
}

/// Records each call's duration by method and gRPC status, and the calls open.
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    part: &'static str,
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<MeasuredBody<R>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut call = Measured {
            attributes: vec![
                KeyValue::new("samsyn.part", self.part),
                KeyValue::new("rpc.method", method_label(request.uri().path()).to_owned()),
            ],
            started: Instant::now(),
            status: None,
            http_status: None,
            finished: false,
        };
        RPC.open.add(1, &call.attributes);
        let response = self.inner.call(request);
        Box::pin(async move {
            match response.await {
                Ok(response) => {
                    // A trailers-only response (most errors) has its status in the headers.
                    call.status = grpc_status(response.headers());
                    let grpc = response
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc"));
                    if !grpc {
                        call.http_status = Some(response.status().as_u16());
                    }
                    Ok(response.map(|inner| MeasuredBody { inner, call }))
                }
                Err(error) => {
                    call.status = Some(tonic::Code::Internal as i32);
                    call.finish();
                    Err(error)
                }
            }
        })
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// One call being measured; recorded once, when its response ends or is dropped.
#[derive(Debug)]
struct Measured {
    attributes: Vec<KeyValue>,
    started: Instant,
    status: Option<i32>,
    /// The HTTP status of a plain HTTP request (the FHIR view), which has no gRPC status.
    http_status: Option<u16>,
    finished: bool,
}

impl Measured {
    fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        RPC.open.add(-1, &self.attributes);
        let mut attributes = self.attributes.clone();
        attributes.push(match self.http_status {
            Some(status) => KeyValue::new("http.response.status_code", i64::from(status)),
            // A response dropped before its status was sent: the client went away.
            None => KeyValue::new(
                "rpc.grpc.status_code",
                i64::from(self.status.unwrap_or(tonic::Code::Cancelled as i32)),
            ),
        });
        RPC.duration
            .record(self.started.elapsed().as_secs_f64() * 1000.0, &attributes);
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        self.finish();
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its call when it ends.
    #[derive(Debug)]
    pub struct MeasuredBody<R> {
        #[pin]
        inner: R,
        call: Measured,
    }
}

impl<R: http_body::Body> http_body::Body for MeasuredBody<R> {
    type Data = R::Data;
    type Error = R::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(status) = frame.trailers_ref().and_then(grpc_status) {
                    this.call.status = Some(status);
                    this.call.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.call.status.get_or_insert(tonic::Code::Internal as i32);
                this.call.finish();
            }
            Poll::Ready(None) => this.call.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_samsyns_own_methods_become_labels() {
        assert_eq!(
            method_label("/samsyn.board.v1.BoardService/GetBoard"),
            "/samsyn.board.v1.BoardService/GetBoard"
        );
        assert_eq!(
            method_label("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health/Check"
        );
        // A made-up path may carry anything, a personal identity number included.
        assert_eq!(
            method_label("/samsyn.board.v1.BoardService/198001012385"),
            UNKNOWN_METHOD
        );
        assert_eq!(method_label(""), UNKNOWN_METHOD);
        assert_eq!(method_label("/fhir/Patient/p-1"), FHIR_METHOD);
        assert_eq!(method_label("/fhirish"), UNKNOWN_METHOD);
    }
}
