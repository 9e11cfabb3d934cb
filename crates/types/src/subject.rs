//! NATS subjects: validation, wildcard matching and filter algebra.
//!
//! Subjects are `.`-separated tokens. In a filter, a token that is exactly
//! `*` matches any one token and a last token that is exactly `>` matches one
//! or more tokens. A token that merely contains `*` or `>` (like `a*`) is a
//! literal, as in nats-server.

/// Token separator.
pub const SEP: char = '.';
/// Single-token wildcard.
pub const PWC: &str = "*";
/// Tail wildcard (one or more tokens), only valid as the last token.
pub const FWC: &str = ">";

/// Splits a subject into its tokens.
pub fn tokens(s: &str) -> std::str::Split<'_, char> {
    s.split(SEP)
}

fn has_whitespace(t: &str) -> bool {
    t.bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c'))
}

/// A subject one can publish to: non-empty tokens, no whitespace, and no
/// wildcard tokens.
pub fn is_valid_subject(s: &str) -> bool {
    !s.is_empty() && tokens(s).all(|t| !t.is_empty() && t != PWC && t != FWC && !has_whitespace(t))
}

/// A subscription or stream filter: non-empty tokens, no whitespace, `*` as
/// any token and `>` only as the last one.
pub fn is_valid_filter(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut saw_fwc = false;
    for t in tokens(s) {
        if t.is_empty() || saw_fwc || has_whitespace(t) {
            return false;
        }
        saw_fwc = t == FWC;
    }
    true
}

/// True if `filter` has any wildcard token.
pub fn has_wildcard(filter: &str) -> bool {
    tokens(filter).any(|t| t == PWC || t == FWC)
}

