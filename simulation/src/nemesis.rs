//! The nemesis: injects one fault at a time, holds it for a while, undoes
//! it, rests, and picks the next, all from the run's seed.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use jetraft_store::Cf;
use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use turmoil::Sim;

use crate::history::SharedHistory;
use crate::workload::{LIMITS_STREAM, STREAM};
use crate::world::SimNode;

/// A kind of fault, each on its own switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Nodes split in two sides (minority and majority), both directions.
    Partition,
    /// One direction of some links cut.
    OneWay,
    /// Message latency up to hundreds of milliseconds.
    Delay,
    /// Connections between one node and the rest fail (TCP resets).
    ConnFail,
    /// A node (sometimes a majority at once: power loss) crashes, losing
    /// unsynced writes, and restarts.
    Crash,
    /// A node's traffic is held (a long GC pause, a stalled VM), then
    /// released at once.
    Pause,
    /// A node's wall clock jumps forward or back.
    ClockJump,
    /// The stream's leader crashes while publishes are in flight.
    LeaderKill,
    /// One bit of a stored message flips on one replica.
    BitFlip,
    /// A node crashes and comes back with an empty disk (a replaced or
    /// wiped data directory): a new incarnation the groups must re-admit.
    WipeDisk,
    /// An operator's backup of one node's disk is taken (what would
    /// survive a crash now); a later pick puts it back: the node crashes
    /// and restarts on the older copy, keeping its incarnation. It must
    /// not count until re-admitted (decision 37): its peers see it start
    /// behind what it reported, and it stops itself once told.
    RestoreBackup,
    /// One of the next few fsyncs of one node fails (EIO): the node must
    /// stop at once (it counts as crashed, losing what it had not synced)
    /// and is restarted when the fault is undone.
    SyncFail,
    /// Not in the rotation: in a quarter of the seeds every node loses
    /// power at once when the workload ends, with publishes in flight,
    /// each keeping a random part of what it had not synced; then the
    /// final heal restarts them all and the checker reads what survived.
    PowerCut,
    /// An operator changes the stream's replica count (R → R−1 → R …)
    /// through `STREAM.UPDATE`, beside the other faults. Driven by its own
    /// client ([`crate::workload::run_operator`]), not by the nemesis.
    Rescale,
    /// An operator asks the leaders to hand over
    /// (`STREAM.LEADER.STEPDOWN`, `CONSUMER.LEADER.STEPDOWN`) every few
    /// seconds, beside the other faults, from its own client
    /// ([`crate::workload::run_stepper`]). Not in the default set (runs
    /// that name it get it), so the seeds of the default set keep their
    /// schedules.
    StepDown,
}

impl Fault {
    pub const ALL: [Fault; 15] = [
        Fault::Partition,
        Fault::OneWay,
        Fault::Delay,
        Fault::ConnFail,
        Fault::Crash,
        Fault::Pause,
        Fault::ClockJump,
        Fault::LeaderKill,
        Fault::BitFlip,
        Fault::WipeDisk,
        Fault::RestoreBackup,
        Fault::SyncFail,
        Fault::PowerCut,
        Fault::Rescale,
        Fault::StepDown,
    ];

    /// The faults a run has unless told otherwise: all but the step-downs.
    pub fn default_set() -> BTreeSet<Fault> {
        Self::ALL
            .into_iter()
            .filter(|f| *f != Fault::StepDown)
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::OneWay => "one-way",
            Fault::Delay => "delay",
            Fault::ConnFail => "conn-fail",
            Fault::Crash => "crash",
            Fault::Pause => "pause",
            Fault::ClockJump => "clock-jump",
            Fault::LeaderKill => "leader-kill",
            Fault::BitFlip => "bit-flip",
            Fault::WipeDisk => "wipe-disk",
            Fault::RestoreBackup => "restore-backup",
            Fault::SyncFail => "sync-fail",
            Fault::PowerCut => "power-cut",
            Fault::Rescale => "rescale",
            Fault::StepDown => "step-down",
        }
    }

    pub fn from_name(name: &str) -> Option<Fault> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Normal link latency, restored after a delay fault.
