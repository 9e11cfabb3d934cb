//! A minimal NATS client for the simulation.
//!
//! async-nats opens its own tokio sockets, which turmoil cannot carry, so the
//! workload speaks the client protocol itself over any `AsyncRead +
//! AsyncWrite`. It does request/reply only: one wildcard inbox subscription
//! (`_INBOX.<name>.*`), each request waiting for the reply addressed to its
//! own token. Nothing here reads the wall clock, starts threads, draws random
//! numbers or iterates a hash map, so a seeded simulation replays exactly;
//! timeouts follow tokio's (simulated) clock.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Longest control line accepted from the server.
const MAX_CONTROL_LINE: usize = 64 * 1024;
/// Largest message (headers and payload) accepted from the server.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
const PONG: &[u8] = b"PONG\r\n";

/// A message delivered to the client: a reply to one of its requests, or
/// a message for one of its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub subject: String,
    /// The subscription it was delivered for (`1`: the inbox).
    pub sid: String,
    /// Its reply subject (a JetStream delivery's ack subject), if any.
    pub reply: Option<String>,
    /// Header fields in the order they arrived; a key may repeat.
    pub headers: Vec<(String, String)>,
    /// The code of a `NATS/1.0 503` style status line.
    pub status: Option<u16>,
    /// The text after the status code (`No Messages`), if any.
    pub description: Option<String>,
    pub payload: Bytes,
}

impl Msg {
    /// The first value of header `key`, compared case-insensitively.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// No reply within the timeout; the request may still have taken effect.
    Timeout,
    /// The server answered with status 503: nobody is subscribed to the subject.
    NoResponders,
    /// The connection is gone (before or while waiting for the reply).
    Closed,
    /// The request could not be written: an invalid subject or header.
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

/// Requests waiting for their reply, by token; `None` once the connection is
/// gone, so that closing and registering a request cannot race.
type Pending = Mutex<Option<BTreeMap<u64, oneshot::Sender<Msg>>>>;

fn lock(pending: &Pending) -> MutexGuard<'_, Option<BTreeMap<u64, oneshot::Sender<Msg>>>> {
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks the connection closed; dropping the senders fails every waiting
/// request with [`RequestError::Closed`].
fn close(pending: &Pending) {
    let waiters = lock(pending).take();
    drop(waiters);
}

/// A connected client. Dropping it closes the connection.
///
/// Frames go to one writer task, so each reaches the socket whole even when
/// the request that queued it is cancelled; one reader task routes replies.
pub struct Client {
    /// `_INBOX.<name>.`; a request's reply subject is this plus its token.
    inbox: String,
    next: AtomicU64,
    out: mpsc::UnboundedSender<Bytes>,
    pending: Arc<Pending>,
    subs: Arc<Subs>,
    next_sid: AtomicU64,
}

/// Subscriptions other than the inbox, by sid.
type Subs = Mutex<BTreeMap<String, mpsc::UnboundedSender<Msg>>>;

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("inbox", &self.inbox)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Connects over `io`: reads the server's INFO, sends CONNECT and PING,
/// waits for PONG, then subscribes to the inbox `_INBOX.<name>.*`.
///
/// `name` must be a non-empty subject token without wildcards. A `-ERR`
/// before the PONG, or anything but INFO first, is an error.
pub async fn connect<S>(io: S, name: &str) -> io::Result<Client>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if !is_wire_safe(name) || name.contains(['*', '>']) {
        return Err(invalid(format!("invalid client name {name:?}")));
    }
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    match read_op(&mut rd, &mut buf).await? {
        ServerOp::Info => {}
        other => return Err(invalid(format!("expected INFO, got {other:?}"))),
    }
    let options = serde_json::json!({
        "verbose": false, "pedantic": false, "headers": true, "no_responders": true,
        "echo": true, "name": name, "lang": "rust-sim", "version": "0.1.0", "protocol": 1,
    });
    wr.write_all(format!("CONNECT {options}\r\nPING\r\n").as_bytes())
        .await?;
    wr.flush().await?;
    loop {
        match read_op(&mut rd, &mut buf).await? {
            ServerOp::Pong => break,
            ServerOp::Ping => wr.write_all(PONG).await?,
            ServerOp::Err(e) => {
                return Err(io::Error::other(format!("server refused connection: {e}")));
            }
            ServerOp::Info | ServerOp::Ok | ServerOp::Msg(_) => {}
        }
    }
    let inbox = format!("_INBOX.{name}.");
    wr.write_all(format!("SUB {inbox}* 1\r\n").as_bytes())
        .await?;
    wr.flush().await?;

