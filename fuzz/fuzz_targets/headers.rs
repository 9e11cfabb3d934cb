//! NATS header blocks (`jetraft_types::headers`) on arbitrary bytes: the
//! raw lookups the publish path runs on every HPUB (`get_header`,
//! `parse_status`) and `HeaderMap::parse`.
//!
//! Checked: no panic; a raw lookup returns a piece of the block that does
//! not run past its line; an accepted block's status is the 3-digit code
//! written in it; rendering an accepted block and parsing it again gives
//! the same map and the same bytes; the raw lookups agree with the parsed
//! map, on the rendered block exactly and on the original one as far as
//! the raw lookup goes (it neither trims tabs nor unfolds lines).

#![no_main]

use jetraft_types::headers::{self, HeaderMap, get_header, parse_status};
use libfuzzer_sys::fuzz_target;

/// Names the server looks up on a publish, and some that are not there.
const NAMES: &[&str] = &[
    headers::NATS_MSG_ID,
    headers::NATS_EXPECTED_STREAM,
    headers::NATS_EXPECTED_LAST_SEQUENCE,
    headers::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
    headers::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT,
    headers::NATS_EXPECTED_LAST_MSG_ID,
    headers::NATS_ROLLUP,
    "Nats-TTL",
    "A",
    "NATS/1.0",
    "",
];

fn is_subslice(inner: &[u8], outer: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

fn no_crlf(v: &[u8]) -> bool {
    !v.windows(2).any(|w| w == b"\r\n")
}

fuzz_target!(|data: &[u8]| {
    for name in NAMES {
        if let Some(v) = get_header(data, name) {
            assert!(!name.is_empty());
            assert!(is_subslice(v, data) && no_crlf(v));
        }
    }
    let status = parse_status(data);
    if let Some((code, desc)) = status {
        assert!(code <= 999);
        assert!(is_subslice(desc, data) && no_crlf(desc));
    }
    let Ok(map) = HeaderMap::parse(data) else {
        return;
    };
    let line_end = data
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(data.len());
    let first_line = &data[..line_end];
    if let Some(code) = map.status {
        let digits = format!("{code:03}");
        assert!(
            first_line.windows(3).any(|w| w == digits.as_bytes()),
            "status {code} is not written in {:?}",
            String::from_utf8_lossy(first_line)
        );
    }
    if let Some((code, _)) = status {
        assert_eq!(
            map.status,
            Some(code),
            "parse_status and HeaderMap disagree"
        );
    }

    // Render and parse again.
    let rendered = map.to_bytes();
    let again = HeaderMap::parse(&rendered).unwrap_or_else(|e| {
        panic!(
            "rendered block does not parse ({e}): {:?}",
            String::from_utf8_lossy(&rendered)
        )
    });
    assert_eq!(again, map, "{:?}", String::from_utf8_lossy(&rendered));
    assert_eq!(again.to_bytes(), rendered);
    assert_eq!(
        parse_status(&rendered),
        map.status
            .map(|c| (c, map.description.as_deref().unwrap_or("").as_bytes())),
        "{:?}",
        String::from_utf8_lossy(&rendered)
    );

    // Raw lookups agree with the map.
    for (name, _) in map.iter() {
        let first = map.get(name).unwrap_or_default();
        assert_eq!(
            get_header(&rendered, name),
            Some(first.as_bytes()),
            "{name:?} in {:?}",
            String::from_utf8_lossy(&rendered)
        );
        let raw = get_header(data, name)
            .unwrap_or_else(|| panic!("{name:?} parsed but not found by get_header"));
        let raw = std::str::from_utf8(raw).expect("the block is UTF-8");
        assert!(
            first.starts_with(raw.trim()),
            "{name:?}: parsed {first:?}, raw {raw:?}"
        );
    }
});
