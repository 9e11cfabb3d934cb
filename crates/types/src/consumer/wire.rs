//! What clients send a consumer and what its deliveries carry: pull
//! requests, ack bodies and ack subjects, and Go's duration text.

use serde::{Deserialize, Serialize};

/// Go's `time.Duration.String` for whole milliseconds and above (what the
/// errors that name a duration print).
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let mut n = ns.unsigned_abs();
    let mut out = String::new();
    if n < 1_000_000_000 {
        let (unit, div) = if n < 1_000 {
            ("ns", 1)
        } else if n < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(n, div));
        out.push_str(unit);
    } else {
        let h = n / 3_600_000_000_000;
        n %= 3_600_000_000_000;
        let m = n / 60_000_000_000;
        n %= 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(n, 1_000_000_000));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

/// Go's `time.ParseDuration` for the units NATS clients send
/// (`ns us µs ms s m h`, fractions allowed, e.g. `1m30s`, `1.5s`).
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

fn frac(n: u64, div: u64) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A pull request (`MSG.NEXT` body): a bare batch size or this JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NextRequest {
    pub batch: i64,
    /// Nanoseconds; 0: never (until the batch is filled).
    pub expires: i64,
    pub max_bytes: i64,
    pub no_wait: bool,
    /// Nanoseconds.
    pub idle_heartbeat: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub min_pending: i64,
    pub min_ack_pending: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub priority: i64,
    /// The JSON form (only it names a priority group).
    #[serde(skip)]
    pub json: bool,
}

impl NextRequest {
    /// Parses a `MSG.NEXT` body as nats-server does: empty is a batch of
    /// one, a bare integer is the batch, else the JSON form.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let one = Self {
            batch: 1,
            ..Self::default()
        };
        if text.starts_with('{') {
            // Clients send `"group":null` and the like: absent, for Go.
            let mut v: serde_json::Value =
                serde_json::from_str(text).map_err(|_| go_struct_error(text))?;
            if let serde_json::Value::Object(map) = &mut v {
                map.retain(|_, v| !v.is_null());
            }
            let mut r: Self = serde_json::from_value(v).map_err(|_| go_struct_error(text))?;
            r.json = true;
            if r.idle_heartbeat > 0 && r.idle_heartbeat.saturating_mul(2) > r.expires {
                return Err("heartbeat value too large".into());
            }
            if r.batch <= 0 {
                r.batch = 1;
            }
            return Ok(r);
        }
        // A bare number is the batch; anything else (nats-server's
        // `strconv.Atoi` failing) a batch of one.
        match text.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Self { batch: n, ..one }),
            _ => Ok(one),
        }
    }
}

/// Go's decoder error for a pull request field of the wrong JSON type
/// (`json: cannot unmarshal string into Go struct field .expires of type
/// time.Duration`), or serde's text for anything else.
fn go_struct_error(text: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return "unexpected end of JSON input".to_string();
    };
    for (field, v) in &map {
        let go_type = match field.as_str() {
            "expires" | "idle_heartbeat" => "time.Duration",
            "no_wait" => "bool",
            "group" | "id" => "string",
            "batch" | "max_bytes" | "priority" => "int",
            "min_pending" | "min_ack_pending" => "int64",
            _ => continue,
        };
        let ok = match go_type {
            "bool" => v.is_boolean(),
            "string" => v.is_string(),
            _ => v.is_i64(),
        };
        if !ok && !v.is_null() {
            let kind = match v {
                serde_json::Value::String(_) => "string",
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
                _ => "number",
            };
            return format!(
                "json: cannot unmarshal {kind} into Go struct field .{field} of type {go_type}"
            );
        }
    }
    "invalid request".to_string()
}

/// What an ack message says (the body published to a `$JS.ACK.` subject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckKind {
    /// `+ACK`, empty, or `+OK`.
    Ack,
    /// `-NAK` with an optional redelivery delay in ns.
    Nak { delay_ns: Option<i64> },
    /// `+WPI`: still working, restart the ack timer.
    Progress,
    /// `+NXT`: ack and send the next batch (the optional request).
    Next(Option<String>),
    /// `+TERM` with an optional reason: never deliver it again.
    Term(String),
}

