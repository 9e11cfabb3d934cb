//! Consumer benchmarks: pull workers sharing a durable consumer with
//! explicit acks (throughput), and the round trip of a double ack
//! (latency until the server committed the ack).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use hdrhistogram::Histogram;

use crate::BenchArgs;
use crate::modes::{histogram, micros};
use crate::now;

const FETCH_BATCH: usize = 100;

async fn durable(js: &jetstream::Context, args: &BenchArgs) -> Result<()> {
    js.get_stream(&args.stream)
        .await?
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await
        .context("creating a pull consumer")?;
    Ok(())
}

/// The worker's JetStream context: its own connection, on the node of
/// `--urls` its number picks.
async fn worker_context(args: &BenchArgs, i: usize) -> Result<jetstream::Context> {
    let url = match args.urls.len() {
        0 => args.url.clone(),
        n => args.urls[i % n].clone(),
    };
    let c = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(jetstream::new(c))
}

/// `--workers` workers fetch and ack until the warm-up and `--msgs` are
/// consumed; each message's wait since its worker's previous one.
pub(crate) async fn pull(
    js: &jetstream::Context,
    args: &BenchArgs,
    done: &AtomicU64,
) -> Result<Histogram<u64>> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    durable(js, args).await?;
    let total = args.warmup + args.msgs;
    let taken = AtomicU64::new(0);
    let work = (0..args.workers).map(|i| {
        let (taken, done) = (&taken, done);
        async move {
            let ctx = worker_context(args, i).await?;
            let c: consumer::PullConsumer = ctx
                .get_stream(&args.stream)
                .await?
                .get_consumer("bench")
                .await
                .map_err(|e| anyhow::anyhow!("consumer: {e}"))?;
            let mut hist = histogram()?;
            let mut last = now();
            while taken.load(Ordering::Relaxed) < total {
                let mut batch = c
                    .fetch()
                    .max_messages(FETCH_BATCH)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await
                    .map_err(|e| anyhow::anyhow!("fetch: {e}"))?;
                while let Some(m) = batch.next().await {
                    let m = m.map_err(|e| anyhow::anyhow!("fetch: {e}"))?;
                    m.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
                    hist.record(micros(last.elapsed()))?;
                    last = now();
                    taken.fetch_add(1, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(hist)
        }
    });
    let mut hist = histogram()?;
    for h in futures::future::join_all(work).await {
        hist.add(&h?)?;
    }
    Ok(hist)
}

/// Fetches one message at a time and times its double ack.
pub(crate) async fn ack_round_trips(
    js: &jetstream::Context,
    args: &BenchArgs,
    done: &AtomicU64,
) -> Result<Histogram<u64>> {
    durable(js, args).await?;
    let c: consumer::PullConsumer = worker_context(args, 0)
        .await?
        .get_stream(&args.stream)
        .await?
        .get_consumer("bench")
        .await
        .map_err(|e| anyhow::anyhow!("consumer: {e}"))?;
    let mut hist = histogram()?;
    let total = args.warmup + args.msgs;
    let mut messages = c.messages().await?;
    for i in 0..total {
        let m = match messages.next().await {
            Some(m) => m.map_err(|e| anyhow::anyhow!("consume: {e}"))?,
            None => bail!("the consumer ended early"),
        };
        let started = now();
        m.double_ack()
            .await
            .map_err(|e| anyhow::anyhow!("double ack: {e}"))?;
        if i >= args.warmup {
            hist.record(micros(started.elapsed()))?;
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(hist)
}
