#![allow(clippy::unwrap_used)]

use super::*;

fn all_ops(p: &mut Parser) -> Result<Vec<ClientOp>, ProtoError> {
    let mut out = Vec::new();
    while let Some(op) = p.next_op()? {
        out.push(op);
    }
    Ok(out)
}

fn parse(input: &[u8]) -> Result<Vec<ClientOp>, ProtoError> {
    let mut p = Parser::new(1024);
    p.set_headers(true);
    p.extend(input);
    all_ops(&mut p)
}

fn pubop(
    subject: &str,
    reply: Option<&str>,
    headers: Option<&'static [u8]>,
    payload: &'static [u8],
) -> ClientOp {
    ClientOp::Pub {
        subject: subject.into(),
        reply: reply.map(Into::into),
        headers: headers.map(Bytes::from_static),
        payload: Bytes::from_static(payload),
    }
}

const STREAM: &[u8] = b"CONNECT {\"verbose\":false}\r\nPUB foo 5\r\nhello\r\npub foo.bar  _INBOX.1 0\r\n\r\n\
HPUB h r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nSUB foo 1\r\nsub foo q 2\r\nUNSUB 1\r\nunsub 2 10\r\nPING\r\nping\r\nPONG\r\n\
INFO {}\r\n+OK\r\nSUB\ta\t3\r\n";

fn expected() -> Vec<ClientOp> {
    vec![
        ClientOp::Connect(Bytes::from_static(b"{\"verbose\":false}")),
        pubop("foo", None, None, b"hello"),
        pubop("foo.bar", Some("_INBOX.1"), None, b""),
        pubop("h", Some("r"), Some(b"NATS/1.0\r\n\r\n"), b"hi"),
        ClientOp::Sub {
            subject: "foo".into(),
            queue: None,
            sid: "1".into(),
        },
        ClientOp::Sub {
            subject: "foo".into(),
            queue: Some("q".into()),
            sid: "2".into(),
        },
        ClientOp::Unsub {
            sid: "1".into(),
            max: None,
        },
        ClientOp::Unsub {
            sid: "2".into(),
            max: Some(10),
        },
        ClientOp::Ping,
        ClientOp::Ping,
        ClientOp::Pong,
        ClientOp::Ignored,
        ClientOp::Ignored,
        ClientOp::Sub {
            subject: "a".into(),
            queue: None,
            sid: "3".into(),
        },
    ]
}

#[test]
fn every_op_in_one_buffer() {
    assert_eq!(parse(STREAM).unwrap(), expected());
}