/// Whether the literal `subject` is matched by `filter`.
///
/// Tokens of `subject` are taken literally, so a `*` token in `subject` is
/// only matched by `*` or `>` in the filter, or a literal `*`.
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut ft = tokens(filter);
    let mut st = tokens(subject);
    loop {
        match (ft.next(), st.next()) {
            (None, None) => return true,
            (Some(FWC), Some(s)) => return !s.is_empty() && st.all(|s| !s.is_empty()),
            (Some(f), Some(s)) => {
                if s.is_empty() || f.is_empty() || (f != PWC && f != s) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether two filters can match at least one common subject. Streams must
/// not have overlapping subjects, or one publish would land in two streams.
pub fn overlaps(a: &str, b: &str) -> bool {
    let mut at = tokens(a);
    let mut bt = tokens(b);
    loop {
        match (at.next(), bt.next()) {
            (None, None) => return true,
            (Some(FWC), Some(_)) | (Some(_), Some(FWC)) => return true,
            (Some(x), Some(y)) => {
                if x != PWC && y != PWC && x != y {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether every subject matched by `sub` is also matched by `sup`.
pub fn is_subset(sub: &str, sup: &str) -> bool {
    let mut st = tokens(sub);
    let mut pt = tokens(sup);
    loop {
        match (st.next(), pt.next()) {
            (None, None) => return true,
            (Some(_), Some(FWC)) => return true,
            (Some(FWC), Some(_)) => return false,
            (Some(PWC), Some(p)) => {
                if p != PWC {
                    return false;
                }
            }
            (Some(s), Some(p)) => {
                if p != PWC && p != s {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_subjects() {
        for ok in ["foo", "foo.bar", "a*.b>", "$JS.API.INFO", "_INBOX.x.y"] {
            assert!(is_valid_subject(ok), "{ok}");
        }
        for bad in [
            "", ".", "foo.", ".foo", "foo..bar", "foo.*", "foo.>", "*", ">", "a b", "a\tb", "a.b\r",
        ] {
            assert!(!is_valid_subject(bad), "{bad:?}");
        }
    }

    #[test]
    fn filters() {
        for ok in [
            "foo", "*", ">", "foo.*", "foo.>", "*.*.>", "foo.*x", "a.>x.b",
        ] {
            assert!(is_valid_filter(ok), "{ok}");
        }
        for bad in ["", "foo.>.bar", ">.a", "foo..*", "foo.", "a b.>", ">.>"] {
            assert!(!is_valid_filter(bad), "{bad:?}");
        }
        assert!(has_wildcard("a.*") && has_wildcard("a.>") && !has_wildcard("a*.b>"));
    }

    #[test]
    fn matching() {
        let cases = [
            ("foo", "foo", true),
            ("foo", "foo.bar", false),
            ("foo.*", "foo.bar", true),
            ("foo.*", "foo", false),
            ("foo.*", "foo.bar.baz", false),
            ("foo.>", "foo.bar.baz", true),
            ("foo.>", "foo", false),
            (">", "a", true),
            (">", "a.b.c", true),
            ("*.b.*", "a.b.c", true),
            ("*.b.*", "a.x.c", false),
            ("a*", "ab", false),
            ("a*", "a*", true),
            ("foo.*", "foo.*", true),
            ("foo.bar", "foo.*", false),
            ("foo.>", "foo..bar", false),
            ("foo.*", "foo.", false),
        ];
        for (f, s, want) in cases {
            assert_eq!(matches(f, s), want, "{f} vs {s}");
        }
    }

    #[test]
    fn overlapping() {
        let cases = [
            ("foo", "foo", true),
            ("foo", "bar", false),
            ("foo.*", "foo.bar", true),
            ("foo.*", "*.bar", true),
            ("foo.*", "foo.*.baz", false),
            ("foo.>", "foo.a.b", true),
            ("foo.>", "foo", false),
            (">", "anything.at.all", true),
            ("a.*.c", "a.b.*", true),
            ("a.*.c", "a.b.d", false),
            ("a*.b", "ab.b", false),
            ("*.>", "a", false),
            ("*.>", "a.b", true),
        ];
        for (a, b, want) in cases {
            assert_eq!(overlaps(a, b), want, "{a} vs {b}");
            assert_eq!(overlaps(b, a), want, "{b} vs {a}");
        }
    }

    #[test]
    fn subsets() {
        let cases = [
            ("foo", "foo", true),
            ("foo.bar", "foo.*", true),
            ("foo.*", "foo.bar", false),
            ("foo.*", "foo.>", true),
            ("foo.>", "foo.*", false),
            ("foo.>", "foo.>", true),
            ("foo.>", ">", true),
            ("foo.*.baz", "*.*.*", true),
            ("foo.*.baz", "foo.*", false),
            ("foo", "foo.>", false),
        ];
        for (sub, sup, want) in cases {
            assert_eq!(is_subset(sub, sup), want, "{sub} in {sup}");
        }
    }

    /// Cross-check the filter algebra against brute-force matching over a
    /// small universe of subjects.
    #[test]
    fn algebra_agrees_with_matching() {
        let alphabet = ["a", "b"];
        let mut subjects = Vec::new();
        for n in 1..=3 {
            let mut cur = vec![String::new()];
            for _ in 0..n {
                cur = cur
                    .iter()
                    .flat_map(|p| {
                        alphabet.iter().map(move |t| {
                            if p.is_empty() {
                                (*t).to_string()
                            } else {
                                format!("{p}.{t}")
                            }
                        })
                    })
                    .collect();
            }
            subjects.extend(cur);
        }
        let filters = [
            "a", "b", "a.b", "*", "*.a", "a.*", "a.>", ">", "*.>", "*.*", "a.*.b", "*.*.*", "b.>",
        ];
        for f in filters {
            for g in filters {
                let common = subjects.iter().any(|s| matches(f, s) && matches(g, s));
                // Depth 3 is deep enough for these filters to witness any overlap.
                assert_eq!(overlaps(f, g), common, "overlaps {f} {g}");
                let subset = subjects.iter().all(|s| !matches(f, s) || matches(g, s));
                assert_eq!(is_subset(f, g), subset, "is_subset {f} {g}");
            }
        }
    }
}