pub const BASE_MAX_LATENCY: Duration = Duration::from_millis(5);

/// A node's running group of one kind (the meta group, a stream's).
type GroupOf = fn(&SimNode) -> Option<jetraft_raft::host::Group>;

/// How to undo the active fault.
enum Undo {
    Repair(Vec<(String, String)>),
    RepairOneway(Vec<(String, String)>),
    Latency,
    FailRate(String),
    Restart(Vec<usize>),
    Release(String),
    Clock(usize),
    /// Disarm the node's sync fault and restart it if it stopped.
    SyncFail(usize),
    Nothing,
}

pub struct Nemesis {
    rng: SmallRng,
    faults: Vec<Fault>,
    active: Option<(Undo, Duration)>,
    next_at: Duration,
    /// Per node, the injected sync faults that fired and were accounted
    /// for (a node's fatal stop must be one of them).
    fired_seen: std::collections::BTreeMap<usize, u64>,
    /// This seed ends its workload with a power cut to every node.
    power_cut_at_end: bool,
    /// Per node, the backup `restore-backup` took of its disk.
    backups: std::collections::BTreeMap<usize, jetraft_store::mem::MemBackup>,
    /// Nodes put back from a backup: they may stop once, on finding
    /// themselves behind what they reported.
    restored: BTreeSet<usize>,
}

