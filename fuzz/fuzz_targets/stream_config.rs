//! JetStream API request bodies as the server reads them: the stream
//! config of `STREAM.CREATE` / `STREAM.UPDATE` with nats-server's
//! validation (`normalize_for_create`, `normalize`, `check_update`,
//! `set_static_metadata`), the other `STREAM.*` requests with their checks
//! (`PurgeRequest::validate`, `MsgGetRequest::query`), and `StreamInfo`
//! (RFC 3339 times).
//!
//! The input is one request body, fed to every decoder. Checked: no panic;
//! a config the server accepts is valid (name, replicas, limits, windows,
//! subjects valid and not overlapping); validation is idempotent (a stored
//! config passes again unchanged); an accepted config round-trips through
//! the JSON the server stores and forwards (`serialize` -> `deserialize` is
//! the identity, through both decoders the server uses); updating a stream
//! with the body that created it succeeds and changes nothing; accepted
//! requests of the other kinds round-trip too.

#![no_main]

use std::fmt::Debug;

use jetraft_types::api::{
    MsgDeleteRequest, MsgGetQuery, MsgGetRequest, PurgeRequest, StreamInfoRequest,
    StreamNamesRequest,
};
use jetraft_types::config::{self, StreamConfig, StreamInfo};
use jetraft_types::subject;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

// ---- the server's request decoding ----
//
// A copy of `parse_body` / `parse_json` / `strip_nulls` in
// crates/server/src/jsapi/mod.rs (without the Go-style error texts): the
// server crate is not a dependency of the fuzzer (it brings RocksDB,
// openraft and tokio). Keep the two in step.

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn parse_json<T: DeserializeOwned>(payload: &[u8]) -> Option<T> {
    let mut value: Value = serde_json::from_slice(payload).ok()?;
    strip_nulls(&mut value);
    serde_json::from_value(value).ok()
}

fn parse_body<T: DeserializeOwned + Default>(payload: &[u8]) -> Option<T> {
    if payload.iter().all(u8::is_ascii_whitespace) || payload.trim_ascii() == b"null" {
        return Some(T::default());
    }
    parse_json(payload)
}

// ---- properties ----

/// `serialize` -> `deserialize` is the identity, through the strict decoder
/// and (`api`: for request bodies) through the API's `parse_json`.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(what: &str, v: &T, api: bool) {
    let json = serde_json::to_vec(v).expect("serialises");
    let back: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "{what}: own JSON does not decode: {e}: {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(&back, v, "{what}: {}", String::from_utf8_lossy(&json));
    if api {
        let back: T = parse_json(&json).expect("decodes through the API path");
        assert_eq!(&back, v, "{what} via parse_json");
    }
}

/// What `normalize` promises of a config it returns.
fn check_valid(c: &StreamConfig) {
    assert!(config::is_valid_stream_name(&c.name), "{:?}", c.name);
    assert!(c.name.len() <= config::MAX_NAME_LEN);
    assert!(
        c.description
            .as_ref()
            .is_none_or(|d| d.len() <= config::MAX_DESCRIPTION_LEN)
    );
    assert!((1..=config::MAX_REPLICAS).contains(&c.num_replicas));
    for limit in [
        c.max_msgs,
        c.max_msgs_per_subject,
        c.max_bytes,
        c.max_msg_size,
        c.max_consumers,
    ] {
        assert!(limit == -1 || limit > 0, "limit {limit}");
    }
    assert!(c.max_age == 0 || c.max_age >= config::MIN_WINDOW_NS);
    assert!(c.duplicate_window >= 0);
    assert!(c.max_age == 0 || c.duplicate_window <= c.max_age);
    assert!(!c.pedantic);
    assert!(!(c.deny_purge && c.allow_rollup_hdrs));
    let sourced = c.mirror.is_some() || c.sources.as_ref().is_some_and(|s| !s.is_empty());
    assert!(sourced || !c.subjects.is_empty(), "no subjects");
    for (i, s) in c.subjects.iter().enumerate() {
        assert!(subject::is_valid_filter(s), "{s:?}");
        for o in &c.subjects[i + 1..] {
            assert!(!subject::overlaps(s, o), "{s:?} overlaps {o:?}");
        }
    }
}

