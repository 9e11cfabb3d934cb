//! Server→client operations: INFO, MSG, HMSG, PING, PONG, +OK, -ERR.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";
pub const CRLF: &[u8] = b"\r\n";

/// The INFO a client reads on connect. Field names and order follow
/// nats-server; async-nats treats every field as optional.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: u8,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    pub max_payload: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub jetstream: bool,
    pub client_id: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_lvl: Option<u32>,
    /// Which jetraft build this is, for operators and differential tests.
    pub jetraft: String,
}

/// `INFO {json} \r\n` (with nats-server's space before CRLF).
pub fn info(info: &ServerInfo) -> Bytes {
    let json = serde_json::to_vec(info).unwrap_or_else(|_| b"{}".to_vec());
    let mut out = BytesMut::with_capacity(json.len() + 8);
    out.put_slice(b"INFO ");
    out.put_slice(&json);
    out.put_slice(b" \r\n");
    out.freeze()
}

/// `-ERR '<text>'\r\n`.
pub fn err(text: &str) -> Bytes {
    Bytes::from(format!("-ERR '{text}'\r\n"))
}

/// The control line of a delivery: `MSG <subject> <sid> [reply] <size>\r\n`
/// or, with a header block, `HMSG <subject> <sid> [reply] <hdr_len> <total_len>\r\n`.
pub fn put_msg_line(
    out: &mut BytesMut,
    subject: &str,
    sid: &str,
    reply: Option<&str>,
    header_len: Option<usize>,
    payload_len: usize,
) {
    out.reserve(subject.len() + sid.len() + reply.map_or(0, str::len) + 40);
    out.put_slice(if header_len.is_some() {
        b"HMSG "
    } else {
        b"MSG "
    });
    out.put_slice(subject.as_bytes());
    out.put_u8(b' ');
    out.put_slice(sid.as_bytes());
    out.put_u8(b' ');
    if let Some(r) = reply {
        out.put_slice(r.as_bytes());
        out.put_u8(b' ');
    }
    if let Some(h) = header_len {
        put_decimal(out, h);
        out.put_u8(b' ');
        put_decimal(out, h + payload_len);
    } else {
        put_decimal(out, payload_len);
    }
    out.put_slice(CRLF);
}

/// A whole MSG/HMSG frame.
pub fn put_msg(
    out: &mut BytesMut,
    subject: &str,
    sid: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    put_msg_line(
        out,
        subject,
        sid,
        reply,
        headers.map(<[u8]>::len),
        payload.len(),
    );
    if let Some(h) = headers {
        out.put_slice(h);
    }
    out.put_slice(payload);
    out.put_slice(CRLF);
}

fn put_decimal(out: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn frame(
        subject: &str,
        sid: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_msg(&mut b, subject, sid, reply, headers, payload);
        b.to_vec()
    }

    #[test]
    fn msg_and_hmsg_frames() {
        assert_eq!(
            frame("foo", "1", None, None, b"hello"),
            b"MSG foo 1 5\r\nhello\r\n"
        );
        assert_eq!(
            frame("foo", "1", Some("r.1"), None, b""),
            b"MSG foo 1 r.1 0\r\n\r\n"
        );
        assert_eq!(
            frame("x", "22", Some("r"), Some(b"NATS/1.0 503\r\n\r\n"), b""),
            b"HMSG x 22 r 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
        );
        assert_eq!(
            frame("x", "2", None, Some(b"NATS/1.0\r\n\r\n"), b"hi"),
            b"HMSG x 2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
        );
        let big = vec![b'z'; 1_234_567];
        assert!(frame("b", "9", None, None, &big).starts_with(b"MSG b 9 1234567\r\n"));
    }

    #[test]
    fn info_line() {
        let i = ServerInfo {
            server_id: "ID".into(),
            server_name: "n1".into(),
            version: "2.15.1".into(),
            proto: 1,
            go: "jetraft".into(),
            host: "127.0.0.1".into(),
            port: 4222,
            headers: true,
            max_payload: 1 << 20,
            jetstream: true,
            client_id: 7,
            client_ip: "127.0.0.1".into(),
            cluster: None,
            connect_urls: vec![],
            api_lvl: None,
            jetraft: "0.1.0".into(),
        };
        let line = info(&i);
        assert!(line.starts_with(b"INFO {\"server_id\":\"ID\""));
        assert!(line.ends_with(b"} \r\n"));
        let json: serde_json::Value = serde_json::from_slice(&line[5..line.len() - 3]).unwrap();
        assert_eq!(json["jetstream"], true);
        assert_eq!(json["max_payload"], 1048576);
        assert_eq!(json["client_id"], 7);
        assert!(json.get("cluster").is_none());
    }

    #[test]
    fn err_line() {
        assert_eq!(&err("Slow Consumer")[..], b"-ERR 'Slow Consumer'\r\n");
    }
}