impl Nemesis {
    pub fn new(seed: u64, faults: &BTreeSet<Fault>) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed ^ 0x006E_656D_6573_6973),
            // Rescale runs in its own client, beside the nemesis; the power
            // cut comes once, at the end.
            faults: faults
                .iter()
                .copied()
                .filter(|f| !matches!(f, Fault::Rescale | Fault::PowerCut | Fault::StepDown))
                .collect(),
            active: None,
            next_at: Duration::from_secs(3),
            fired_seen: std::collections::BTreeMap::new(),
            backups: std::collections::BTreeMap::new(),
            restored: BTreeSet::new(),
            power_cut_at_end: faults.contains(&Fault::PowerCut)
                && SmallRng::seed_from_u64(seed ^ 0x706F_7765_7263_7574).random_bool(0.25),
        }
    }

    /// When the workload ends: in the seeds that have one, every node that
    /// is up loses power at once (publishes are in flight), each keeping a
    /// random prefix of its unsynced batches. [`Self::heal_all`] then
    /// restarts them.
    pub fn end_of_workload(
        &mut self,
        sim: &mut Sim<'_>,
        nodes: &mut [SimNode],
        hist: &SharedHistory,
    ) {
        if !self.power_cut_at_end {
            return;
        }
        let mut lost = Vec::new();
        for node in nodes.iter_mut().filter(|n| n.up) {
            let unsynced = node.engine.unsynced_batches();
            let keep = self.rng.random_range(0..=unsynced);
            Self::crash(sim, node, keep, hist);
            lost.push(format!(
                "{} (kept {keep} of {unsynced} unsynced)",
                node.name
            ));
        }
        hist.borrow_mut().event(
            sim.elapsed(),
            format!("nemesis: power cut to every node: {}", lost.join(", ")),
        );
    }

    /// Called before every step of the workload phase.
    pub fn tick(&mut self, sim: &mut Sim<'_>, nodes: &mut [SimNode], hist: &SharedHistory) {
        self.stop_fatal(sim, nodes, hist);
        let now = sim.elapsed();
        if let Some((_, until)) = &self.active {
            if now >= *until
                && let Some((undo, _)) = self.active.take()
            {
                self.undo(sim, nodes, undo, hist);
                self.next_at = now + Duration::from_millis(self.rng.random_range(200..2_000));
            }
            return;
        }
        if now < self.next_at || self.faults.is_empty() {
            return;
        }
        let Some(&fault) = self.faults.choose(&mut self.rng) else {
            return;
        };
        let hold = Duration::from_millis(self.rng.random_range(500..5_000));
        let undo = self.inject(fault, sim, nodes, hist);
        self.active = Some((undo, now + hold));
    }

    /// Undoes whatever is active and restarts every crashed node.
    pub fn heal_all(&mut self, sim: &mut Sim<'_>, nodes: &mut [SimNode], hist: &SharedHistory) {
        if let Some((undo, _)) = self.active.take() {
            self.undo(sim, nodes, undo, hist);
        }
        let down: Vec<usize> = (0..nodes.len()).filter(|i| !nodes[*i].up).collect();
        if !down.is_empty() {
            self.undo(sim, nodes, Undo::Restart(down), hist);
        }
        for n in nodes.iter() {
            n.clock.reset();
        }
        hist.borrow_mut()
            .event(sim.elapsed(), "nemesis: final heal".to_string());
    }

    /// What an operator does for a memory stream that waits for the
    /// replicas that kept it (decision 35): restarts those nodes (cleanly:
    /// everything they wrote reached their disks), so every replica has
    /// forgotten it and they found it again.
    pub fn restart_cleanly(
        &mut self,
        sim: &mut Sim<'_>,
        nodes: &mut [SimNode],
        which: Vec<usize>,
        hist: &SharedHistory,
    ) {
        for &i in &which {
            let unsynced = nodes[i].engine.unsynced_batches();
            Self::crash(sim, &mut nodes[i], unsynced, hist);
        }
        self.undo(sim, nodes, Undo::Restart(which), hist);
    }

    /// A node whose store failed a write or fsync stopped itself; it is
    /// crashed here (what it had not synced may be lost, as its dirty pages
    /// may be) as `jetraft server` exits. Only an injected failure
    /// (`sync-fail`) may cause this, or a node put back from a backup
    /// finding itself behind (`restore-backup`; it is started again at
    /// once, as a supervisor would): any other is a violation.
    pub fn stop_fatal(&mut self, sim: &mut Sim<'_>, nodes: &mut [SimNode], hist: &SharedHistory) {
        for (i, node) in nodes.iter_mut().enumerate() {
            if !node.up {
                continue;
            }
            let Some(why) = node.fatal() else {
                continue;
            };
            let unsynced = node.engine.unsynced_batches();
            let keep = self.rng.random_range(0..=unsynced);
            Self::crash(sim, node, keep, hist);
            let fired = node.faulty.fired();
            let seen = self.fired_seen.entry(i).or_default();
            let injected = fired > *seen;
            *seen = fired;
            // A node put back from a backup stops once it learns it is
            // behind; a supervisor starts it again (a new incarnation).
            let behind = why.contains("put back from an older copy") && self.restored.remove(&i);
            if behind {
                sim.bounce(node.name.as_str());
                node.up = true;
            }
            let mut h = hist.borrow_mut();
            if !injected && !behind {
                h.unexpected_fatal
                    .push(format!("{} stopped on its own: {why}", node.name));
            }
            h.event(
                sim.elapsed(),
                format!(
                    "nemesis: {} stopped on a fatal storage error (kept {keep} of {unsynced} unsynced): {why}",
                    node.name
                ),
            );
        }
    }

    fn names(nodes: &[SimNode]) -> Vec<String> {
        nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Kills the node's process, keeping `keep` of its unsynced batches.
    pub fn crash(sim: &mut Sim<'_>, node: &mut SimNode, keep: usize, hist: &SharedHistory) {
        hist.borrow_mut()
            .crashes
            .push((node.name.clone(), sim.elapsed()));
        sim.crash(node.name.as_str());
        *node.cluster.borrow_mut() = None;
        node.engine.crash_keeping(keep);
        node.up = false;
    }

    fn stream_leader(nodes: &[SimNode]) -> Option<usize> {
        let leader = nodes
            .iter()
            .filter(|n| n.up)
            .find_map(|n| n.stream_group(STREAM)?.leader())?;
        nodes.iter().position(|n| n.id == leader)
    }

    /// Whether wiping `victim`'s disk leaves every durable group (the meta
    /// group, `S`, `L`) a majority of voters that kept their data: a
    /// majority that lost its disks loses data in any system, so the
    /// nemesis never goes that far. Every node is up; in each group the
    /// membership is settled (no learner catching up, no change
    /// committing), every voter counts (admitted with the incarnation it
    /// has), and the voters without `victim` are still a majority (an R2
    /// stream, mid-rescale, cannot spare one), also in the replica set
    /// the catalog asks for.
    fn may_wipe(nodes: &[SimNode], victim: usize) -> Result<(), String> {
        if nodes.iter().any(|n| !n.up) {
            return Err("a node is down already".into());
        }
        let victim_id = nodes[victim].id;
        let groups: [(&str, GroupOf); 4] = [
            ("meta", |n| n.cluster().map(|c| c.meta_group().clone())),
            (STREAM, |n| n.stream_group(STREAM)),
            (LIMITS_STREAM, |n| n.stream_group(LIMITS_STREAM)),
            (crate::consumer::JOBS_STREAM, |n| {
                n.stream_group(crate::consumer::JOBS_STREAM)
            }),
        ];
        for (name, group_of) in groups {
            // The job stream is made by the workload: nothing to keep
            // before it exists.
            if name == crate::consumer::JOBS_STREAM && !nodes.iter().any(|n| group_of(n).is_some())
            {
                continue;
            }
            let leader = nodes
                .iter()
                .filter_map(|n| group_of(n).filter(|g| g.leader() == Some(n.id)))
                .next();
            let Some(leader) = leader else {
                return Err(format!("{name} has no leader"));
            };
            let m = leader.members();
            if !m.committed || m.joint || !m.learners.is_empty() {
                return Err(format!("{name} is changing its members"));
            }
            for voter in &m.voters {
                let counts = nodes
                    .iter()
                    .find(|n| n.id == *voter)
                    .and_then(group_of)
                    .is_some_and(|g| g.standing.may_vote_strictly().is_ok());
                if !counts {
                    return Err(format!("{name}: node {voter} is not re-admitted yet"));
                }
            }
            if m.voters.contains(&victim_id) && (m.voters.len() - 1) * 2 <= m.voters.len() {
                return Err(format!(
                    "{name} has {} voters and cannot spare one",
                    m.voters.len()
                ));
            }
        }
        // The replicas the operator asked for (a rescale the group has not
        // made yet) must be able to spare it too: an R2 set cannot.
        for stream in [STREAM, LIMITS_STREAM] {
            for n in nodes {
                let Some(c) = n.cluster() else { continue };
                let Some(wanted) = c
                    .catalog()
                    .stream(jetraft_types::GLOBAL_ACCOUNT, stream)
                    .map(|a| a.peers.clone())
                else {
                    continue;
                };
                if wanted.contains(&victim_id) && (wanted.len() - 1) * 2 <= wanted.len() {
                    return Err(format!(
                        "{stream} is asked to have {} replicas and cannot spare one",
                        wanted.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The backup `restore-backup` puts back: `victim`'s if it has one,
    /// else any node's; none taken yet: `victim`'s disk is backed up.
    fn pick_backup(&mut self, victim: usize) -> Option<(usize, jetraft_store::mem::MemBackup)> {
        let node = if self.backups.contains_key(&victim) {
            victim
        } else {
            *self.backups.keys().next()?
        };
        self.backups.remove(&node).map(|b| (node, b))
    }

    fn inject(
        &mut self,
        fault: Fault,
        sim: &mut Sim<'_>,
        nodes: &mut [SimNode],
        hist: &SharedHistory,
    ) -> Undo {
        let names = Self::names(nodes);
        let n = names.len();
        let victim = self.rng.random_range(0..n);
        let (text, undo) = match fault {
            Fault::Partition => {
                let mut order = names.clone();
                order.shuffle(&mut self.rng);
                let small = self.rng.random_range(1..=(n - 1) / 2);
                let (a, b) = order.split_at(small);
                let mut pairs = Vec::new();
                for x in a {
                    for y in b {
                        sim.partition(x.as_str(), y.as_str());
                        pairs.push((x.clone(), y.clone()));
                    }
                }
                (format!("partition {a:?} | {b:?}"), Undo::Repair(pairs))
            }
            Fault::OneWay => {
                let from = names[victim].clone();
                let mut pairs = Vec::new();
                for to in names.iter().filter(|t| **t != from) {
                    if self.rng.random_bool(0.7) {
                        sim.partition_oneway(from.as_str(), to.as_str());
                        pairs.push((from.clone(), to.clone()));
                    }
                }
                (format!("one-way cut {pairs:?}"), Undo::RepairOneway(pairs))
            }
            Fault::Delay => {
                let ms = self.rng.random_range(20..400);
                sim.set_max_message_latency(Duration::from_millis(ms));
                (format!("latency up to {ms}ms"), Undo::Latency)
            }
            Fault::ConnFail => {
                let who = names[victim].clone();
                for other in names.iter().filter(|o| **o != who) {
                    sim.set_link_fail_rate(who.as_str(), other.as_str(), 0.05);
                }
                (format!("connection failures at {who}"), Undo::FailRate(who))
            }
            Fault::Crash => {
                // Now and then a majority loses power at once.
                let count = if self.rng.random_bool(0.3) {
                    n / 2 + 1
                } else {
                    1
                };
                let mut order: Vec<usize> = (0..n).filter(|i| nodes[*i].up).collect();
                order.shuffle(&mut self.rng);
                order.truncate(count);
                let mut lost = Vec::new();
                for &i in &order {
                    let unsynced = nodes[i].engine.unsynced_batches();
                    let keep = self.rng.random_range(0..=unsynced);
                    Self::crash(sim, &mut nodes[i], keep, hist);
                    lost.push(format!("{} (kept {keep} of {unsynced} unsynced)", names[i]));
                }
                (format!("crash {}", lost.join(", ")), Undo::Restart(order))
            }
            Fault::Pause => {
                let who = names[victim].clone();
                for other in names.iter().filter(|o| **o != who) {
                    sim.hold(who.as_str(), other.as_str());
                }
                (format!("pause {who}"), Undo::Release(who))
            }
            Fault::ClockJump => {
                let secs = self.rng.random_range(-10i64..=10);
                nodes[victim].clock.jump(secs * 1_000_000_000);
                (
                    format!("clock of {} jumps {secs:+}s", names[victim]),
                    Undo::Clock(victim),
                )
            }
            Fault::LeaderKill => match Self::stream_leader(nodes) {
                Some(i) => {
                    Self::crash(sim, &mut nodes[i], 0, hist);
                    (
                        format!("kill stream leader {}", names[i]),
                        Undo::Restart(vec![i]),
                    )
                }
                None => ("kill stream leader: none".to_string(), Undo::Nothing),
            },
            Fault::BitFlip => {
                let node = &nodes[victim];
                let keys = node.engine.durable_entries(Cf::Messages);
                match keys.choose(&mut self.rng) {
                    Some((key, value)) if !value.is_empty() => {
                        let bit = self.rng.random_range(0..value.len() * 8);
                        node.engine.corrupt(Cf::Messages, key, bit);
                        (
                            format!("flip bit {bit} of a message record on {}", names[victim]),
                            Undo::Nothing,
                        )
                    }
                    _ => (
                        "flip a bit: no message stored yet".to_string(),
                        Undo::Nothing,
                    ),
                }
            }
            Fault::WipeDisk => match Self::may_wipe(nodes, victim) {
                Err(why) => (
                    format!("wipe a disk of {}: {why}", names[victim]),
                    Undo::Nothing,
                ),
                Ok(()) => {
                    Self::crash(sim, &mut nodes[victim], 0, hist);
                    nodes[victim].engine.wipe();
                    // A backup of the old disk would bring back an
                    // incarnation the groups already replaced.
                    self.backups.remove(&victim);
                    (
                        format!("wipe the disk of {} (crash, empty store)", names[victim]),
                        Undo::Restart(vec![victim]),
                    )
                }
            },
            Fault::RestoreBackup => match self.pick_backup(victim) {
                None => {
                    self.backups.insert(victim, nodes[victim].engine.backup());
                    (
                        format!("back up the disk of {}", names[victim]),
                        Undo::Nothing,
                    )
                }
                Some((victim, backup)) => match Self::may_wipe(nodes, victim) {
                    Err(why) => {
                        self.backups.insert(victim, backup);
                        (
                            format!("restore a backup of {}: {why}", names[victim]),
                            Undo::Nothing,
                        )
                    }
                    Ok(()) => {
                        Self::crash(sim, &mut nodes[victim], 0, hist);
                        nodes[victim].engine.restore(&backup);
                        self.restored.insert(victim);
                        (
                            format!(
                                "put the disk of {} back from its backup (crash, older store)",
                                names[victim]
                            ),
                            Undo::Restart(vec![victim]),
                        )
                    }
                },
            },
            Fault::SyncFail => {
                let ok = self.rng.random_range(0..8);
                nodes[victim].faulty.fail_sync_after(ok);
                (
                    format!("fsync {} from now fails on {}", ok + 1, names[victim]),
                    Undo::SyncFail(victim),
                )
            }
            Fault::Rescale | Fault::PowerCut | Fault::StepDown => {
                (format!("{fault}: not in the rotation"), Undo::Nothing)
            }
        };
        hist.borrow_mut()
            .event(sim.elapsed(), format!("nemesis: {text}"));
        undo
    }

    fn undo(&mut self, sim: &mut Sim<'_>, nodes: &mut [SimNode], undo: Undo, hist: &SharedHistory) {
        let text = match undo {
            Undo::Repair(pairs) => {
                for (a, b) in &pairs {
                    sim.repair(a.as_str(), b.as_str());
                }
                "repair partition".to_string()
            }
            Undo::RepairOneway(pairs) => {
                for (a, b) in &pairs {
                    sim.repair_oneway(a.as_str(), b.as_str());
                }
                "repair one-way cut".to_string()
            }
            Undo::Latency => {
                sim.set_max_message_latency(BASE_MAX_LATENCY);
                "latency back to normal".to_string()
            }
            Undo::FailRate(who) => {
                for other in nodes.iter().filter(|o| o.name != who) {
                    sim.set_link_fail_rate(who.as_str(), other.name.as_str(), 0.0);
                }
                format!("connections at {who} stop failing")
            }
            Undo::Restart(which) => {
                let mut started = Vec::new();
                for i in which {
                    if !nodes[i].up {
                        sim.bounce(nodes[i].name.as_str());
                        nodes[i].up = true;
                        started.push(nodes[i].name.clone());
                    }
                }
                format!("restart {started:?}")
            }
            Undo::Release(who) => {
                for other in nodes.iter().filter(|o| o.name != who) {
                    sim.release(who.as_str(), other.name.as_str());
                }
                format!("release {who}")
            }
            Undo::Clock(i) => {
                nodes[i].clock.reset();
                format!("clock of {} back", nodes[i].name)
            }
            Undo::SyncFail(i) => {
                let unfired = nodes[i].faulty.armed();
                nodes[i].faulty.disarm();
                let restart = !nodes[i].up;
                if restart {
                    sim.bounce(nodes[i].name.as_str());
                    nodes[i].up = true;
                }
                let what = match (unfired, restart) {
                    (true, _) => "disarmed before it fired",
                    (false, true) => "fired; restart the node",
                    (false, false) => "fired",
                };
                format!("sync fault on {}: {what}", nodes[i].name)
            }
            Undo::Nothing => return,
        };
        hist.borrow_mut()
            .event(sim.elapsed(), format!("nemesis: {text}"));
    }
}
