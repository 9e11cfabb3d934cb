//! One simulated run: build the world from a seed, run the workload under
//! the nemesis, heal, probe liveness, wait for the replicas to converge,
//! read every replica and check.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use jetraft_types::bugs::Bug;
use turmoil::Sim;

use crate::check::{self, Final, Replica};
use crate::history::{History, SharedHistory};
use crate::nemesis::{BASE_MAX_LATENCY, Fault, Nemesis};
use crate::workload::{self, LIMITS_STREAM, MEMORY_STREAM, STREAM};
use crate::world::{SimNode, add_nodes, node_names};

/// How long liveness may take after the final heal: a few election rounds
/// (elections time out after 0.75–1.5 s) plus reconnects.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(30);
/// Fewer acknowledged workload publishes than this per simulated second
/// of workload fail the seed (`check/progress.rs`). Measured 2026-12-01 at
/// the default options, all faults: see docs/simulation.md.
const MIN_ACKED_PER_WORKLOAD_SECOND: u64 = 2;
/// How long the replicas get to converge once every node accepts writes.
const CONVERGE_BOUND: Duration = Duration::from_secs(30);

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub nodes: usize,
    pub replicas: usize,
    pub clients: usize,
    /// Simulated time of the workload (faults included).
    pub duration: Duration,
    pub faults: BTreeSet<Fault>,
    pub bug: Option<Bug>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 0,
            nodes: 3,
            replicas: 3,
            clients: 3,
            duration: Duration::from_secs(30),
            faults: Fault::default_set(),
            bug: None,
        }
    }
}

/// The result of one run.
pub struct Outcome {
    pub history: History,
    pub violations: Vec<String>,
    pub trace_hash: String,
    pub acked: usize,
    pub simulated: Duration,
}

