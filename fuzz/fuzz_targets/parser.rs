//! The NATS client protocol parser (`jetraft_gateway::proto::Parser`) on
//! arbitrary bytes in arbitrary chunkings.
//!
//! Input layout: byte 0 picks the setup (headers allowed at the start,
//! whether a CONNECT switches headers like the connection does, max
//! payload, max control line), byte 1 seeds the chunking, the rest is what
//! the client sends. Checked:
//!
//! - no panic, whatever the bytes and however they are split;
//! - every op agrees with the bytes it was parsed from (the bytes the
//!   parser consumed for it): a PUB/HPUB's payload and header block are
//!   exactly the declared sizes, are the bytes that followed the control
//!   line, and end with CRLF; subjects, reply, sid, queue, max are the
//!   tokens of the line; HPUB only when headers are allowed; sizes within
//!   max payload;
//! - the parser never rewrites buffered bytes, and what it keeps buffered
//!   while waiting is bounded by max control line (a partial line) or max
//!   payload (a pending payload);
//! - split feeding gives the same ops as feeding everything at once. The
//!   one tolerated difference: a partial line already longer than max
//!   control line is refused before its newline (on purpose, so a client
//!   cannot make the server buffer without bound), where the whole line
//!   might have parsed (PING/PONG take no arguments and ignore what follows
//!   them on the line).

#![no_main]

use jetraft_gateway::proto::{ClientOp, ConnectOptions, Parser, ProtoError};
use libfuzzer_sys::fuzz_target;

const MAX_PAYLOADS: [usize; 8] = [0, 1, 2, 5, 16, 64, 1024, 1 << 20];
const MAX_CONTROL_LINES: [usize; 8] = [0, 1, 3, 8, 16, 64, 256, 4096];
/// Slack over max control line for a partial line the parser keeps: the
/// keyword (at most 7 bytes, CONNECT); blanks after it count.
const PARTIAL_LINE_SLACK: usize = 7;

#[derive(Clone, Copy, Debug)]
struct Setup {
    headers: bool,
    follow_connect: bool,
    max_payload: usize,
    max_control_line: usize,
}

struct Outcome {
    ops: Vec<ClientOp>,
    end: Result<(), ProtoError>,
    /// Where the bytes of the op after the last one returned start.
    op_start: usize,
    /// How many bytes had been fed when it ended.
    fed: usize,
}

/// A small deterministic chunking: byte-at-a-time, or pseudo-random sizes
/// up to a bound chosen by the seed.
fn chunk_sizes(seed: u8, len: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = len;
    let max = match seed & 7 {
        0 => 1,
        1 => 2,
        2 => 3,
        3 => 7,
        4 => 16,
        5 => 64,
        6 => 512,
        _ => 4096,
    };
    let mut x = u32::from(seed) | 0x9e37_7900;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x as usize % max + 1).min(left);
        sizes.push(n);
        left -= n;
    }
    sizes
}

fn run(setup: Setup, stream: &[u8], chunks: &[usize]) -> Outcome {
    let mut p = Parser::new(setup.max_payload).with_max_control_line(setup.max_control_line);
    let mut headers = setup.headers;
    p.set_headers(headers);
    let mut ops = Vec::new();
    let mut fed = 0;
    let mut op_start = 0;
    for &n in chunks {
        p.extend(&stream[fed..fed + n]);
        fed += n;
        loop {
            let r = p.next_op();
            let buffered = p.buffer_mut().len();
            assert!(
                buffered <= fed - op_start,
                "buffer grew beyond what was fed"
            );
            assert_eq!(
                &p.buffer_mut()[..],
                &stream[fed - buffered..fed],
                "the buffer must hold exactly the unconsumed input"
            );
            match r {
                Ok(Some(op)) => {
                    let consumed = fed - buffered;
                    check_op(setup, headers, &stream[op_start..consumed], &op);
                    op_start = consumed;
                    if let (true, ClientOp::Connect(json)) = (setup.follow_connect, &op) {
                        // What the connection does with a CONNECT.
                        if let Ok(o) = ConnectOptions::parse(json) {
                            headers = o.headers;
                            p.set_headers(headers);
                        }
                    }
                    ops.push(op);
                }
                Ok(None) => {
                    let bound =
                        (setup.max_control_line + PARTIAL_LINE_SLACK).max(setup.max_payload + 2);
                    assert!(
                        buffered <= bound,
                        "parser buffers {buffered} bytes waiting (max control line {}, max payload {})",
                        setup.max_control_line,
                        setup.max_payload
                    );
                    break;
                }
                Err(e) => {
                    let _ = e.err_text();
                    return Outcome {
                        ops,
                        end: Err(e),
                        op_start,
                        fed,
                    };
                }
            }
        }
    }
    Outcome {
        ops,
        end: Ok(()),
        op_start,
        fed,
    }
}

