//! Core NATS between nodes (no stream): `corepub` and `corereq`.
//!
//! `corepub`: a publisher on node 1 floods `--msgs` messages of `--size`
//! bytes; one subscriber on node 2 and one on node 3 count them. Before the
//! timed phase the publisher sends probes (messages with a header, which
//! the subscribers skip) until both subscribers have seen one, so the
//! subscriptions' interest has reached node 1. The rate is the slower
//! subscriber's: from the first timed publish to its last message.
//!
//! `corereq`: a responder on node 2 (a plain subscription that replies with
//! the payload) and a requester on node 1 sending one request at a time;
//! the latency of each of `--msgs` requests after `--warmup` unmeasured ones.
//!
//! Core NATS is at most once: a run where a subscriber misses a message, or
//! a reply is not the payload sent, fails its self-check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::{Client, HeaderMap, Request, Subject, Subscriber};
use bytes::Bytes;
use futures::StreamExt;

use crate::modes::{Outcome, Progress, histogram, micros};
use crate::{BenchArgs, Mode, now};

/// How often a probe goes out while waiting for interest to propagate.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// How long interest may take to reach the publishing node.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);
/// A subscriber that hears nothing for this long has lost messages.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// One probe request's wait for its reply.
const PROBE_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// A measured request's wait for its reply.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Room in a subscriber's client-side queue beyond `--msgs` (for probes):
/// async-nats drops what does not fit, and must not here.
const PROBE_HEADROOM: usize = 10_000;
/// The header that marks a probe.
const PROBE_HEADER: &str = "Bench-Probe";

/// The URL of each role's node: `--urls` in order, or `--url` for all.
pub(crate) fn role_urls(args: &BenchArgs) -> Result<Vec<String>> {
    let needed = if args.mode == Mode::CorePub { 3 } else { 2 };
    if args.urls.is_empty() {
        return Ok(vec![args.url.clone(); needed]);
    }
    if args.urls.len() < needed {
        bail!(
            "{:?} needs --urls of {needed} nodes, got {}",
            args.mode,
            args.urls.len()
        );
    }
    Ok(args.urls[..needed].to_vec())
}

fn core_subject(args: &BenchArgs, what: &str) -> Subject {
    // Outside the `<stream>.>` subjects of the JetStream modes, so a stream
    // left by `--keep` does not capture them.
    Subject::from(format!("{}-core.{what}", args.stream.to_lowercase()))
}

