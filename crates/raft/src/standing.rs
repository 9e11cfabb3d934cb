//! Whether a node counts in a group: the data directory's identity, and
//! the gates that keep a node that lost its state out of every quorum
//! until the group has re-admitted it (ARCHITECTURE decision 29).
//!
//! Each data directory gets an *incarnation* (a random u64) when it is
//! created; a replaced or wiped disk comes back as a new one. Every group's
//! membership records, for each node, the incarnation it was admitted
//! with ([`crate::types::Member`]). Raft's safety rests on voters that
//! remember: a vote once granted and every entry once acknowledged. A node
//! whose incarnation differs from the recorded one remembers neither, so:
//!
//! - it grants no votes and asks for none ([`Standing::may_vote`]): the
//!   service refuses vote requests, and the candidate side sends none;
//! - its replication replies and votes are not counted by a leader or
//!   candidate whose committed membership records another incarnation for
//!   it ([`Standing::counts`]);
//! - the leader re-admits it one membership change at a time
//!   ([`crate::membership`]): voter → learner, then the new incarnation
//!   recorded, then (caught up) voter again.
//!
//! A node with no state for a group may vote in it only as one of the
//! group's *founding* replicas with its current incarnation (the roster
//! the group was created with: the catalog's record for a stream, the
//! cluster's founding roster for the meta group).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use jetraft_store::keys::{self, NODE_GROUP, StateKind};
use jetraft_store::{Cf, Engine, WriteBatch};
use jetraft_types::config::StorageType;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::kv;
use crate::sm::GroupSm;
use crate::types::{NodeId, Raft, StoredMembership};

/// Node id → the incarnation recorded for it.
pub type Roster = BTreeMap<NodeId, u64>;

/// The incarnations `membership` records, node by node.
pub fn roster_of(membership: &StoredMembership) -> Roster {
    membership
        .membership()
        .nodes()
        .map(|(id, m)| (*id, m.incarnation))
        .collect()
}

/// The data directory's identity, created once with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredIdentity {
    incarnation: u64,
    /// The meta group's founding roster, once this node created or
    /// adopted one.
    meta_founding: Option<Roster>,
}

impl StoredIdentity {
    /// Writes the identity and fsyncs it before it is used.
    fn store(&self, engine: &dyn Engine) -> io::Result<()> {
        let mut batch = WriteBatch::new();
        kv::put(
            &mut batch,
            Cf::State,
            keys::state(NODE_GROUP, StateKind::Identity),
            self,
        )?;
        engine.write(batch)?;
        engine.sync()
    }
}

/// A node's two incarnations: of its data directory (disk groups) and of
/// its process (groups kept in memory, new at every start: a restart
/// forgets them whatever the disk kept). 0: not known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Incarnations {
    pub disk: u64,
    pub memory: u64,
}

impl Incarnations {
    /// The one that names the node in groups kept in `storage`.
    pub fn of(self, storage: StorageType) -> u64 {
        match storage {
            StorageType::File => self.disk,
            StorageType::Memory => self.memory,
        }
    }
}

/// The node's identity, loaded from (or created in) its store.
pub struct Identity {
    incarnations: Incarnations,
    meta_founding: Mutex<Option<Roster>>,
}

impl Identity {
    /// Loads the store's identity, or creates one (fsynced before it is
    /// used) from `entropy` when the store has none: a new data directory.
    /// `entropy` differs at every start: it also makes the process's
    /// memory incarnation.
    pub fn load_or_create(engine: &dyn Engine, entropy: u64) -> io::Result<(Self, bool)> {
        let key = keys::state(NODE_GROUP, StateKind::Identity);
        let (stored, created) = match kv::get::<StoredIdentity>(engine, Cf::State, &key)? {
            Some(s) => (s, false),
            None => {
                let s = StoredIdentity {
                    incarnation: splitmix(entropy).max(1),
                    meta_founding: None,
                };
                s.store(engine)?;
                (s, true)
            }
        };
        let remembers = jetraft_types::bugs::enabled(jetraft_types::bugs::Bug::MemoryRemembers);
        let incarnations = Incarnations {
            disk: stored.incarnation,
            memory: if remembers {
                stored.incarnation
            } else {
                splitmix(entropy ^ MEMORY_SALT).max(1)
            },
        };
        Ok((
            Self {
                incarnations,
                meta_founding: Mutex::new(stored.meta_founding),
            },
            created,
        ))
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnations.disk
    }

    pub fn incarnations(&self) -> Incarnations {
        self.incarnations
    }

