//! Sans-IO incremental parser of client→server operations.
//!
//! Bytes arrive in arbitrary pieces ([`Parser::buffer_mut`] / [`Parser::extend`]);
//! [`Parser::next_op`] yields whole operations. Op names are case-insensitive
//! and rejected as soon as a prefix cannot be one, like nats-server's
//! byte-at-a-time state machine (`server/parser.go`), so a garbage line gets
//! its `-ERR` without waiting for a newline.

use bytes::{Buf, Bytes, BytesMut};

/// nats-server's `MAX_CONTROL_LINE_SIZE`.
pub const MAX_CONTROL_LINE: usize = 4096;

/// One operation a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// `CONNECT <json>`: the raw JSON, parsed by the connection.
    Connect(Bytes),
    /// `PUB` or `HPUB`; `headers` is the raw `NATS/1.0` block for HPUB.
    Pub {
        subject: String,
        reply: Option<String>,
        headers: Option<Bytes>,
        payload: Bytes,
    },
    Sub {
        subject: String,
        queue: Option<String>,
        sid: String,
    },
    /// `UNSUB <sid> [max]`; a `max` that is not a number means "now", as in nats-server.
    Unsub {
        sid: String,
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// `INFO` and `+OK` from a client are accepted and ignored.
    Ignored,
    /// `-ERR` from a client: nats-server closes the connection.
    Err(String),
}

/// A protocol violation. Every one closes the connection; some first send
/// an `-ERR` (see [`ProtoError::err_text`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("unknown protocol operation")]
    UnknownOp,
    #[error("maximum control line exceeded")]
    MaxControlLine,
    #[error("maximum payload violation: {size} > {max}")]
    MaxPayload { size: usize, max: usize },
    /// Malformed arguments of a known op; nats-server closes silently.
    #[error("malformed arguments: {0}")]
    BadArgs(String),
    /// HPUB on a connection that did not negotiate headers; closed silently.
    #[error("message headers not supported")]
    HeadersNotSupported,
}

impl ProtoError {
    /// The `-ERR` text nats-server sends before closing, if any.
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            ProtoError::UnknownOp => Some("Unknown Protocol Operation"),
            ProtoError::MaxControlLine => Some("maximum control line exceeded"),
            ProtoError::MaxPayload { .. } => Some("Maximum Payload Violation"),
            ProtoError::BadArgs(_) | ProtoError::HeadersNotSupported => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Connect,
    Info,
    Ok,
    Err,
}

/// Keyword, kind, and whether whitespace must follow the keyword.
const OPS: [(&[u8], Kind, bool); 10] = [
    (b"PUB", Kind::Pub, true),
    (b"HPUB", Kind::Hpub, true),
    (b"SUB", Kind::Sub, true),
    (b"UNSUB", Kind::Unsub, true),
    (b"PING", Kind::Ping, false),
    (b"PONG", Kind::Pong, false),
    (b"CONNECT", Kind::Connect, false),
    (b"INFO", Kind::Info, false),
    (b"+OK", Kind::Ok, false),
    (b"-ERR", Kind::Err, false),
];

fn keyword_len(kind: Kind) -> usize {
    OPS.iter()
        .find(|(_, k, _)| *k == kind)
        .map_or(0, |(kw, _, _)| kw.len())
}

/// Identifies the op at the start of `line`. `Ok(None)`: a valid prefix, more
/// bytes needed. On success returns the kind and where its arguments start.
fn classify(line: &[u8]) -> Result<Option<(Kind, usize)>, ProtoError> {
    let mut candidate = false;
    for (kw, kind, needs_ws) in OPS {
        let n = kw.len().min(line.len());
        if !line[..n].eq_ignore_ascii_case(&kw[..n]) {
            continue;
        }
        if line.len() < kw.len() {
            candidate = true;
            continue;
        }
        match line.get(kw.len()) {
            None => candidate = true,
            Some(b' ' | b'\t') => {
                let args = kw.len()
                    + line[kw.len()..]
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t'))
                        .count();
                return Ok(Some((kind, args)));
            }
            Some(_) if needs_ws => {}
            Some(_) => return Ok(Some((kind, kw.len()))),
        }
    }
    if candidate {
        Ok(None)
    } else {
        Err(ProtoError::UnknownOp)
    }
}

