//! A renewed certificate and trust bundle take effect without a restart: a real `samsyn
//! serve consent` whose TLS files are swapped under it the way the kubelet swaps a mounted
//! Secret (the files are symlinks through `..data`, which is re-pointed atomically). New
//! handshakes present the new certificate and verify clients against the new bundle; a
//! connection opened before keeps answering; a broken replacement leaves the old
//! certificate serving, with a warning that quotes no key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Up, eventually};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use samsyn_kit::tls;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Well beyond the reload interval (100 ms here) and a handshake or two.
const WAIT: Duration = Duration::from_secs(20);

/// A certificate authority of the test.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: rcgen::Issuer::new(params, key),
            pem,
        }
    }

    /// A server-and-client certificate for `localhost` with `serial`: (certificate, key) PEM.
    fn issue(&self, name: &str, serial: &[u8]) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A mounted Secret as the kubelet lays it out: `<name> -> ..data/<name>`, `..data -> ..<n>`.
struct Mounted<'a> {
    dir: &'a Path,
    generation: u32,
}

impl<'a> Mounted<'a> {
    const FILES: [&'static str; 3] = ["ca.crt", "tls.crt", "tls.key"];

    fn new(dir: &'a Path, ca: &str, cert: &str, key: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut mounted = Self { dir, generation: 0 };
        mounted.swap(ca, cert, key);
        for file in Self::FILES {
            std::os::unix::fs::symlink(Path::new("..data").join(file), dir.join(file)).unwrap();
        }
        mounted
    }

    /// Writes a new generation, then re-points `..data` at it in one rename.
    fn swap(&mut self, ca: &str, cert: &str, key: &str) {
        self.generation += 1;
        let generation = format!("..2026_12_05_{:04}", self.generation);
        let target = self.dir.join(&generation);
        std::fs::create_dir(&target).unwrap();
        for (file, contents) in Self::FILES.into_iter().zip([ca, cert, key]) {
            std::fs::write(target.join(file), contents).unwrap();
        }
        let staged = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&generation, &staged).unwrap();
        std::fs::rename(&staged, self.dir.join("..data")).unwrap();
    }
}

/// A client trusting both CAs (whichever issued the server's certificate), presenting `who`.
fn client(cas: &[&Ca], who: &(String, String)) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
            .unwrap();
    }
    let chain = vec![CertificateDer::from_pem_slice(who.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(who.1.as_bytes()).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(Arc::new(roots))
            .with_client_auth_cert(chain, key)
            .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// The serial of the certificate the server presents to a new handshake.
async fn presented_serial(addr: SocketAddr, config: &Arc<ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tls::connect(&addr.to_string(), &name, &Arc::clone(config).into())
        .await
        .unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    parsed.raw_serial().to_vec()
}

/// Whether a call answers on `channel`.
async fn answers(channel: Channel) -> bool {
    let mut health = HealthClient::new(channel);
    let call = health.check(HealthCheckRequest::default());
    matches!(
        tokio::time::timeout(Duration::from_secs(5), call).await,
        Ok(Ok(_))
    )
}

/// Whether a call on a new connection presenting `config`'s certificate answers.
async fn accepted(addr: SocketAddr, config: &Arc<ClientConfig>) -> bool {
    answers(tls::channel(addr, "localhost", Arc::clone(config)).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_takes_renewed_certificates_and_bundles_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old internal CA"), Ca::new("new internal CA"));
    const SERIAL_A: &[u8] = &[0x0a, 0x01];
    const SERIAL_B: &[u8] = &[0x0b, 0x02];
    let server_a = old_ca.issue("consent", SERIAL_A);
    let server_b = new_ca.issue("consent", SERIAL_B);
    let stranger = new_ca.issue("someone else", &[0x0c, 0x03]);
    let old_client = client(&[&old_ca, &new_ca], &old_ca.issue("gateway", &[0x01]));
    let new_client = client(&[&old_ca, &new_ca], &new_ca.issue("gateway", &[0x02]));

    let mounted_at = dir.path().join("tls");
    let mut mounted = Mounted::new(&mounted_at, &old_ca.pem, &server_a.0, &server_a.1);
    let file = |name: &str| mounted_at.join(name).to_str().unwrap().to_owned();
    let (ca, cert, key) = (file("ca.crt"), file("tls.crt"), file("tls.key"));
    let log = dir.path().join("consent.log");
    let consent = Up::serve(
        dir.path(),
        "consent",
        &[
            ("SAMSYN_TLS__CA_CERT", ca.as_str()),
            ("SAMSYN_TLS__CERT", cert.as_str()),
            ("SAMSYN_TLS__KEY", key.as_str()),
            ("SAMSYN_TLS__RELOAD_INTERVAL_MS", "100"),
        ],
        &log,
    );
    let addr = consent.addr("consent");

    // Certificate A, and only the old CA's clients.
    assert_eq!(presented_serial(addr, &old_client).await, SERIAL_A);
    let open = tls::channel(addr, "localhost", Arc::clone(&old_client)).unwrap();
    assert!(answers(open.clone()).await, "the old CA's client is served");
    assert!(
        !accepted(addr, &new_client).await,
        "the new CA is not trusted yet"
    );

    // A broken replacement (B's certificate with another key): A goes on serving.
    mounted.swap(&new_ca.pem, &server_b.0, &stranger.1);
    eventually(WAIT, "a warning about the unusable files", || async {
        std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("tls files changed but are not usable"))
    })
    .await;
    assert_eq!(presented_serial(addr, &old_client).await, SERIAL_A);
    assert!(
        accepted(addr, &old_client).await,
        "the old bundle still holds"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    for secret in [&stranger.1, &server_b.1, &server_a.1] {
        let body = secret.lines().nth(1).unwrap();
        assert!(!logged.contains(body), "key material in the log:\n{logged}");
    }

    // The renewal proper: certificate B, a bundle of the new CA only.
    mounted.swap(&new_ca.pem, &server_b.0, &server_b.1);
    eventually(WAIT, "a new handshake to present certificate B", || async {
        presented_serial(addr, &new_client).await == SERIAL_B
    })
    .await;
    assert!(
        answers(open.clone()).await,
        "the connection opened before the renewal still answers"
    );
    assert!(
        accepted(addr, &new_client).await,
        "a client of the newly trusted CA is accepted"
    );
    assert!(
        !accepted(addr, &old_client).await,
        "a client of the removed CA is refused"
    );
    drop(open);
    drop(consent);
}
