//! Mutual TLS with rustls: server and client configurations (kept current with their files,
//! see [`watch`]), the TLS listener and client channel for tonic, and the development
//! certificate authority.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::config::Limits;
use crate::connection::{Connection, ConnectionLimit};

mod reload;

pub use reload::{DEFAULT_RELOAD_INTERVAL, Files, Reloading, watch};

/// TLS material that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing or unreadable.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the material.
    #[error("tls configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built (e.g. no trust anchors).
    #[error("client verifier refused: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing generated files failed.
    #[error("cannot write certificates: {0}")]
    Io(#[from] io::Error),
}

/// A certificate chain and its private key: who this side is.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// Reads a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| read_error(cert, e))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read_error(key, e))?;
        Ok(Self { chain, key })
    }

    /// The leaf certificate, as presented to peers.
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.chain.first()
    }
}

/// Reads the trust anchors (CA certificates) of a PEM file.
pub fn trust_anchors(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read_error(ca, e))?;
    for cert in certs {
        roots.add(cert)?;
    }
    Ok(Arc::new(roots))
}

fn read_error(path: &Path, error: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether a server demands a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every client must present a certificate from the trust anchors (internal services).
    Required,
    /// A client may present one; if it does, it must verify (the gateway: systems present
    /// certificates, staff bring tokens).
    Optional,
}