#[derive(Debug)]
struct PendingPub {
    subject: String,
    reply: Option<String>,
    header_len: Option<usize>,
    total_len: usize,
}

/// The incremental parser. One per connection.
#[derive(Debug)]
pub struct Parser {
    buf: BytesMut,
    pending: Option<PendingPub>,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    max_payload: usize,
    max_control_line: usize,
    headers: bool,
}

impl Parser {
    pub fn new(max_payload: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(16 * 1024),
            pending: None,
            scanned: 0,
            max_payload,
            max_control_line: MAX_CONTROL_LINE,
            headers: false,
        }
    }

    pub fn with_max_control_line(mut self, max: usize) -> Self {
        self.max_control_line = max;
        self
    }

    /// Whether HPUB is allowed (the client's CONNECT said `headers: true`).
    pub fn set_headers(&mut self, allowed: bool) {
        self.headers = allowed;
    }

    /// Where a reader appends incoming bytes.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete operation, `Ok(None)` if more bytes are needed.
    /// After an error the parser's state is unspecified: close the connection.
    pub fn next_op(&mut self) -> Result<Option<ClientOp>, ProtoError> {
        if self.pending.is_some() {
            return self.take_payload();
        }
        let newline = self.buf[self.scanned..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|p| p + self.scanned);
        let Some(nl) = newline else {
            self.scanned = self.buf.len();
            if self.buf.is_empty() {
                return Ok(None);
            }
            // Fail early on garbage and on overlong lines, without a newline.
            // Blanks after the keyword count: they are buffered too, and a
            // client sending only blanks must not be buffered without bound.
            if let Some((kind, _)) = classify(&self.buf)?
                && self.buf.len() - keyword_len(kind) > self.max_control_line
            {
                return Err(ProtoError::MaxControlLine);
            }
            return Ok(None);
        };
        self.scanned = 0;
        let line = self.buf.split_to(nl + 1).freeze();
        let mut content = &line[..nl];
        if content.last() == Some(&b'\r') {
            content = &content[..content.len() - 1];
        }
        let (kind, args_at) = match classify(content)? {
            Some(found) => found,
            None => {
                // A complete line that is only a keyword prefix ("PIN", "CONNEC").
                let whole = OPS
                    .iter()
                    .find(|(kw, _, _)| kw.eq_ignore_ascii_case(content));
                match whole {
                    Some((kw, kind, false)) => (*kind, kw.len()),
                    _ => return Err(ProtoError::UnknownOp),
                }
            }
        };
        let args = &content[args_at..];
        if args.len() > self.max_control_line && !matches!(kind, Kind::Ping | Kind::Pong) {
            return Err(ProtoError::MaxControlLine);
        }
        match kind {
            Kind::Ping => Ok(Some(ClientOp::Ping)),
            Kind::Pong => Ok(Some(ClientOp::Pong)),
            Kind::Info | Kind::Ok => Ok(Some(ClientOp::Ignored)),
            Kind::Err => Ok(Some(ClientOp::Err(
                String::from_utf8_lossy(args).trim().to_owned(),
            ))),
            Kind::Connect => Ok(Some(ClientOp::Connect(line.slice_ref(args)))),
            Kind::Sub => parse_sub(args).map(Some),
            Kind::Unsub => parse_unsub(args).map(Some),
            Kind::Pub => {
                self.pending = Some(self.parse_pub(args)?);
                self.take_payload()
            }
            Kind::Hpub => {
                if !self.headers {
                    return Err(ProtoError::HeadersNotSupported);
                }
                self.pending = Some(self.parse_hpub(args)?);
                self.take_payload()
            }
        }
    }

    fn take_payload(&mut self) -> Result<Option<ClientOp>, ProtoError> {
        let Some(p) = &self.pending else {
            return Ok(None);
        };
        let need = p.total_len + 2;
        if self.buf.len() < need {
            // Reserve once so a large payload is not reallocated read by read.
            self.buf.reserve(need - self.buf.len());
            return Ok(None);
        }
        if &self.buf[p.total_len..need] != b"\r\n" {
            return Err(ProtoError::UnknownOp);
        }
        let Some(p) = self.pending.take() else {
            return Ok(None);
        };
        let mut body = self.buf.split_to(p.total_len).freeze();
        self.buf.advance(2);
        let headers = p.header_len.map(|h| body.split_to(h));
        Ok(Some(ClientOp::Pub {
            subject: p.subject,
            reply: p.reply,
            headers,
            payload: body,
        }))
    }

    fn check_size(&self, total: usize) -> Result<(), ProtoError> {
        if total > self.max_payload {
            return Err(ProtoError::MaxPayload {
                size: total,
                max: self.max_payload,
            });
        }
        Ok(())
    }

    fn parse_pub(&self, args: &[u8]) -> Result<PendingPub, ProtoError> {
        let a = split_args(args);
        let (subject, reply, size) = match a.as_slice() {
            [s, n] => (*s, None, *n),
            [s, r, n] => (*s, Some(*r), *n),
            _ => return Err(bad("PUB", args)),
        };
        let total_len = parse_size(size).ok_or_else(|| bad("PUB size", args))?;
        self.check_size(total_len)?;
        Ok(PendingPub {
            subject: text(subject, args)?,
            reply: reply.map(|r| text(r, args)).transpose()?,
            header_len: None,
            total_len,
        })
    }

    fn parse_hpub(&self, args: &[u8]) -> Result<PendingPub, ProtoError> {
        let a = split_args(args);
        let (subject, reply, hdr, size) = match a.as_slice() {
            [s, h, n] => (*s, None, *h, *n),
            [s, r, h, n] => (*s, Some(*r), *h, *n),
            _ => return Err(bad("HPUB", args)),
        };
        let header_len = parse_size(hdr).ok_or_else(|| bad("HPUB header size", args))?;
        let total_len = parse_size(size).ok_or_else(|| bad("HPUB total size", args))?;
        if header_len > total_len {
            return Err(bad("HPUB header size larger than total size", args));
        }
        self.check_size(total_len)?;
        Ok(PendingPub {
            subject: text(subject, args)?,
            reply: reply.map(|r| text(r, args)).transpose()?,
            header_len: Some(header_len),
            total_len,
        })
    }
}

