//! A link to one external system: where it is and the TLS material to reach it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Uri;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use samsyn_kit::tls::Reloading;

use crate::OutboxError;
use crate::message::LinkId;

/// Where a link sends and how it proves who we are.
#[derive(Debug, Clone)]
pub struct Link {
    /// The link's name.
    pub id: LinkId,
    /// `https://host[:port][/base-path]`; message paths are appended to the base path.
    pub endpoint: Uri,
    /// PEM file of the CA the far side's server certificate must chain to (and nothing else).
    pub server_ca: PathBuf,
    /// PEM file of our client certificate chain.
    pub client_cert: PathBuf,
    /// PEM file of our client private key.
    pub client_key: PathBuf,
}

/// The parts of an endpoint the client needs.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub server_name: ServerName<'static>,
    /// `host[:port]` for the `Host` header.
    pub authority: String,
    /// The base path without a trailing `/`.
    pub base_path: String,
}

impl Link {
    /// Refuses a link whose endpoint or TLS files cannot work, before any sender starts.
    pub fn check(&self) -> Result<(), OutboxError> {
        self.target()?;
        self.client_config()?;
        Ok(())
    }

    /// The rustls client configuration: trusts only `server_ca`, presents our certificate.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, OutboxError> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(&self.server_ca)? {
            roots.add(cert)?;
        }
        let chain = read_certs(&self.client_cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.client_key)
            .map_err(|e| read_error(&self.client_key, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// [`Link::client_config`], built again whenever its files change (a renewed client
    /// certificate, a new CA of the far side), for the next connection; a replacement that
    /// does not make a configuration keeps the current one with a warning.
    pub fn reloading_client_config(&self) -> Result<Reloading<ClientConfig>, OutboxError> {
        // Refused now with this link's own errors; the files as watched from here on.
        self.client_config()?;
        let (ca, cert, key) = (
            self.server_ca.clone(),
            self.client_cert.clone(),
            self.client_key.clone(),
        );
        let paths = vec![ca.clone(), cert.clone(), key.clone()];
        samsyn_kit::tls::watch(
            &format!("link {}", self.id),
            paths,
            samsyn_kit::tls::DEFAULT_RELOAD_INTERVAL,
            move |files| {
                let identity = files.identity(&cert, &key)?;
                let config =
                    samsyn_kit::tls::client_config(files.trust_anchors(&[&ca])?, Some(&identity))?;
                let mut config = ClientConfig::clone(&config);
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok(Arc::new(config))
            },
        )
        .map_err(|e| OutboxError::TlsFile {
            path: self.client_cert.clone(),
            reason: e.to_string(),
        })
    }

    pub(crate) fn target(&self) -> Result<Target, OutboxError> {
        if self.endpoint.scheme_str() != Some("https") {
            return Err(OutboxError::Invalid("link endpoint scheme (https only)"));
        }
        let host = self
            .endpoint
            .host()
            .ok_or(OutboxError::Invalid("link endpoint host"))?;
        // An IPv6 literal comes bracketed in the URI but not in a server name.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(bare.clone())
            .map_err(|_| OutboxError::Invalid("link endpoint host"))?;
        let port = self.endpoint.port_u16().unwrap_or(443);
        let authority = match self.endpoint.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Target {
            host: bare,
            port,
            server_name,
            authority,
            base_path: self.endpoint.path().trim_end_matches('/').to_owned(),
        })
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, OutboxError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read_error(path, e))?;
    if certs.is_empty() {
        return Err(read_error(path, "no certificate in file"));
    }
    Ok(certs)
}

fn read_error(path: &Path, error: impl std::fmt::Display) -> OutboxError {
    OutboxError::TlsFile {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(endpoint: &str) -> Link {
        Link {
            id: "sip".parse().unwrap_or_else(|_| unreachable!()),
            endpoint: endpoint.parse().unwrap_or_else(|_| unreachable!()),
            server_ca: PathBuf::new(),
            client_cert: PathBuf::new(),
            client_key: PathBuf::new(),
        }
    }

    #[test]
    fn endpoints_give_host_port_and_base_path() -> Result<(), OutboxError> {
        let target = link("https://sip.example.test:8443/fhir/").target()?;
        assert_eq!(target.host, "sip.example.test");
        assert_eq!(target.port, 8443);
        assert_eq!(target.authority, "sip.example.test:8443");
        assert_eq!(target.base_path, "/fhir");
        let target = link("https://[::1]/").target()?;
        assert_eq!((target.host.as_str(), target.port), ("::1", 443));
        assert_eq!(target.base_path, "");
        Ok(())
    }

    #[test]
    fn plain_http_is_refused() {
        assert!(link("http://sip.example.test/").target().is_err());
    }

    #[tokio::test]
    async fn a_renewed_client_certificate_is_taken_up() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        let pki = samsyn_kit::tls::DevPki::at(dir.path());
        pki.ensure(&["gateway", "renewed"])
            .unwrap_or_else(|_| unreachable!());
        let mut link = link("https://sip.example.test/");
        link.server_ca = pki.ca_cert();
        link.client_cert = pki.cert("gateway");
        link.client_key = pki.key("gateway");
        let reloading = link
            .reloading_client_config()
            .unwrap_or_else(|_| unreachable!());
        let first = reloading.current();
        assert_eq!(first.alpn_protocols, [b"http/1.1".to_vec()]);
        std::fs::copy(pki.key("renewed"), pki.key("gateway")).unwrap_or_else(|_| unreachable!());
        std::fs::copy(pki.cert("renewed"), pki.cert("gateway")).unwrap_or_else(|_| unreachable!());
        let deadline = std::time::Instant::now() + samsyn_kit::tls::DEFAULT_RELOAD_INTERVAL * 4;
        while Arc::ptr_eq(&first, &reloading.current()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the renewal was not taken up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(reloading.current().alpn_protocols, [b"http/1.1".to_vec()]);
    }
}
