//! Test harness: real `jetraft server` processes on loopback, on free ports,
//! killed when the harness is dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct NodeProc {
    pub name: String,
    pub client_port: u16,
    pub cluster_port: u16,
    pub http_port: u16,
    pub data_dir: PathBuf,
    pub child: Option<Child>,
    peers: String,
    extra: Vec<String>,
    /// Extra environment variables for the next `start`.
    pub env: Vec<(String, String)>,
}

impl NodeProc {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let log = std::fs::File::create(self.data_dir.with_extension("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_jetraft"))
            .arg("server")
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.client_port)])
            .args([
                "--cluster-listen",
                &format!("127.0.0.1:{}", self.cluster_port),
            ])
            .args(["--http-listen", &format!("127.0.0.1:{}", self.http_port)])
            .args(["--peers", &self.peers])
            .args(&self.extra)
            .env("RUST_LOG", "info,openraft=warn")
            .envs(self.env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The exit status, if the process has exited on its own.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok()?
    }

    fn http_port_open(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.http_port)).is_ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    pub async fn http_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.http_port, path).await
    }

    /// One stream's replica on this node as `/jsz` shows it; `None` when
    /// the node hosts none or does not answer (yet).
    pub async fn stream_replica(&self, stream: &str) -> Option<serde_json::Value> {
        let (status, body) = self.http_get("/jsz").await?;
        if status != 200 {
            return None;
        }
        let jsz: serde_json::Value = serde_json::from_str(&body).ok()?;
        jsz["streams"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == stream)
            .cloned()
    }

    /// This node's route to `peer` as `/routez` shows it (None while the
    /// node does not answer).
    pub async fn route_to(&self, peer: &str) -> Option<serde_json::Value> {
        let (status, body) = self.http_get("/routez").await?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["routes"]
            .as_array()?
            .iter()
            .find(|r| r["remote_name"] == peer)
            .cloned()
    }

    pub async fn jsz(&self) -> serde_json::Value {
        let (status, body) = self.http_get("/jsz").await.expect("jsz reachable");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
}

impl Drop for Cluster {
    /// A failing test shows the end of every node's log.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!("---- {} log (last lines) ----", n.name);
                for line in log_tail(&n.log(), 60) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Cluster {
    /// Starts `n` nodes and waits until every one reports healthy. A port
    /// picked as free can be taken by another test before the node binds
    /// it; then the whole cluster starts again on fresh ports.
    pub async fn start(n: usize, extra: &[&str]) -> Cluster {
        for _ in 0..4 {
            let c = Self::spawn(n, extra);
            if c.lost_a_port_race().await {
                eprintln!("a port was taken before a node bound it; starting again on new ports");
                continue;
            }
            c.wait_healthy(Duration::from_secs(30)).await;
            return c;
        }
        panic!("could not start a cluster on free ports");
    }

    fn spawn(n: usize, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<NodeProc> = (1..=n)
            .map(|i| NodeProc {
                name: format!("n{i}"),
                client_port: free_port(),
                cluster_port: free_port(),
                http_port: free_port(),
                data_dir: dir.path().join(format!("n{i}")),
                child: None,
                peers: String::new(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
                env: Vec::new(),
            })
            .collect();
        let peers = nodes
            .iter()
            .map(|p| format!("{}=127.0.0.1:{}", p.name, p.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        for node in &mut nodes {
            node.peers = peers.clone();
            node.start();
        }
        Cluster { dir, nodes }
    }

    /// True if a node exited at startup because its address was in use.
    async fn lost_a_port_race(&self) -> bool {
        for _ in 0..20 {
            if self
                .nodes
                .iter()
                .any(|n| n.log().contains("Address already in use"))
            {
                return true;
            }
            if self.nodes.iter().all(|n| n.http_port_open()) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Index of the node leading `stream`, from the nodes' own `/jsz`.
    pub async fn leader_of(&self, stream: &str) -> Option<usize> {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let jsz = node.jsz().await;
            for s in jsz["streams"].as_array()? {
                if s["name"] == stream && s["role"] == "leader" {
                    return self.nodes.iter().position(|n| n.name == node.name);
                }
            }
        }
        None
    }

    pub async fn wait_healthy(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            loop {
                if let Some((200, _)) = node.http_get("/healthz").await {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    panic!(
                        "{} not healthy in {within:?}; log:\n{}",
                        node.name,
                        node.log()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NodeProc::url).collect()
    }
}

/// The last `n` lines of a node's log, a run of lines that differ only in
/// their timestamp shown once with its count (a node retrying a dead peer
/// every 150 ms would otherwise fill the tail with one warning).
pub fn log_tail(log: &str, n: usize) -> Vec<String> {
    let body = |l: &str| l.split_once(' ').map_or(l, |(_, rest)| rest).to_string();
    let mut runs: Vec<(String, usize)> = Vec::new();
    for line in log.lines() {
        match runs.last_mut() {
            Some((last, count)) if body(last) == body(line) => {
                *last = line.to_string();
                *count += 1;
            }
            _ => runs.push((line.to_string(), 1)),
        }
    }
    let start = runs.len().saturating_sub(n);
    runs[start..]
        .iter()
        .map(|(l, c)| {
            if *c > 1 {
                format!("{l}  (x{c})")
            } else {
                l.clone()
            }
        })
        .collect()
}

/// A minimal HTTP/1.0 GET (status, body) without pulling an HTTP client in.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).to_string();
        let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .ok()
        .flatten()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Pausing and wiping a node (the lost-disk tests).
impl NodeProc {
    /// SIGSTOP: the process keeps its sockets but answers nothing.
    pub fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("node is running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Copies the node's data directory (an operator's backup of a stopped
    /// node); returns where the copy is.
    pub fn backup(&self) -> std::path::PathBuf {
        assert!(self.child.is_none(), "{} is running", self.name);
        let to = self.data_dir.with_extension("backup");
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(&self.data_dir, &to);
        to
    }

    /// Puts the data directory back from `backup`; the node must be
    /// stopped.
    pub fn restore(&self, backup: &std::path::Path) {
        assert!(self.child.is_none(), "{} is running", self.name);
        std::fs::remove_dir_all(&self.data_dir).unwrap();
        copy_dir(backup, &self.data_dir);
    }

    /// Deletes the node's data directory (a replaced disk); the node must
    /// be stopped.
    pub fn wipe(&self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        std::fs::remove_dir_all(&self.data_dir).unwrap();
    }
}

/// A JetStream context on `url` (retrying the first connect), with a 3 s
/// request timeout.
pub async fn js(url: &str) -> async_nats::jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .unwrap();
    async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(3))
        .build(client)
}
