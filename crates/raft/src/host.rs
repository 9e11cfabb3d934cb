//! The Raft side of one node: its groups, their shared store, committer and
//! peer connections.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jetraft_meta::{Catalog, META_GROUP};
use jetraft_store::{Engine, WriteBatch};
use jetraft_types::config::{StorageType, StreamConfig};
use openraft::{Config, SnapshotPolicy};
use tokio::sync::watch;

use crate::commit::Committer;
use crate::log_store::LogStore;
use crate::network::{GroupNetwork, Peers};
use crate::sm::{GroupSm, Sessions};
use crate::standing::{Identity, Roster, Standing};
use crate::types::{GroupId, Member, NodeId, Raft, Request, Response, Runtime, TypeConfig};

/// Raft timing for every group. Stream groups are many per node, so
/// heartbeats are not too frequent; elections still finish in about a second.
#[derive(Debug, Clone)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot (and so allow purging the log) every this many entries.
    pub snapshot_every_entries: u64,
    /// Entries kept behind a snapshot for followers that are slightly behind.
    pub keep_behind_snapshot: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        Self {
            heartbeat_ms: 150,
            election_min_ms: 750,
            election_max_ms: 1500,
            snapshot_every_entries: 4096,
            keep_behind_snapshot: 1024,
        }
    }
}

impl RaftTiming {
    fn config(&self, name: &str) -> io::Result<Config> {
        let c = Config {
            cluster_name: name.to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            install_snapshot_timeout: 600_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.keep_behind_snapshot,
            purge_batch_size: 256,
            // Stream entries carry batches of up to 256 KiB (or one message
            // up to 1 MiB): keep a replication message well under the
            // 64 MiB gRPC limit.
            max_payload_entries: 32,
            enable_pre_vote: Some(true),
            // A node whose disk was lost comes back with an empty log. The
            // leader then starts over with it (a snapshot, and the copy
            // that goes with one) instead of panicking its whole group.
            allow_log_reversion: Some(true),
            // A restarted leader runs an election instead of resuming in
            // its old term. Resuming is unsafe here twice over: the state
            // machine is not fsynced on apply and the committed index is
            // not persisted (decision 24), and a leader that lost log
            // entries it had already sent (a crash or failed fsync before
            // its own flush) would append different entries under the
            // same log ids the followers hold (simulation seed 8 with
            // `sync-fail`: replicas diverged).
            enable_leader_restore: Some(false),
            ..Default::default()
        };
        c.validate()
            .map_err(|e| io::Error::other(format!("raft config: {e}")))
    }
}

/// One running group.
#[derive(Clone)]
pub struct Group {
    pub id: GroupId,
    pub raft: Raft<GroupSm>,
    pub sm: GroupSm,
    /// Whether this node counts in the group (decision 29).
    pub standing: Arc<Standing>,
}

/// Why a proposal was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    #[error("group unavailable: {0}")]
    Unavailable(String),
}

/// Why a leadership was not handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepDownError {
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    #[error("node {0} is not a voter of the group")]
    NotAPeer(NodeId),
    #[error("no replacement peer")]
    NoPeers,
    #[error("leadership not handed over: {0}")]
    Unavailable(String),
}