fn tokens(args: &[u8]) -> Vec<&[u8]> {
    args.split(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .filter(|t| !t.is_empty())
        .collect()
}

fn size(t: &[u8]) -> usize {
    assert!(
        !t.is_empty() && t.len() <= 9 && t.iter().all(u8::is_ascii_digit),
        "size token {:?}",
        String::from_utf8_lossy(t)
    );
    t.iter().fold(0, |n, c| n * 10 + usize::from(c - b'0'))
}

fn starts_with_kw(line: &[u8], kw: &[u8]) -> bool {
    line.len() >= kw.len() && line[..kw.len()].eq_ignore_ascii_case(kw)
}

fn text(t: &[u8]) -> &str {
    std::str::from_utf8(t).expect("a token the parser accepted is UTF-8")
}

/// `bytes` is everything the parser consumed to produce `op`.
fn check_op(setup: Setup, headers_allowed: bool, bytes: &[u8], op: &ClientOp) {
    let nl = bytes
        .iter()
        .position(|b| *b == b'\n')
        .expect("every op ends its control line with a newline");
    let mut line = &bytes[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    if !matches!(op, ClientOp::Pub { .. }) {
        assert_eq!(
            nl + 1,
            bytes.len(),
            "a non-PUB op consumes exactly its line"
        );
    }
    match op {
        ClientOp::Pub {
            subject,
            reply,
            headers,
            payload,
        } => {
            let kw: &[u8] = if headers.is_some() { b"HPUB" } else { b"PUB" };
            assert!(starts_with_kw(line, kw), "{op:?} from {line:?}");
            if headers.is_some() {
                assert!(headers_allowed, "HPUB accepted without headers");
            }
            let t = tokens(&line[kw.len()..]);
            let sizes = if headers.is_some() { 2 } else { 1 };
            assert!(
                t.len() == sizes + 1 || t.len() == sizes + 2,
                "{op:?}: {} tokens",
                t.len()
            );
            assert_eq!(subject, text(t[0]));
            let want_reply = (t.len() == sizes + 2).then(|| text(t[1]));
            assert_eq!(reply.as_deref(), want_reply);
            let total = size(t[t.len() - 1]);
            let hdr = if headers.is_some() {
                size(t[t.len() - 2])
            } else {
                0
            };
            assert!(total <= setup.max_payload, "{total} > max payload");
            assert!(hdr <= total);
            let body = &bytes[nl + 1..];
            assert_eq!(
                body.len(),
                total + 2,
                "payload and CRLF are the declared size"
            );
            assert_eq!(&body[total..], b"\r\n");
            let h = headers.as_ref().map_or(&b""[..], |h| &h[..]);
            assert_eq!(h.len(), hdr, "header block is the declared size");
            assert_eq!(payload.len(), total - hdr, "payload is total minus headers");
            assert_eq!(h, &body[..hdr]);
            assert_eq!(&payload[..], &body[hdr..total]);
        }
        ClientOp::Sub {
            subject,
            queue,
            sid,
        } => {
            assert!(starts_with_kw(line, b"SUB"), "{op:?} from {line:?}");
            let t = tokens(&line[3..]);
            assert!(t.len() == 2 || t.len() == 3);
            assert_eq!(subject, text(t[0]));
            assert_eq!(queue.as_deref(), (t.len() == 3).then(|| text(t[1])));
            assert_eq!(sid, text(t[t.len() - 1]));
        }
        ClientOp::Unsub { sid, max } => {
            assert!(starts_with_kw(line, b"UNSUB"), "{op:?} from {line:?}");
            let t = tokens(&line[5..]);
            assert!(t.len() == 1 || t.len() == 2);
            assert_eq!(sid, text(t[0]));
            if t.len() == 2 {
                let m = t[1];
                let want = if !m.is_empty() && m.len() <= 9 && m.iter().all(u8::is_ascii_digit) {
                    size(m) as u64
                } else {
                    0
                };
                assert_eq!(*max, Some(want));
            } else {
                assert_eq!(*max, None);
            }
        }
        ClientOp::Ping => assert!(starts_with_kw(line, b"PING"), "{line:?}"),
        ClientOp::Pong => assert!(starts_with_kw(line, b"PONG"), "{line:?}"),
        ClientOp::Connect(json) => {
            assert!(starts_with_kw(line, b"CONNECT"), "{line:?}");
            let args = &line[7..];
            let ws = args
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            assert_eq!(&json[..], &args[ws..]);
            let args_len = json.len();
            assert!(
                args_len <= setup.max_control_line,
                "CONNECT over max control line"
            );
        }
        ClientOp::Ignored => {
            assert!(starts_with_kw(line, b"INFO") || starts_with_kw(line, b"+OK"))
        }
        ClientOp::Err(_) => assert!(starts_with_kw(line, b"-ERR"), "{line:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let setup = Setup {
        headers: data[0] & 1 != 0,
        follow_connect: data[0] & 2 != 0,
        max_payload: MAX_PAYLOADS[usize::from(data[0] >> 2) & 7],
        max_control_line: MAX_CONTROL_LINES[usize::from(data[0] >> 5) & 7],
    };
    let stream = &data[2..];
    let whole = run(setup, stream, &[stream.len()]);
    let split = run(setup, stream, &chunk_sizes(data[1], stream.len()));

    let n = split.ops.len();
    assert!(
        n <= whole.ops.len() && split.ops[..] == whole.ops[..n],
        "split feeding gave other ops: {:?} vs {:?}",
        split.ops,
        whole.ops
    );
    match &split.end {
        Ok(()) => {
            assert_eq!(n, whole.ops.len(), "split feeding stopped early");
            assert_eq!(whole.end, Ok(()));
        }
        Err(e) if n == whole.ops.len() && whole.end.as_ref().err() == Some(e) => {}
        Err(ProtoError::MaxControlLine) => {
            // Refused before its newline: only a partial line longer than
            // max control line may be.
            let partial = &stream[split.op_start..split.fed];
            assert!(
                !partial.contains(&b'\n'),
                "early MaxControlLine on a complete line (whole: {:?})",
                whole.end
            );
            assert!(partial.len() > setup.max_control_line);
        }
        Err(e) => panic!(
            "split feeding ended with {e:?} after {n} ops; whole: {:?} after {} ops",
            whole.end,
            whole.ops.len()
        ),
    }
});
