//! Shared by the `api_*` tests: a three-node cluster to run JetStream API
//! scenarios against, and raw request helpers that return the reply JSON so
//! tests can assert nats-server's exact `code`/`err_code`/`description`.
//!
//! `JETRAFT_API_REFERENCE=nats-server` runs the same tests against a real
//! three-node `nats-server` cluster instead: that is how the expected values
//! in these tests were checked (they must pass against both).
#![allow(dead_code, clippy::unwrap_used, clippy::disallowed_methods)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::HeaderMap;
use serde_json::{Value, json};

use crate::common::{Cluster, free_port};

/// How long one API request may take before the test fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Backend {
    Jetraft(Cluster),
    NatsServer {
        _dir: tempfile::TempDir,
        children: Vec<Child>,
    },
}

/// Three nodes of either jetraft or (as a reference) nats-server.
pub struct Env {
    pub backend: Backend,
    pub urls: Vec<String>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Backend::NatsServer { children, .. } = &mut self.backend {
            for c in children {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Env {
    pub async fn start() -> Env {
        let env = if std::env::var("JETRAFT_API_REFERENCE").as_deref() == Ok("nats-server") {
            start_nats_server().await
        } else {
            let c = Cluster::start(3, &[]).await;
            let urls = c.urls();
            Env {
                backend: Backend::Jetraft(c),
                urls,
            }
        };
        for i in 0..env.urls.len() {
            env.wait_js_ready(i).await;
        }
        env
    }

    pub fn is_reference(&self) -> bool {
        matches!(self.backend, Backend::NatsServer { .. })
    }

    pub fn client_port(&self, i: usize) -> u16 {
        self.urls[i].rsplit(':').next().unwrap().parse().unwrap()
    }

    pub async fn client(&self, i: usize) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .connect(&self.urls[i])
            .await
            .unwrap()
    }

    /// Until `$JS.API.INFO` answers without error on node `i`.
    async fn wait_js_ready(&self, i: usize) {
        let client = self.client(i).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let r = tokio::time::timeout(
                Duration::from_secs(2),
                client.request("$JS.API.INFO", bytes::Bytes::new()),
            )
            .await;
            let ready = r
                .ok()
                .and_then(Result::ok)
                .is_some_and(|msg| !is_error(&msg.payload));
            if ready {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "JetStream not ready on node {i}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn start_nats_server() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let routes = nodes
        .iter()
        .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
        .collect::<Vec<_>>()
        .join(",");
    let children = nodes
        .iter()
        .enumerate()
        .map(|(i, (client, cluster))| {
            Command::new("nats-server")
                .args(["-js", "-a", "127.0.0.1", "-p", &client.to_string()])
                .args(["-n", &format!("n{}", i + 1), "--cluster_name", "ref"])
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{cluster}"),
                    "--routes",
                    &routes,
                ])
                .arg("-sd")
                .arg(dir.path().join(format!("n{}", i + 1)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server on PATH")
        })
        .collect();
    let urls = nodes
        .iter()
        .map(|(c, _)| format!("nats://127.0.0.1:{c}"))
        .collect();
    let env = Env {
        backend: Backend::NatsServer {
            _dir: dir,
            children,
        },
        urls,
    };
    // The client ports open before routes and the meta leader exist.
    for i in 0..3 {
        let port = env.client_port(i);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server {i} did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    env
}

/// A JetStream API request; the reply parsed as JSON.
pub async fn api(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    let payload = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    api_raw(client, subject, payload).await
}

/// A request with a literal payload (for malformed JSON and the like).
pub async fn api_raw(
    client: &async_nats::Client,
    subject: &str,
    payload: impl Into<bytes::Bytes>,
) -> Value {
    let msg = client
        .request(subject.to_string(), payload.into())
        .await
        .unwrap_or_else(|e| panic!("request {subject}: {e}"));
    serde_json::from_slice(&msg.payload)
        .unwrap_or_else(|e| panic!("{subject} reply not JSON ({e}): {:?}", msg.payload))
}

/// A publish answered by the stream: the PubAck (or error) JSON.
pub async fn publish(
    client: &async_nats::Client,
    subject: &str,
    headers: &[(&str, &str)],
    payload: &str,
) -> Value {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, *v);
    }
    let msg = client
        .request_with_headers(subject.to_string(), map, payload.to_string().into())
        .await
        .unwrap_or_else(|e| panic!("publish {subject}: {e}"));
    serde_json::from_slice(&msg.payload)
        .unwrap_or_else(|e| panic!("{subject} ack not JSON ({e}): {:?}", msg.payload))
}

/// A publish that must succeed; its sequence.
pub async fn publish_ok(client: &async_nats::Client, subject: &str, payload: &str) -> u64 {
    let ack = publish(client, subject, &[], payload).await;
    assert!(
        ack.get("error").is_none(),
        "publish to {subject} failed: {ack}"
    );
    ack["seq"].as_u64().unwrap()
}

impl Env {
    /// Creates a stream that must be created; the reply JSON. Then waits
    /// until every node can route to the stream's leader: a node whose
    /// replica does not know the new leader yet answers 503/10008 at once
    /// instead of waiting (see `publish_right_after_create_through_every_node`
    /// in api_bad_input.rs, ignored until cluster.rs waits for a leader).
    pub async fn create_stream(&self, client: &async_nats::Client, config: Value) -> Value {
        let name = config["name"].as_str().unwrap().to_string();
        let r = api(client, &format!("$JS.API.STREAM.CREATE.{name}"), config).await;
        assert!(r.get("error").is_none(), "create {name}: {r}");
        for i in 0..self.urls.len() {
            let c = self.client(i).await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let subject = format!("$JS.API.STREAM.INFO.{name}");
            while is_error(
                &c.request(subject.clone(), bytes::Bytes::new())
                    .await
                    .unwrap()
                    .payload,
            ) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name} not reachable via node {i}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        r
    }
}

/// The stream's `state` object from STREAM.INFO.
pub async fn state(client: &async_nats::Client, name: &str) -> Value {
    let r = api(client, &format!("$JS.API.STREAM.INFO.{name}"), Value::Null).await;
    assert!(r.get("error").is_none(), "info {name}: {r}");
    r["state"].clone()
}

/// (messages, first_seq, last_seq) of a stream.
pub async fn counts(client: &async_nats::Client, name: &str) -> (u64, u64, u64) {
    let s = state(client, name).await;
    (
        s["messages"].as_u64().unwrap(),
        s["first_seq"].as_u64().unwrap(),
        s["last_seq"].as_u64().unwrap(),
    )
}

/// `(code, err_code, description)` of an error reply; panics on success.
pub fn error_of(reply: &Value) -> (u64, u64, String) {
    let e = reply
        .get("error")
        .unwrap_or_else(|| panic!("expected an error, got {reply}"));
    (
        e["code"].as_u64().unwrap(),
        e["err_code"].as_u64().unwrap(),
        e["description"].as_str().unwrap_or_default().to_string(),
    )
}

/// A minimal R3 stream config.
pub fn r3(name: &str, subjects: &[&str]) -> Value {
    json!({ "name": name, "subjects": subjects, "num_replicas": 3, "storage": "file" })
}

/// Like [`error_of`], `None` for a success.
pub fn error_of_opt(reply: &Value) -> Option<(u64, u64, String)> {
    reply.get("error").map(|_| error_of(reply))
}

/// Whether a reply is not JSON or carries an `error`.
fn is_error(payload: &[u8]) -> bool {
    serde_json::from_slice::<Value>(payload).map_or(true, |v| v.get("error").is_some())
}
