//! Turns a reply into one JSON value and compares two of them: first the
//! shape (every key path, array elements by their shape), then the values,
//! except where an [`Exclusion`] says a path legitimately differs.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::{Message, RequestError, RequestErrorKind};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Neither the path's presence nor its value is compared.
    Ignore,
    /// The path must be present on both sides; its value may differ.
    IgnoreValue,
}

/// A path (glob: `*` matches any run of characters, array indices are
/// written `[]`) whose difference is expected, and why.
#[derive(Debug, Clone, Copy)]
pub struct Exclusion {
    pub pattern: &'static str,
    pub rule: Rule,
    pub why: &'static str,
}

pub const fn ignore(pattern: &'static str, why: &'static str) -> Exclusion {
    Exclusion {
        pattern,
        rule: Rule::Ignore,
        why,
    }
}

pub const fn ignore_value(pattern: &'static str, why: &'static str) -> Exclusion {
    Exclusion {
        pattern,
        rule: Rule::IgnoreValue,
        why,
    }
}

/// One reply as a JSON object: the body's own keys (when it is a JSON
/// object), plus `$`-keys for what is not JSON: `$outcome` when no message
/// came back, `$status`/`$description` for a status line, `$headers` for
/// headers, `$payload` for a non-JSON body.
pub fn normalize(reply: Result<Message, RequestError>) -> Value {
    let mut out = Map::new();
    let msg = match reply {
        Ok(m) => m,
        Err(e) => {
            let outcome = match e.kind() {
                RequestErrorKind::NoResponders => "no responders".to_string(),
                RequestErrorKind::TimedOut => "timed out".to_string(),
                other => format!("request error: {other:?}"),
            };
            out.insert("$outcome".into(), Value::String(outcome));
            return Value::Object(out);
        }
    };
    if let Some(status) = msg.status {
        out.insert("$status".into(), Value::from(status.as_u16()));
    }
    if let Some(d) = &msg.description {
        out.insert("$description".into(), Value::String(d.clone()));
    }
    if let Some(h) = msg.headers.as_ref().filter(|h| !h.is_empty()) {
        let headers: Map<String, Value> = h
            .iter()
            .map(|(k, vs)| {
                let joined = vs.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ");
                (k.to_string(), Value::String(joined))
            })
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        out.insert("$headers".into(), Value::Object(headers));
    }
    if !msg.payload.is_empty() {
        match serde_json::from_slice::<Value>(&msg.payload) {
            Ok(Value::Object(body)) => out.extend(body),
            Ok(other) => {
                out.insert("$json".into(), other);
            }
            Err(_) => {
                out.insert(
                    "$payload".into(),
                    Value::String(String::from_utf8_lossy(&msg.payload).into()),
                );
            }
        }
    }
    Value::Object(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Object,
    Array(usize),
    Leaf(Value),
}

fn flatten(v: &Value, path: &str, out: &mut BTreeMap<String, Node>) {
    match v {
        Value::Object(map) => {
            if !path.is_empty() {
                out.insert(path.to_string(), Node::Object);
            }
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(child, &p, out);
            }
        }
        Value::Array(items) => {
            out.insert(path.to_string(), Node::Array(items.len()));
            for (i, child) in items.iter().enumerate() {
                flatten(child, &format!("{path}[{i}]"), out);
            }
        }
        leaf => {
            out.insert(path.to_string(), Node::Leaf(leaf.clone()));
        }
    }
}

/// `a[3].b[0]` -> `a[].b[]`.
fn shape_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// Records which exclusions were used, so the run can list them.
#[derive(Default)]
pub struct Usage(pub BTreeMap<&'static str, (Exclusion, usize)>);

impl Usage {
    fn rule_for(&mut self, shape: &str, exclusions: &[Exclusion]) -> Option<Rule> {
        let e = exclusions.iter().find(|e| glob(e.pattern, shape))?;
        self.0.entry(e.pattern).or_insert((*e, 0)).1 += 1;
        Some(e.rule)
    }
}

fn show(n: Option<&Node>) -> String {
    match n {
        None => "(absent)".into(),
        Some(Node::Object) => "{..}".into(),
        Some(Node::Array(n)) => format!("[{n} elements]"),
        Some(Node::Leaf(v)) => v.to_string(),
    }
}

/// Every difference between the two replies that no exclusion covers, one
/// readable line each; empty when they agree.
pub fn differences(
    nats: &Value,
    ours: &Value,
    exclusions: &[Exclusion],
    usage: &mut Usage,
) -> Vec<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten(nats, "", &mut a);
    flatten(ours, "", &mut b);
    let shapes =
        |m: &BTreeMap<String, Node>| m.keys().map(|p| shape_of(p)).collect::<BTreeSet<_>>();
    let (sa, sb) = (shapes(&a), shapes(&b));
    let mut out = Vec::new();
    for s in sa.symmetric_difference(&sb) {
        // Missing is a shape difference unless the path is ignored outright.
        if usage.rule_for(s, exclusions) == Some(Rule::Ignore) {
            continue;
        }
        let side = if sa.contains(s) {
            "only in nats-server"
        } else {
            "only in jetraft"
        };
        let example = a
            .iter()
            .chain(b.iter())
            .find(|(p, _)| shape_of(p) == *s)
            .map(|(_, n)| n);
        out.push(format!("shape  {s}: {side} (value {})", show(example)));
    }
    for (path, na) in &a {
        let Some(nb) = b.get(path) else { continue };
        if na == nb {
            continue;
        }
        // Object vs object is equal above; different kinds are a shape
        // difference and must be reported even for value-only exclusions.
        let same_kind = std::mem::discriminant(na) == std::mem::discriminant(nb);
        match usage.rule_for(&shape_of(path), exclusions) {
            Some(Rule::Ignore) => continue,
            Some(Rule::IgnoreValue) if same_kind => continue,
            _ => {}
        }
        out.push(format!(
            "value  {path}: nats-server {} | jetraft {}",
            show(Some(na)),
            show(Some(nb))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_and_shapes() {
        assert!(glob("*.ts", "streams[].ts"));
        assert!(glob("cluster*", "cluster.replicas[].name"));
        assert!(!glob("ts", "first_ts"));
        assert_eq!(
            shape_of("streams[12].config.subjects[0]"),
            "streams[].config.subjects[]"
        );
    }

    #[test]
    fn reports_shape_and_value_differences() {
        let mut usage = Usage::default();
        let a = json!({"seq": 1, "ts": "x", "list": [{"k": 1}], "cluster": {"leader": "a"}});
        let b = json!({"seq": 2, "ts": "y", "list": [{"k": 1, "extra": true}], "cluster": {}});
        let ex = [ignore_value("ts", "clock"), ignore("cluster*", "topology")];
        let d = differences(&a, &b, &ex, &mut usage);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].contains("list[].extra") && d[0].contains("only in jetraft"),
            "{d:?}"
        );
        assert!(d[1].contains("seq: nats-server 1 | jetraft 2"), "{d:?}");
        assert!(differences(&a, &a, &[], &mut usage).is_empty());
    }
}