impl From<openraft::error::ClientWriteError<TypeConfig>> for ProposeError {
    fn from(e: openraft::error::ClientWriteError<TypeConfig>) -> Self {
        match e {
            openraft::error::ClientWriteError::ForwardToLeader(f) => Self::NotLeader(f.leader_id),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl Group {
    pub fn metrics(&self) -> openraft::RaftMetrics<TypeConfig> {
        use openraft::async_runtime::WatchReceiver;
        self.raft.metrics().borrow_watched().clone()
    }

    pub fn leader(&self) -> Option<NodeId> {
        use openraft::async_runtime::WatchReceiver;
        self.raft.metrics().borrow_watched().current_leader
    }

    /// Confirms that this node still leads the group and waits until what
    /// was committed when it was called is applied here: a read made after
    /// it sees every write acknowledged before the call (decision 33).
    /// ReadIndex: a quorum of the voters that count (decision 29: a reply
    /// from a node with the wrong incarnation is not an acknowledgement)
    /// answers a heartbeat sent after the call. No clock is trusted. A
    /// deposed leader cut off in a minority gets no quorum and answers
    /// `Unavailable` after one leader lease (the maximum election timeout).
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        use openraft::error::LinearizableReadError as E;
        use openraft::error::RaftError;
        if jetraft_types::bugs::enabled(jetraft_types::bugs::Bug::StaleLeaderRead) {
            return Ok(());
        }
        match self
            .raft
            .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
            .await
        {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(E::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader(f.leader_id))
            }
            Err(e) => Err(ProposeError::Unavailable(e.to_string())),
        }
    }

    /// Hands this node's leadership to `to` (or, without one, to the voter
    /// whose log is furthest along) and waits until another node leads;
    /// returns the new leader. What was committed stays committed: the
    /// new leader is elected with the votes of a quorum, as any leader.
    pub async fn step_down(
        &self,
        to: Option<NodeId>,
        within: std::time::Duration,
    ) -> Result<NodeId, StepDownError> {
        let m = self.metrics();
        let me = m.id;
        if m.current_leader != Some(me) {
            return Err(StepDownError::NotLeader(m.current_leader));
        }
        let voters: Vec<NodeId> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|v| *v != me)
            .collect();
        let matched = |n: &NodeId| {
            m.replication
                .as_ref()
                .and_then(|r| r.get(n).cloned().flatten())
                .map(|l| l.index)
        };
        let to = match to {
            Some(t) if voters.contains(&t) => t,
            Some(t) => return Err(StepDownError::NotAPeer(t)),
            None => voters
                .iter()
                .copied()
                .max_by_key(|v| (matched(v), std::cmp::Reverse(*v)))
                .ok_or(StepDownError::NoPeers)?,
        };
        self.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| StepDownError::Unavailable(e.to_string()))?;
        let moved = self
            .raft
            .wait(Some(within))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != me),
                "leadership handed over",
            )
            .await
            .map_err(|e| StepDownError::Unavailable(e.to_string()))?;
        moved.current_leader.ok_or(StepDownError::NoPeers)
    }

    /// Proposes `req` (this node must lead the group) and waits until it is
    /// committed and applied here; returns what the state machine replied.
    pub async fn propose(&self, req: Request) -> Result<Response, ProposeError> {
        use openraft::error::RaftError;
        match self.raft.client_write(req).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(e)) => Err(e.into()),
            Err(e) => Err(ProposeError::Unavailable(e.to_string())),
        }
    }
}

pub struct Host {
    pub peers: Arc<Peers>,
    pub engine: Arc<dyn Engine>,
    pub committer: Committer,
    /// The store of groups kept in memory (`storage: "memory"` streams):
    /// one volatile engine for all of them, gone with the process, and a
    /// committer of its own so their appends never wait for a disk fsync
    /// (decision 35).
    memory: Arc<dyn Engine>,
    memory_committer: Committer,
    timing: RaftTiming,
    /// Seeds each group's randomness (election timeouts): the node's seed
    /// mixed with the group id, so a simulation run is reproducible.
    seed: u64,
    groups: Mutex<BTreeMap<GroupId, Group>>,
    /// Stream replicas frozen here for followers copying them.
    pub sessions: Sessions,
    /// The data directory's identity (decision 29).
    pub identity: Arc<Identity>,
}

impl Host {
    /// `entropy` makes the data directory's incarnation if the store has
    /// none yet (a new or wiped disk).
    pub fn new(
        peers: Arc<Peers>,
        engine: Arc<dyn Engine>,
        committer: Committer,
        timing: RaftTiming,
        seed: u64,
        entropy: u64,
    ) -> io::Result<Self> {
        let (identity, created) = Identity::load_or_create(engine.as_ref(), entropy)?;
        let identity = Arc::new(identity);
        if created {
            tracing::info!(
                incarnation = %format!("{:016x}", identity.incarnation()),
                "new data directory: this node counts in no group until the group's leader \
                 admits this incarnation (or it founds the cluster with its peers)"
            );
        }
        // A peer that heard more of this store than it holds (a data
        // directory put back from an older copy, decision 37): the next
        // start is a new incarnation, and this process stops at once.
        let retire = {
            let engine = engine.clone();
            let fatal = committer.fatal().clone();
            let identity = identity.clone();
            Box::new(move |why: String| {
                match identity.retire(engine.as_ref(), entropy) {
                    Ok(next) => tracing::error!(
                        next_incarnation = %format!("{next:016x}"),
                        "{why}"
                    ),
                    Err(e) => tracing::error!(
                        "{why}; recording the new incarnation failed ({e}): the next start \
                         will be found behind again"
                    ),
                }
                fatal.raise(why);
            })
        };
        peers.set_local(identity.incarnation(), committer.marks(), retire);
        peers.load_mark_book(crate::marks::load(engine.as_ref())?);
        tokio::spawn(crate::marks::keep_written(peers.clone(), engine.clone()));
        let memory: Arc<dyn Engine> = Arc::new(jetraft_store::mem::MemEngine::volatile());
        let memory_committer = Committer::start_with(
            memory.clone(),
            crate::commit::SyncMode::Always,
            false,
            committer.fatal().clone(),
        );
        Ok(Self {
            peers,
            engine,
            committer,
            memory,
            memory_committer,
            timing,
            seed,
            groups: Mutex::new(BTreeMap::new()),
            sessions: Sessions::default(),
            identity,
        })
    }

