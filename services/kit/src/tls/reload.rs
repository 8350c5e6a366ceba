//! TLS configurations that follow their files on disk.
//!
//! A rustls configuration cannot change once built, so a part keeps the current one in a
//! [`Reloading`] cell that its listener and its connectors read once per handshake: new
//! handshakes use whatever is current, and connections already open keep the session they
//! made (they drain as their peers close them).
//!
//! Change is found by polling the files' *contents*, not by file events: Kubernetes swaps
//! a mounted Secret by re-pointing a `..data` symlink, which an inotify watch on the file
//! itself never sees, and a comparison of contents also ignores a rewrite of the same
//! bytes. Files that do not make a usable configuration (a pair caught half-written,
//! a certificate with another key, unparsable PEM) leave the current one in place with a
//! warning, and are tried again as soon as they change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use super::{Identity, TlsError, read_error};

/// How often a part looks at its certificate files unless configured otherwise.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// A configuration (rustls `ServerConfig` or `ClientConfig`) that may be replaced while in use.
#[derive(Debug)]
pub struct Reloading<T> {
    current: watch::Receiver<Arc<T>>,
}

impl<T> Clone for Reloading<T> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
        }
    }
}

impl<T> Reloading<T> {
    /// A configuration that never changes.
    pub fn fixed(config: Arc<T>) -> Self {
        // The sender goes at once; the receiver keeps the value.
        let (_, current) = watch::channel(config);
        Self { current }
    }

    /// The configuration to use for the next handshake.
    pub fn current(&self) -> Arc<T> {
        Arc::clone(&self.current.borrow())
    }
}

impl<T> From<Arc<T>> for Reloading<T> {
    fn from(config: Arc<T>) -> Self {
        Self::fixed(config)
    }
}

/// The contents of a configuration's files, as read in one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    contents: BTreeMap<PathBuf, Vec<u8>>,
}

impl Files {
    /// Reads every file in `paths`.
    pub fn read(paths: &[PathBuf]) -> Result<Self, TlsError> {
        let mut contents = BTreeMap::new();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|e| read_error(path, e))?;
            contents.insert(path.clone(), bytes);
        }
        Ok(Self { contents })
    }

    fn get(&self, path: &Path) -> Result<&[u8], TlsError> {
        self.contents
            .get(path)
            .map(Vec::as_slice)
            .ok_or_else(|| read_error(path, "not among the watched files"))
    }

    /// The certificate chain in `cert` with the private key in `key`.
    pub fn identity(&self, cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let chain = certificates(cert, self.get(cert)?)?;
        // The parser's message may quote a line of the file: none of a key reaches a log.
        let key = PrivateKeyDer::from_pem_slice(self.get(key)?)
            .map_err(|_| read_error(key, "no complete PEM private key"))?;
        Ok(Identity { chain, key })
    }

    /// The CA certificates in each of `bundles`, as trust anchors.
    pub fn trust_anchors(&self, bundles: &[&Path]) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        for bundle in bundles {
            for cert in certificates(bundle, self.get(bundle)?)? {
                roots.add(cert)?;
            }
        }
        Ok(Arc::new(roots))
    }
}

/// The certificates of a PEM file; none at all is an error (an empty or truncated file).
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(path, e))?;
    if certs.is_empty() {
        return Err(read_error(path, "no certificate in file"));
    }
    Ok(certs)
}

