//! Consumers under faults: a work queue (`JOBS`, R3, work-queue retention)
//! fed by one producer and drained by a pull worker on every node, each
//! acking jobs with a double ack (a reply means committed) except one
//! delivery in seven, which it drops as if it died holding it. The
//! checker then holds the server to its consumer promises (decision 41):
//! a confirmed ack is never undone, nothing is skipped, every replica
//! ends with the same consumer state and exact counts.

use std::time::Duration;

use serde_json::Value;

use crate::client::{Client, Msg};
use crate::history::{JobAck, JobDelivery, SharedHistory, now};
use crate::workload::{self, Conn, Failure};

pub const JOBS_STREAM: &str = "JOBS";
pub const CONSUMER: &str = "W";
/// Redelivery after this long unacknowledged.
pub const ACK_WAIT: Duration = Duration::from_secs(2);
const JOB_EVERY: Duration = Duration::from_millis(250);
const PULL_BATCH: u64 = 5;
const PULL_EXPIRES: Duration = Duration::from_secs(1);

fn stream_config(replicas: usize) -> String {
    serde_json::json!({
        "name": JOBS_STREAM,
        "subjects": ["jobs.>"],
        "retention": "workqueue",
        "num_replicas": replicas,
    })
    .to_string()
}

fn consumer_config() -> String {
    serde_json::json!({
        "stream_name": JOBS_STREAM,
        "config": {
            "durable_name": CONSUMER,
            "ack_policy": "explicit",
            "ack_wait": ACK_WAIT.as_nanos() as u64,
        }
    })
    .to_string()
}

/// Creates the work queue and its consumer, then publishes a job every
/// [`JOB_EVERY`] until `until`, recording the ones the stream acked.
pub async fn run_producer(
    nodes: Vec<String>,
    replicas: usize,
    until: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    let mut conn = Conn::new("jobs".into(), nodes, 0);
    workload::create_stream(
        &mut conn,
        JOBS_STREAM,
        &stream_config(replicas),
        until,
        &hist,
    )
    .await;
    let create = format!("$JS.API.CONSUMER.CREATE.{JOBS_STREAM}.{CONSUMER}");
    let body = consumer_config();
    while now() < until {
        match conn.request(&create, &[], body.as_bytes()).await {
            Ok(m) if !is_error(&m) => {
                hist.borrow_mut()
                    .event(now(), format!("consumer {CONSUMER} created"));
                break;
            }
            Err(Failure::Timeout) => conn.rotate(),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut n = 0u64;
    while now() < until {
        n += 1;
        let body = format!("job-{n}");
        if let Ok(m) = conn
            .request(&format!("jobs.{}", n % 4), &[], body.as_bytes())
            .await
            && let Some(seq) = pub_ack_seq(&m)
        {
            hist.borrow_mut().job_pubs.push((seq, now()));
        }
        tokio::time::sleep(JOB_EVERY).await;
    }
    Ok(())
}

fn is_error(m: &Msg) -> bool {
    serde_json::from_slice::<Value>(&m.payload)
        .map(|v| v.get("error").is_some())
        .unwrap_or(true)
}

fn pub_ack_seq(m: &Msg) -> Option<u64> {
    let v: Value = serde_json::from_slice(&m.payload).ok()?;
    if v.get("error").is_some() {
        return None;
    }
    v.get("seq")?.as_u64()
}

/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
/// → (sseq, delivered).
fn ack_parts(reply: &str) -> Option<(u64, u64)> {
    let t: Vec<&str> = reply.split('.').collect();
    if t.len() != 9 {
        return None;
    }
    Some((t[5].parse().ok()?, t[4].parse().ok()?))
}

/// A worker on `node` (moving to the next node when its own is down):
/// pulls a few jobs at a time and double-acks each, until after the final
/// heal.
pub async fn run_worker(idx: usize, nodes: Vec<String>, hist: SharedHistory) -> turmoil::Result {
    let mut at = idx;
    let mut connects = 0u64;
    while !crate::core::finished(&hist) {
        connects += 1;
        let node = nodes[at % nodes.len()].clone();
        let name = format!("w{idx}x{connects}");
        let Some(c) = crate::core::connect(&node, &name).await else {
            at += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let inbox = format!("_PULL.{name}");
        let Ok(mut rx) = c.subscribe(&inbox, None) else {
            continue;
        };
        let pull = format!("$JS.API.CONSUMER.MSG.NEXT.{JOBS_STREAM}.{CONSUMER}");
        let request = format!(
            r#"{{"batch":{PULL_BATCH},"expires":{}}}"#,
            PULL_EXPIRES.as_nanos()
        );
        while !crate::core::finished(&hist) && !c.is_closed() {
            if c.publish_with_reply(&pull, &inbox, request.as_bytes())
                .is_err()
            {
                break;
            }
            // Until the request is done: its batch, a status, or silence.
            let mut got = 0;
            while got < PULL_BATCH {
                let msg = tokio::select! {
                    m = rx.recv() => m,
                    _ = tokio::time::sleep(PULL_EXPIRES + Duration::from_secs(1)) => None,
                };
                let Some(msg) = msg else { break };
                if msg.status.is_some() {
                    break;
                }
                got += 1;
                work(&c, &name, &msg, &hist).await;
            }
            if got == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}

async fn work(c: &Client, worker: &str, msg: &Msg, hist: &SharedHistory) {
    let Some((seq, delivered)) = msg.reply.as_deref().and_then(ack_parts) else {
        return;
    };
    hist.borrow_mut().job_deliveries.push(JobDelivery {
        worker: worker.to_string(),
        seq,
        delivered,
        at: now(),
    });
    // One delivery in seven is dropped unacked, as by a worker that died
    // with it: it must come again after its ack wait.
    if (seq + delivered) % 7 == 0 {
        return;
    }
    let Some(reply) = &msg.reply else { return };
    if c.request(reply, &[], b"+ACK", Duration::from_secs(2))
        .await
        .is_ok()
    {
        hist.borrow_mut().job_acks.push(JobAck {
            seq,
            delivered,
            at: now(),
        });
    }
}
