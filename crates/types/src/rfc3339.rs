//! RFC 3339 timestamps as nats-server writes them (Go's `RFC3339Nano`):
//! UTC, `Z`, fractional seconds with trailing zeros trimmed, and Go's zero
//! `time.Time` as `0001-01-01T00:00:00Z`.
//!
//! jetraft keeps times as `i64` Unix nanoseconds stamped by the leader; the
//! value `0` stands for Go's zero time (an unset timestamp such as the
//! `first_ts` of an empty stream), since no proposal is ever stamped at the
//! epoch. Hand-written so the engine needs no clock or time crate.

/// Go's zero time, which nats-server sends for unset timestamps.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Formats Unix nanoseconds; `0` becomes [`ZERO_TIME`].
pub fn format_ns(unix_ns: i64) -> String {
    if unix_ns == 0 {
        return ZERO_TIME.to_string();
    }
    let secs = unix_ns.div_euclid(NANOS_PER_SEC);
    let nanos = unix_ns.rem_euclid(NANOS_PER_SEC);
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses an RFC 3339 timestamp (any offset, optional fraction) into Unix
/// nanoseconds; [`ZERO_TIME`] (and any year-1 instant) parses to `0`.
pub fn parse_ns(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let mut padded = digits.chars().take(9).collect::<String>();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().ok()?;
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let off = oh * 3600 + om * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    if y == 1 && mo == 1 && d == 1 && h == 0 && mi == 0 && se == 0 && nanos == 0 {
        return Some(0);
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * SECS_PER_DAY + h * 3600 + mi * 60 + se - offset_secs;
    secs.checked_mul(NANOS_PER_SEC)?.checked_add(nanos)
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `#[serde(with = "jetraft_types::rfc3339::serde_ns")]` for `i64` Unix ns.
pub mod serde_ns {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ns: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_ns(*ns))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_ns(&s).ok_or_else(|| D::Error::custom(format!("invalid RFC 3339 time {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(format_ns(0), ZERO_TIME);
        assert_eq!(format_ns(1), "1970-01-01T00:00:00.000000001Z");
        // 2026-11-25T01:21:39.39277622Z as printed by nats-server.
        let ns = 1_795_569_699_392_776_220;
        assert_eq!(format_ns(ns), "2026-11-25T01:21:39.39277622Z");
        assert_eq!(
            format_ns(951_782_400 * NANOS_PER_SEC),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn parse_round_trips_and_handles_offsets() {
        for ns in [
            1,
            999,
            1_795_569_699_392_776_220,
            951_782_400 * NANOS_PER_SEC,
        ] {
            assert_eq!(parse_ns(&format_ns(ns)), Some(ns));
        }
        assert_eq!(parse_ns(ZERO_TIME), Some(0));
        assert_eq!(parse_ns("1970-01-01T01:00:01+01:00"), Some(NANOS_PER_SEC));
        assert_eq!(
            parse_ns("1970-01-01T00:00:01.5-00:30"),
            Some(1_801_500_000_000)
        );
        assert_eq!(parse_ns("garbage"), None);
        assert_eq!(parse_ns("2020-13-01T00:00:00Z"), None);
    }
}
