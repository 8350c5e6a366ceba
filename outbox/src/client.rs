//! The HTTPS client of a link: HTTP/1.1 over rustls with our client certificate, a small
//! pool of kept-alive connections, and the classification of every outcome.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use samsyn_kit::tls::Reloading;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use uuid::Uuid;

use crate::link::Target;

/// The idempotency header: the far side dedups on it.
pub const MESSAGE_ID_HEADER: &str = "x-samsyn-message-id";

/// Most of an answer's body read (and thrown away) so the connection can be reused.
const MAX_ANSWER: usize = 64 * 1024;

/// Why a send did not deliver. Stored as [`FailureKind::as_str`], with the status code when
/// there was one: never the far side's words, which may repeat personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No TCP connection (refused, unreachable, name not found).
    Connect,
    /// No answer in time.
    Timeout,
    /// The server's certificate does not chain to the link's CA, has expired or does not
    /// name the host. Retried (the far side may fix its certificate), never delivered.
    UntrustedPeer,
    /// Any other TLS failure, e.g. the server refused our certificate.
    Tls,
    /// The connection broke or the answer was not HTTP.
    Protocol,
    /// 408, 429 or 5xx: try again later.
    TransientStatus,
    /// Any other non-2xx answer: the message itself is refused.
    PermanentStatus,
}

impl FailureKind {
    /// The stored category.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::UntrustedPeer => "untrusted_peer",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::TransientStatus => "transient_status",
            Self::PermanentStatus => "permanent_status",
        }
    }

    /// Whether it counts towards the dead-letter limit.
    pub fn is_permanent(self) -> bool {
        self == Self::PermanentStatus
    }
}

/// What one send came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// 2xx.
    Delivered(StatusCode),
    /// Anything else.
    Failed(FailureKind, Option<StatusCode>),
}

/// Classifies an answer's status.
pub(crate) fn classify_status(status: StatusCode) -> Sent {
    if status.is_success() {
        Sent::Delivered(status)
    } else if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Sent::Failed(FailureKind::TransientStatus, Some(status))
    } else {
        // 1xx and 3xx too: we follow no redirects, and retrying will not change the answer.
        Sent::Failed(FailureKind::PermanentStatus, Some(status))
    }
}

/// Classifies a failed TLS handshake.
fn classify_tls(error: &io::Error) -> FailureKind {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            FailureKind::UntrustedPeer
        }
        Some(_) => FailureKind::Tls,
        None if error.kind() == io::ErrorKind::TimedOut => FailureKind::Timeout,
        None => FailureKind::Protocol,
    }
}

/// A request ready to send.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    pub id: Uuid,
    pub method: &'a str,
    pub path: &'a str,
    pub content_type: &'a str,
    pub body: Bytes,
}

/// The client of one link.
pub(crate) struct Client {
    /// Read per connection: a renewed client certificate applies from the next one.
    tls: Reloading<ClientConfig>,
    target: Target,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.target.host)
            .field("port", &self.target.port)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(
        tls: Reloading<ClientConfig>,
        target: Target,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        Self {
            tls,
            target,
            idle: Mutex::new(Vec::new()),
            connect_timeout,
            request_timeout,
        }
    }

    /// Sends one message and reads the answer's status.
    pub async fn send(&self, outgoing: Outgoing<'_>) -> Sent {
        match tokio::time::timeout(self.request_timeout, self.exchange(&outgoing)).await {
            Ok(sent) => sent,
            Err(_) => Sent::Failed(FailureKind::Timeout, None),
        }
    }

    fn request(&self, outgoing: &Outgoing<'_>) -> Result<Request<Full<Bytes>>, http::Error> {
        let method = Method::from_bytes(outgoing.method.as_bytes())?;
        let uri = format!("{}{}", self.target.base_path, outgoing.path);
        let id = HeaderValue::from_str(&outgoing.id.to_string())?;
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, &self.target.authority)
            .header(header::CONTENT_TYPE, outgoing.content_type)
            .header(MESSAGE_ID_HEADER, id)
            .body(Full::new(outgoing.body.clone()))
    }

    async fn exchange(&self, outgoing: &Outgoing<'_>) -> Sent {
        // A kept-alive connection the server has just closed fails the request before any
        // answer: try once more on a new connection. The far side dedups a repeat.
        let mut reused = true;
        let mut sender = match self.idle_connection().await {
            Some(sender) => sender,
            None => {
                reused = false;
                match self.connect().await {
                    Ok(sender) => sender,
                    Err(kind) => return Sent::Failed(kind, None),
                }
            }
        };
        let response = loop {
            let Ok(request) = self.request(outgoing) else {
                // Stored messages were validated at enqueue: this row came from elsewhere.
                return Sent::Failed(FailureKind::PermanentStatus, None);
            };
            match sender.send_request(request).await {
                Ok(response) => break response,
                Err(error) if reused => {
                    tracing::debug!(%error, "request on a kept-alive connection failed");
                    reused = false;
                    sender = match self.connect().await {
                        Ok(sender) => sender,
                        Err(kind) => return Sent::Failed(kind, None),
                    };
                }
                Err(error) => {
                    tracing::debug!(%error, "request failed");
                    return Sent::Failed(FailureKind::Protocol, None);
                }
            }
        };
        let status = response.status();
        // Read the answer to the end so the connection can carry the next request; its
        // content is not kept.
        let complete = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .is_ok();
        if complete
            && !sender.is_closed()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(sender);
        }
        classify_status(status)
    }

    /// A kept-alive connection ready for a request, if there is one.
    async fn idle_connection(&self) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let candidate = self.idle.lock().ok()?.pop()?;
            let mut sender = candidate;
            if sender.is_closed() {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, FailureKind> {
        let target = &self.target;
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| FailureKind::Timeout)?
        .map_err(|_| FailureKind::Connect)?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(
            self.connect_timeout,
            TlsConnector::from(self.tls.current()).connect(target.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| FailureKind::Timeout)?
        .map_err(|error| {
            let kind = classify_tls(&error);
            tracing::debug!(%error, kind = kind.as_str(), "tls handshake failed");
            kind
        })?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|_| FailureKind::Protocol)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended");
            }
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_split_into_delivered_transient_and_permanent() {
        let cases = [
            (200, Some(None)),
            (201, Some(None)),
            (204, Some(None)),
            (408, Some(Some(FailureKind::TransientStatus))),
            (429, Some(Some(FailureKind::TransientStatus))),
            (500, Some(Some(FailureKind::TransientStatus))),
            (503, Some(Some(FailureKind::TransientStatus))),
            (400, Some(Some(FailureKind::PermanentStatus))),
            (404, Some(Some(FailureKind::PermanentStatus))),
            (409, Some(Some(FailureKind::PermanentStatus))),
            (422, Some(Some(FailureKind::PermanentStatus))),
            (301, Some(Some(FailureKind::PermanentStatus))),
        ];
        for (code, expected) in cases {
            let status = StatusCode::from_u16(code).unwrap_or_else(|_| unreachable!());
            let got = match classify_status(status) {
                Sent::Delivered(_) => None,
                Sent::Failed(kind, _) => Some(kind),
            };
            assert_eq!(Some(got), expected, "status {code}");
        }
    }

    #[test]
    fn certificate_errors_mean_untrusted_peer() {
        let unknown = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(classify_tls(&unknown), FailureKind::UntrustedPeer);
        let expired = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        assert_eq!(classify_tls(&expired), FailureKind::UntrustedPeer);
        let refused = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate),
        );
        assert_eq!(classify_tls(&refused), FailureKind::Tls);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(classify_tls(&reset), FailureKind::Protocol);
    }
}
