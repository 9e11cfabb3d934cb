#![allow(dead_code)] // shared by several test binaries, each using a part
//! The differential harness: the same raw request to nats-server (the
//! reference) and to jetraft, replies compared by JSON shape and value
//! except for the listed exclusions; failures are collected and reported
//! together.

use std::time::Duration;

use async_nats::{Client, HeaderMap, Request};
use bytes::Bytes;
use serde_json::Value;

use crate::compare::{Exclusion, Usage, differences, ignore, ignore_value, normalize};
use crate::nats;

/// Paths that legitimately differ in every reply, with the reason.
pub const EXCLUSIONS: &[Exclusion] = &[
    // Wall-clock times: the two servers run at different instants.
    ignore_value("created", "stream creation time (wall clock)"),
    ignore_value("*.created", "stream creation time (wall clock)"),
    ignore_value("ts", "time the info was taken (wall clock)"),
    ignore_value("*.ts", "time the info was taken (wall clock)"),
    ignore_value(
        "*first_ts",
        "time the first message was stored (wall clock)",
    ),
    ignore_value("*last_ts", "time the last message was stored (wall clock)"),
    ignore_value("message.time", "time the message was stored (wall clock)"),
    ignore_value(
        "$headers.Nats-Time-Stamp",
        "time the message was stored (wall clock)",
    ),
    // Topology: nats-server runs standalone (`{"leader":<its random
    // server name>}`), jetraft as a 3-node cluster (name, raft group,
    // replicas): different by construction.
    ignore(
        "cluster*",
        "standalone nats-server vs a 3-node jetraft cluster",
    ),
    ignore(
        "*.cluster*",
        "standalone nats-server vs a 3-node jetraft cluster",
    ),
    // Request counters since server start: nats-server counts every API
    // request (and error) it served, jetraft does not keep these counters.
    ignore_value("api.total", "per-server request counter"),
    ignore_value("api.errors", "per-server error counter"),
    // Account usage: nats-server reports the file store's on-disk bytes
    // (block overhead included), jetraft the sum of stream `state.bytes`.
    ignore_value(
        "storage",
        "account storage usage: store-specific accounting",
    ),
    ignore_value("memory", "account memory usage: store-specific accounting"),
];

/// Same request to both servers, compared; mismatches are collected and
/// reported together at the end.
pub struct Diff {
    pub nats: Client,
    pub ours: Client,
    pub step: usize,
    pub failures: Vec<String>,
    pub usage: Usage,
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, *v);
    }
    h
}

pub async fn send(
    client: &Client,
    subject: &str,
    h: Option<&HeaderMap>,
    payload: &[u8],
    timeout: Duration,
) -> Value {
    let mut req = Request::new()
        .payload(Bytes::copy_from_slice(payload))
        .timeout(Some(timeout));
    if let Some(h) = h {
        req = req.headers(h.clone());
    }
    normalize(client.send_request(subject.to_string(), req).await)
}

impl Diff {
    /// `extra` adds exclusions for this one request.
    pub async fn run(
        &mut self,
        label: &str,
        subject: &str,
        h: Option<HeaderMap>,
        payload: &str,
        extra: &[Exclusion],
    ) -> (Value, Value) {
        // A create waits for the new group's leader; allow for that.
        self.run_timed(label, subject, h, payload, extra, Duration::from_secs(20))
            .await
    }

    /// `timeout` bounds each side's wait (short where no reply is right).
    pub async fn run_timed(
        &mut self,
        label: &str,
        subject: &str,
        h: Option<HeaderMap>,
        payload: &str,
        extra: &[Exclusion],
        timeout: Duration,
    ) -> (Value, Value) {
        self.step += 1;
        let theirs = send(
            &self.nats,
            subject,
            h.as_ref(),
            payload.as_bytes(),
            timeout.min(Duration::from_secs(5)),
        )
        .await;
        let ours = send(&self.ours, subject, h.as_ref(), payload.as_bytes(), timeout).await;
        let exclusions: Vec<Exclusion> = extra.iter().chain(EXCLUSIONS).copied().collect();
        let diffs = differences(&theirs, &ours, &exclusions, &mut self.usage);
        if !diffs.is_empty() {
            let mut report = format!("#{} {label}\n    request: {subject} {payload}\n", self.step);
            for d in diffs {
                report.push_str(&format!("    - {d}\n"));
            }
            report.push_str(&format!(
                "    nats-server: {theirs}\n    jetraft:     {ours}\n"
            ));
            self.failures.push(report);
        }
        (theirs, ours)
    }

