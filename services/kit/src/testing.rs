//! Fresh databases for tests, created with the real migrations by the caller.

use sea_orm::{ConnectionTrait, Database};

/// The variable naming the PostgreSQL server tests use.
pub const TEST_DATABASE_URL_VAR: &str = "SAMSYN_TEST_DATABASE_URL";

/// The server used when the variable is unset: the local one CI starts.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A URL to a new, empty PostgreSQL schema of its own on the test server.
///
/// Fails (rather than skipping) when the server is unreachable: a test that needs
/// PostgreSQL must run against one.
pub async fn fresh_postgres_url() -> Result<String, sea_orm::DbErr> {
    let base = std::env::var(TEST_DATABASE_URL_VAR)
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(base.as_str()).await?;
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await?;
    admin.close().await?;
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{base}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// A URL to a new SQLite file in `dir`.
pub fn fresh_sqlite_url(dir: &std::path::Path) -> String {
    crate::db::sqlite_url(&dir.join(format!("{}.db", uuid::Uuid::new_v4().simple())))
}

/// A protobuf timestamp at the start of `year` (UTC), inside protobuf's range or not: for
/// tests of the range check. Panics for a year chrono cannot hold (beyond ±262,000).
pub fn new_year(year: i32) -> prost_types::Timestamp {
    let seconds = chrono::NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .expect("a year chrono holds")
        .and_utc()
        .timestamp();
    prost_types::Timestamp { seconds, nanos: 0 }
}

/// A part served for a test: real socket on port 0, real mutual TLS, its own CA.
#[derive(Debug)]
pub struct ServedPart {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// A channel presenting a client certificate from the part's CA.
    pub channel: tonic::transport::Channel,
    /// The TLS configuration of that channel, for tests that open connections themselves.
    pub client_tls: std::sync::Arc<rustls::ClientConfig>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<Result<(), crate::serve::ServeError>>>,
    _certs: tempfile::TempDir,
}

impl ServedPart {
    /// Serves `part` with default limits until the returned value is dropped or stopped.
    pub async fn start(part: crate::serve::Part) -> Self {
        Self::start_with_limits(part, crate::config::Limits::default()).await
    }

    /// Serves `part` with the given limits.
    pub async fn start_with_limits(
        part: crate::serve::Part,
        limits: crate::config::Limits,
    ) -> Self {
        use crate::tls;
        let certs = tempfile::tempdir().expect("a temporary directory");
        let pki = tls::DevPki::at(certs.path());
        pki.ensure(&["server", "client"])
            .expect("test certificates");
        let roots = pki.trust_anchors().expect("test CA");
        let server = tls::server_config(
            &pki.identity("server").expect("server identity"),
            roots.clone(),
            tls::ClientAuth::Required,
        )
        .expect("server tls");
        let client = tls::client_config(roots, Some(&pki.identity("client").expect("client")))
            .expect("client tls");
        let listener = crate::serve::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut ready = part.readiness.subscribe();
        let served = tokio::spawn(async move {
            crate::serve::serve(part, listener, server, &limits, async {
                let _ = stopped.await;
            })
            .await
        });
        // Like the launcher: in use once ready (or once it has had its chance to be).
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            ready.wait_for(|ready| *ready),
        )
        .await;
        let channel = tls::channel(addr, "localhost", client.clone()).expect("client channel");
        Self {
            addr,
            channel,
            client_tls: client,
            stop: Some(stop),
            served: Some(served),
            _certs: certs,
        }
    }

    /// Stops serving and waits until the part has shut down (a restart in tests).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), served).await;
        }
    }
}

impl Drop for ServedPart {
    fn drop(&mut self) {
        if let Some(served) = self.served.take() {
            served.abort();
        }
    }
}