async fn connect(url: &str, capacity: usize) -> Result<Client> {
    async_nats::ConnectOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .subscription_capacity(capacity)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

pub async fn run(args: &BenchArgs) -> Result<Outcome> {
    let urls = role_urls(args)?;
    match args.mode {
        Mode::CorePub => pub_sub(args, &urls).await,
        Mode::CoreReq => req_reply(args, &urls).await,
        other => bail!("{other:?} is not a core NATS mode"),
    }
}

/// What one subscriber received of the timed messages, and when the last.
struct Received {
    url: String,
    got: u64,
    last: Option<Instant>,
}

async fn count(
    url: String,
    mut sub: Subscriber,
    n: u64,
    size: usize,
    probed: Arc<AtomicUsize>,
    done: Arc<AtomicU64>,
) -> Result<Received> {
    let mut saw_probe = false;
    let (mut got, mut last) = (0, None);
    while got < n {
        let wait = if saw_probe {
            IDLE_TIMEOUT
        } else {
            PROPAGATION_TIMEOUT
        };
        let msg = match tokio::time::timeout(wait, sub.next()).await {
            Ok(Some(m)) => m,
            Ok(None) => bail!("the subscription on {url} ended"),
            Err(_) => break,
        };
        if msg.headers.is_some() {
            if !saw_probe {
                saw_probe = true;
                probed.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        if msg.payload.len() != size {
            bail!(
                "self-check failed: a {}-byte message on {url}, {size} were sent",
                msg.payload.len()
            );
        }
        got += 1;
        last = Some(now());
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Received { url, got, last })
}

async fn pub_sub(args: &BenchArgs, urls: &[String]) -> Result<Outcome> {
    let n = args.msgs;
    let subject = core_subject(args, "pub");
    let payload = Bytes::from(vec![b'x'; args.size]);
    let publisher = connect(&urls[0], 1024).await?;
    let probed = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut counting = Vec::new();
    let mut clients = Vec::new();
    for url in &urls[1..] {
        let capacity = usize::try_from(n).unwrap_or(usize::MAX / 2) + PROBE_HEADROOM;
        let c = connect(url, capacity).await?;
        let sub = c.subscribe(subject.clone()).await?;
        c.flush().await?;
        let task = count(url.clone(), sub, n, args.size, probed.clone(), done.clone());
        counting.push(tokio::spawn(task));
        clients.push(c);
    }
    let subscribers = counting.len();
    let mut probe = HeaderMap::new();
    probe.insert(PROBE_HEADER, "1");
    let deadline = now() + PROPAGATION_TIMEOUT;
    while probed.load(Ordering::Relaxed) < subscribers {
        if now() > deadline {
            bail!(
                "interest did not reach {} within {PROPAGATION_TIMEOUT:?}: {} of {subscribers} subscribers saw a probe",
                urls[0],
                probed.load(Ordering::Relaxed)
            );
        }
        publisher
            .publish_with_headers(subject.clone(), probe.clone(), Bytes::new())
            .await?;
        publisher.flush().await?;
        tokio::time::sleep(PROBE_EVERY).await;
    }
    let _p = Progress::start("corepub deliveries", done.clone(), n * subscribers as u64);
    let started = now();
    for _ in 0..n {
        publisher.publish(subject.clone(), payload.clone()).await?;
    }
    publisher.flush().await?;
    let mut slowest = started;
    for task in counting {
        let r = task.await.context("a subscriber task failed")??;
        if r.got < n {
            bail!(
                "self-check failed: the subscriber on {} received {} of {n} messages \
                 (core NATS drops what a slow consumer cannot take)",
                r.url,
                r.got
            );
        }
        slowest = slowest.max(r.last.unwrap_or(started));
    }
    eprintln!("self-check: {subscribers} subscribers each received all {n} messages");
    drop(clients);
    Ok(Outcome {
        hist: histogram()?,
        elapsed: slowest - started,
        measured: n,
        seqs: Vec::new(),
    })
}

async fn req_reply(args: &BenchArgs, urls: &[String]) -> Result<Outcome> {
    let subject = core_subject(args, "req");
    let payload = Bytes::from(vec![b'x'; args.size]);
    let responder = connect(&urls[1], 1024).await?;
    let mut sub = responder.subscribe(subject.clone()).await?;
    responder.flush().await?;
    let echo = tokio::spawn({
        let responder = responder.clone();
        async move {
            while let Some(m) = sub.next().await {
                if let Some(reply) = m.reply {
                    responder.publish(reply, m.payload).await?;
                }
            }
            anyhow::Ok(())
        }
    });
    let requester = connect(&urls[0], 1024).await?;
    // Probes until the responder's interest (and the requester's reply
    // inbox's) has crossed: the first ones may meet no responders or lose
    // their reply.
    let deadline = now() + PROPAGATION_TIMEOUT;
    loop {
        let probe = Request::new()
            .payload(payload.clone())
            .timeout(Some(PROBE_REQUEST_TIMEOUT));
        match requester.send_request(subject.clone(), probe).await {
            Ok(_) => break,
            Err(e) if now() > deadline => {
                bail!(
                    "no reply from the responder on {} through {}: {e}",
                    urls[1],
                    urls[0]
                )
            }
            Err(_) => tokio::time::sleep(PROBE_EVERY).await,
        }
    }
    for _ in 0..args.warmup {
        echo_request(&requester, &subject, &payload).await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let _p = Progress::start("corereq", done.clone(), args.msgs);
    let mut hist = histogram()?;
    let started = now();
    for _ in 0..args.msgs {
        let t = now();
        echo_request(&requester, &subject, &payload).await?;
        hist.record(micros(t.elapsed()))?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    let elapsed = started.elapsed();
    eprintln!(
        "self-check: {} replies, each the payload sent",
        args.msgs + args.warmup
    );
    echo.abort();
    Ok(Outcome {
        hist,
        elapsed,
        measured: args.msgs,
        seqs: Vec::new(),
    })
}

/// One request; the reply must be the payload.
async fn echo_request(requester: &Client, subject: &Subject, payload: &Bytes) -> Result<()> {
    let reply = requester
        .request(subject.clone(), payload.clone())
        .await
        .context("request")?;
    if reply.payload != *payload {
        bail!(
            "self-check failed: a {}-byte reply to a {}-byte request",
            reply.payload.len(),
            payload.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn args(argv: &[&str]) -> BenchArgs {
        let argv = std::iter::once("bench").chain(argv.iter().copied());
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .args
    }

    #[test]
    fn roles_take_the_nodes_of_urls_in_order() {
        let a = args(&["--mode", "corepub", "--urls", "nats://a,nats://b,nats://c"]);
        let urls = role_urls(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(urls, ["nats://a", "nats://b", "nats://c"]);
        let a = args(&["--mode", "corereq", "--urls", "nats://a,nats://b,nats://c"]);
        let urls = role_urls(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(urls, ["nats://a", "nats://b"]);
    }

    #[test]
    fn without_urls_every_role_uses_url_and_too_few_is_refused() {
        let a = args(&["--mode", "corepub", "--url", "nats://x"]);
        let urls = role_urls(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(urls, ["nats://x"; 3]);
        let a = args(&["--mode", "corepub", "--urls", "nats://a,nats://b"]);
        assert!(role_urls(&a).is_err());
    }
}