    let pending: Arc<Pending> = Arc::new(Mutex::new(Some(BTreeMap::new())));
    let (out, frames) = mpsc::unbounded_channel();
    // Each task holds a sender the other watches: whichever ends first
    // (EOF, error, or the Client dropped) ends the other.
    let (writer_alive, writer_gone) = oneshot::channel::<()>();
    let (reader_alive, reader_gone) = oneshot::channel::<()>();
    let writer_pending = pending.clone();
    tokio::spawn(async move {
        if let Err(e) = write_loop(wr, frames, reader_gone).await {
            tracing::debug!(error = %e, "nats client write failed");
        }
        close(&writer_pending);
        drop(writer_alive);
    });
    let subs: Arc<Subs> = Arc::default();
    let reader = Reader {
        inbox: inbox.clone(),
        pending: pending.clone(),
        subs: subs.clone(),
        out: out.downgrade(),
    };
    tokio::spawn(async move {
        match reader.run(rd, buf, writer_gone).await {
            Ok(()) => tracing::debug!(inbox = %reader.inbox, "nats client closed"),
            Err(e) => {
                tracing::debug!(inbox = %reader.inbox, error = %e, "nats client connection lost")
            }
        }
        close(&reader.pending);
        drop(reader_alive);
    });
    Ok(Client {
        inbox,
        next: AtomicU64::new(1),
        out,
        pending,
        subs,
        next_sid: AtomicU64::new(2),
    })
}

impl Client {
    /// True once the connection is gone; every request then fails with
    /// [`RequestError::Closed`].
    pub fn is_closed(&self) -> bool {
        lock(&self.pending).is_none()
    }

    /// Subscribes to `subject` (in `queue`, if any): its messages arrive on
    /// the returned channel, in the order the server sent them, until the
    /// connection closes.
    pub fn subscribe(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<mpsc::UnboundedReceiver<Msg>, RequestError> {
        if !is_wire_safe(subject) || queue.is_some_and(|q| !is_wire_safe(q)) {
            return Err(RequestError::Io(format!(
                "invalid subscription {subject:?}"
            )));
        }
        let sid = self.next_sid.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        self.subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sid.clone(), tx);
        let line = match queue {
            Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
            None => format!("SUB {subject} {sid}\r\n"),
        };
        self.out
            .send(Bytes::from(line))
            .map_err(|_| RequestError::Closed)?;
        Ok(rx)
    }

    /// Publishes `payload` to `subject`, expecting nothing back.
    pub fn publish(&self, subject: &str, payload: &[u8]) -> Result<(), RequestError> {
        self.publish_with_reply(subject, "", payload)
    }

    /// Publishes `payload` to `subject` with `reply` as its reply subject
    /// (a pull request whose messages go to one of this client's
    /// subscriptions).
    pub fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: &[u8],
    ) -> Result<(), RequestError> {
        let frame = encode_pub(subject, reply, &[], payload).map_err(RequestError::Io)?;
        self.out.send(frame).map_err(|_| RequestError::Closed)
    }

    /// Publishes `payload` to `subject` (with `headers`, if any) and waits up
    /// to `timeout` for the reply. A 503 status reply is
    /// [`RequestError::NoResponders`]; other status replies are returned.
    pub async fn request(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Msg, RequestError> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let reply = format!("{}{token}", self.inbox);
        let frame = encode_pub(subject, &reply, headers, payload).map_err(RequestError::Io)?;
        let (tx, rx) = oneshot::channel();
        match lock(&self.pending).as_mut() {
            Some(waiters) => waiters.insert(token, tx),
            None => return Err(RequestError::Closed),
        };
        let _waiting = Waiting {
            pending: &self.pending,
            token,
        };
        self.out.send(frame).map_err(|_| RequestError::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(RequestError::Timeout),
            Ok(Err(_)) => Err(RequestError::Closed),
            Ok(Ok(msg)) if msg.status == Some(503) => Err(RequestError::NoResponders),
            Ok(Ok(msg)) => Ok(msg),
        }
    }
}

