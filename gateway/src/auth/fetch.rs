//! One HTTPS GET of a JSON document (an issuer's discovery document or key set): HTTP/1.1
//! over rustls, trusting only the issuer's configured CA, bounded in time and size, no
//! redirects.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;

use super::KeyError;

/// Longest a fetch may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest document read: key sets are a few KiB.
const MAX_DOCUMENT: usize = 256 * 1024;

/// The JSON document at `url` (`https://` only).
pub(super) async fn get_json(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<serde_json::Value, KeyError> {
    tokio::time::timeout(FETCH_TIMEOUT, get(url, tls))
        .await
        .map_err(|_| KeyError::Parse(format!("{url}: no answer in time")))?
}

async fn get(url: &str, tls: &Arc<rustls::ClientConfig>) -> Result<serde_json::Value, KeyError> {
    let fail = |what: &str| KeyError::Parse(format!("{url}: {what}"));
    let uri: http::Uri = url.parse().map_err(|_| fail("not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(fail("not https"));
    }
    let host = uri.host().ok_or_else(|| fail("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let server_name = ServerName::try_from(host.clone()).map_err(|_| fail("bad host"))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| fail(&format!("connect: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(server_name, tcp)
        .await
        .map_err(|e| fail(&format!("tls: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(&format!("http: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or(host);
    let request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|_| fail("bad request"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| fail(&format!("http: {e}")))?;
    if response.status() != http::StatusCode::OK {
        return Err(fail(&format!("status {}", response.status())));
    }
    let body = Limited::new(response.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map_err(|_| fail("body too large or broken"))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|_| fail("not JSON"))
}
