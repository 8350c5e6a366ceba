//! The plain-HTTP probe listener, for orchestrators that cannot speak mutual TLS: `GET
//! /livez` answers 200 while the process serves, `GET /readyz` 200 while the part is ready
//! ([`crate::ready`]) and 503 otherwise. It answers nothing else and carries no data, so it
//! may listen without TLS — on its own port, off by default, and best on an address only
//! the orchestrator reaches.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::ready::Readiness;

/// Most probe connections open at once; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 64;
/// The longest a probe connection stays open.
const CONNECTION_LIMIT: Duration = Duration::from_secs(10);

/// Answers probes on `listener` from `readiness` until `shutdown` completes.
pub async fn serve_probes(
    listener: TcpListener,
    readiness: Readiness,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => stream,
            Ok(_) => continue,
            Err(error) => {
                // Out of file descriptors, most likely: give the process a moment.
                tracing::warn!(%error, "probe listener cannot accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let readiness = readiness.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let answer = answer(&request, readiness.is_ready());
                async move { Ok::<_, Infallible>(answer) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIMIT, connection).await;
        });
    }
}

/// The answer to one probe.
fn answer<B>(request: &Request<B>, ready: bool) -> Response<String> {
    let (status, body) = match request.uri().path() {
        "/livez" | "/readyz" if !matches!(*request.method(), Method::GET | Method::HEAD) => {
            (StatusCode::METHOD_NOT_ALLOWED, "")
        }
        "/livez" => (StatusCode::OK, "ok\n"),
        "/readyz" if ready => (StatusCode::OK, "ready\n"),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => (StatusCode::NOT_FOUND, ""),
    };
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(method: Method, path: &str, ready: bool) -> StatusCode {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        answer(&request, ready).status()
    }

    #[test]
    fn answers_liveness_readiness_and_nothing_else() {
        assert_eq!(probe(Method::GET, "/livez", false), StatusCode::OK);
        assert_eq!(probe(Method::GET, "/readyz", true), StatusCode::OK);
        assert_eq!(
            probe(Method::GET, "/readyz", false),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(probe(Method::HEAD, "/readyz", true), StatusCode::OK);
        assert_eq!(
            probe(Method::POST, "/readyz", true),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(probe(Method::GET, "/", true), StatusCode::NOT_FOUND);
        assert_eq!(probe(Method::GET, "/metrics", true), StatusCode::NOT_FOUND);
    }
}