/// Forgets a request's waiter when the request ends, however it ends.
struct Waiting<'a> {
    pending: &'a Pending,
    token: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(waiters) = lock(self.pending).as_mut() {
            waiters.remove(&self.token);
        }
    }
}

/// Writes queued frames until the Client is dropped or the reader ends.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
    mut reader_gone: oneshot::Receiver<()>,
) -> io::Result<()> {
    loop {
        let frame = tokio::select! {
            biased;
            frame = frames.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
            _ = &mut reader_gone => break,
        };
        wr.write_all(&frame).await?;
        wr.flush().await?;
    }
    wr.shutdown().await
}

/// The reader task's state.
struct Reader {
    inbox: String,
    pending: Arc<Pending>,
    subs: Arc<Subs>,
    /// Weak, so that dropping the Client ends the writer.
    out: mpsc::WeakUnboundedSender<Bytes>,
}

impl Reader {
    /// Routes replies to their requests and answers PING, until EOF, a
    /// protocol error, or the writer ends.
    async fn run<R: AsyncRead + Unpin>(
        &self,
        mut rd: R,
        mut buf: BytesMut,
        mut writer_gone: oneshot::Receiver<()>,
    ) -> io::Result<()> {
        loop {
            // read_op keeps all its state in `buf`, so it is cancel-safe.
            let op = tokio::select! {
                biased;
                _ = &mut writer_gone => return Ok(()),
                op = read_op(&mut rd, &mut buf) => op?,
            };
            match op {
                ServerOp::Msg(msg) => self.route(msg),
                ServerOp::Ping => {
                    if let Some(out) = self.out.upgrade() {
                        let _ = out.send(Bytes::from_static(PONG));
                    }
                }
                ServerOp::Err(e) => {
                    tracing::warn!(inbox = %self.inbox, error = %e, "server sent -ERR")
                }
                ServerOp::Info | ServerOp::Pong | ServerOp::Ok => {}
            }
        }
    }

    fn route(&self, msg: Msg) {
        if msg.sid != "1" {
            let subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(tx) = subs.get(&msg.sid) {
                let _ = tx.send(msg);
            }
            return;
        }
        let token = msg
            .subject
            .strip_prefix(self.inbox.as_str())
            .and_then(|t| t.parse::<u64>().ok());
        let waiter = token.and_then(|t| lock(&self.pending).as_mut()?.remove(&t));
        match waiter {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => tracing::trace!(subject = %msg.subject, "reply nobody waits for"),
        }
    }
}

/// One operation from the server.
#[derive(Debug, PartialEq, Eq)]
enum ServerOp {
    Info,
    Msg(Msg),
    Ping,
    Pong,
    Ok,
    Err(String),
}

/// A parsed control line.
enum Control {
    Op(ServerOp),
    /// `MSG`/`HMSG`: `total` bytes follow, the first `header_len` of them headers.
    Msg {
        subject: String,
        sid: String,
        reply: Option<String>,
        header_len: Option<usize>,
        total: usize,
    },
}