fn parse_sub(args: &[u8]) -> Result<ClientOp, ProtoError> {
    let a = split_args(args);
    let (subject, queue, sid) = match a.as_slice() {
        [s, id] => (*s, None, *id),
        [s, q, id] => (*s, Some(*q), *id),
        _ => return Err(bad("SUB", args)),
    };
    Ok(ClientOp::Sub {
        subject: text(subject, args)?,
        queue: queue.map(|q| text(q, args)).transpose()?,
        sid: text(sid, args)?,
    })
}

fn parse_unsub(args: &[u8]) -> Result<ClientOp, ProtoError> {
    let a = split_args(args);
    let (sid, max) = match a.as_slice() {
        [id] => (*id, None),
        // A non-numeric max unsubscribes at once, like nats-server's parseSize → -1.
        [id, m] => (*id, Some(parse_size(m).unwrap_or(0) as u64)),
        _ => return Err(bad("UNSUB", args)),
    };
    Ok(ClientOp::Unsub {
        sid: text(sid, args)?,
        max,
    })
}

fn split_args(args: &[u8]) -> Vec<&[u8]> {
    args.split(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .filter(|t| !t.is_empty())
        .collect()
}

/// nats-server's `parseSize`: 1-9 ASCII digits.
fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > 9 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0usize, |n, c| n * 10 + usize::from(c - b'0')))
}

fn text(t: &[u8], args: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(t.to_vec()).map_err(|_| bad("non-UTF-8 token", args))
}

fn bad(what: &str, args: &[u8]) -> ProtoError {
    ProtoError::BadArgs(format!(
        "{what}: {:?}",
        String::from_utf8_lossy(&args[..args.len().min(64)])
    ))
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
