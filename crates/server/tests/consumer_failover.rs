//! The work-queue scenario: 10,000 jobs in an R3 work-queue
//! stream, four competing pull workers on different nodes acking
//! explicitly (double acks: a confirmed ack is a durable promise), and the
//! stream leader killed with SIGKILL in the middle. Every job is
//! processed at least once, no job whose ack was confirmed is delivered
//! again (no delivery newer than the confirmed one ever arrives: a
//! confirmed ack retired the job's latest delivery, ARCHITECTURE decision
//! 41), and the stream is empty at the end.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, stream};
use common::Cluster;
use futures::StreamExt;

const JOBS: u64 = 10_000;
const WORKERS: usize = 4;
const KILL_AFTER: usize = 3_000;
const DEADLINE: Duration = Duration::from_secs(150);

#[derive(Default)]
struct Ledger {
    /// Stream sequence → the delivery count whose ack the server confirmed.
    confirmed: BTreeMap<u64, u64>,
    /// Deliveries of a sequence after its ack was confirmed.
    violations: Vec<String>,
    /// Deliveries per sequence.
    seen: BTreeMap<u64, u32>,
    /// The stream was seen empty: every job retired.
    drained: bool,
}

async fn client(urls: &[String], first: usize) -> async_nats::Client {
    let mut order: Vec<String> = urls[first..].to_vec();
    order.extend_from_slice(&urls[..first]);
    let addrs: Vec<async_nats::ServerAddr> = order.iter().map(|u| u.parse().unwrap()).collect();
    async_nats::ConnectOptions::new()
        .retain_servers_order()
        .request_timeout(Some(Duration::from_secs(3)))
        .connect(addrs)
        .await
        .unwrap()
}

async fn worker(urls: Vec<String>, first: usize, ledger: Arc<Mutex<Ledger>>) {
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(3))
        .build(client(&urls, first).await);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        if ledger.lock().unwrap().drained {
            return;
        }
        let Ok(mut s) = js.get_stream("JOBS").await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if ledger.lock().unwrap().seen.len() as u64 >= JOBS
            && s.info().await.is_ok_and(|i| i.state.messages == 0)
        {
            ledger.lock().unwrap().drained = true;
            return;
        }
        let Ok(c) = s.get_consumer::<pull::Config>("workers").await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let c: PullConsumer = c;
        let Ok(mut batch) = c
            .fetch()
            .max_messages(50)
            .expires(Duration::from_millis(800))
            .messages()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while let Some(m) = batch.next().await {
            let Ok(m) = m else { break };
            let Ok(info) = m.info() else { continue };
            let seq = info.stream_sequence;
            {
                let mut l = ledger.lock().unwrap();
                *l.seen.entry(seq).or_default() += 1;
                if let Some(c) = l.confirmed.get(&seq).copied()
                    && info.delivered as u64 > c
                {
                    l.violations.push(format!(
                        "seq {seq} delivered again (delivery {}) after the ack of delivery {c} \
                         was confirmed",
                        info.delivered
                    ));
                }
            }
            let delivered = info.delivered as u64;
            if m.double_ack().await.is_ok() {
                let mut l = ledger.lock().unwrap();
                let c = l.confirmed.entry(seq).or_default();
                *c = (*c).max(delivered);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_queue_survives_a_leader_kill_mid_consumption() {
    let mut c = Cluster::start(3, &[]).await;
    let urls = c.urls();
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client(&urls, 0).await);
    js.create_stream(stream::Config {
        name: "JOBS".into(),
        subjects: vec!["jobs.>".into()],
        num_replicas: 3,
        retention: stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut acks = Vec::new();
    for i in 0..JOBS {
        acks.push(
            js.publish(format!("jobs.{}", i % 16), format!("job-{i}").into())
                .await
                .unwrap(),
        );
        if acks.len() == 256 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    js.get_stream("JOBS")
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some("workers".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(2),
            ..Default::default()
        })
        .await
        .unwrap();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| tokio::spawn(worker(urls.clone(), i % 3, ledger.clone())))
        .collect();
    // Mid-way, kill the stream's leader (its consumer's leader too).
    loop {
        if ledger.lock().unwrap().confirmed.len() >= KILL_AFTER {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = c.leader_of("JOBS").await.unwrap();
    c.nodes[leader].kill();
    eprintln!(
        "killed the leader {} after {} confirmed acks",
        c.nodes[leader].name,
        ledger.lock().unwrap().confirmed.len()
    );
    for w in workers {
        w.await.unwrap();
    }
    {
        let l = ledger.lock().unwrap();
        assert!(
            l.violations.is_empty(),
            "{:?}",
            &l.violations[..l.violations.len().min(10)]
        );
        let missing: Vec<u64> = (1..=JOBS).filter(|s| !l.seen.contains_key(s)).collect();
        assert!(
            missing.is_empty(),
            "never delivered: {:?}",
            &missing[..missing.len().min(10)]
        );
        assert!(l.drained, "the work queue was not drained in {DEADLINE:?}");
        let again = l.seen.values().filter(|n| **n > 1).count();
        eprintln!(
            "{} acks confirmed; {again} jobs were delivered more than once (acks lost or \
             superseded in the failover)",
            l.confirmed.len()
        );
        assert!(
            l.confirmed.len() as u64 > JOBS * 9 / 10,
            "most acks are confirmed"
        );
    }
    // Every job left the stream, as the surviving replicas say.
    let alive = (0..3).find(|i| *i != leader).unwrap();
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client(&urls, alive).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut s = js.get_stream("JOBS").await.unwrap();
        let state = s.info().await.unwrap().state.clone();
        if state.messages == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream not empty: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