/// Runs one seed. Call once per process: thread-local state (futures'
/// `select!` RNG, hash seeds) is not reset between runs in one process.
pub fn run(opts: &Options) -> anyhow::Result<Outcome> {
    if let Some(bug) = opts.bug
        && !jetraft_types::bugs::enable(bug)
    {
        anyhow::bail!("this build has no bug switches (feature sim-bugs)");
    }
    let mut sim = turmoil::Builder::new()
        .rng_seed(opts.seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        .simulation_duration(opts.duration + Duration::from_secs(300))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(BASE_MAX_LATENCY)
        .tcp_capacity(4096)
        .enable_random_order()
        .build();
    let hist: SharedHistory = Rc::new(RefCell::new(History::default()));
    let mut nodes = add_nodes(&mut sim, opts.nodes, opts.seed);
    let names = node_names(opts.nodes);
    for c in 0..opts.clients {
        sim.client(
            format!("c{c}"),
            workload::run_client(
                c,
                names.clone(),
                opts.seed,
                opts.replicas,
                opts.duration,
                hist.clone(),
            ),
        );
    }
    sim.client(
        "mk",
        workload::create_memory_stream(names.clone(), opts.replicas, opts.duration, hist.clone()),
    );
    for node in &names {
        sim.client(
            format!("r-{node}"),
            workload::run_reader(node.clone(), opts.seed, opts.duration, hist.clone()),
        );
    }
    for (i, node) in names.iter().enumerate() {
        sim.client(
            format!("cpub-{node}"),
            crate::core::run_publisher(i, node.clone(), opts.duration, hist.clone()),
        );
        sim.client(
            format!("csub-{node}"),
            crate::core::run_subscriber(i, node.clone(), hist.clone()),
        );
    }

    sim.client(
        "jobs",
        crate::consumer::run_producer(names.clone(), opts.replicas, opts.duration, hist.clone()),
    );
    for i in 0..names.len() {
        sim.client(
            format!("w{i}"),
            crate::consumer::run_worker(i, names.clone(), hist.clone()),
        );
    }

    if opts.faults.contains(&Fault::StepDown) && opts.replicas > 1 {
        sim.client(
            "stepper",
            workload::run_stepper(names.clone(), opts.seed, opts.duration, hist.clone()),
        );
    }
    if opts.faults.contains(&Fault::Rescale) && opts.replicas > 1 {
        sim.client(
            "op",
            workload::run_operator(
                names.clone(),
                opts.seed,
                opts.replicas,
                opts.duration,
                hist.clone(),
            ),
        );
    }
    let mut nemesis = Nemesis::new(opts.seed, &opts.faults);
    let mut violations = Vec::new();
    let result = drive(&mut sim, &mut nodes, &mut nemesis, opts, &hist);
    let fin = match result {
        Ok(fin) => fin,
        Err(e) => {
            violations.push(format!("simulation error: {e}"));
            Final::default()
        }
    };
    let simulated = sim.elapsed();
    drop(sim);
    let mut history = Rc::try_unwrap(hist)
        .map(RefCell::into_inner)
        .unwrap_or_else(|rc| std::mem::take(&mut *rc.borrow_mut()));
    if violations.is_empty() {
        violations = check::check_all(&history, &fin);
    }
    for (stream, replicas) in [
        (STREAM, &fin.replicas),
        (LIMITS_STREAM, &fin.limits),
        (MEMORY_STREAM, &fin.memory),
    ] {
        for (node, r) in replicas {
            let text = match r {
                Some(r) => format!(
                    "final {node} {stream}: first {} last {} msgs {} digest {}",
                    r.first_seq, r.last_seq, r.messages, r.digest
                ),
                None => format!("final {node} {stream}: no replica"),
            };
            history.event(simulated, text);
        }
    }
    let acked = history
        .pubs
        .iter()
        .filter(|p| matches!(p.outcome, crate::history::PubOutcome::Acked { .. }))
        .count();
    let trace_hash = history.trace_hash();
    Ok(Outcome {
        history,
        violations,
        trace_hash,
        acked,
        simulated,
    })
}

fn drive(
    sim: &mut Sim<'_>,
    nodes: &mut [SimNode],
    nemesis: &mut Nemesis,
    opts: &Options,
    hist: &SharedHistory,
) -> anyhow::Result<Final> {
    let step = |sim: &mut Sim<'_>| sim.step().map_err(|e| anyhow::anyhow!("{e}"));
    while sim.elapsed() < opts.duration {
        nemesis.tick(sim, nodes, hist);
        step(sim)?;
    }
    nemesis.end_of_workload(sim, nodes, hist);
    nemesis.heal_all(sim, nodes, hist);
    let healed_at = sim.elapsed();
    hist.borrow_mut().healed_at = Some(healed_at);
    let names = node_names(opts.nodes);
    for (i, node) in names.iter().enumerate() {
        sim.client(
            format!("cfpub-{node}"),
            crate::core::run_final_publisher(i, node.clone(), healed_at, hist.clone()),
        );
    }
    for i in 0..opts.nodes {
        sim.client(
            format!("probe{i}"),
            workload::probe(
                i,
                names.clone(),
                healed_at,
                healed_at + LIVENESS_BOUND,
                hist.clone(),
            ),
        );
    }
    // Clients finish their last retries; probes finish or give up. A node
    // that stops itself meanwhile (one put back from a backup finding
    // itself behind) is handled as during the workload.
    while !step(sim)? {
        nemesis.stop_fatal(sim, nodes, hist);
    }

    let mut converged = converge(sim, nodes, nemesis, hist, opts.replicas)?;
    // A memory stream whose replicas restarted while it could not spare
    // them waits for the replicas that kept it to restart too (decision
    // 35): the operator's remedy, taken only when the durable streams
    // agree and some memory replica did forget the stream.
    let durable = [STREAM, LIMITS_STREAM];
    if !converged && streams_agree(nodes, opts.replicas, &durable) {
        let holding: Vec<usize> = (0..nodes.len())
            .filter(|i| holds(&nodes[*i], MEMORY_STREAM))
            .collect();
        if !holding.is_empty() && holding.len() < opts.replicas {
            let names: Vec<&str> = holding.iter().map(|i| nodes[*i].name.as_str()).collect();
            hist.borrow_mut().event(
                sim.elapsed(),
                format!(
                    "operator: {MEMORY_STREAM} waits for the replicas that kept it; restart {names:?}"
                ),
            );
            nemesis.restart_cleanly(sim, nodes, holding, hist);
            converged = converge(sim, nodes, nemesis, hist, opts.replicas)?;
        }
    }
    let read = |stream: &str| {
        nodes
            .iter()
            .map(|n| (n.name.clone(), read_replica(n, stream)))
            .collect()
    };
    let end_ns = nodes.first().map_or(0, |n| {
        use jetraft_server::env::Clock;
        n.clock.now_ns()
    });
    let consumers = nodes
        .iter()
        .map(|n| (n.name.clone(), read_consumer(n)))
        .collect();
    Ok(Final {
        replicas: read(STREAM),
        limits: read(LIMITS_STREAM),
        memory: read(MEMORY_STREAM),
        jobs: read(crate::consumer::JOBS_STREAM),
        consumers,
        end_ns,
        expected_replicas: opts.replicas,
        liveness_bound: LIVENESS_BOUND,
        converged,
        min_acked: MIN_ACKED_PER_WORKLOAD_SECOND * opts.duration.as_secs(),
    })
}

/// Steps until every node is healthy and every stream's replicas agree,
/// for at most [`CONVERGE_BOUND`]; whether they did.
fn converge(
    sim: &mut Sim<'_>,
    nodes: &mut [SimNode],
    nemesis: &mut Nemesis,
    hist: &SharedHistory,
    replicas: usize,
) -> anyhow::Result<bool> {
    let deadline = sim.elapsed() + CONVERGE_BOUND;
    while sim.elapsed() < deadline {
        for _ in 0..100 {
            sim.step().map_err(|e| anyhow::anyhow!("{e}"))?;
            nemesis.stop_fatal(sim, nodes, hist);
        }
        let healthy = nodes.iter().all(|n| {
            n.cluster()
                .is_some_and(|c| jetraft_server::monitor::health(&c).is_ok())
        });
        let all = [
            STREAM,
            LIMITS_STREAM,
            MEMORY_STREAM,
            crate::consumer::JOBS_STREAM,
        ];
        if healthy && streams_agree(nodes, replicas, &all) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Stream by stream, `replicas` nodes report the same applied state and
/// digest.
fn streams_agree(nodes: &[SimNode], replicas: usize, streams: &[&str]) -> bool {
    let mut seen: Vec<Vec<(u64, u64, String)>> = vec![Vec::new(); streams.len()];
    for n in nodes {
        let Some(c) = n.cluster() else { return false };
        let Ok(jsz) = jetraft_server::monitor::jsz(&c) else {
            return false;
        };
        for (i, name) in streams.iter().enumerate() {
            if let Some(s) = jsz.streams.iter().find(|s| s.name == *name) {
                seen[i].push((s.last_seq, s.messages, s.digest.clone()));
            }
        }
    }
    seen.iter()
        .all(|s| s.len() == replicas && s.windows(2).all(|w| w[0] == w[1]))
}

/// Whether the node kept `stream`: it counts in the group (admitted with
/// the incarnation it has now) and holds its log.
fn holds(node: &SimNode, stream: &str) -> bool {
    node.stream_group(stream).is_some_and(|g| {
        g.standing.may_vote_strictly().is_ok() && g.metrics().last_log_index.is_some()
    })
}

/// A node's replica of the work queue's consumer, from its applied state.
fn read_consumer(node: &SimNode) -> Option<crate::check::ConsumerReplica> {
    let g = node.stream_group(crate::consumer::JOBS_STREAM)?;
    let c = g.sm.consumer(crate::consumer::CONSUMER)?;
    Some(crate::check::ConsumerReplica {
        next_sseq: c.next_sseq,
        delivered_cseq: c.delivered_cseq,
        ack_floor: (c.ack_floor_cseq, c.ack_floor_sseq),
        pending: c
            .pending
            .iter()
            .map(|(s, p)| (*s, (p.cseq, p.deliveries)))
            .collect(),
        num_pending: c.num_pending,
    })
}

/// Reads a node's replica of `stream` straight from its store.
fn read_replica(node: &SimNode, stream: &str) -> Option<Replica> {
    let view = node.stream_group(stream)?.sm.stream_view()?;
    let state = view.state().clone();
    let mut r = Replica {
        first_seq: state.first_seq,
        last_seq: state.last_seq,
        messages: state.messages,
        digest: view
            .digest()
            .map(hex::encode)
            .unwrap_or_else(|e| format!("unreadable: {e}")),
        ..Replica::default()
    };
    for seq in state.first_seq.max(1)..=state.last_seq {
        match view.message(seq) {
            Ok(Some(m)) => {
                r.times.insert(seq, m.time_ns);
                r.stored.insert(
                    seq,
                    (m.subject, String::from_utf8_lossy(&m.payload).into_owned()),
                );
            }
            Ok(None) => {}
            Err(e) => r.read_errors.push(format!("seq {seq}: {e}")),
        }
    }
    Some(r)
}
