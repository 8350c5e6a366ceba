//! A link to one external system: where it is and the TLS material to reach it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Uri;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

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
}