impl AckKind {
    /// Parses an ack body; `None` for something that is not an ack.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        if text.is_empty() || text == "+ACK" || text == "+OK" {
            return Some(Self::Ack);
        }
        if let Some(rest) = text.strip_prefix("-NAK") {
            let rest = rest.trim();
            if rest.is_empty() {
                return Some(Self::Nak { delay_ns: None });
            }
            #[derive(Deserialize)]
            struct Delay {
                delay: i64,
            }
            if let Ok(d) = serde_json::from_str::<Delay>(rest) {
                return Some(Self::Nak {
                    delay_ns: Some(d.delay),
                });
            }
            return Some(Self::Nak {
                delay_ns: parse_go_duration(rest),
            });
        }
        if text.starts_with("+WPI") {
            return Some(Self::Progress);
        }
        if let Some(rest) = text.strip_prefix("+NXT") {
            let rest = rest.trim();
            return Some(Self::Next((!rest.is_empty()).then(|| rest.to_string())));
        }
        if let Some(rest) = text.strip_prefix("+TERM") {
            return Some(Self::Term(rest.trim().to_string()));
        }
        if text.starts_with("+ACK") {
            return Some(Self::Ack);
        }
        None
    }
}

/// The parts of a `$JS.ACK.` reply subject: v1
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
/// or v2 `$JS.ACK.<domain>.<acc hash>.<stream>.<consumer>.<delivered>.
/// <sseq>.<cseq>.<ts>.<pending>[.<token>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckSubject {
    pub stream: String,
    pub consumer: String,
    pub delivered: u64,
    pub stream_seq: u64,
    pub consumer_seq: u64,
    pub ts_ns: i64,
    pub pending: u64,
}

/// Prefix of every ack subject.
pub const ACK_PREFIX: &str = "$JS.ACK.";

impl AckSubject {
    pub fn parse(subj: &str) -> Option<Self> {
        let rest = subj.strip_prefix(ACK_PREFIX)?;
        let t: Vec<&str> = rest.split('.').collect();
        let (stream, consumer, nums) = match t.len() {
            7 => (t[0], t[1], &t[2..7]),
            9 | 10 => (t[2], t[3], &t[4..9]),
            _ => return None,
        };
        let n = |i: usize| nums[i].parse::<u64>().ok();
        Some(Self {
            stream: stream.to_string(),
            consumer: consumer.to_string(),
            delivered: n(0)?,
            stream_seq: n(1)?,
            consumer_seq: n(2)?,
            ts_ns: nums[3].parse().ok()?,
            pending: n(4)?,
        })
    }

    pub fn render(&self) -> String {
        format!(
            "{ACK_PREFIX}{}.{}.{}.{}.{}.{}.{}",
            self.stream,
            self.consumer,
            self.delivered,
            self.stream_seq,
            self.consumer_seq,
            self.ts_ns,
            self.pending
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_request_forms() {
        assert_eq!(NextRequest::parse(b"5").map(|r| r.batch), Ok(5));
        assert_eq!(NextRequest::parse(b"").map(|r| r.batch), Ok(1));
        let r = NextRequest::parse(br#"{"batch":3,"no_wait":true}"#).unwrap_or_default();
        assert_eq!((r.batch, r.no_wait), (3, true));
        assert_eq!(NextRequest::parse(b"abc").map(|r| r.batch), Ok(1));
        assert_eq!(NextRequest::parse(b"0").map(|r| r.batch), Ok(1));
        assert_eq!(
            NextRequest::parse(br#"{"batch":-1}"#).map(|r| r.batch),
            Ok(1)
        );
        assert!(NextRequest::parse(br#"{"expires":"x"}"#).is_err());
        assert_eq!(
            NextRequest::parse(br#"{"batch":2,"group":null,"min_pending":null}"#).map(|r| r.batch),
            Ok(2)
        );
    }

    #[test]
    fn ack_bodies_and_subjects() {
        assert_eq!(AckKind::parse(b""), Some(AckKind::Ack));
        assert_eq!(AckKind::parse(b"+ACK"), Some(AckKind::Ack));
        assert_eq!(
            AckKind::parse(br#"-NAK {"delay":1000}"#),
            Some(AckKind::Nak {
                delay_ns: Some(1000)
            })
        );
        assert_eq!(
            AckKind::parse(b"+TERM why"),
            Some(AckKind::Term("why".into()))
        );
        let s = "$JS.ACK.S.C.2.10.7.1700000000000000000.3";
        let a = AckSubject::parse(s);
        assert_eq!(
            a.as_ref().map(|a| (a.stream_seq, a.consumer_seq)),
            Some((10, 7))
        );
        assert_eq!(a.map(|a| a.render()).as_deref(), Some(s));
        assert!(
            AckSubject::parse("$JS.ACK._.hash.S.C.1.2.3.4.5.tok").is_some_and(|a| a.stream == "S")
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(120_000_000_000), "2m0s");
        assert_eq!(go_duration(5_000_000), "5ms");
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_go_duration("x"), None);
    }
}