    pub fn me(&self) -> NodeId {
        self.peers.me()
    }

    pub fn incarnation(&self) -> u64 {
        self.identity.incarnation()
    }

    /// This node's incarnation in groups kept in `storage`.
    pub fn incarnation_for(&self, storage: StorageType) -> u64 {
        self.identity.incarnations().of(storage)
    }

    /// Where `storage` groups keep their log and state, and their committer.
    fn store_for(&self, storage: StorageType) -> (Arc<dyn Engine>, Committer) {
        match storage {
            StorageType::File => (self.engine.clone(), self.committer.clone()),
            StorageType::Memory => (self.memory.clone(), self.memory_committer.clone()),
        }
    }

    /// Each node's incarnation for `storage` groups as last seen here
    /// (this node's own included; nodes not heard from yet are missing).
    pub fn seen_incarnations(&self, storage: StorageType) -> Roster {
        let mut roster: Roster = self
            .peers
            .addrs()
            .keys()
            .filter_map(|id| Some((*id, self.peers.seen_incarnation(*id, storage)?)))
            .collect();
        roster.insert(self.me(), self.incarnation_for(storage));
        roster
    }

    /// The incarnation a group's latest membership records for each node.
    pub fn recorded_incarnations(&self, id: GroupId) -> Roster {
        self.group(id).map_or_else(Roster::new, |g| {
            crate::standing::roster_of(&g.metrics().membership_config)
        })
    }

