//! The NATS header block: `NATS/1.0[ <code>[ <description>]]\r\n(Name: value\r\n)*\r\n`.
//!
//! Messages keep their header block as raw bytes end to end (what a client
//! sent is what a subscriber or a stream read gets back), so the hot path only
//! needs [`get_header`]. [`HeaderMap`] is for building and inspecting blocks.
//!
//! Names are case-preserving and looked up case-sensitively, as nats-server's
//! `sliceHeader` does: `nats-msg-id` is not `Nats-Msg-Id`.

use bytes::Bytes;

/// The version line every block starts with.
pub const VERSION_LINE: &str = "NATS/1.0";

pub const NATS_MSG_ID: &str = "Nats-Msg-Id";
pub const NATS_EXPECTED_STREAM: &str = "Nats-Expected-Stream";
pub const NATS_EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";
pub const NATS_EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
pub const NATS_EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT: &str =
    "Nats-Expected-Last-Subject-Sequence-Subject";
pub const NATS_EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
pub const NATS_ROLLUP: &str = "Nats-Rollup";
pub const NATS_STREAM: &str = "Nats-Stream";
pub const NATS_SUBJECT: &str = "Nats-Subject";
pub const NATS_SEQUENCE: &str = "Nats-Sequence";
pub const NATS_TIME_STAMP: &str = "Nats-Time-Stamp";
pub const NATS_NUM_PENDING: &str = "Nats-Num-Pending";
pub const NATS_LAST_SEQUENCE: &str = "Nats-Last-Sequence";

/// `Nats-Rollup` values.
pub const ROLLUP_SUBJECT: &str = "sub";
pub const ROLLUP_ALL: &str = "all";

/// Why a header block could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header block does not start with NATS/1.0")]
    BadVersion,
    #[error("invalid status code in header block")]
    BadStatus,
    #[error("header line without a name and colon")]
    BadLine,
    #[error("header block is not terminated by an empty line")]
    Unterminated,
    #[error("header block is not UTF-8")]
    NotUtf8,
}

/// A parsed header block: optional status, then ordered, possibly repeated
/// `Name: value` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pub status: Option<u16>,
    pub description: Option<String>,
    entries: Vec<(String, String)>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// A block carrying only a status, like `NATS/1.0 404 Message Not Found`.
    pub fn with_status(code: u16, description: Option<&str>) -> Self {
        Self {
            status: Some(code),
            description: description.filter(|d| !d.is_empty()).map(str::to_owned),
            entries: Vec::new(),
        }
    }

    /// Parses a complete block, including its terminating empty line.
    pub fn parse(block: &[u8]) -> Result<Self, HeaderError> {
        let text = std::str::from_utf8(block).map_err(|_| HeaderError::NotUtf8)?;
        let body = text
            .strip_suffix("\r\n\r\n")
            .ok_or(HeaderError::Unterminated)?;
        let mut lines = body.split("\r\n").peekable();
        let first = lines.next().ok_or(HeaderError::BadVersion)?;
        let rest = first
            .strip_prefix(VERSION_LINE)
            .ok_or(HeaderError::BadVersion)?;
        let mut map = HeaderMap::new();
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            return Err(HeaderError::BadVersion);
        }
        let rest = rest.trim();
        if !rest.is_empty() {
            let (code, desc) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeaderError::BadStatus);
            }
            map.status = Some(code.parse().map_err(|_| HeaderError::BadStatus)?);
            let desc = desc.trim();
            map.description = (!desc.is_empty()).then(|| desc.to_owned());
        }
        while let Some(line) = lines.next() {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(HeaderError::BadLine)?;
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(HeaderError::BadLine);
            }
            let mut value = value.trim().to_owned();
            // Obsolete line folding: a line starting with whitespace continues the value.
            while let Some(cont) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(cont.trim());
            }
            // Trimmed again: an empty first or last line must not leave a
            // blank at either end, which rendering would not keep.
            map.entries.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(map)
    }

    /// First value of `name` (case-sensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds a value, keeping any earlier values of the same name.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Sets `name` to exactly one value, in the position of its first
    /// occurrence (or at the end).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.entries.iter().position(|(n, _)| *n == name) {
            Some(i) => {
                self.entries[i].1 = value;
                let mut j = 0;
                self.entries.retain(|(n, _)| {
                    j += 1;
                    j - 1 <= i || *n != name
                });
            }
            None => self.entries.push((name, value)),
        }
    }

    /// Removes every value of `name`; true if there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| n != name);
        before != self.entries.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of entries (not counting the status).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The wire form, including the terminating empty line.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::with_capacity(
            32 + self
                .entries
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>(),
        );
        out.push_str(VERSION_LINE);
        if let Some(code) = self.status {
            out.push(' ');
            out.push_str(&format!("{code:03}"));
            if let Some(d) = &self.description {
                out.push(' ');
                out.push_str(d);
            }
        }
        out.push_str("\r\n");
        for (n, v) in &self.entries {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        Bytes::from(out)
    }
}