    pub async fn req(&mut self, label: &str, subject: &str, payload: &str) -> (Value, Value) {
        self.run(label, subject, None, payload, &[]).await
    }

    /// Like [`req`](Self::req), and checks the reference answered as the
    /// scenario intends (so a typo in the scenario cannot pass silently).
    pub async fn ok(&mut self, label: &str, subject: &str, payload: &str) -> (Value, Value) {
        let r = self.req(label, subject, payload).await;
        assert!(
            r.0.get("error").is_none() && r.0.get("$outcome").is_none(),
            "{label}: nats-server said {}",
            r.0
        );
        r
    }

    /// A deliberate difference: nats-server takes the request, jetraft
    /// refuses it with 500/10052 naming `what` (a setting it does not act
    /// on yet). Only checked, never compared; the stream nats-server made is
    /// deleted again.
    pub async fn refused(&mut self, label: &str, subject: &str, payload: &str, what: &str) {
        let t = Duration::from_secs(5);
        let theirs = send(&self.nats, subject, None, payload.as_bytes(), t).await;
        assert!(
            theirs.get("error").is_none(),
            "{label}: nats-server said {theirs}"
        );
        // Only jetraft's refusal is of interest: nats-server's stream goes
        // again, so later steps compare the same set of streams.
        let name = subject.rsplit('.').next().unwrap_or_default();
        let delete = format!("$JS.API.STREAM.DELETE.{name}");
        let gone = send(&self.nats, &delete, None, b"", t).await;
        assert_eq!(gone["success"], true, "{label}: {gone}");
        let ours = send(&self.ours, subject, None, payload.as_bytes(), t).await;
        let err = &ours["error"];
        if err["code"] != 500
            || err["err_code"] != 10052
            || !err["description"]
                .as_str()
                .is_some_and(|d| d.contains(what) && d.contains("not supported"))
        {
            self.failures.push(format!(
                "{label}: jetraft should refuse {what} with 500/10052, said {ours}"
            ));
        }
    }

    pub async fn err(
        &mut self,
        label: &str,
        subject: &str,
        payload: &str,
        err_code: u64,
    ) -> (Value, Value) {
        let r = self.req(label, subject, payload).await;
        assert_eq!(
            r.0["error"]["err_code"], err_code,
            "{label}: nats-server said {}",
            r.0
        );
        r
    }

    pub async fn publish(
        &mut self,
        label: &str,
        subject: &str,
        h: &[(&str, &str)],
        payload: &str,
    ) -> (Value, Value) {
        let h = (!h.is_empty()).then(|| headers(h));
        self.run(label, subject, h, payload, &[]).await
    }
}

pub async fn connect(url: &str) -> Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .unwrap()
}

/// The reference server, or `None` (with a visible message) when it is not
/// installed; under `CI=true` a missing reference fails the test.
pub async fn reference() -> Option<nats::NatsServer> {
    match nats::NatsServer::start().await {
        Ok(s) => Some(s),
        // CI must not be green because the oracle was missing.
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and the reference is unusable: {why}")
        }
        Err(why) => {
            eprintln!("\n==== SKIPPED: {why} ====\n");
            None
        }
    }
}

impl Diff {
    pub async fn new(reference: &nats::NatsServer, ours: &str) -> Self {
        Diff {
            nats: connect(&reference.url()).await,
            ours: connect(ours).await,
            step: 0,
            failures: Vec::new(),
            usage: Usage::default(),
        }
    }

    /// Prints what was compared and fails with every difference found.
    pub fn finish(self) {
        eprintln!(
            "\n==== differential: {} requests compared, {} differ ====",
            self.step,
            self.failures.len()
        );
        eprintln!("exclusions applied (pattern: times used — why):");
        for (pattern, (e, n)) in &self.usage.0 {
            eprintln!("  {pattern}: {n} — {}", e.why);
        }
        if !self.failures.is_empty() {
            panic!(
                "jetraft differs from nats-server {}:\n\n{}",
                nats::WANTED_VERSION,
                self.failures.join("\n")
            );
        }
    }
}
