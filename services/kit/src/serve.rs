//! Serving one part: a pre-bound listener, mutual TLS, health, reflection, limits, deadlines,
//! trace continuation and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::config::Limits;

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
    /// Also serve HTTP/1.1 (offered by ALPN next to `h2`): the gateway's FHIR view, for
    /// journal systems that speak FHIR REST over HTTP/1.1. gRPC needs HTTP/2 either way.
    pub http1: bool,
}

/// Binds the listener before serving, so callers know the address (port 0 works).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `part` on `listener` over TLS until `shutdown` completes, then drains in-flight calls.
pub async fn serve(
    part: Part,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in &part.services {
        reporter
            .set_service_status(*service, ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(samsyn_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let name = part.name;
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
    let tls = if http1 {
        crate::tls::with_http1(&tls)
    } else {
        tls
    };
    let incoming = crate::tls::incoming(listener, tls, limits.handshake_timeout());
    Server::builder()
        .accept_http1(http1)
        .layer(crate::metrics::RpcMetricsLayer::new(name))
        .layer(tower::layer::layer_fn(|inner| WrittenSequence { inner }))
        // `timeout` also honours a shorter `grpc-timeout` sent by the caller.
        .timeout(limits.default_deadline())
        .concurrency_limit_per_connection(limits.max_concurrent_requests_per_connection)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .trace_fn(crate::telemetry::server_span)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
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