/// Builds a configuration from `paths` with `build`, then looks at the files every `every`
/// and swaps in a new configuration when their contents change, for as long as a clone of
/// the answer is held. `what` names the configuration in logs. Must run inside a tokio
/// runtime; fails when the files do not make a configuration now.
pub fn watch<T, F>(
    what: &str,
    paths: Vec<PathBuf>,
    every: Duration,
    build: F,
) -> Result<Reloading<T>, TlsError>
where
    T: Send + Sync + 'static,
    F: Fn(&Files) -> Result<Arc<T>, TlsError> + Send + 'static,
{
    let files = Files::read(&paths)?;
    let (tx, current) = watch::channel(build(&files)?);
    let what = what.to_owned();
    tokio::spawn(async move {
        // The contents last tried, and whether they were refused.
        let mut tried = Ok(files);
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = tx.closed() => return,
            }
            let read = {
                let paths = paths.clone();
                tokio::task::spawn_blocking(move || Files::read(&paths)).await
            };
            let files = match read {
                Ok(Ok(files)) => files,
                Ok(Err(error)) => {
                    // A file missing or unreadable: warn once per spell.
                    if tried.is_ok() {
                        tracing::warn!(tls = %what, %error, "tls files unreadable, keeping the current configuration");
                    }
                    tried = Err(None);
                    continue;
                }
                Err(_) => continue,
            };
            let unchanged = match &tried {
                Ok(applied) => *applied == files,
                Err(Some(refused)) => *refused == files,
                Err(None) => false,
            };
            if unchanged {
                continue;
            }
            match build(&files) {
                Ok(config) => {
                    tx.send_replace(config);
                    tracing::info!(tls = %what, "tls files changed, new handshakes use them");
                    tried = Ok(files);
                }
                Err(error) => {
                    tracing::warn!(tls = %what, %error, "tls files changed but are not usable, keeping the current configuration");
                    tried = Err(Some(files));
                }
            }
        }
    });
    Ok(Reloading { current })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tls::{ClientAuth, DevPki, server_config};
    use rustls_pki_types::ServerName;

    fn server_watch(pki: &DevPki, name: &str, every: Duration) -> Reloading<rustls::ServerConfig> {
        let (cert, key, ca) = (pki.cert(name), pki.key(name), pki.ca_cert());
        watch(
            "test",
            vec![cert.clone(), key.clone(), ca.clone()],
            every,
            move |files| {
                server_config(
                    &files.identity(&cert, &key)?,
                    files.trust_anchors(&[&ca])?,
                    ClientAuth::Required,
                )
            },
        )
        .unwrap()
    }

    async fn until_changed<T>(reloading: &Reloading<T>, from: &Arc<T>) -> Arc<T> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = reloading.current();
            if !Arc::ptr_eq(&now, from) {
                return now;
            }
            assert!(tokio::time::Instant::now() < deadline, "no reload");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn a_certificate_with_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::at(dir.path());
        pki.ensure(&["svc", "other"]).unwrap();
        let files = Files::read(&[pki.cert("svc"), pki.key("other"), pki.ca_cert()]).unwrap();
        let identity = files.identity(&pki.cert("svc"), &pki.key("other")).unwrap();
        let roots = files.trust_anchors(&[&pki.ca_cert()]).unwrap();
        let error = server_config(&identity, roots, ClientAuth::Required).unwrap_err();
        assert!(
            matches!(error, TlsError::Rustls(rustls::Error::InconsistentKeys(_))),
            "{error}"
        );
    }

    #[tokio::test]
    async fn changed_files_replace_the_configuration_once_they_make_a_pair() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::at(dir.path());
        pki.ensure(&["svc", "other"]).unwrap();
        let reloading = server_watch(&pki, "svc", Duration::from_millis(20));
        let first = reloading.current();
        // The key first (a pair caught half-swapped is refused), then its certificate.
        std::fs::copy(pki.key("other"), pki.key("svc")).unwrap();
        std::fs::copy(pki.cert("other"), pki.cert("svc")).unwrap();
        let second = until_changed(&reloading, &first).await;
        assert!(!Arc::ptr_eq(&first, &second));
    }

    #[tokio::test]
    async fn a_new_connection_presents_the_new_client_identity() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::at(dir.path());
        pki.ensure(&["server", "client", "renewed"]).unwrap();
        let server = server_config(
            &pki.identity("server").unwrap(),
            pki.trust_anchors().unwrap(),
            ClientAuth::Required,
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen_tx, mut seen) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
                    let _ = seen_tx.send(leaf).await;
                }
            }
        });
        let (cert, key, ca) = (pki.cert("client"), pki.key("client"), pki.ca_cert());
        let client = watch(
            "test client",
            vec![cert.clone(), key.clone(), ca.clone()],
            Duration::from_millis(20),
            move |files| {
                crate::tls::client_config(
                    files.trust_anchors(&[&ca])?,
                    Some(&files.identity(&cert, &key)?),
                )
            },
        )
        .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let _open = crate::tls::connect(&addr, &name, &client).await.unwrap();
        let before = std::fs::read(pki.cert("client")).unwrap();
        assert_eq!(seen.recv().await.unwrap(), der(&before));

        let first = client.current();
        std::fs::copy(pki.key("renewed"), pki.key("client")).unwrap();
        std::fs::copy(pki.cert("renewed"), pki.cert("client")).unwrap();
        until_changed(&client, &first).await;
        let _again = crate::tls::connect(&addr, &name, &client).await.unwrap();
        let renewed = std::fs::read(pki.cert("renewed")).unwrap();
        assert_eq!(seen.recv().await.unwrap(), der(&renewed));
    }

    fn der(pem: &[u8]) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem).unwrap().to_vec()
    }

    #[test]
    fn a_broken_key_is_reported_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::at(dir.path());
        pki.ensure(&["svc"]).unwrap();
        let pem = std::fs::read_to_string(pki.key("svc")).unwrap();
        let secret_line = pem.lines().nth(1).unwrap().to_owned();
        std::fs::write(pki.key("svc"), &pem[..pem.len() / 2]).unwrap();
        let files = Files::read(&[pki.cert("svc"), pki.key("svc")]).unwrap();
        let error = files
            .identity(&pki.cert("svc"), &pki.key("svc"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("svc-key.pem"), "{error}");
        assert!(!error.contains(&secret_line[..16]), "{error}");
    }

    #[test]
    fn a_fixed_configuration_stays() {
        let config = Arc::new(5);
        let fixed = Reloading::fixed(Arc::clone(&config));
        assert!(Arc::ptr_eq(&fixed.current(), &config));
        assert!(Arc::ptr_eq(&fixed.clone().current(), &config));
    }
}
