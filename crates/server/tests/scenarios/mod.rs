//! What the consumer scenarios share: the clients of one side, streams
//! to consume, and how a message is written down for comparison.
#![allow(dead_code)]

pub mod pacing;
pub mod priority;
pub mod push;

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, stream};
use async_nats::{Client, Subscriber};
use futures::StreamExt;

/// What one scenario saw, line by line.
pub type Seen = Vec<String>;

pub struct Side {
    /// Clients on different nodes (the same server for the reference).
    pub clients: Vec<Client>,
}

impl Side {
    pub async fn new(urls: &[String]) -> Self {
        let mut clients = Vec::new();
        for u in urls {
            clients.push(
                async_nats::ConnectOptions::new()
                    .request_timeout(Some(Duration::from_secs(5)))
                    .connect(u)
                    .await
                    .unwrap(),
            );
        }
        Self { clients }
    }

    pub fn js(&self, i: usize) -> jetstream::Context {
        jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(self.clients[i % self.clients.len()].clone())
    }

    pub fn client(&self, i: usize) -> &Client {
        &self.clients[i % self.clients.len()]
    }
}

pub async fn make_stream(
    js: &jetstream::Context,
    name: &str,
    retention: stream::RetentionPolicy,
    subjects: &[&str],
) {
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        retention,
        ..Default::default()
    })
    .await
    .unwrap();
    for s in subjects {
        js.publish(format!("{}.{s}", name.to_lowercase()), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

pub fn describe(m: &async_nats::Message) -> String {
    match m.status {
        Some(s) => {
            let mut h: Vec<String> = m
                .headers
                .iter()
                .flat_map(|h| h.iter())
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(",")
                    )
                })
                .filter(|kv| !kv.starts_with("Nats-Last-"))
                .collect();
            h.sort();
            format!(
                "status {} {} {h:?}",
                s.as_u16(),
                m.description.clone().unwrap_or_default()
            )
        }
        None => {
            let ack = m.reply.as_deref().unwrap_or("");
            let t: Vec<&str> = ack.split('.').collect();
            // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
            let parts = if t.len() == 9 {
                format!("d{} s{} c{} p{}", t[4], t[5], t[6], t[8])
            } else {
                ack.to_string()
            };
            format!("msg {} {parts} {}b", m.subject, m.payload.len())
        }
    }
}

pub async fn next(sub: &mut Subscriber) -> String {
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        Ok(Some(m)) => describe(&m),
        _ => "nothing within 5 s".into(),
    }
}

/// Messages on `sub` until a status arrives or `n` data messages came.
pub async fn until_status(sub: &mut Subscriber, n: usize, seen: &mut Seen) {
    let mut data = 0;
    while data < n {
        let line = next(sub).await;
        let status = !line.starts_with("msg ");
        seen.push(line);
        if status {
            return;
        }
        data += 1;
    }
}

pub async fn info(c: &mut PullConsumer) -> String {
    let i = c.info().await.unwrap();
    format!(
        "delivered c{} s{} floor c{} s{} ack_pending {} redelivered {} waiting {} pending {}",
        i.delivered.consumer_sequence,
        i.delivered.stream_sequence,
        i.ack_floor.consumer_sequence,
        i.ack_floor.stream_sequence,
        i.num_ack_pending,
        i.num_redelivered,
        i.num_waiting,
        i.num_pending
    )
}

/// RFC 3339 from a `SystemTime`, without a date crate: through jetraft's
/// own formatter.
pub mod chrono_like {
    pub struct Rfc3339(pub String);
    impl From<std::time::SystemTime> for Rfc3339 {
        fn from(t: std::time::SystemTime) -> Self {
            let ns = t
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            Rfc3339(jetraft_types::rfc3339::format_ns(ns))
        }
    }
}