#[test]
fn split_at_every_byte_boundary() {
    for cut in 0..=STREAM.len() {
        let mut p = Parser::new(1024);
        p.set_headers(true);
        p.extend(&STREAM[..cut]);
        let mut ops = all_ops(&mut p).unwrap();
        p.extend(&STREAM[cut..]);
        ops.extend(all_ops(&mut p).unwrap());
        assert_eq!(ops, expected(), "cut at {cut}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let mut p = Parser::new(1024);
    p.set_headers(true);
    let mut ops = Vec::new();
    for b in STREAM {
        p.extend(&[*b]);
        ops.extend(all_ops(&mut p).unwrap());
    }
    assert_eq!(ops, expected());
}

#[test]
fn bare_newlines_and_ping_suffix_like_nats_server() {
    assert_eq!(
        parse(b"PING\nPONG\nPINGx\r\nPING x\r\n").unwrap(),
        [
            ClientOp::Ping,
            ClientOp::Pong,
            ClientOp::Ping,
            ClientOp::Ping
        ]
    );
}

#[test]
fn unknown_operations() {
    for bad in [
        &b"FOO\r\n"[..],
        b"MSG foo 1 2\r\n",
        b"PUBX foo 1\r\n",
        b"UNSUB\r\n",
        b"PUB\r\n",
        b"SUBfoo 1\r\n",
        b"\r\n",
        b"PIN\r\n",
    ] {
        assert_eq!(
            parse(bad),
            Err(ProtoError::UnknownOp),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        ProtoError::UnknownOp.err_text(),
        Some("Unknown Protocol Operation")
    );
}

#[test]
fn garbage_is_rejected_before_its_newline() {
    let mut p = Parser::new(1024);
    p.extend(b"X");
    assert_eq!(p.next_op(), Err(ProtoError::UnknownOp));
    let mut p = Parser::new(1024);
    p.extend(b"PI");
    assert_eq!(p.next_op(), Ok(None));
    p.extend(b"NX");
    assert_eq!(p.next_op(), Err(ProtoError::UnknownOp));
}

#[test]
fn payload_must_end_with_crlf() {
    assert_eq!(parse(b"PUB foo 2\r\nhix\r\n"), Err(ProtoError::UnknownOp));
    assert_eq!(parse(b"PUB foo 2\r\nhi\n\r\n"), Err(ProtoError::UnknownOp));
    let mut p = Parser::new(1024);
    p.extend(b"PUB foo 2\r\nhi\r");
    assert_eq!(p.next_op(), Ok(None), "waits for the full trailer");
}

#[test]
fn max_payload_violation() {
    let err = parse(b"PUB foo 1025\r\n").unwrap_err();
    assert_eq!(
        err,
        ProtoError::MaxPayload {
            size: 1025,
            max: 1024
        }
    );
    assert_eq!(err.err_text(), Some("Maximum Payload Violation"));
    assert!(matches!(
        parse(b"HPUB foo 10 2000\r\n"),
        Err(ProtoError::MaxPayload { .. })
    ));
    assert_eq!(
        parse(b"PUB foo 1024\r\n").unwrap(),
        [],
        "exactly max is fine"
    );
}

#[test]
fn max_control_line() {
    let mut long = b"SUB ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 5000));
    // Rejected without waiting for the newline.
    let mut p = Parser::new(1024);
    p.extend(&long);
    assert_eq!(p.next_op(), Err(ProtoError::MaxControlLine));
    long.extend(b" 1\r\n");
    assert_eq!(parse(&long), Err(ProtoError::MaxControlLine));
    assert_eq!(
        ProtoError::MaxControlLine.err_text(),
        Some("maximum control line exceeded")
    );
    let mut p = Parser::new(1024).with_max_control_line(8);
    p.extend(b"SUB abcdefgh 1\r\n");
    assert_eq!(p.next_op(), Err(ProtoError::MaxControlLine));
}

#[test]
fn blanks_after_the_keyword_count_against_max_control_line() {
    // Found by fuzz/ (target parser): blanks after a keyword, with no
    // newline, did not count, so a client could make the server buffer
    // without bound.
    for kw in [&b"PUB"[..], b"HPUB", b"SUB", b"UNSUB", b"PING", b"CONNECT"] {
        let mut p = Parser::new(1024).with_max_control_line(64);
        p.set_headers(true);
        p.extend(kw);
        p.extend(&[b' '; 64]);
        assert_eq!(p.next_op(), Ok(None), "{}", String::from_utf8_lossy(kw));
        p.extend(b"\t");
        assert_eq!(
            p.next_op(),
            Err(ProtoError::MaxControlLine),
            "{}",
            String::from_utf8_lossy(kw)
        );
    }
    // A complete line's blanks are not arguments, as in nats-server.
    let mut line = b"SUB".to_vec();
    line.extend([b' '; 100]);
    line.extend(b"a 1\r\n");
    let mut p = Parser::new(1024).with_max_control_line(64);
    p.extend(&line);
    assert!(matches!(p.next_op(), Ok(Some(ClientOp::Sub { .. }))));
}

#[test]
fn malformed_arguments_close_silently() {
    for bad in [
        &b"PUB foo\r\n"[..],
        b"PUB foo -1\r\n",
        b"PUB foo abc\r\n",
        b"PUB a b c 1\r\n",
        b"PUB foo 1234567890\r\n",
        b"HPUB foo 2\r\n",
        b"HPUB foo 20 14\r\n",
        b"SUB foo\r\n",
        b"SUB foo 1 2 3\r\n",
        b"UNSUB 1 2 3\r\n",
    ] {
        let err = parse(bad).unwrap_err();
        assert!(
            matches!(err, ProtoError::BadArgs(_)),
            "{:?} -> {err:?}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(err.err_text(), None);
    }
}

#[test]
fn hpub_needs_negotiated_headers() {
    let mut p = Parser::new(1024);
    p.extend(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n");
    assert_eq!(p.next_op(), Err(ProtoError::HeadersNotSupported));
    assert_eq!(ProtoError::HeadersNotSupported.err_text(), None);
}

#[test]
fn unsub_with_non_numeric_max_means_now() {
    assert_eq!(
        parse(b"UNSUB 1 x\r\n").unwrap(),
        [ClientOp::Unsub {
            sid: "1".into(),
            max: Some(0)
        }]
    );
}

#[test]
fn client_err_and_connect_variants() {
    assert_eq!(
        parse(b"-ERR 'oops'\r\n").unwrap(),
        [ClientOp::Err("'oops'".into())]
    );
    assert_eq!(
        parse(b"CONNECT\r\n").unwrap(),
        [ClientOp::Connect(Bytes::new())]
    );
    assert_eq!(
        parse(b"connect  {}\r\n").unwrap(),
        [ClientOp::Connect(Bytes::from_static(b"{}"))]
    );
}

#[test]
fn large_payload_split_across_reads() {
    let payload = vec![b'x'; 1000];
    let mut wire = b"PUB big 1000\r\n".to_vec();
    wire.extend(&payload);
    wire.extend(b"\r\nPING\r\n");
    let mut p = Parser::new(1024);
    let mut ops = Vec::new();
    for chunk in wire.chunks(7) {
        p.extend(chunk);
        ops.extend(all_ops(&mut p).unwrap());
    }
    assert_eq!(ops.len(), 2);
    assert_eq!(
        ops[0],
        ClientOp::Pub {
            subject: "big".into(),
            reply: None,
            headers: None,
            payload: Bytes::from(payload)
        }
    );
    assert_eq!(ops[1], ClientOp::Ping);
}
