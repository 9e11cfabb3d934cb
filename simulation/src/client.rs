//! A minimal NATS client for the simulation: async-nats opens its own tokio
//! sockets, which turmoil cannot carry, so the workload speaks the protocol
//! itself over any `AsyncRead + AsyncWrite`. Request/reply only: one
//! wildcard inbox subscription, each request waiting for its own token.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::{mpsc, oneshot};

/// A message delivered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub subject: String,
    pub headers: Vec<(String, String)>,
    /// The status code of a `NATS/1.0 503` style header line.
    pub status: Option<u16>,
    pub description: Option<String>,
    pub payload: Bytes,
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    Timeout,
    /// The server answered 503: nobody is subscribed to the subject.
    NoResponders,
    /// The connection is gone.
    Closed,
    Io(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Timeout => f.write_str("request timed out"),
            RequestError::NoResponders => f.write_str("no responders"),
            RequestError::Closed => f.write_str("connection closed"),
            RequestError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for RequestError {}

type Waiters = Arc<Mutex<BTreeMap<u64, oneshot::Sender<Msg>>>>;

/// A connected client. Every write (requests, PONGs) goes through one
/// writer task, so each frame reaches the socket whole.
pub struct Client {
    inbox: String,
    next: AtomicU64,
    out: mpsc::UnboundedSender<Bytes>,
    waiters: Waiters,
    closed: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads one `\r\n`-terminated line (without the terminator).
async fn read_line<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut) -> io::Result<String> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(i + 2);
            return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        if r.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Reads exactly `n` bytes followed by `\r\n`.
async fn read_block<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    n: usize,
) -> io::Result<Bytes> {
    while buf.len() < n + 2 {
        if r.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    let block = buf.split_to(n).freeze();
    buf.advance(2);
    Ok(block)
}

/// Splits a `NATS/1.0 [code [description]]` header block.
fn parse_headers(block: &[u8]) -> (Option<u16>, Option<String>, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(block);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut status = None;
    let mut description = None;
    if let Some(rest) = first.strip_prefix("NATS/1.0") {
        let rest = rest.trim();
        if !rest.is_empty() {
            let (code, desc) = rest.split_once(' ').unwrap_or((rest, ""));
            status = code.parse().ok();
            if !desc.trim().is_empty() {
                description = Some(desc.trim().to_string());
            }
        }
    }
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, description, headers)
}

/// Connects: reads INFO, sends CONNECT and PING, waits for PONG, then
/// subscribes to the client's inbox.
pub async fn connect<S>(io: S, name: &str) -> io::Result<Client>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(io);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let info = read_line(&mut r, &mut buf).await?;
    if !info.starts_with("INFO ") {
        return Err(io::Error::other(format!("expected INFO, got {info:?}")));
    }
    let connect = serde_json::json!({
        "verbose": false, "pedantic": false, "headers": true, "no_responders": true,
        "echo": true, "name": name, "lang": "rust-sim", "version": "0.1.0", "protocol": 1,
    });
    let inbox = format!("_INBOX.{name}");
    w.write_all(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())
        .await?;
    loop {
        let line = read_line(&mut r, &mut buf).await?;
        match line.as_str() {
            "PONG" => break,
            "PING" => w.write_all(b"PONG\r\n").await?,
            l if l.starts_with("-ERR") => return Err(io::Error::other(l.to_string())),
            _ => {}
        }
    }
    w.write_all(format!("SUB {inbox}.* 1\r\n").as_bytes())
        .await?;
    let waiters: Waiters = Arc::default();
    let closed = Arc::new(AtomicBool::new(false));
    let (out, mut frames) = mpsc::unbounded_channel::<Bytes>();
    let writer_closed = closed.clone();
    tokio::spawn(async move {
        while let Some(frame) = frames.recv().await {
            if w.write_all(&frame).await.is_err() {
                break;
            }
        }
        writer_closed.store(true, Ordering::Relaxed);
    });
    let reader_waiters = waiters.clone();
    let reader_closed = closed.clone();
    let pong = out.clone();
    tokio::spawn(async move {
        let _ = read_loop(r, buf, &reader_waiters, pong).await;
        reader_closed.store(true, Ordering::Relaxed);
        // Dropping the senders fails every pending request with Closed.
        lock(&reader_waiters).clear();
    });
    Ok(Client {
        inbox,
        next: AtomicU64::new(1),
        out,
        waiters,
        closed,
    })
}

/// Delivers inbox messages to their waiting requests; answers PING.
async fn read_loop<S: AsyncRead>(
    mut r: ReadHalf<S>,
    mut buf: BytesMut,
    waiters: &Waiters,
    out: mpsc::UnboundedSender<Bytes>,
) -> io::Result<()> {
    loop {
        let line = read_line(&mut r, &mut buf).await?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let msg = match parts.first().copied() {
            Some("MSG") if parts.len() >= 4 => {
                let n: usize = parts[parts.len() - 1].parse().map_err(io::Error::other)?;
                let payload = read_block(&mut r, &mut buf, n).await?;
                Msg {
                    subject: parts[1].to_string(),
                    headers: Vec::new(),
                    status: None,
                    description: None,
                    payload,
                }
            }
            Some("HMSG") if parts.len() >= 5 => {
                let hdr: usize = parts[parts.len() - 2].parse().map_err(io::Error::other)?;
                let total: usize = parts[parts.len() - 1].parse().map_err(io::Error::other)?;
                let mut block = read_block(&mut r, &mut buf, total).await?;
                if hdr > total {
                    return Err(io::Error::other("header length past message end"));
                }
                let head = block.split_to(hdr);
                let (status, description, headers) = parse_headers(&head);
                Msg {
                    subject: parts[1].to_string(),
                    headers,
                    status,
                    description,
                    payload: block,
                }
            }
            Some("PING") => {
                let _ = out.send(Bytes::from_static(b"PONG\r\n"));
                continue;
            }
            Some("-ERR") => return Err(io::Error::other(line)),
            _ => continue,
        };
        let token = msg.subject.rsplit('.').next().and_then(|t| t.parse().ok());
        if let Some(tx) = token.and_then(|t: u64| lock(waiters).remove(&t)) {
            let _ = tx.send(msg);
        }
    }
}

impl Client {
    /// True once the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Publishes `payload` (with `headers`, if any) to `subject` and waits
    /// up to `timeout` for the reply.
    pub async fn request(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Msg, RequestError> {
        if self.is_closed() {
            return Err(RequestError::Closed);
        }
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let reply = format!("{}.{token}", self.inbox);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(token, tx);
        let mut frame = Vec::with_capacity(payload.len() + 128);
        if headers.is_empty() {
            frame.extend_from_slice(
                format!("PUB {subject} {reply} {}\r\n", payload.len()).as_bytes(),
            );
        } else {
            let mut block = String::from("NATS/1.0\r\n");
            for (k, v) in headers {
                block.push_str(&format!("{k}: {v}\r\n"));
            }
            block.push_str("\r\n");
            frame.extend_from_slice(
                format!(
                    "HPUB {subject} {reply} {} {}\r\n",
                    block.len(),
                    block.len() + payload.len()
                )
                .as_bytes(),
            );
            frame.extend_from_slice(block.as_bytes());
        }
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        if self.out.send(Bytes::from(frame)).is_err() {
            lock(&self.waiters).remove(&token);
            return Err(RequestError::Closed);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(m)) if m.status == Some(503) => Err(RequestError::NoResponders),
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(RequestError::Closed),
            Err(_) => {
                lock(&self.waiters).remove(&token);
                Err(RequestError::Timeout)
            }
        }
    }
}