/// A status-only block, e.g. `NATS/1.0 503\r\n\r\n` or
/// `NATS/1.0 404 Message Not Found\r\n\r\n`.
pub fn status_block(code: u16, description: Option<&str>) -> Bytes {
    HeaderMap::with_status(code, description).to_bytes()
}

/// The status code and description of a raw block, without allocating.
pub fn parse_status(block: &[u8]) -> Option<(u16, &[u8])> {
    let line_end = block.windows(2).position(|w| w == b"\r\n")?;
    let rest = block[..line_end].strip_prefix(VERSION_LINE.as_bytes())?;
    let rest = rest.strip_prefix(b" ")?.trim_ascii();
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| *b != b' ') {
        return None;
    }
    let code = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    Some((code, rest[3..].trim_ascii()))
}

/// The first value of `name` in a raw block, like nats-server's `sliceHeader`:
/// the name must start a line and be followed directly by `:`; leading
/// spaces of the value are skipped, the rest up to CRLF is returned.
pub fn get_header<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    if name.is_empty() {
        return None;
    }
    let mut from = 0;
    while let Some(pos) = find(&block[from..], name) {
        let start = from + pos;
        let after = start + name.len();
        let line_start = start >= 2 && &block[start - 2..start] == b"\r\n";
        if line_start && block.get(after) == Some(&b':') {
            let mut i = after + 1;
            while block.get(i) == Some(&b' ') {
                i += 1;
            }
            let end = find(&block[i..], b"\r\n").map_or(block.len(), |e| i + e);
            return Some(&block[i..end]);
        }
        from = start + 1;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BLOCK: &[u8] = b"NATS/1.0\r\nNats-Msg-Id: abc\r\nX: 1\r\nX:  2\r\nEmpty:\r\n\r\n";

    #[test]
    fn parse_entries_in_order_with_multi_values() {
        let h = HeaderMap::parse(BLOCK).unwrap();
        assert_eq!(h.status, None);
        assert_eq!(h.get(NATS_MSG_ID), Some("abc"));
        assert_eq!(h.get("nats-msg-id"), None, "lookup is case-sensitive");
        assert_eq!(h.get_all("X").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(h.get("Empty"), Some(""));
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn parse_status_lines() {
        let h = HeaderMap::parse(b"NATS/1.0 503\r\n\r\n").unwrap();
        assert_eq!((h.status, h.description.as_deref()), (Some(503), None));
        let h = HeaderMap::parse(b"NATS/1.0 404 Message Not Found\r\n\r\n").unwrap();
        assert_eq!(
            (h.status, h.description.as_deref()),
            (Some(404), Some("Message Not Found"))
        );
        let h = HeaderMap::parse(b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\n\r\n")
            .unwrap();
        assert_eq!(h.get("Nats-Last-Consumer"), Some("3"));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            HeaderMap::parse(b"HTTP/1.1\r\n\r\n"),
            Err(HeaderError::BadVersion)
        );
        assert_eq!(
            HeaderMap::parse(b"NATS/1.01\r\n\r\n"),
            Err(HeaderError::BadVersion)
        );
        assert_eq!(
            HeaderMap::parse(b"NATS/1.0 5x3\r\n\r\n"),
            Err(HeaderError::BadStatus)
        );
        // Found by fuzz/ (target headers): u16::from_str takes a sign, so
        // `+12` was status 12 (rendered `012`); parse_status refuses it.
        assert_eq!(
            HeaderMap::parse(b"NATS/1.0 +12\r\n\r\n"),
            Err(HeaderError::BadStatus)
        );
        assert_eq!(
            HeaderMap::parse(b"NATS/1.0\r\nnocolon\r\n\r\n"),
            Err(HeaderError::BadLine)
        );
        assert_eq!(
            HeaderMap::parse(b"NATS/1.0\r\n: v\r\n\r\n"),
            Err(HeaderError::BadLine)
        );
        assert_eq!(
            HeaderMap::parse(b"NATS/1.0\r\nA: b\r\n"),
            Err(HeaderError::Unterminated)
        );
        assert_eq!(
            HeaderMap::parse(b"NATS/1.0\r\nA: \xff\r\n\r\n"),
            Err(HeaderError::NotUtf8)
        );
    }

    #[test]
    fn folded_values_join() {
        let h = HeaderMap::parse(b"NATS/1.0\r\nA: one\r\n two\r\nB: x\r\n\r\n").unwrap();
        assert_eq!(h.get("A"), Some("one two"));
        assert_eq!(h.get("B"), Some("x"));
    }

    #[test]
    fn folding_blank_lines_leaves_no_blank_at_either_end() {
        // Found by fuzz/ (target headers): an empty value continued, or a
        // value continued by a blank line, parsed with a leading or
        // trailing space, so the block did not survive render + parse.
        for block in [
            &b"NATS/1.0\r\nA:\r\n b\r\n\r\n"[..],
            b"NATS/1.0\r\nA: b\r\n \r\n\r\n",
            b"NATS/1.0\r\nA:\r\n\t\r\n b \r\n \r\n\r\n",
        ] {
            let h = HeaderMap::parse(block).unwrap();
            assert_eq!(
                h.get("A"),
                Some("b"),
                "{:?}",
                String::from_utf8_lossy(block)
            );
            assert_eq!(HeaderMap::parse(&h.to_bytes()).unwrap(), h);
        }
    }

    #[test]
    fn render_round_trips() {
        let mut h = HeaderMap::new();
        h.append("Nats-Msg-Id", "1");
        h.append("X", "a");
        h.append("X", "b");
        let bytes = h.to_bytes();
        assert_eq!(
            &bytes[..],
            b"NATS/1.0\r\nNats-Msg-Id: 1\r\nX: a\r\nX: b\r\n\r\n"
        );
        assert_eq!(HeaderMap::parse(&bytes).unwrap(), h);
        assert_eq!(
            HeaderMap::parse(BLOCK).unwrap().to_bytes(),
            Bytes::from_static(b"NATS/1.0\r\nNats-Msg-Id: abc\r\nX: 1\r\nX: 2\r\nEmpty: \r\n\r\n")
        );
    }

    #[test]
    fn insert_replaces_all_and_remove() {
        let mut h = HeaderMap::parse(BLOCK).unwrap();
        h.insert("X", "9");
        assert_eq!(h.get_all("X").collect::<Vec<_>>(), ["9"]);
        assert_eq!(
            h.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["Nats-Msg-Id", "X", "Empty"]
        );
        h.insert("New", "v");
        assert_eq!(h.iter().last(), Some(("New", "v")));
        assert!(h.remove("X"));
        assert!(!h.remove("X"));
        assert_eq!(h.get("X"), None);
    }

    #[test]
    fn status_blocks() {
        assert_eq!(&status_block(503, None)[..], b"NATS/1.0 503\r\n\r\n");
        assert_eq!(
            &status_block(404, Some("Message Not Found"))[..],
            b"NATS/1.0 404 Message Not Found\r\n\r\n"
        );
        assert_eq!(parse_status(b"NATS/1.0 503\r\n\r\n"), Some((503, &b""[..])));
        assert_eq!(
            parse_status(b"NATS/1.0 408 Request Timeout\r\nA: b\r\n\r\n"),
            Some((408, &b"Request Timeout"[..]))
        );
        assert_eq!(parse_status(b"NATS/1.0\r\nA: b\r\n\r\n"), None);
        assert_eq!(parse_status(b"NATS/1.0 4040\r\n\r\n"), None);
    }

    #[test]
    fn raw_lookup_matches_nats_server() {
        assert_eq!(get_header(BLOCK, NATS_MSG_ID), Some(&b"abc"[..]));
        assert_eq!(get_header(BLOCK, "X"), Some(&b"1"[..]));
        assert_eq!(get_header(BLOCK, "Empty"), Some(&b""[..]));
        assert_eq!(get_header(BLOCK, "nats-msg-id"), None);
        assert_eq!(
            get_header(BLOCK, "Msg-Id"),
            None,
            "a name must start its line"
        );
        assert_eq!(
            get_header(BLOCK, "Nats-Msg"),
            None,
            "a name must be followed by a colon"
        );
        assert_eq!(get_header(BLOCK, "NATS/1.0"), None);
        let tricky =
            b"NATS/1.0\r\nA: Nats-Expected-Stream: no\r\nNats-Expected-Stream: yes\r\n\r\n";
        assert_eq!(get_header(tricky, NATS_EXPECTED_STREAM), Some(&b"yes"[..]));
        // A prefix of a longer name does not match it.
        let longer = b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence-Subject: a.b\r\nNats-Expected-Last-Subject-Sequence: 4\r\n\r\n";
        assert_eq!(
            get_header(longer, NATS_EXPECTED_LAST_SUBJECT_SEQUENCE),
            Some(&b"4"[..])
        );
        assert_eq!(get_header(b"", "X"), None);
    }
}
