//! `jetraft-simulation`: run seeds, one per process, and report.
//!
//! ```text
//! cargo run --release -p jetraft-simulation -- --seeds 0..1000
//! cargo run --release -p jetraft-simulation -- --seed 17 --trace
//! ```

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use jetraft_simulation::nemesis::Fault;
use jetraft_simulation::{Options, run};
use jetraft_types::bugs::Bug;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(
    name = "jetraft-simulation",
    about = "Real jetraft nodes under deterministic simulation (turmoil), with faults and a checker"
)]
struct Args {
    /// Run these seeds, each in its own process: `A..B` (B excluded).
    #[arg(long, conflicts_with = "seed")]
    seeds: Option<String>,
    /// Run one seed in this process.
    #[arg(long)]
    seed: Option<u64>,
    /// With --seed: print the run's event trace and its hash.
    #[arg(long)]
    trace: bool,
    /// Nodes in the cluster (3 or 5).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The stream's replicas (default: 3).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Workload clients.
    #[arg(long, default_value_t = 3)]
    clients: usize,
    /// Simulated seconds of workload under faults.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Faults to inject (comma-separated), default all but step-down:
    /// partition, one-way, delay, conn-fail, crash, pause, clock-jump,
    /// leader-kill, bit-flip, wipe-disk, restore-backup, sync-fail,
    /// power-cut, rescale; and step-down (leaders asked to hand over).
    #[arg(long)]
    faults: Option<String>,
    /// Faults to leave out (comma-separated).
    #[arg(long)]
    no_faults: Option<String>,
    /// Switch on a deliberate bug (ack-before-fsync, skip-dedup,
    /// skip-cas-check, stale-leader-read, memory-remembers, route-twice,
    /// skip-resync) to see the checker catch it.
    #[arg(long)]
    bug: Option<String>,
    /// With --seeds: processes at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// With --seeds: stop at the first failing seed.
    #[arg(long)]
    fail_fast: bool,
    /// Internal: print one JSON result line (used by --seeds).
    #[arg(long, hide = true)]
    json: bool,
}

fn fault_list(text: &str) -> Result<BTreeSet<Fault>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Fault::from_name(s).with_context(|| format!("unknown fault `{s}`")))
        .collect()
}

impl Args {
    fn options(&self, seed: u64) -> Result<Options> {
        let mut faults = match &self.faults {
            Some(list) => fault_list(list)?,
            None => Fault::default_set(),
        };
        if let Some(list) = &self.no_faults {
            for f in fault_list(list)? {
                faults.remove(&f);
            }
        }
        let bug = match &self.bug {
            Some(name) => Some(Bug::from_name(name).with_context(|| {
                format!(
                    "unknown bug `{name}` (known: {})",
                    Bug::ALL.map(Bug::name).join(", ")
                )
            })?),
            None => None,
        };
        if !(1..=7).contains(&self.nodes) || self.replicas > self.nodes {
            bail!("--nodes must be 1..=7 and --replicas at most --nodes");
        }
        Ok(Options {
            seed,
            nodes: self.nodes,
            replicas: self.replicas,
            clients: self.clients,
            duration: Duration::from_secs(self.duration),
            faults,
            bug,
        })
    }

    /// The flags that shape a run, to repeat in a child or a replay line.
    fn shape_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |k: &str, v: String| {
            out.push(k.to_string());
            out.push(v);
        };
        push("--nodes", self.nodes.to_string());
        push("--replicas", self.replicas.to_string());
        push("--clients", self.clients.to_string());
        push("--duration", self.duration.to_string());
        if let Some(f) = &self.faults {
            push("--faults", f.clone());
        }
        if let Some(f) = &self.no_faults {
            push("--no-faults", f.clone());
        }
        if let Some(b) = &self.bug {
            push("--bug", b.clone());
        }
        out
    }

    fn replay(&self, seed: u64) -> String {
        format!(
            "cargo run --release -p jetraft-simulation -- --seed {seed} --trace {}",
            self.shape_flags().join(" ")
        )
    }
}

fn parse_range(text: &str) -> Result<std::ops::Range<u64>> {
    let (a, b) = text
        .split_once("..")
        .with_context(|| format!("--seeds takes A..B, not `{text}`"))?;
    Ok(a.trim().parse()?..b.trim().parse()?)
}

fn one(args: &Args, seed: u64) -> Result<ExitCode> {
    let outcome = run(&args.options(seed)?)?;
    let failed = !outcome.violations.is_empty();
    if args.json {
        let line = json!({
            "seed": seed,
            "trace_hash": outcome.trace_hash,
            "violations": outcome.violations,
            "acked": outcome.acked,
            "simulated_ms": outcome.simulated.as_millis() as u64,
        });
        println!("RESULT {line}");
    } else {
        if args.trace {
            print!("{}", outcome.history.render_trace());
            println!("trace hash: {}", outcome.trace_hash);
        }
        for v in &outcome.violations {
            println!("violation: {v}");
        }
        println!(
            "seed {seed}: {} ({} acked publishes, {:.1}s simulated)",
            if failed { "FAILED" } else { "passed" },
            outcome.acked,
            outcome.simulated.as_secs_f64()
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs one seed in a child process and returns its result line.
fn child(args: &Args, seed: u64) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--json")
        .args(args.shape_flags())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) {
        Some(line) => Ok(serde_json::from_str(line)?),
        None => Ok(json!({
            "seed": seed,
            "violations": [format!("the run crashed ({})", out.status)],
        })),
    }
}

#[allow(clippy::disallowed_methods)] // the driver measures its own wall time and runs worker threads
fn many(args: &Args, seeds: std::ops::Range<u64>) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let queue = std::sync::Mutex::new(seeds.clone());
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (mut passed, mut failed) = (0u64, 0u64);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (queue, stop) = (&queue, &stop);
            s.spawn(move || {
                loop {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some(seed) = next else { return };
                    let result = child(args, seed).unwrap_or_else(
                        |e| json!({"seed": seed, "violations": [format!("could not run: {e}")]}),
                    );
                    if tx.send(result).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for result in rx {
            let seed = result["seed"].as_u64().unwrap_or_default();
            let violations = result["violations"].as_array().cloned().unwrap_or_default();
            if violations.is_empty() {
                passed += 1;
            } else {
                failed += 1;
                println!(
                    "FAILED seed {seed}: {} — replay: {}",
                    violations[0].as_str().unwrap_or("?"),
                    args.replay(seed)
                );
                if args.fail_fast {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let done = passed + failed;
            if done % 10 == 0 {
                eprintln!(
                    "… {done}/{} seeds, {failed} failed",
                    seeds.end - seeds.start
                );
            }
            let _ = std::io::stdout().flush();
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let total = passed + failed;
    println!(
        "seeds: {total}, passed: {passed}, failed: {failed}, seeds/s: {:.2}",
        total as f64 / secs.max(1e-9)
    );
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Log lines carry simulated time, as the trace does. (turmoil enters a
/// `node{name=..}` span while it runs a host: add `turmoil=info` to
/// `RUST_LOG` to see which node logged a line.)
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>10.3}s", t.as_secs_f64()),
            None => write!(w, "{:>11}", "-"),
        }
    }
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_timer(SimTime)
            .init();
    }
    match (&args.seeds, args.seed) {
        (Some(range), _) => many(&args, parse_range(range)?),
        (None, Some(seed)) => one(&args, seed),
        (None, None) => bail!("give --seed N or --seeds A..B"),
    }
}
