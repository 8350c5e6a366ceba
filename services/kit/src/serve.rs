//! Serving one part: a pre-bound listener, mutual TLS, health, reflection, limits (connections,
//! idle time, keep-alive, requests), deadlines, trace continuation and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use rustls::ServerConfig;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::config::Limits;
use crate::tls::Reloading;

/// Largest accepted header block; gRPC metadata carries a token and a trace context, no more.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// What a part needs to build itself.
#[derive(Debug, Clone)]
pub struct PartContext {
    /// The database to open (and migrate).
    pub database_url: String,
    /// Where the part may keep files.
    pub data_dir: PathBuf,
    /// Request limits.
    pub limits: Limits,
}

/// One part's gRPC services, ready to serve.
#[derive(Debug)]
pub struct Part {
    /// The part's name (`participants`, `gateway`).
    pub name: &'static str,
    /// Its gRPC services; health and reflection are added when serving.
    pub routes: RoutesBuilder,
    /// Full names of its gRPC services, reported as serving by health.
    pub services: Vec<&'static str>,
    /// Its change feeds, closed at shutdown so their open watch streams end.
    pub feeds: Vec<crate::feed::ChangeFeed>,
    /// What must hold for the part to be ready; reported by health and the probe listener.
    pub readiness: crate::ready::Readiness,
    /// Also serve HTTP/1.1 (offered by ALPN next to `h2`): the gateway's FHIR view, for
    /// journal systems that speak FHIR REST over HTTP/1.1. gRPC needs HTTP/2 either way.
    pub http1: bool,
}

/// Binds the listener before serving, so callers know the address (port 0 works).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `part` on `listener` over TLS until `shutdown` completes, then drains in-flight calls.
/// Each new connection's handshake uses the TLS configuration `tls` holds at the time.
pub async fn serve(
    part: Part,
    listener: TcpListener,
    tls: impl Into<Reloading<ServerConfig>>,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    // Not serving until the first round of readiness checks passes, and whenever one fails.
    let services = part.services.clone();
    let report = move |ready: bool| {
        let reporter = reporter.clone();
        let services = services.clone();
        async move {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for service in services.iter().copied().chain([""]) {
                reporter.set_service_status(service, status).await;
            }
        }
    };
    report(false).await;
    let readiness = part.readiness.clone();
    let name = part.name;
    let checker = tokio::spawn(async move { readiness.watch_over(name, report).await });
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(samsyn_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let mut routes = part.routes;
    routes.add_service(health).add_service(reflection);
    let feeds = part.feeds;
    let shutdown = async move {
        shutdown.await;
        for feed in &feeds {
            feed.close();
        }
    };
    let http1 = part.http1;
    let incoming = crate::tls::incoming(listener, tls.into(), http1, name, limits);
    let served = Server::builder()
        .accept_http1(http1)
        // Pings a client that has sent nothing for a while, and drops it if it does not
        // answer; an answer is activity, which keeps a live client under the idle timeout.
        .http2_keepalive_interval(Some(limits.keepalive_interval()))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout()))
        // Outermost: everything a call does, metrics included, belongs to its trace, and a
        // call whose trace is not sampled builds no spans for export at all.
        .layer(tower::layer::layer_fn(|inner| {
            crate::telemetry::TracedCalls { inner }
        }))
        .layer(crate::metrics::RpcMetricsLayer::new(name))
        .layer(tower::layer::layer_fn(|inner| WrittenSequence { inner }))
        // The default deadline, or a shorter `grpc-timeout` sent by the caller.
        .layer(tower::layer::layer_fn({
            let default = limits.default_deadline();
            move |inner| Deadline { inner, default }
        }))
        .concurrency_limit_per_connection(limits.max_concurrent_requests_per_connection)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    checker.abort();
    served?;
    Ok(())
}

/// Adds [`crate::feed::WRITTEN_SEQUENCE_HEADER`] to the response of a call that appended to
/// a change feed.
#[derive(Debug, Clone)]
struct WrittenSequence<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for WrittenSequence<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = self.inner.call(request);
        Box::pin(async move {
            let (result, sequence) = crate::feed::written::scope(call).await;
            let mut response = result?;
            if sequence > 0 {
                response.headers_mut().insert(
                    crate::feed::WRITTEN_SEQUENCE_HEADER,
                    http::HeaderValue::from(sequence),
                );
            }
            Ok(response)
        })
    }
}

/// How long past its deadline a call may take to end itself: the gateway ends a forwarded
/// call at the deadline and audits it; cutting it here at the same instant would drop the
/// audit event with it.
const DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Ends a call that outlives its deadline with `DEADLINE_EXCEEDED` (tonic's own server
/// timeout answers `CANCELLED`, which tells a client nothing about why).
#[derive(Debug, Clone)]
struct Deadline<S> {
    inner: S,
    default: std::time::Duration,
}

impl<S, B, R> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limit = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(grpc_timeout)
            .map_or(self.default, |asked| asked.min(self.default));
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit + DEADLINE_GRACE, call).await {
                Ok(answer) => answer,
                Err(_) => Ok(tonic::Status::deadline_exceeded("deadline exceeded").into_http()),
            }
        })
    }
}

/// A `grpc-timeout` header value as a duration; `None` when malformed.
pub fn grpc_timeout(value: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A part that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The reflection service refused the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}