/// A server configuration that verifies client certificates against `client_roots`.
pub fn server_config(
    identity: &Identity,
    client_roots: Arc<RootCertStore>,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(client_roots, provider());
    let verifier = match client_auth {
        ClientAuth::Required => verifier.build()?,
        ClientAuth::Optional => verifier.allow_unauthenticated().build()?,
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// ALPN protocol id of HTTP/2.
const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// `config` offering HTTP/1.1 by ALPN as well as HTTP/2 (preferred), for a part that also
/// serves plain HTTP requests.
pub fn with_http1(config: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(config);
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    Arc::new(config)
}

/// A client configuration trusting `roots`, presenting `identity` when given.
pub fn client_config(
    roots: Arc<RootCertStore>,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(identity) => {
            builder.with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Silence after which the kernel probes a peer: catches peers that vanished without a FIN,
/// whatever the connection is doing (a TLS handshake included).
const TCP_KEEPALIVE_TIME: Duration = Duration::from_secs(30);
/// Time between those probes.
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The accepted TLS connections of `part`'s listener, for `serve_with_incoming`.
///
/// Each handshake uses the configuration current when its connection arrives (with
/// HTTP/1.1 offered by ALPN next to HTTP/2 when `http1`), so a reloaded certificate or
/// trust bundle applies from the next connection on while open ones keep their session.
/// Beyond `limits.max_connections` open connections, a new one is closed as soon as it is
/// accepted. Handshakes run in their own tasks with a timeout, so a slow or failing client
/// never holds up the others; failed handshakes are logged and dropped. Each connection is
/// closed once its peer has been silent for `limits.idle_timeout_ms`.
pub fn incoming(
    listener: TcpListener,
    config: Reloading<ServerConfig>,
    http1: bool,
    part: &'static str,
    limits: &Limits,
) -> ReceiverStream<Result<Connection<TlsStream<TcpStream>>, io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor_for = move |config: &Arc<ServerConfig>| {
        TlsAcceptor::from(if http1 {
            with_http1(config)
        } else {
            Arc::clone(config)
        })
    };
    // The acceptor of the current configuration, made anew only when that changes.
    let mut source = config.current();
    let mut acceptor = acceptor_for(&source);
    let bound = ConnectionLimit::new(part, limits.max_connections);
    let handshake_timeout = limits.handshake_timeout();
    let idle = limits.idle_timeout();
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE_TIME)
        .with_interval(TCP_KEEPALIVE_INTERVAL);
    tokio::spawn(async move {
        // Whether the last connection was refused: logs once per spell at the bound.
        let mut refusing = false;
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            let Some(slot) = bound.try_open() else {
                if !std::mem::replace(&mut refusing, true) {
                    tracing::warn!(part, "at max_connections, refusing new connections");
                }
                drop(tcp);
                continue;
            };
            if std::mem::replace(&mut refusing, false) {
                tracing::info!(part, "below max_connections, accepting again");
            }
            let _ = tcp.set_nodelay(true);
            let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
            let current = config.current();
            if !Arc::ptr_eq(&current, &source) {
                acceptor = acceptor_for(&current);
                source = current;
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(Connection::new(stream, slot, idle))).await;
                    }
                    Ok(Err(error)) => {
                        tracing::info!(%error, peer = %peer.ip(), "tls handshake refused");
                    }
                    Err(_) => tracing::info!(peer = %peer.ip(), "tls handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// A lazily connecting gRPC channel to `addr` over TLS, verifying the server as `server_name`.
pub fn channel(
    addr: SocketAddr,
    server_name: &str,
    config: impl Into<Reloading<ClientConfig>>,
) -> Result<Channel, TlsError> {
    channel_to(&addr.to_string(), server_name, config)
}

/// A lazily connecting gRPC channel to `authority` (`host:port`, the host looked up on each
/// connection) over TLS, verifying the server as `server_name`. Each connection it opens
/// uses the client configuration current at the time, so a reloaded identity or trust
/// bundle applies from the next connection on.
pub fn channel_to(
    authority: &str,
    server_name: &str,
    config: impl Into<Reloading<ClientConfig>>,
) -> Result<Channel, TlsError> {
    let addr = authority.to_owned();
    let server_name = ServerName::try_from(server_name.to_owned()).map_err(|e| TlsError::Read {
        path: PathBuf::from(server_name),
        reason: e.to_string(),
    })?;
    let config = config.into();
    // The scheme stays http: TLS happens in this connector, and an https URI would make tonic
    // look for its own TLS settings if a dependency ever enables them.
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| read_error(Path::new("endpoint"), e))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    Ok(
        endpoint.connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
            let config = config.clone();
            let server_name = server_name.clone();
            let addr = addr.clone();
            async move {
                let tls = connect(&addr, &server_name, &config).await?;
                Ok::<_, io::Error>(TokioIo::new(tls))
            }
        })),
    )
}

/// One TLS connection to `authority` with the client configuration current now.
pub async fn connect(
    authority: &str,
    server_name: &ServerName<'static>,
    config: &Reloading<ClientConfig>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(authority).await?;
    tcp.set_nodelay(true)?;
    TlsConnector::from(config.current())
        .connect(server_name.clone(), tcp)
        .await
}

/// File locations of the development PKI under a directory.
#[derive(Debug, Clone)]
pub struct DevPki {
    dir: PathBuf,
}

/// The names a development certificate is valid for besides the part's own name.
const DEV_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl DevPki {
    /// The PKI kept in `dir` (`<data-dir>/certs`).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The CA certificate clients must trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn ca_key(&self) -> PathBuf {
        self.dir.join("ca-key.pem")
    }

    /// The certificate of `name`.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// The private key of `name`.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-key.pem"))
    }

    /// The identity of `name`, issued earlier by [`DevPki::ensure`].
    pub fn identity(&self, name: &str) -> Result<Identity, TlsError> {
        Identity::from_pem_files(&self.cert(name), &self.key(name))
    }

    /// The CA as trust anchors.
    pub fn trust_anchors(&self) -> Result<Arc<RootCertStore>, TlsError> {
        trust_anchors(&self.ca_cert())
    }

    /// Creates the CA if missing, then a certificate for each name that lacks one.
    ///
    /// Certificates serve as both server and client identity and are valid for the name
    /// itself, `localhost` and the loopback addresses.
    pub fn ensure(&self, names: &[&str]) -> Result<(), TlsError> {
        std::fs::create_dir_all(&self.dir)?;
        let ca_key = if self.ca_key().exists() {
            let pem = std::fs::read_to_string(self.ca_key())?;
            rcgen::KeyPair::from_pem(&pem)?
        } else {
            let key = rcgen::KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            write_private(&self.ca_key(), &key.serialize_pem())?;
            std::fs::write(self.ca_cert(), cert.pem())?;
            key
        };
        let issuer = rcgen::Issuer::new(ca_params(), ca_key);
        for name in names {
            if self.cert(name).exists() && self.key(name).exists() {
                continue;
            }
            let key = rcgen::KeyPair::generate()?;
            let params = leaf_params(name)?;
            let cert = params.signed_by(&key, &issuer)?;
            write_private(&self.key(name), &key.serialize_pem())?;
            std::fs::write(self.cert(name), cert.pem())?;
        }
        Ok(())
    }

    /// Issues `name` a certificate from this CA that expired in 2021, replacing any it had:
    /// for tests that an expired identity is refused.
    pub fn issue_expired(&self, name: &str) -> Result<(), TlsError> {
        self.ensure(&[])?;
        let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(self.ca_key())?)?;
        let issuer = rcgen::Issuer::new(ca_params(), ca_key);
        let key = rcgen::KeyPair::generate()?;
        let mut params = leaf_params(name)?;
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let cert = params.signed_by(&key, &issuer)?;
        write_private(&self.key(name), &key.serialize_pem())?;
        std::fs::write(self.cert(name), cert.pem())?;
        Ok(())
    }
}

/// A development leaf's parameters: server and client identity for `name`, `localhost` and
/// the loopback addresses.
fn leaf_params(name: &str) -> Result<rcgen::CertificateParams, TlsError> {
    let mut sans: Vec<String> = vec![name.to_owned()];
    sans.extend(DEV_HOSTS.iter().map(|h| (*h).to_owned()));
    let mut params = rcgen::CertificateParams::new(sans)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// The development CA's parameters; rebuilt identically to sign with a stored CA key.
fn ca_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Samsyn development CA");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Samsyn (development only)");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Writes a private key readable by its owner only.
pub fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}
