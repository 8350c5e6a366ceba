//! `samsyn-peer-proxy`: the gateway's stack without the gateway's work, for the peer benchmark
//! (`bench/peers.rs`).
//!
//! It serves as the gateway does (`samsyn_kit::serve`: TLS in, the same server layers, limits,
//! health and reflection) and forwards as the gateway does (`tonic::client::Grpc` on a tonic
//! channel, mutual TLS out, messages as bytes through [`RawCodec`]), but takes no token,
//! makes no decision, writes no audit and narrows nothing; the caller's metadata passes
//! through as a plain proxy passes it. Beside nginx and HAProxy it shows what the stack itself
//! costs; beside the gateway, what the gateway's own work costs.
//!
//! Usage: `samsyn-peer-proxy <listen address> <upstream address> <certificates directory>`,
//! the directory holding the development CA and a `peer-proxy` identity (`DevPki`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;

use anyhow::Context;
use bytes::Bytes;
use samsyn_gateway::proxy::RawCodec;
use samsyn_kit::config::Limits;
use samsyn_kit::serve::Part;
use samsyn_kit::tls::{self, ClientAuth, DevPki};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The identity the proxy presents on both sides, as nginx and HAProxy do in the benchmark.
const IDENTITY: &str = "peer-proxy";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Every call, whatever its method, forwarded to one upstream.
#[derive(Debug, Clone)]
struct PassThrough {
    upstream: Channel,
}

impl<B> tower::Service<http::Request<B>> for PassThrough
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let forward = Forward {
            upstream: self.upstream.clone(),
            path: request.uri().path().to_owned(),
        };
        Box::pin(async move {
            Ok(tonic::server::Grpc::new(RawCodec)
                .unary(forward, request)
                .await)
        })
    }
}

/// One unary call on its way to the upstream.
#[derive(Debug, Clone)]
struct Forward {
    upstream: Channel,
    path: String,
}

impl tonic::server::UnaryService<Bytes> for Forward {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let mut client = tonic::client::Grpc::new(self.upstream.clone());
        let path = http::uri::PathAndQuery::from_str(&self.path);
        Box::pin(async move {
            let path = path.map_err(|_| Status::unimplemented("no such method"))?;
            client
                .ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let (metadata, _, message) = request.into_parts();
            let outgoing = Request::from_parts(metadata, Default::default(), message);
            client.unary(outgoing, path, RawCodec).await
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: samsyn-peer-proxy <listen address> <upstream address> <certificates>";
    let listen: SocketAddr = args.next().context(usage)?.parse().context(usage)?;
    let upstream: SocketAddr = args.next().context(usage)?.parse().context(usage)?;
    let certs = PathBuf::from(args.next().context(usage)?);
    let _ = rustls::crypto::ring::default_provider().install_default();

    let pki = DevPki::at(certs);
    let identity = pki.identity(IDENTITY)?;
    let anchors = pki.trust_anchors()?;
    let client = tls::client_config(anchors.clone(), Some(&identity))?;
    let server = tls::server_config(&identity, anchors, ClientAuth::Optional)?;
    let upstream = tls::channel(upstream, "localhost", client)?;

    let router = axum::Router::new().fallback_service(PassThrough { upstream });
    let part = Part {
        name: "peer-proxy",
        routes: tonic::service::RoutesBuilder::from(router),
        services: Vec::new(),
        feeds: Vec::new(),
        readiness: Default::default(),
        http1: false,
    };
    let listener = samsyn_kit::serve::bind(listen).await?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    samsyn_kit::serve::serve(part, listener, server, &Limits::default(), shutdown).await?;
    Ok(())
}