    pub fn group(&self, id: GroupId) -> Option<Group> {
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    pub fn group_ids(&self) -> Vec<GroupId> {
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn members(&self, roster: &Roster) -> io::Result<BTreeMap<NodeId, Member>> {
        roster
            .iter()
            .map(|(id, inc)| {
                let node = self
                    .peers
                    .node(*id, *inc)
                    .ok_or_else(|| io::Error::other(format!("unknown node {id}")))?;
                Ok((*id, node))
            })
            .collect()
    }

    /// Starts the meta group over all configured nodes. A node with no
    /// meta state founds it only with the cluster's founding roster
    /// ([`crate::founding`]).
    pub async fn start_meta(
        self: &Arc<Self>,
    ) -> io::Result<(Group, watch::Receiver<Arc<Catalog>>)> {
        let (sm, rx) = GroupSm::open_meta(
            self.engine.clone(),
            self.committer.clone(),
            self.peers.clone(),
        )?;
        let founding = self.identity.meta_founding();
        let group = self
            .start(META_GROUP, "meta", StorageType::File, sm, founding)
            .await?;
        if !self.has_replica(META_GROUP)? && group.standing.founding().is_none() {
            tokio::spawn(crate::founding::found_meta(self.clone(), group.clone()));
        }
        Ok((group, rx))
    }

    /// Starts (or reopens) a stream group. `founding`: the roster the
    /// group was created with (node → data-directory incarnation), when
    /// this node is one of those replicas; a replica with no state for the
    /// group may then initialize it and vote in it if the roster records
    /// this node's current incarnation. Otherwise a fresh replica waits
    /// until the group's leader admits it.
    pub async fn start_stream(
        &self,
        id: GroupId,
        config: StreamConfig,
        founding: Option<Roster>,
    ) -> io::Result<Group> {
        if let Some(g) = self.group(id) {
            return Ok(g);
        }
        let storage = config.storage;
        let (engine, committer) = self.store_for(storage);
        let sm = GroupSm::open_stream(id, config, engine, committer, self.peers.clone())?;
        self.start(id, &format!("stream-{id}"), storage, sm, founding)
            .await
    }

    async fn start(
        &self,
        id: GroupId,
        name: &str,
        storage: StorageType,
        sm: GroupSm,
        founding: Option<Roster>,
    ) -> io::Result<Group> {
        let config = Arc::new(self.timing.config(name)?);
        let (engine, committer) = self.store_for(storage);
        let log = LogStore::new(id, engine, committer);
        let standing = Arc::new(Standing::new(
            self.me(),
            storage,
            self.incarnation_for(storage),
            founding.clone(),
            sm.roster(),
        ));
        let net = GroupNetwork {
            group: id,
            peers: self.peers.clone(),
            appended: log.appended(),
            heartbeat: Duration::from_millis(config.heartbeat_interval),
            standing: standing.clone(),
        };
        let seed = self.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let raft = Runtime::scope(seed, Raft::new(self.me(), config, net, log, sm.clone()))
            .await
            .map_err(|e| io::Error::other(format!("group {id}: {e}")))?;
        standing.attach(raft.clone());
        let group = Group {
            id,
            raft,
            sm,
            standing,
        };
        if let Some(roster) = founding {
            self.found(&group, roster).await?;
        }
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, group.clone());
        Ok(group)
    }

    /// Initializes `group` with `roster` if this node holds none of its
    /// state and the roster records this node's current incarnation. The
    /// lowest member does so at once; the others only if no leader showed
    /// up after a while (that member may be down). Initializing everywhere
    /// at once makes the first elections race and discards proposals of a
    /// leader that wins and then loses.
    pub(crate) async fn found(&self, group: &Group, roster: Roster) -> io::Result<()> {
        let fresh = group
            .raft
            .is_initialized()
            .await
            .map(|init| !init)
            .unwrap_or(false);
        let mine = self.incarnation_for(group.standing.storage());
        if !fresh || roster.get(&self.me()) != Some(&mine) {
            return Ok(());
        }
        let id = group.id;
        let members = self.members(&roster)?;
        let rank = roster.keys().filter(|m| **m < self.me()).count() as u64;
        let raft = group.raft.clone();
        let delay = Duration::from_millis(self.timing.election_max_ms * 3 * rank);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let uninit = raft
                .is_initialized()
                .await
                .map(|init| !init)
                .unwrap_or(false);
            if uninit && let Err(e) = raft.initialize(members).await {
                tracing::debug!(group = id, error = %e, "initialize");
            }
        });
        Ok(())
    }

    /// Whether this node's store holds a replica of the group (it may not
    /// be running: a node restarted while leaving a group).
    pub fn has_replica(&self, id: GroupId) -> io::Result<bool> {
        for storage in [StorageType::File, StorageType::Memory] {
            let (engine, committer) = self.store_for(storage);
            if LogStore::new(id, engine, committer).exists()? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether this node holds the group, for founding it:
    /// [`Host::has_replica`], except that a running group kept in memory
    /// is held only by a replica that counts in it (admitted with the
    /// incarnation it has now) and has a log. A vote alone, or a log a
    /// forgetful replica copied as a learner not yet promoted, can never
    /// lead the group; counting them stopped it ever being founded again
    /// after every replica that counted forgot it (simulation seeds 72,
    /// 76, 157).
    pub fn holds_group(&self, id: GroupId) -> io::Result<bool> {
        match self.group(id) {
            Some(g) if g.standing.storage() == StorageType::Memory => {
                Ok(g.standing.may_vote_strictly().is_ok() && g.metrics().last_log_index.is_some())
            }
            _ => self.has_replica(id),
        }
    }

    /// Drops this node's replica of a group kept in memory (what it kept
    /// of an earlier generation) and starts it again, empty, as one of
    /// `roster`'s founders ([`crate::founding::found_memory`]).
    pub async fn start_over(
        &self,
        id: GroupId,
        config: StreamConfig,
        roster: Roster,
    ) -> io::Result<()> {
        tracing::info!(
            group = id,
            "dropping what this replica kept of an earlier generation"
        );
        self.remove_group(id, true).await?;
        self.start_stream(id, config, Some(roster)).await?;
        Ok(())
    }

    /// One scrub step over a stream group's message records: verifies up
    /// to `limit` records from `from` on and repairs corrupt ones from the
    /// other `members`. Returns where to continue (0: from the start).
    pub async fn scrub_stream(
        &self,
        id: GroupId,
        from: u64,
        limit: usize,
        members: &[NodeId],
    ) -> io::Result<(u64, usize)> {
        let others: Vec<NodeId> = members
            .iter()
            .copied()
            .filter(|m| *m != self.me())
            .collect();
        let Some(group) = self.group(id) else {
            return Ok((0, 0));
        };
        crate::sm::stream::scrub(&group.sm, from, limit, &others, self.peers.as_ref()).await
    }

    /// Stops a group; with `destroy`, also deletes its log and state.
    pub async fn remove_group(&self, id: GroupId, destroy: bool) -> io::Result<()> {
        let group = self
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let Some(group) = group else { return Ok(()) };
        self.sessions.close_group(id);
        if let Err(e) = group.raft.shutdown().await {
            tracing::warn!(group = id, error = %e, "shutdown");
        }
        if destroy {
            let (engine, committer) = self.store_for(group.standing.storage());
            let mut batch = WriteBatch::new();
            LogStore::new(id, engine.clone(), committer).destroy(&mut batch);
            group.sm.destroy(&mut batch);
            engine.write(batch)?;
        }
        Ok(())
    }

    pub async fn shutdown(&self) {
        let groups: Vec<Group> =
            std::mem::take(&mut *self.groups.lock().unwrap_or_else(|p| p.into_inner()))
                .into_values()
                .collect();
        for g in groups {
            let _ = g.raft.shutdown().await;
        }
    }
}
