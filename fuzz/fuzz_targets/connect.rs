//! `ConnectOptions::parse` (the CONNECT JSON) on arbitrary bytes.
//!
//! Checked: no panic; an accepted CONNECT satisfies what `parse` promises
//! (protocol 0 or 1, no_responders only with headers); every field takes
//! the value the JSON gives it and a missing one nats-server's default
//! (compared with a reading of the same bytes where every field is
//! optional); parsing is deterministic.

#![no_main]

use jetraft_gateway::proto::ConnectOptions;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// The known fields, each optional (`None`: not in the JSON). Unknown
/// fields are ignored, as by `ConnectOptions`.
#[derive(Deserialize)]
struct Given {
    verbose: Option<bool>,
    pedantic: Option<bool>,
    echo: Option<bool>,
    headers: Option<bool>,
    no_responders: Option<bool>,
    protocol: Option<i64>,
    name: Option<String>,
    lang: Option<String>,
    version: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    let parsed = ConnectOptions::parse(data);
    assert_eq!(parsed, ConnectOptions::parse(data), "deterministic");
    let o = match parsed {
        Ok(o) => o,
        Err(e) => {
            let _ = (e.err_text(), e.to_string());
            return;
        }
    };
    assert!((0..=1).contains(&o.protocol), "protocol {}", o.protocol);
    assert!(!o.no_responders || o.headers);
    // serde also takes a struct as an array of its fields in order, so
    // `CONNECT []` is accepted (nats-server's decoder refuses it; see
    // README.md, findings). Only objects are compared field by field.
    if data.trim_ascii_start().first() != Some(&b'{') {
        assert_eq!(data.trim_ascii_start().first(), Some(&b'['));
        return;
    }
    let g: Given = serde_json::from_slice(data).expect("the same JSON with optional fields");
    let d = ConnectOptions::default();
    assert_eq!(o.verbose, g.verbose.unwrap_or(d.verbose));
    assert_eq!(o.pedantic, g.pedantic.unwrap_or(d.pedantic));
    assert_eq!(o.echo, g.echo.unwrap_or(d.echo));
    assert_eq!(o.headers, g.headers.unwrap_or(d.headers));
    assert_eq!(o.no_responders, g.no_responders.unwrap_or(d.no_responders));
    assert_eq!(o.protocol, g.protocol.unwrap_or(d.protocol));
    assert_eq!(o.name, g.name);
    assert_eq!(o.lang, g.lang);
    assert_eq!(o.version, g.version);
});
