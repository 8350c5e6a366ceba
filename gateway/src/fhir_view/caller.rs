//! gRPC calls made in-process through the gateway's own [`Proxy`], as the FHIR caller: the
//! same credentials (bearer token, or the TLS peer certificate a link is pinned to) and trace
//! context, so authentication, decision, narrowing and audit are those of any gRPC call.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::proxy::Proxy;

/// Request headers that travel from the FHIR request to each gRPC call it makes: the
/// credentials, the trace context, and the consistency token of a write made elsewhere.
const CARRIED_HEADERS: [&str; 4] = [
    "authorization",
    "traceparent",
    "tracestate",
    crate::proxy::CONSISTENCY_HEADER,
];

/// A tower service for tonic clients that sends every call through [`Proxy`] as `caller`.
#[derive(Clone)]
pub struct AsCaller {
    proxy: Proxy,
    peer: Option<TlsConnectInfo<TcpConnectInfo>>,
    headers: http::HeaderMap,
}

impl std::fmt::Debug for AsCaller {
    // Headers hold the caller's token: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCaller")
            .field("peer_certificate", &self.peer.is_some())
            .finish_non_exhaustive()
    }
}

impl AsCaller {
    /// Calls through `proxy` with the credentials and trace context of `request`.
    pub fn new(proxy: Proxy, request: &http::request::Parts) -> Self {
        let mut headers = http::HeaderMap::new();
        for name in CARRIED_HEADERS {
            for value in request.headers.get_all(name) {
                headers.append(name, value.clone());
            }
        }
        Self {
            proxy,
            peer: request
                .extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .cloned(),
            headers,
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl tower::Service<http::Request<tonic::body::Body>> for AsCaller {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some(peer) = &self.peer {
            request.extensions_mut().insert(peer.clone());
        }
        for (name, value) in &self.headers {
            request.headers_mut().append(name, value.clone());
        }
        tower::Service::call(&mut self.proxy, request)
    }
}
