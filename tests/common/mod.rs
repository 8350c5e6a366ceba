//! The real `samsyn up` for end-to-end tests: started on free ports, stopped with SIGTERM
//! (and checked to exit cleanly) when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every part `samsyn up` announces, in order.
pub const PARTS: [&str; 6] = [
    "consent",
    "participants",
    "plans",
    "board",
    "reports",
    "gateway",
];

/// The running launcher.
pub struct Up {
    child: Child,
    /// Killed already: nothing to stop or check on drop.
    killed: bool,
    /// Each part and its address, in the order announced.
    pub addrs: Vec<(String, SocketAddr)>,
    /// Each part with a probe listener and its plain-HTTP address.
    pub probes: Vec<(String, SocketAddr)>,
    /// Every line printed up to the last one waited for.
    pub announced: Vec<String>,
}

impl Up {
    /// `samsyn up` on free ports in `data_dir`; returns once every part listens.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[], None)
    }

    /// `samsyn up <args>`; returns once every part listens and, with `until`, a line starting
    /// with it has been printed.
    pub fn start_with(data_dir: &Path, args: &[&str], until: Option<&str>) -> Self {
        Self::start_configured(data_dir, args, until, &[])
    }

    /// As [`Up::start_with`], with extra environment variables.
    pub fn start_configured(
        data_dir: &Path,
        args: &[&str],
        until: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_samsyn"));
        command.arg("up").args(args);
        Self::launch(command, data_dir, PARTS.len(), until, env, None)
    }

    /// `samsyn serve <part>`: one part alone in its own process, its log lines written to
    /// `log`. `env` must name where the other parts listen.
    pub fn serve(data_dir: &Path, part: &str, env: &[(&str, &str)], log: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_samsyn"));
        command.arg("serve").arg(part);
        Self::launch(command, data_dir, 1, None, env, Some(log))
    }

    fn launch(
        mut command: Command,
        data_dir: &Path,
        parts: usize,
        until: Option<&str>,
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Self {
        let started = Instant::now();
        command
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::inherit(),
            });
        for part in PARTS {
            command.env(
                format!("SAMSYN_{}__LISTEN", part.to_uppercase()),
                "127.0.0.1:0",
            );
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("samsyn starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut addrs = Vec::new();
        let mut probes = Vec::new();
        let mut announced = Vec::new();
        let mut waited_for = until.is_none();
        while addrs.len() < parts || !waited_for {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("samsyn announces itself");
            if let Some((part, url)) = line.split_once(" listening on https://") {
                addrs.push((part.to_owned(), url.parse().unwrap()));
            }
            if let Some((part, url)) = line.split_once(" probes on http://") {
                probes.push((part.to_owned(), url.parse().unwrap()));
            }
            waited_for |= until.is_some_and(|u| line.starts_with(u));
            announced.push(line);
        }
        eprintln!("samsyn: ready after {:?}", started.elapsed());
        Self {
            child,
            killed: false,
            addrs,
            probes,
            announced,
        }
    }

    /// The address of `part`.
    pub fn addr(&self, part: &str) -> SocketAddr {
        self.addrs.iter().find(|(p, _)| p == part).unwrap().1
    }

    /// The plain-HTTP probe address of `part`.
    pub fn probe(&self, part: &str) -> SocketAddr {
        self.probes.iter().find(|(p, _)| p == part).unwrap().1
    }

    /// The process id, for stopping it by its id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process without warning (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.killed = true;
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.killed {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().expect("samsyn exits");
        if !std::thread::panicking() {
            assert!(
                status.success(),
                "samsyn up stops cleanly on SIGTERM: {status}"
            );
        }
    }
}

/// The status code of a plain `GET path` on `addr` (HTTP/1.1); `None` when nothing answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let answer = String::from_utf8_lossy(&answer);
        answer.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// Waits until `condition` holds, checking every 50 ms, or fails after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if condition().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port free right now on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const BROWSER_INSTALL: &str = "bash tests/browser/requirements.sh";

/// The browser tools (`tests/browser`), or a failure naming the install command.
pub fn browser_tools() -> PathBuf {
    let browser = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser");
    for tool in ["chromium", "chromedriver"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: run `{BROWSER_INSTALL}`");
    }
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(selenium, "Selenium is missing: run `{BROWSER_INSTALL}`");
    let axe = Path::new(browser).join("node_modules/axe-core/axe.min.js");
    assert!(axe.exists(), "axe-core is missing: run `{BROWSER_INSTALL}`");
    PathBuf::from(browser)
}
