//! `jetraft bench`: measures any NATS JetStream endpoint — jetraft or
//! nats-server — the same way, with a real client (async-nats).
//!
//! It creates its own stream, publishes (synchronously, with a window of
//! acks in flight, or from several connections) or consumes, records every
//! latency in an HDR histogram, checks its own result (every ack's sequence
//! is unique and the stream holds what was acked), removes the stream, and
//! prints percentiles and throughput (optionally as JSON and as an SVG
//! percentile plot).
//!
//! Two modes measure core NATS between nodes instead (no stream):
//! `corepub` (fan-out throughput to subscribers on two other nodes) and
//! `corereq` (request/reply latency to a responder on another node); see
//! `core_nats.rs`.

mod consumers;
mod core_nats;
mod modes;
mod plot;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, stream};
use clap::{Args, ValueEnum};

pub use report::Report;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One publish in flight: each waits for its ack.
    Sync,
    /// Up to `--window` publishes in flight on one connection.
    Async,
    /// `--publishers` connections, each publishing synchronously.
    Multi,
    /// Publish `--msgs`, then read them back with a pull consumer.
    Consume,
    /// Publish `--msgs`, then `--workers` pull workers (spread over
    /// `--urls` if given) share them through one durable consumer with
    /// explicit acks, fetching batches of 100; throughput, and each
    /// message's wait on its worker.
    Pull,
    /// Publish `--msgs`, then fetch them one at a time and time each
    /// double ack: the ack's round trip until the server committed it.
    Ack,
    /// Core NATS, no stream: publish `--msgs` as fast as possible on node 1
    /// (`--urls`), one subscriber each on nodes 2 and 3; throughput as the
    /// slower subscriber receives it.
    #[value(name = "corepub")]
    #[serde(rename = "corepub")]
    CorePub,
    /// Core NATS, no stream: `--msgs` sequential requests from node 1 to a
    /// responder on node 2 (`--urls`) that echoes the payload; latency.
    #[value(name = "corereq")]
    #[serde(rename = "corereq")]
    CoreReq,
}

impl Mode {
    /// Core NATS between nodes: no stream, roles on the nodes of `--urls`.
    pub fn is_core(self) -> bool {
        matches!(self, Mode::CorePub | Mode::CoreReq)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Storage {
    File,
    Memory,
}

/// `jetraft bench` flags.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// NATS URL of any node.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub url: String,
    /// NATS URLs of three nodes for the core modes, comma separated: the
    /// publisher (or requester) connects to the first, the subscribers to
    /// the second and third (the responder to the second). Without it
    /// every role connects to `--url`.
    #[arg(long, value_delimiter = ',')]
    pub urls: Vec<String>,
    #[arg(long, value_enum, default_value_t = Mode::Sync)]
    pub mode: Mode,
    /// Messages to measure (after the warm-up).
    #[arg(long, default_value_t = 10_000)]
    pub msgs: u64,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// The stream's replicas.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    #[arg(long, value_enum, default_value_t = Storage::File)]
    pub storage: Storage,
    /// Acks in flight in `async` mode.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Connections in `multi` mode.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    /// Pull workers in `pull` mode.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Unmeasured publishes first (connections, leader, caches).
    #[arg(long, default_value_t = 200)]
    pub warmup: u64,
    /// Name of the stream the bench creates and removes.
    #[arg(long, default_value = "BENCH")]
    pub stream: String,
    /// A label for the report (e.g. `jetraft` or `nats-server`).
    #[arg(long, default_value = "")]
    pub label: String,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a latency percentile plot (SVG) here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Leave the stream in place afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// Wall time: a benchmark measures the real world.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

pub(crate) fn subject(args: &BenchArgs) -> String {
    format!("{}.x", args.stream.to_lowercase())
}

async fn fresh_stream(js: &jetstream::Context, args: &BenchArgs) -> Result<()> {
    // A previous run may have left it; ignore "not found".
    let _ = js.delete_stream(&args.stream).await;
    js.create_stream(stream::Config {
        name: args.stream.clone(),
        subjects: vec![format!("{}.>", args.stream.to_lowercase())],
        num_replicas: args.replicas,
        storage: match args.storage {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        },
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating stream {} (R{})", args.stream, args.replicas))?;
    Ok(())
}

/// Runs one benchmark and returns its report (also printed).
pub async fn run(args: &BenchArgs) -> Result<Report> {
    if args.msgs == 0 || args.window == 0 || args.publishers == 0 {
        bail!("--msgs, --window and --publishers must be at least 1");
    }
    if args.mode.is_core() {
        if args.mode == Mode::CorePub && args.plot.is_some() {
            bail!("--plot needs latencies; corepub measures throughput only");
        }
        let outcome = core_nats::run(args).await?;
        return finish(args, &outcome);
    }
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(&args.url)
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    let js = jetstream::new(client.clone());
    fresh_stream(&js, args).await?;
    let outcome = modes::run(&js, args).await;
    let check = match &outcome {
        Ok(o) => modes::verify(&js, args, o).await,
        Err(_) => Ok(()),
    };
    if !args.keep {
        let _ = js.delete_stream(&args.stream).await;
    }
    let outcome = outcome?;
    check?;
    finish(args, &outcome)
}

/// Prints the report and writes the files asked for.
fn finish(args: &BenchArgs, outcome: &modes::Outcome) -> Result<Report> {
    let report = Report::new(args, outcome);
    println!("{}", report.render());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot::svg(&report, &outcome.hist))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}
