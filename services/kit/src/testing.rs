//! Fresh databases for tests, created with the real migrations by the caller.

use sea_orm::{ConnectionTrait, Database};

/// The variable naming the PostgreSQL server tests use.
pub const TEST_DATABASE_URL_VAR: &str = "SAMSYN_TEST_DATABASE_URL";

/// The server used when the variable is unset: the local one CI starts.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A URL to a new, empty PostgreSQL schema of its own on the test server.
///
/// The server is the one `SAMSYN_TEST_DATABASE_URL` names (default
/// [`DEFAULT_TEST_DATABASE_URL`]); when nothing listens there, a private throw-away
/// cluster (see [`test_server_url_at`]). Fails (rather than skipping) when neither works: a
/// test that needs PostgreSQL must run against one.
pub async fn fresh_postgres_url() -> Result<String, sea_orm::DbErr> {
    let base = test_server_url().await?;
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

/// The URL of the PostgreSQL server tests use (see [`fresh_postgres_url`]), connecting as a
/// superuser: for tests that make roles of their own.
pub async fn test_server_url() -> Result<String, sea_orm::DbErr> {
    let configured = std::env::var(TEST_DATABASE_URL_VAR)
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    test_server_url_at(&configured).await
}

/// `configured` when a server answers there; else the URL of a private cluster that this
/// process starts once (`initdb` and `pg_ctl` from the PATH, or the newest
/// `/usr/lib/postgresql/<version>/bin`, in a temporary directory, on a free port) and that
/// stops, its files removed, when the process ends.
pub async fn test_server_url_at(configured: &str) -> Result<String, sea_orm::DbErr> {
    if answers(configured).await {
        return Ok(configured.to_owned());
    }
    private::cluster_url().map_err(|reason| {
        sea_orm::DbErr::Custom(format!(
            "no PostgreSQL answers at {configured}, and a private one does not start: {reason}"
        ))
    })
}

/// Whether something accepts TCP connections at the host and port of a `postgres://` URL
/// (a URL this cannot read counts as answering: connecting will say what is wrong).
async fn answers(url: &str) -> bool {
    let Some(authority) = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(rest))
        .map(|authority| authority.rsplit('@').next().unwrap_or(authority))
    else {
        return true;
    };
    let target = if authority.starts_with('[') || authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    let connect = tokio::net::TcpStream::connect(target);
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

/// The private throw-away cluster.
mod private {
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::{Mutex, OnceLock};

    /// Started once per process; its watchdog's stdin is held open until the process ends.
    static CLUSTER: OnceLock<Result<(String, Mutex<ChildStdin>), String>> = OnceLock::new();

    /// The watchdog: starts the server, says `ready`, waits for its stdin to close (the
    /// test process ended, however it ended), then stops the server and removes the files.
    const WATCHDOG: &str = r#"
        dir="$1"; port="$2"; bin="$3"
        "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -s \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300" \
            start || { cat "$dir/log" >&2; exit 1; }
        echo ready
        cat >/dev/null
        "$bin/pg_ctl" -D "$dir/data" -m immediate -w -s stop
        rm -rf "$dir"
    "#;

    pub(super) fn cluster_url() -> Result<String, String> {
        CLUSTER
            .get_or_init(start)
            .as_ref()
            .map(|(url, _)| url.clone())
            .map_err(Clone::clone)
    }

    fn start() -> Result<(String, Mutex<ChildStdin>), String> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("samsyn-test-postgres-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        // initdb refuses to run as root: the cluster then belongs to the `postgres` user.
        let as_root = is_root();
        if as_root {
            run(Command::new("chown").args(["postgres:", &dir.display().to_string()]))?;
        }
        let command = |program: &str| {
            if as_root {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--", program]);
                command
            } else {
                Command::new(program)
            }
        };
        let initdb = bin.join("initdb").display().to_string();
        run(command(&initdb)
            .args(["-D", &dir.join("data").display().to_string()])
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C", "--no-instructions"]))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut watchdog: Child = command("sh")
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(dir.display().to_string())
            .arg(port.to_string())
            .arg(bin.display().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        let stdout = watchdog.stdout.take().ok_or("no watchdog output")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            return Err(format!(
                "pg_ctl start failed (see {})",
                dir.join("log").display()
            ));
        }
        let stdin = watchdog.stdin.take().ok_or("no watchdog input")?;
        Ok((
            format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            Mutex::new(stdin),
        ))
    }

    /// The directory of `initdb` and `pg_ctl`: the PATH's, else Debian's newest.
    fn binaries() -> Result<PathBuf, String> {
        let on_path = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
        if let Some(dir) = on_path {
            return Ok(dir);
        }
        let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
            .unwrap_or_default();
        debian.retain(|dir| dir.join("initdb").is_file());
        debian.sort_by_key(|dir| {
            dir.parent()
                .and_then(Path::file_name)
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
        });
        debian.pop().ok_or_else(|| {
            "initdb and pg_ctl are neither on the PATH nor in /usr/lib/postgresql/*/bin \
             (install PostgreSQL's server package)"
                .to_owned()
        })
    }

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .map(|ids| ids.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
    }

    fn run(command: &mut Command) -> Result<(), String> {
        let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{command:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
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