    pub fn meta_founding(&self) -> Option<Roster> {
        self.meta_founding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Gives the data directory a new incarnation (fsynced), keeping what
    /// it holds: it was found behind what it reported to a peer (decision
    /// 37), so from its next start it is re-admitted by every group like
    /// a new disk instead of counting with state it lost. The running
    /// process keeps its incarnation and must stop.
    pub fn retire(&self, engine: &dyn Engine, entropy: u64) -> io::Result<u64> {
        let incarnation = splitmix(entropy ^ self.incarnations.disk ^ RETIRE_SALT).max(1);
        StoredIdentity {
            incarnation,
            meta_founding: self.meta_founding(),
        }
        .store(engine)?;
        Ok(incarnation)
    }

    /// Records the meta group's founding roster (fsynced).
    pub fn set_meta_founding(&self, engine: &dyn Engine, roster: Roster) -> io::Result<()> {
        StoredIdentity {
            incarnation: self.incarnations.disk,
            meta_founding: Some(roster.clone()),
        }
        .store(engine)?;
        *self.meta_founding.lock().unwrap_or_else(|p| p.into_inner()) = Some(roster);
        Ok(())
    }
}

/// Mixed into the start's entropy for the incarnation a data directory
/// takes when it is found behind what it reported ([`Identity::retire`]).
const RETIRE_SALT: u64 = 0x7265_7469_7265_6421;

/// Mixed into the start's entropy for the memory incarnation, so it is
/// never the data directory's one.
const MEMORY_SALT: u64 = 0x6d65_6d6f_7279_0001;

/// SplitMix64: spreads a seed over all 64 bits.
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Why this node does not count in a group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCounted {
    #[error("this node is not a voter of the group")]
    NotVoter,
    #[error(
        "this node's data directory (incarnation {mine:016x}) is not the one the group \
         admitted ({recorded:016x}): it lost its state and waits for the leader to re-admit it"
    )]
    Forgotten { mine: u64, recorded: u64 },
    #[error(
        "this node holds none of the group's state and is not one of its founding replicas \
         with this data directory: it waits for the group's leader to add it"
    )]
    NotFounding,
}

/// One group's view of this node's standing, shared by its network
/// (candidate and leader side) and the cluster service (voter side).
pub struct Standing {
    me: NodeId,
    /// Where the group keeps its log and state: which of a node's
    /// incarnations names it in this group.
    storage: StorageType,
    incarnation: u64,
    founding: Mutex<Option<Roster>>,
    /// The incarnations the group's applied (committed) membership records.
    applied: watch::Receiver<Arc<Roster>>,
    raft: OnceLock<Raft<GroupSm>>,
    /// An operator accepted the loss of what forgetful replicas held
    /// (`jetraft admin accept-loss`): every gate is open for this group.
    accept_loss: AtomicBool,
    /// The term in which the loss was accepted: only a leader of a later
    /// term can have admitted the nodes that answer.
    accepted_in: AtomicU64,
}

impl Standing {
    pub fn new(
        me: NodeId,
        storage: StorageType,
        incarnation: u64,
        founding: Option<Roster>,
        applied: watch::Receiver<Arc<Roster>>,
    ) -> Self {
        Self {
            me,
            storage,
            incarnation,
            founding: Mutex::new(founding),
            applied,
            raft: OnceLock::new(),
            accept_loss: AtomicBool::new(false),
            accepted_in: AtomicU64::new(0),
        }
    }

    pub(crate) fn attach(&self, raft: Raft<GroupSm>) {
        let _ = self.raft.set(raft);
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn storage(&self) -> StorageType {
        self.storage
    }

    pub fn founding(&self) -> Option<Roster> {
        self.founding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_founding(&self, roster: Roster) {
        *self.founding.lock().unwrap_or_else(|p| p.into_inner()) = Some(roster);
    }

    /// Opens the gates; `term` is the group's current term here.
    pub fn accept_loss(&self, term: u64) {
        self.accepted_in.store(term, Ordering::SeqCst);
        self.accept_loss.store(true, Ordering::SeqCst);
    }

    /// The term in which the loss was accepted.
    pub fn accepted_in(&self) -> u64 {
        self.accepted_in.load(Ordering::SeqCst)
    }

    pub fn clear_accept_loss(&self) {
        self.accept_loss.store(false, Ordering::SeqCst);
    }

    pub fn accepting_loss(&self) -> bool {
        self.accept_loss.load(Ordering::SeqCst)
    }

    /// Whether this node may grant votes (and ask for them) in the group:
    /// it is a voter of its latest membership admitted with this data
    /// directory, or it holds no state yet and is a founding replica.
    pub fn may_vote(&self) -> Result<(), NotCounted> {
        if self.accepting_loss() {
            return Ok(());
        }
        self.may_vote_strictly()
    }

    /// [`Standing::may_vote`] without an operator's accept-loss.
    pub fn may_vote_strictly(&self) -> Result<(), NotCounted> {
        let Some(raft) = self.raft.get() else {
            return Err(NotCounted::NotFounding);
        };
        use openraft::async_runtime::WatchReceiver;
        let m = raft.metrics().borrow_watched().membership_config.clone();
        let membership = m.membership();
        if membership.voter_ids().next().is_none() {
            let founding = self.founding();
            return match founding.as_ref().and_then(|r| r.get(&self.me)) {
                Some(i) if *i == self.incarnation => Ok(()),
                _ => Err(NotCounted::NotFounding),
            };
        }
        if !membership.voter_ids().any(|v| v == self.me) {
            return Err(NotCounted::NotVoter);
        }
        let recorded = membership.get_node(&self.me).map_or(0, |n| n.incarnation);
        if recorded != self.incarnation {
            return Err(NotCounted::Forgotten {
                mine: self.incarnation,
                recorded,
            });
        }
        Ok(())
    }

    /// Whether a reply from `node`, whose data directory is
    /// `incarnation`, counts here: toward a commit (this node leads) or
    /// an election (this node is a candidate). It does unless the
    /// committed membership (or, before there is one, the founding
    /// roster) records another incarnation for that node.
    pub fn counts(&self, node: NodeId, incarnation: u64) -> bool {
        if self.accepting_loss() {
            return true;
        }
        let recorded = self.applied.borrow().get(&node).copied();
        let recorded = recorded.or_else(|| self.founding().and_then(|r| r.get(&node).copied()));
        recorded.is_none_or(|r| r == incarnation)
    }
}