/// Reads until `buf` holds a whole operation and takes it off.
async fn read_op<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> io::Result<ServerOp> {
    loop {
        if let Some(op) = next_op(buf)? {
            return Ok(op);
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Takes the next whole operation off the front of `buf`; `None` (leaving
/// `buf` as it is) while the operation is incomplete.
fn next_op(buf: &mut BytesMut) -> io::Result<Option<ServerOp>> {
    let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_CONTROL_LINE {
            return Err(invalid("control line too long".into()));
        }
        return Ok(None);
    };
    let line = buf[..eol].strip_suffix(b"\r").unwrap_or(&buf[..eol]);
    let line = std::str::from_utf8(line).map_err(|_| invalid("control line not UTF-8".into()))?;
    let control = parse_control(line)?;
    let head = eol + 1;
    match control {
        Control::Op(op) => {
            buf.advance(head);
            Ok(Some(op))
        }
        Control::Msg {
            subject,
            sid,
            reply,
            header_len,
            total,
        } => {
            if buf.len() < head + total + 2 {
                return Ok(None);
            }
            buf.advance(head);
            let mut body = buf.split_to(total).freeze();
            if !buf.starts_with(b"\r\n") {
                return Err(invalid(format!("message to {subject} not ended by CRLF")));
            }
            buf.advance(2);
            let (status, description, headers) = match header_len {
                Some(n) => parse_headers(&body.split_to(n))?,
                None => (None, None, Vec::new()),
            };
            Ok(Some(ServerOp::Msg(Msg {
                subject,
                sid,
                reply,
                headers,
                status,
                description,
                payload: body,
            })))
        }
    }
}

fn parse_control(line: &str) -> io::Result<Control> {
    let mut words = line.split_ascii_whitespace();
    let verb = words.next().unwrap_or_default().to_ascii_uppercase();
    let args: Vec<&str> = words.collect();
    let malformed = || invalid(format!("malformed {verb}: {line:?}"));
    let size = |s: &str| match s.parse::<usize>() {
        Ok(n) if n <= MAX_MESSAGE => Ok(n),
        _ => Err(invalid(format!("bad size in {line:?}"))),
    };
    let control = match verb.as_str() {
        "MSG" => {
            let (subject, sid, reply, n) = match args.as_slice() {
                [subject, sid, n] => (subject, sid, None, n),
                [subject, sid, reply, n] => (subject, sid, Some(reply.to_string()), n),
                _ => return Err(malformed()),
            };
            Control::Msg {
                subject: (*subject).to_string(),
                sid: (*sid).to_string(),
                reply,
                header_len: None,
                total: size(n)?,
            }
        }
        "HMSG" => {
            let (subject, sid, reply, h, n) = match args.as_slice() {
                [subject, sid, h, n] => (subject, sid, None, h, n),
                [subject, sid, reply, h, n] => (subject, sid, Some(reply.to_string()), h, n),
                _ => return Err(malformed()),
            };
            let (h, n) = (size(h)?, size(n)?);
            if h > n {
                return Err(malformed());
            }
            Control::Msg {
                subject: (*subject).to_string(),
                sid: (*sid).to_string(),
                reply,
                header_len: Some(h),
                total: n,
            }
        }
        "INFO" => Control::Op(ServerOp::Info),
        "PING" => Control::Op(ServerOp::Ping),
        "PONG" => Control::Op(ServerOp::Pong),
        "+OK" => Control::Op(ServerOp::Ok),
        "-ERR" => {
            let text = line.get(4..).unwrap_or_default().trim();
            Control::Op(ServerOp::Err(text.trim_matches('\'').to_string()))
        }
        _ => return Err(invalid(format!("unknown operation {line:?}"))),
    };
    Ok(control)
}

/// A header block's status code, description and fields.
type Headers = (Option<u16>, Option<String>, Vec<(String, String)>);

/// Splits a header block: `NATS/1.0[ code[ description]]`, then `Key: Value`
/// lines, then an empty line.
fn parse_headers(block: &[u8]) -> io::Result<Headers> {
    let text = String::from_utf8_lossy(block);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let Some(rest) = first.strip_prefix("NATS/1.0") else {
        return Err(invalid(format!("header block starts {first:?}")));
    };
    let rest = rest.trim();
    let (mut status, mut description) = (None, None);
    if !rest.is_empty() {
        let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code
            .parse::<u16>()
            .map_err(|_| invalid(format!("bad status line {first:?}")))?;
        status = Some(code);
        description = Some(text.trim().to_string()).filter(|d| !d.is_empty());
    }
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once(':') else {
            return Err(invalid(format!("bad header line {line:?}")));
        };
        headers.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok((status, description, headers))
}

/// Builds one `PUB` or `HPUB` frame.
fn encode_pub(
    subject: &str,
    reply: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> Result<Bytes, String> {
    if !is_wire_safe(subject) {
        return Err(format!("invalid subject {subject:?}"));
    }
    let mut frame = BytesMut::with_capacity(subject.len() + reply.len() + payload.len() + 64);
    if headers.is_empty() && reply.is_empty() {
        let line = format!("PUB {subject} {}\r\n", payload.len());
        frame.extend_from_slice(line.as_bytes());
    } else if headers.is_empty() {
        let line = format!("PUB {subject} {reply} {}\r\n", payload.len());
        frame.extend_from_slice(line.as_bytes());
    } else {
        let mut block = String::from("NATS/1.0\r\n");
        for (key, value) in headers {
            if !is_wire_safe(key) || key.contains(':') || value.contains(['\r', '\n']) {
                return Err(format!("invalid header {key:?}: {value:?}"));
            }
            block.push_str(&format!("{key}: {value}\r\n"));
        }
        block.push_str("\r\n");
        let total = block.len() + payload.len();
        let line = format!("HPUB {subject} {reply} {} {total}\r\n", block.len());
        frame.extend_from_slice(line.as_bytes());
        frame.extend_from_slice(block.as_bytes());
    }
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    Ok(frame.freeze())
}

/// Non-empty, with no whitespace or control characters to break the framing.
fn is_wire_safe(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream};

    const SECOND: Duration = Duration::from_secs(1);

    /// The server end of a duplex pipe, scripted by each test.
    struct Fake(BufReader<DuplexStream>);

    impl Fake {
        /// Reads one line, without its CRLF; "" at EOF. A client that
        /// never sends it fails the test instead of hanging it.
        async fn line(&mut self) -> String {
            let mut line = String::new();
            let read = self.0.read_line(&mut line);
            tokio::time::timeout(5 * SECOND, read)
                .await
                .unwrap()
                .unwrap();
            line.strip_suffix("\r\n").unwrap_or(&line).to_string()
        }

        async fn send(&mut self, bytes: &[u8]) {
            self.0.write_all(bytes).await.unwrap();
            self.0.flush().await.unwrap();
        }

        /// Sends one byte at a time, yielding between, so the client's
        /// reader sees every possible split.
        async fn trickle(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.send(std::slice::from_ref(b)).await;
                tokio::task::yield_now().await;
            }
        }

        /// Reads a PUB or HPUB: its control line's words, header block and payload.
        async fn publish(&mut self) -> (Vec<String>, Vec<u8>, Vec<u8>) {
            let line = self.line().await;
            let words: Vec<String> = line.split(' ').map(str::to_string).collect();
            let (hdr, total) = match words[0].as_str() {
                "PUB" => (0, words[3].parse::<usize>().unwrap()),
                "HPUB" => (words[3].parse().unwrap(), words[4].parse().unwrap()),
                other => panic!("expected a publish, got {other}"),
            };
            let mut body = vec![0; total + 2];
            let read = self.0.read_exact(&mut body);
            tokio::time::timeout(5 * SECOND, read)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(body.split_off(total), b"\r\n");
            let payload = body.split_off(hdr);
            (words, body, payload)
        }
    }

    fn hmsg(subject: &str, reply: Option<&str>, headers: &str, payload: &str) -> Vec<u8> {
        let reply = reply.map(|r| format!("{r} ")).unwrap_or_default();
        let (h, t) = (headers.len(), headers.len() + payload.len());
        format!("HMSG {subject} 1 {reply}{h} {t}\r\n{headers}{payload}\r\n").into_bytes()
    }

    /// Connects a client named `t` to a fake server that checks the handshake.
    async fn pair() -> (Client, Fake) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = async move {
            let mut s = Fake(BufReader::new(server_io));
            s.send(b"INFO {\"server_id\":\"fake\",\"headers\":true}\r\n")
                .await;
            let connect = s.line().await;
            let json = connect.strip_prefix("CONNECT ").unwrap();
            let opts: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(opts["name"], "t");
            assert_eq!(opts["verbose"], false);
            assert_eq!(opts["headers"], true);
            assert_eq!(opts["no_responders"], true);
            assert_eq!(opts["lang"], "rust-sim");
            assert_eq!(opts["protocol"], 1);
            assert_eq!(s.line().await, "PING");
            s.send(b"PONG\r\n").await;
            assert_eq!(s.line().await, "SUB _INBOX.t.* 1");
            s
        };
        let (client, server) = tokio::join!(connect(client_io, "t"), server);
        (client.unwrap(), server)
    }

    #[tokio::test]
    async fn hpub_gets_hmsg_with_headers() {
        let (c, mut s) = pair().await;
        let headers = [("Nats-Msg-Id", "m1"), ("X-Two", "a b")];
        let (reply, ()) = tokio::join!(c.request("svc.echo", &headers, b"hello", SECOND), async {
            let (words, hdr, payload) = s.publish().await;
            let block = "NATS/1.0\r\nNats-Msg-Id: m1\r\nX-Two: a b\r\n\r\n";
            let (h, t) = (block.len().to_string(), (block.len() + 5).to_string());
            assert_eq!(words, ["HPUB", "svc.echo", "_INBOX.t.1", &h, &t]);
            assert_eq!(hdr, block.as_bytes());
            assert_eq!(payload, b"hello");
            let headers = "NATS/1.0\r\nK: v\r\nMulti: x: y\r\nK: w\r\n\r\n";
            s.send(&hmsg("_INBOX.t.1", None, headers, "world")).await;
        });
        let m = reply.unwrap();
        assert_eq!(m.subject, "_INBOX.t.1");
        assert_eq!(m.status, None);
        assert_eq!(m.description, None);
        let pairs = [("K", "v"), ("Multi", "x: y"), ("K", "w")];
        let expected: Vec<_> = pairs.map(|(k, v)| (k.to_string(), v.to_string())).into();
        assert_eq!(m.headers, expected);
        assert_eq!(m.header("k"), Some("v"));
        assert_eq!(&m.payload[..], b"world");
    }

    #[tokio::test]
    async fn pub_gets_no_responders_and_plain_msg() {
        let (c, mut s) = pair().await;
        let (reply, ()) = tokio::join!(c.request("nobody", &[], b"abc", SECOND), async {
            let (words, hdr, payload) = s.publish().await;
            assert_eq!(words, ["PUB", "nobody", "_INBOX.t.1", "3"]);
            assert!(hdr.is_empty());
            assert_eq!(payload, b"abc");
            let status = "NATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n";
            s.send(&hmsg("_INBOX.t.1", None, status, "")).await;
        });
        assert_eq!(reply, Err(RequestError::NoResponders));

        let (reply, ()) = tokio::join!(c.request("svc", &[], b"", SECOND), async {
            let (words, _, payload) = s.publish().await;
            assert_eq!(words, ["PUB", "svc", "_INBOX.t.2", "0"]);
            assert!(payload.is_empty());
            s.send(b"MSG _INBOX.t.2 1 some.reply 2\r\nok\r\n").await;
        });
        let m = reply.unwrap();
        assert_eq!((m.status, m.headers.len()), (None, 0));
        assert_eq!(&m.payload[..], b"ok");
    }

    #[tokio::test]
    async fn replies_split_into_single_bytes() {
        let (c, mut s) = pair().await;
        let (r1, r2, ()) = tokio::join!(
            c.request("a", &[], b"1", SECOND),
            c.request("b", &[("H", "1")], b"2", SECOND),
            async {
                let (w1, _, _) = s.publish().await;
                let (w2, _, _) = s.publish().await;
                assert_eq!(
                    (w1[2].as_str(), w2[2].as_str()),
                    ("_INBOX.t.1", "_INBOX.t.2")
                );
                let status = "NATS/1.0 404 No Messages\r\nNats-Pending: 0\r\n\r\n";
                let mut script = b"PING\r\n".to_vec();
                script.extend(hmsg("_INBOX.t.2", Some("r.x"), status, "\r\n"));
                script.extend(b"+OK\r\n-ERR 'Permissions Violation'\r\nINFO {}\r\n");
                script.extend(b"MSG _INBOX.t.99 1 3\r\nold\r\n");
                script.extend(b"MSG _INBOX.t.1 1 r.y 4\r\nMSG \r\n");
                s.trickle(&script).await;
                assert_eq!(s.line().await, "PONG");
            }
        );
        let m1 = r1.unwrap();
        assert_eq!(&m1.payload[..], b"MSG ");
        let m2 = r2.unwrap();
        assert_eq!(m2.status, Some(404));
        assert_eq!(m2.description.as_deref(), Some("No Messages"));
        assert_eq!(m2.header("Nats-Pending"), Some("0"));
        assert_eq!(&m2.payload[..], b"\r\n");
        assert!(!c.is_closed());
    }

    #[tokio::test]
    async fn timeout_then_late_reply_is_dropped() {
        let (c, mut s) = pair().await;
        let short = Duration::from_millis(20);
        let (reply, _) = tokio::join!(c.request("slow", &[], b"x", short), s.publish());
        assert_eq!(reply, Err(RequestError::Timeout));
        assert!(lock(&c.pending).as_ref().unwrap().is_empty());
        s.send(b"MSG _INBOX.t.1 1 4\r\nlate\r\n").await;
        let (reply, ()) = tokio::join!(c.request("fast", &[], b"y", SECOND), async {
            let (words, _, _) = s.publish().await;
            assert_eq!(words[2], "_INBOX.t.2");
            s.send(b"MSG _INBOX.t.2 1 5\r\nfresh\r\n").await;
        });
        assert_eq!(&reply.unwrap().payload[..], b"fresh");
    }

    #[tokio::test]
    async fn server_close_fails_pending_and_later_requests() {
        let (c, mut s) = pair().await;
        let (reply, ()) = tokio::join!(c.request("x", &[], b"", SECOND), async {
            s.publish().await;
            drop(s);
        });
        assert_eq!(reply, Err(RequestError::Closed));
        assert!(c.is_closed());
        let again = c.request("x", &[], b"", SECOND).await;
        assert_eq!(again, Err(RequestError::Closed));
    }

    #[tokio::test]
    async fn protocol_error_closes_the_connection() {
        let (c, mut s) = pair().await;
        let (reply, ()) = tokio::join!(c.request("x", &[], b"", SECOND), async {
            s.publish().await;
            s.send(b"MSG _INBOX.t.1 1 2\r\nabXY").await;
        });
        assert_eq!(reply, Err(RequestError::Closed));
        assert!(c.is_closed());
    }

    #[tokio::test]
    async fn dropping_the_client_closes_the_connection() {
        let (c, mut s) = pair().await;
        drop(c);
        assert_eq!(s.line().await, "");
    }

    #[tokio::test]
    async fn err_during_handshake_fails_connect() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let server = async move {
            let mut s = Fake(BufReader::new(server_io));
            s.send(b"INFO {}\r\n").await;
            assert!(s.line().await.starts_with("CONNECT {"));
            assert_eq!(s.line().await, "PING");
            s.send(b"-ERR 'Authorization Violation'\r\n").await;
            s
        };
        let (client, _s) = tokio::join!(connect(client_io, "t"), server);
        let err = client.unwrap_err().to_string();
        assert!(err.contains("Authorization Violation"), "{err}");
    }

    #[tokio::test]
    async fn invalid_input_is_refused() {
        let (io, _server) = tokio::io::duplex(64);
        assert!(connect(io, "a b").await.is_err());
        let (c, _s) = pair().await;
        for (subject, key, value) in [("a b", "K", "v"), ("a", "K:", "v"), ("a", "K", "v\r\n")] {
            let r = c.request(subject, &[(key, value)], b"", SECOND).await;
            assert!(matches!(r, Err(RequestError::Io(_))), "{r:?}");
        }
        assert!(lock(&c.pending).as_ref().unwrap().is_empty());
    }

    #[test]
    fn next_op_waits_for_whole_operations() {
        let input = b"INFO {\"a\":1}\r\nMSG s.1 9 5\r\nhello\r\nHMSG s.2 9 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n";
        let mut whole = BytesMut::from(&input[..]);
        let mut expected = Vec::new();
        while let Some(op) = next_op(&mut whole).unwrap() {
            expected.push(op);
        }
        assert!(whole.is_empty());
        assert_eq!(expected.len(), 4);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in input {
            buf.extend_from_slice(&[*b]);
            while let Some(op) = next_op(&mut buf).unwrap() {
                got.push(op);
            }
        }
        assert_eq!(got, expected);
        let ServerOp::Msg(m) = &got[2] else {
            panic!("{:?}", got[2])
        };
        assert_eq!((m.subject.as_str(), &m.payload[..]), ("s.2", &b"hi"[..]));
        for bad in [
            &b"HMSG a 1 5 3\r\n"[..],
            b"BOGUS\r\n",
            b"MSG a 1 x\r\n",
            b"MSG a 1 2\r\nabXY",
        ] {
            assert!(next_op(&mut BytesMut::from(bad)).is_err(), "{bad:?}");
        }
    }
}
