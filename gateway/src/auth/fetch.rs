//! One HTTPS exchange with an identity provider (its discovery document, key set or token
//! endpoint): HTTP/1.1 over rustls, trusting only the issuer's configured CA, bounded in
//! time and size, no redirects.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;

use super::KeyError;

/// Longest a fetch may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest document read: key sets are a few KiB.
const MAX_DOCUMENT: usize = 256 * 1024;

/// A client configuration trusting only the CA in `ca` (PEM), speaking HTTP/1.1.
pub(crate) fn https_client(ca: &Path) -> Result<Arc<rustls::ClientConfig>, KeyError> {
    let roots = samsyn_kit::tls::trust_anchors(ca).map_err(|e| KeyError::Parse(e.to_string()))?;
    let mut config = (*samsyn_kit::tls::client_config(roots, None)
        .map_err(|e| KeyError::Parse(e.to_string()))?)
    .clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The JSON document at `url` (`https://` only).
pub(crate) async fn get_json(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<serde_json::Value, KeyError> {
    let (status, document) = exchange(url, tls, None).await?;
    if status != http::StatusCode::OK {
        return Err(KeyError::Parse(format!("{url}: status {status}")));
    }
    Ok(document)
}

/// POSTs the form `body` to `url` (`https://` only), with `authorization` when given; the
/// answer's status and JSON body (an OAuth error answer is JSON too).
pub(crate) async fn post_form(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    body: String,
    authorization: Option<String>,
) -> Result<(http::StatusCode, serde_json::Value), KeyError> {
    exchange(url, tls, Some((body, authorization))).await
}

async fn exchange(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    form: Option<(String, Option<String>)>,
) -> Result<(http::StatusCode, serde_json::Value), KeyError> {
    tokio::time::timeout(FETCH_TIMEOUT, send(url, tls, form))
        .await
        .map_err(|_| KeyError::Parse(format!("{url}: no answer in time")))?
}

async fn send(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    form: Option<(String, Option<String>)>,
) -> Result<(http::StatusCode, serde_json::Value), KeyError> {
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
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = http::Request::builder()
        .uri(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json");
    let body = match form {
        None => Bytes::new(),
        Some((body, authorization)) => {
            request = request.method(http::Method::POST).header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
            if let Some(authorization) = authorization {
                request = request.header(http::header::AUTHORIZATION, authorization);
            }
            Bytes::from(body)
        }
    };
    let request = request
        .body(Full::new(body))
        .map_err(|_| fail("bad request"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| fail(&format!("http: {e}")))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map_err(|_| fail("body too large or broken"))?
        .to_bytes();
    let document = serde_json::from_slice(&body).map_err(|_| fail("not JSON"))?;
    Ok((status, document))
}
