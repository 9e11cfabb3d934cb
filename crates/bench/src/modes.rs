//! The measured loops, a progress line while they run, and the self-check.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;

use crate::{BenchArgs, Mode, now, subject};

/// What a run measured.
pub struct Outcome {
    /// Latencies in microseconds.
    pub hist: Histogram<u64>,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Messages measured (published or consumed).
    pub measured: u64,
    /// Every acknowledged sequence, warm-up included.
    pub seqs: Vec<u64>,
}

pub(crate) fn histogram() -> Result<Histogram<u64>> {
    // 1 µs to 100 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 100_000_000, 3)?)
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Prints `done/total, rate` to stderr every second until dropped.
pub(crate) struct Progress {
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub(crate) fn start(what: &'static str, done: Arc<AtomicU64>, total: u64) -> Self {
        let task = tokio::spawn(async move {
            let started = now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let n = done.load(Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
                eprintln!("… {what}: {n}/{total} msgs, {rate:.0} msgs/s");
            }
        });
        Self { task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn publish_one(js: &jetstream::Context, subject: &str, payload: &Bytes) -> Result<u64> {
    let ack = js
        .publish(subject.to_string(), payload.clone())
        .await?
        .await
        .context("publish not acknowledged")?;
    Ok(ack.sequence)
}

/// Synchronous publishes: returns (latency histogram, acked sequences).
async fn sync_loop(
    js: &jetstream::Context,
    subject: &str,
    payload: &Bytes,
    n: u64,
    done: &AtomicU64,
) -> Result<(Histogram<u64>, Vec<u64>)> {
    let mut hist = histogram()?;
    let mut seqs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = now();
        seqs.push(publish_one(js, subject, payload).await?);
        hist.record(micros(t.elapsed()))?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok((hist, seqs))
}

async fn window_loop(
    js: &jetstream::Context,
    subject: &str,
    payload: &Bytes,
    n: u64,
    window: usize,
    done: &AtomicU64,
) -> Result<(Histogram<u64>, Vec<u64>)> {
    let mut hist = histogram()?;
    let mut seqs = Vec::with_capacity(n as usize);
    let mut inflight = FuturesUnordered::new();
    let mut sent = 0;
    while sent < n || !inflight.is_empty() {
        while sent < n && inflight.len() < window {
            let t = now();
            let ack = js.publish(subject.to_string(), payload.clone()).await?;
            inflight.push(async move { (t, ack.await) });
            sent += 1;
        }
        if let Some((t, ack)) = inflight.next().await {
            let ack = ack.context("publish not acknowledged")?;
            hist.record(micros(t.elapsed()))?;
            seqs.push(ack.sequence);
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok((hist, seqs))
}

pub async fn run(js: &jetstream::Context, args: &BenchArgs) -> Result<Outcome> {
    let subject = subject(args);
    let payload = Bytes::from(vec![b'x'; args.size]);
    let ignored = AtomicU64::new(0);
    let (_, mut seqs) = sync_loop(js, &subject, &payload, args.warmup, &ignored).await?;
    let done = Arc::new(AtomicU64::new(0));
    let started: Instant;
    let (hist, measured_seqs, measured) = match args.mode {
        Mode::Sync => {
            let _p = Progress::start("sync publish", done.clone(), args.msgs);
            started = now();
            let (h, s) = sync_loop(js, &subject, &payload, args.msgs, &done).await?;
            (h, s, args.msgs)
        }
        Mode::Async => {
            let _p = Progress::start("async publish", done.clone(), args.msgs);
            started = now();
            let (h, s) = window_loop(js, &subject, &payload, args.msgs, args.window, &done).await?;
            (h, s, args.msgs)
        }
        Mode::Multi => {
            let _p = Progress::start("publishers", done.clone(), args.msgs);
            let per = args.msgs.div_ceil(args.publishers as u64);
            let mut contexts = Vec::new();
            for _ in 0..args.publishers {
                let c = async_nats::connect(&args.url).await?;
                contexts.push(jetstream::new(c));
            }
            started = now();
            let runs = contexts.iter().map(|ctx| {
                let (subject, payload, done) = (&subject, &payload, &done);
                async move { sync_loop(ctx, subject, payload, per, done).await }
            });
            let mut hist = histogram()?;
            let mut all = Vec::new();
            for r in futures::future::join_all(runs).await {
                let (h, s) = r?;
                hist.add(&h)?;
                all.extend(s);
            }
            let n = all.len() as u64;
            (hist, all, n)
        }
        Mode::Consume => {
            let (_, s) = window_loop(js, &subject, &payload, args.msgs, 256, &ignored).await?;
            seqs.extend(s);
            let _p = Progress::start("consume", done.clone(), args.msgs);
            started = now();
            let h = consume(js, args, &done).await?;
            (h, Vec::new(), args.msgs)
        }
        Mode::Pull | Mode::Ack => {
            let (_, s) = window_loop(js, &subject, &payload, args.msgs, 256, &ignored).await?;
            seqs.extend(s);
            let what = if args.mode == Mode::Pull {
                "pull"
            } else {
                "ack"
            };
            let _p = Progress::start(what, done.clone(), args.msgs);
            started = now();
            let h = match args.mode {
                Mode::Pull => crate::consumers::pull(js, args, &done).await?,
                _ => crate::consumers::ack_round_trips(js, args, &done).await?,
            };
            // Pull counts every message it consumed, the warm-up too.
            let n = match args.mode {
                Mode::Pull => args.warmup + args.msgs,
                _ => args.msgs,
            };
            (h, Vec::new(), n)
        }
        Mode::CorePub | Mode::CoreReq => bail!("{:?} needs no stream (core_nats.rs)", args.mode),
    };
    let elapsed = started.elapsed();
    seqs.extend(measured_seqs);
    Ok(Outcome {
        hist,
        elapsed,
        measured,
        seqs,
    })
}

/// Reads the stream back with a pull consumer; records each message's
/// wait since the previous one.
async fn consume(
    js: &jetstream::Context,
    args: &BenchArgs,
    done: &AtomicU64,
) -> Result<Histogram<u64>> {
    let stream = js.get_stream(&args.stream).await?;
    let c = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .context("creating a pull consumer (this endpoint may not support consumers yet)")?;
    let mut messages = c.messages().await?;
    let mut hist = histogram()?;
    let total = args.warmup + args.msgs;
    let mut last = now();
    for _ in 0..total {
        match messages.next().await {
            Some(m) => {
                m.map_err(|e| anyhow::anyhow!("consume: {e}"))?;
            }
            None => bail!("the consumer ended early"),
        }
        hist.record(micros(last.elapsed()))?;
        last = now();
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(hist)
}

/// Every ack's sequence is unique and the stream holds exactly what was
/// acknowledged.
pub async fn verify(js: &jetstream::Context, args: &BenchArgs, o: &Outcome) -> Result<()> {
    let unique: BTreeSet<u64> = o.seqs.iter().copied().collect();
    if unique.len() != o.seqs.len() {
        bail!(
            "self-check failed: {} acks but only {} distinct sequences",
            o.seqs.len(),
            unique.len()
        );
    }
    let mut stream = js.get_stream(&args.stream).await?;
    let info = stream.info().await?;
    let held = info.state.messages;
    if held != o.seqs.len() as u64 {
        bail!(
            "self-check failed: {} publishes acknowledged but the stream holds {held}",
            o.seqs.len()
        );
    }
    if let (Some(first), Some(last)) = (unique.first(), unique.last())
        && (*first != info.state.first_sequence || *last != info.state.last_sequence)
    {
        bail!(
            "self-check failed: acked {first}..={last}, stream holds {}..={}",
            info.state.first_sequence,
            info.state.last_sequence
        );
    }
    eprintln!(
        "self-check: {} acks, all sequences distinct, stream holds {held}",
        o.seqs.len()
    );
    Ok(())
}