/// A stored stream to update against, normalised.
fn olds() -> Vec<StreamConfig> {
    let mut out = Vec::new();
    for json in [
        r#"{"name":"S","subjects":["s.>"]}"#,
        r#"{"name":"S","subjects":["s.>"],"storage":"memory","num_replicas":3}"#,
        r#"{"name":"S","retention":"workqueue","deny_delete":true,"deny_purge":true}"#,
        r#"{"name":"S","allow_msg_counter":true,"persist_mode":"async"}"#,
    ] {
        let c: StreamConfig = serde_json::from_str(json).expect("seed config");
        let mut c = c.normalize().expect("seed config is valid");
        c.set_static_metadata();
        out.push(c);
    }
    out
}

fn stream_config(data: &[u8], olds: &[StreamConfig]) {
    // The strict decoder (a node reading a peer's STREAM.INFO uses it).
    if let Ok(c) = serde_json::from_slice::<StreamConfig>(data) {
        let _ = c.normalize();
    }
    let Some(raw) = parse_body::<StreamConfig>(data) else {
        return;
    };
    let normalized = raw.clone().normalize();
    if let Ok(n) = &normalized {
        check_valid(n);
        assert_eq!(
            n.clone().normalize().as_ref(),
            Ok(n),
            "normalize is idempotent"
        );
        round_trip("normalized config", n, true);
        let _ = n.refuse_unhonoured();
    }
    // STREAM.CREATE
    let created = raw.clone().normalize_for_create();
    if let Ok(c) = created {
        assert_eq!(
            normalized.as_ref(),
            Ok(&c),
            "create stores what normalize returns"
        );
        let mut stored = c;
        stored.set_static_metadata();
        round_trip("created config", &stored, true);
        // STREAM.UPDATE with the body that created it.
        let updated = StreamConfig::check_update(&stored, raw.clone())
            .unwrap_or_else(|e| panic!("updating with the create body refused: {e}"));
        let mut updated = updated;
        updated.set_static_metadata();
        assert_eq!(updated, stored, "updating with the create body changed it");
        round_trip(
            "stream info config",
            &stored.clone().with_dynamic_metadata(),
            true,
        );
    }
    // STREAM.UPDATE against some stored streams.
    for old in olds {
        if let Ok(mut u) = StreamConfig::check_update(old, raw.clone()) {
            check_valid(&u);
            u.set_static_metadata();
            round_trip("updated config", &u, true);
        }
    }
}

fn other_requests(data: &[u8]) {
    if let Some(r) = parse_body::<PurgeRequest>(data) {
        if r.validate().is_ok() {
            assert!(r.seq.unwrap_or(0) == 0 || r.keep.unwrap_or(0) == 0);
        }
        round_trip("purge request", &r, true);
    }
    if let Some(r) = parse_body::<MsgGetRequest>(data) {
        match r.query() {
            Ok(MsgGetQuery::Seq(s)) => assert!(s > 0),
            Ok(MsgGetQuery::LastBySubject(s)) => assert!(!s.is_empty()),
            Ok(MsgGetQuery::NextBySubject { filter, .. }) => assert!(!filter.is_empty()),
            Err(e) => assert_eq!(e.err_code, 10003),
        }
        round_trip("msg get request", &r, true);
    }
    if let Some(r) = parse_body::<StreamInfoRequest>(data) {
        round_trip("stream info request", &r, true);
    }
    if let Some(r) = parse_body::<StreamNamesRequest>(data) {
        round_trip("stream names request", &r, true);
    }
    if let Some(r) = parse_json::<MsgDeleteRequest>(data) {
        round_trip("msg delete request", &r, true);
    }
    if let Ok(mut info) = serde_json::from_slice::<StreamInfo>(data) {
        // An info's config is a stored (normalised) one: never pedantic,
        // which is not serialised.
        info.config.pedantic = false;
        round_trip("stream info", &info, false);
    }
}

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static OLDS: Vec<StreamConfig> = olds();
    }
    OLDS.with(|olds| stream_config(data, olds));
    other_requests(data);
});
