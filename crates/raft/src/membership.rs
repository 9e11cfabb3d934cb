//! Changing a group's replica set: what the group's log says its members
//! are, and one step of the leader's move toward a wanted set.
//!
//! A step never loses quorum: new replicas first join as learners and
//! catch up (the log, or a snapshot and the copy of a frozen replica), and
//! only then are the voters replaced, in one joint-consensus change that
//! needs a majority of the old and of the new set. A replica that leaves
//! is needed until that change commits; [`Members::released`] tells it
//! when it no longer is.

use std::collections::{BTreeMap, BTreeSet};

use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};

use crate::host::{Group, ProposeError};
use crate::network::{Peers, replied};
use crate::types::NodeId;

/// A learner within this many entries of the leader's log counts as caught
/// up and may become a voter.
pub const CAUGHT_UP_LAG: u64 = 256;

/// A group's membership as one node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    /// In joint consensus (old and new voters both count).
    pub joint: bool,
    /// This node has applied the entry that set this membership, so it is
    /// committed.
    pub committed: bool,
    /// The log index of the entry that set it (None: never set here).
    #[serde(default)]
    pub index: Option<u64>,
}

impl Members {
    /// A committed membership that does not include `node`: the group
    /// goes on without it, so it may drop its replica. A node that runs
    /// the group but has never learned a membership (a new or wiped disk
    /// waiting to be admitted) has no voters, and releases nobody:
    /// simulation seed 31 with `wipe-disk`, where a replica leaving the
    /// stream asked a just-wiped peer, deleted its copy while it was one
    /// of the two voters that still held the stream, and left the group
    /// without a quorum.
    pub fn released(&self, node: NodeId) -> bool {
        self.committed
            && !self.voters.is_empty()
            && !self.voters.contains(&node)
            && !self.learners.contains(&node)
    }

    /// A peer's view (`self`) that releases `node`, whose own latest view
    /// is `mine`: it must also be newer, as the change that removes a node
    /// comes after every membership that still lists it. A peer whose
    /// view is older (its directory was put back from a backup taken when
    /// the stream had other replicas, simulation seed 49 with
    /// `restore-backup`) releases nobody.
    pub fn releases(&self, node: NodeId, mine: &Members) -> bool {
        self.released(node) && self.index > mine.index
    }
}

/// What one step of [`Group::reshape`] did or is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reshape {
    /// The voters are the wanted set and there are no other learners.
    Settled,
    /// Nothing to do until the group moves on (a change is committing, a
    /// learner is catching up).
    Waiting(String),
    /// A change was made; the next step continues.
    Changed(String),
}

impl Group {
    pub fn members(&self) -> Members {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let committed = m.membership_config.log_id().as_ref().map(|l| l.index)
            <= m.last_applied.as_ref().map(|l| l.index);
        Members {
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            joint: membership.get_joint_config().len() > 1,
            committed,
            index: m.membership_config.log_id().as_ref().map(|l| l.index),
        }
    }

    /// The voters this leader knows to be alive and whole right now: itself
    /// and each follower that [`Self::not_live`] has nothing against, the
    /// leader first, then the one that answered a heartbeat last. Empty
    /// unless this node leads the group. A replica change that shrinks a
    /// stream keeps these first: dropping a replica that is down or forgot
    /// its state costs no quorum, while keeping it can leave the new
    /// voters without one.
    pub fn current_voters(&self, peers: &Peers) -> Vec<NodeId> {
        use openraft::Instant as _;
        let m = self.metrics();
        if m.current_leader != Some(m.id) {
            return Vec::new();
        }
        let mut live: Vec<(std::time::Duration, NodeId)> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| self.not_live(&m, *id, peers).is_none())
            .map(|id| {
                let since = m
                    .heartbeat
                    .as_ref()
                    .and_then(|h| h.get(&id).cloned().flatten())
                    .map_or(std::time::Duration::ZERO, |t| t.elapsed());
                (
                    if id == m.id {
                        std::time::Duration::ZERO
                    } else {
                        since
                    },
                    id,
                )
            })
            .collect();
        live.sort_by_key(|(since, id)| (*id != m.id, *since, *id));
        live.into_iter().map(|(_, id)| id).collect()
    }

    /// Why the leader (metrics `m`) cannot count on member `id` now, or
    /// `None`: it acknowledged a heartbeat within three heartbeat
    /// intervals, has replicated to within [`CAUGHT_UP_LAG`] entries of the
    /// leader's log, and is the incarnation the membership admitted.
    fn not_live(
        &self,
        m: &openraft::RaftMetrics<crate::types::TypeConfig>,
        id: NodeId,
        peers: &Peers,
    ) -> Option<String> {
        use openraft::Instant as _;
        if id == m.id {
            return None;
        }
        let within = std::time::Duration::from_millis(3 * self.raft.config().heartbeat_interval);
        let heard = m
            .heartbeat
            .as_ref()
            .and_then(|h| h.get(&id).cloned().flatten())
            .is_some_and(|t| t.elapsed() <= within);
        if !heard {
            return Some(format!("node {id} has not answered a heartbeat lately"));
        }
        let last = m.last_log_index.unwrap_or(0);
        let matched = m
            .replication
            .as_ref()
            .and_then(|r| r.get(&id).cloned().flatten())
            .map_or(0, |l| l.index);
        if matched + CAUGHT_UP_LAG < last {
            return Some(format!("node {id} is catching up ({matched} of {last})"));
        }
        let roster = crate::standing::roster_of(&m.membership_config);
        let seen = peers.seen_incarnation(id, self.standing.storage());
        if seen.is_some_and(|i| roster.get(&id) != Some(&i)) {
            return Some(format!("node {id} answers as another incarnation"));
        }
        None
    }

    /// One step toward `wanted` voters; this node must lead the group.
    /// Call it again until it answers [`Reshape::Settled`]. A voter change
    /// waits here until both of its entries commit.
    pub async fn reshape(
        &self,
        wanted: &BTreeSet<NodeId>,
        peers: &Peers,
    ) -> Result<Reshape, ProposeError> {
        let now = self.members();
        if !now.committed {
            return Ok(Reshape::Waiting("a membership change is committing".into()));
        }
        if let Some(step) = self.readmit(&now, peers).await? {
            return Ok(step);
        }
        let strays: BTreeSet<NodeId> = now.learners.difference(wanted).copied().collect();
        if now.voters == *wanted && strays.is_empty() && !now.joint {
            return Ok(Reshape::Settled);
        }
        if !strays.is_empty() {
            self.change(ChangeMembers::RemoveNodes(strays.clone()))
                .await?;
            return Ok(Reshape::Changed(format!("removed learners {strays:?}")));
        }
        let missing: Vec<NodeId> = wanted
            .iter()
            .filter(|n| !now.voters.contains(n) && !now.learners.contains(n))
            .copied()
            .collect();
        if !missing.is_empty() {
            let mut nodes = BTreeMap::new();
            for id in &missing {
                let storage = self.standing.storage();
                let incarnation = match peers.seen_incarnation(*id, storage) {
                    Some(i) => i,
                    None => {
                        let r = peers.identify(*id, self.id).await.map_err(|e| {
                            ProposeError::Unavailable(format!(
                                "node {id} did not say who it is: {e}"
                            ))
                        })?;
                        replied(r.incarnation, r.memory_incarnation).of(storage)
                    }
                };
                let node = peers
                    .node(*id, incarnation)
                    .ok_or_else(|| ProposeError::Unavailable(format!("unknown node {id}")))?;
                nodes.insert(*id, node);
            }
            self.change(ChangeMembers::AddNodes(nodes)).await?;
            return Ok(Reshape::Changed(format!("added learners {missing:?}")));
        }
        // Every voter of the new set must be live before the change: a
        // joint configuration needs a majority of the new voters too, and
        // one that waits on a node that went down, or came back without
        // its state, can never commit (simulation seed 91: a shrink to
        // {1, 3} just after node 1 lost its disk left the group stuck in
        // joint consensus). Waiting here keeps the old voters serving, and
        // re-admission can still run.
        let m = self.metrics();
        if let Some(why) = wanted.iter().find_map(|id| self.not_live(&m, *id, peers)) {
            return Ok(Reshape::Waiting(why));
        }
        self.change(ChangeMembers::ReplaceAllVoters(wanted.clone()))
            .await?;
        Ok(Reshape::Changed(format!("voters are now {wanted:?}")))
    }

    /// Re-admission of a node whose data directory is not the incarnation
    /// the membership records (it lost its state, decision 29): a voter is
    /// removed (a majority of the others must agree: its own replies do
    /// not count), then, like any new replica, it is added as a learner
    /// with its new incarnation, catches up, and becomes a voter again.
    /// One membership change per step.
    async fn readmit(&self, now: &Members, peers: &Peers) -> Result<Option<Reshape>, ProposeError> {
        let me = peers.me();
        let recorded = crate::standing::roster_of(&self.metrics().membership_config);
        if self.standing.accepting_loss() {
            return self.accept_loss(&recorded, peers).await;
        }
        for (id, was) in &recorded {
            let Some(is) = peers
                .seen_incarnation(*id, self.standing.storage())
                .filter(|i| i != was)
            else {
                continue;
            };
            if *id == me {
                continue;
            }
            let what = format!(
                "node {id} lost its state (data directory {is:016x}, admitted as {was:016x})"
            );
            if now.voters.contains(id) {
                self.change(ChangeMembers::RemoveVoters(BTreeSet::from([*id])))
                    .await?;
                return Ok(Some(Reshape::Changed(format!(
                    "{what}: removed as a voter; it rejoins as a learner"
                ))));
            }
            self.change(ChangeMembers::RemoveNodes(BTreeSet::from([*id])))
                .await?;
            return Ok(Some(Reshape::Changed(format!(
                "{what}: removed as a learner; it rejoins with its new data directory"
            ))));
        }
        Ok(None)
    }

    /// Under an operator's accept-loss (`jetraft admin accept-loss`): a
    /// majority that kept its state is gone for good, so the nodes that
    /// answer are admitted as they are now, in one change, instead of
    /// being re-admitted through a quorum that no longer exists. Then the
    /// gates close again.
    async fn accept_loss(
        &self,
        recorded: &BTreeMap<NodeId, u64>,
        peers: &Peers,
    ) -> Result<Option<Reshape>, ProposeError> {
        let me = peers.me();
        let mut nodes = BTreeMap::new();
        for (id, was) in recorded {
            let is = if *id == me {
                Some(self.standing.incarnation())
            } else {
                peers.seen_incarnation(*id, self.standing.storage())
            };
            if let Some(is) = is.filter(|i| i != was)
                && let Some(node) = peers.node(*id, is)
            {
                nodes.insert(*id, node);
            }
        }
        if nodes.is_empty() {
            self.standing.clear_accept_loss();
            tracing::warn!(
                group = self.id,
                "accept-loss done: every answering node is admitted"
            );
            return Ok(None);
        }
        let ids: Vec<NodeId> = nodes.keys().copied().collect();
        self.change(ChangeMembers::SetNodes(nodes)).await?;
        Ok(Some(Reshape::Changed(format!(
            "accept-loss: admitted nodes {ids:?} with the data directories they have now"
        ))))
    }

    async fn change(
        &self,
        change: ChangeMembers<NodeId, crate::types::Member>,
    ) -> Result<(), ProposeError> {
        use openraft::error::RaftError;
        match self.raft.change_membership(change, false).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(e)) => Err(e.into()),
            Err(e) => Err(ProposeError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(voters: &[NodeId], learners: &[NodeId], committed: bool) -> Members {
        Members {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
            joint: false,
            committed,
            index: Some(10),
        }
    }

    #[test]
    fn a_peer_releases_a_node_only_with_a_newer_membership() {
        let mine = members(&[1, 2, 3], &[], true);
        let mut theirs = members(&[1, 3], &[], true);
        assert!(!theirs.releases(2, &mine), "as old as mine");
        theirs.index = Some(9);
        assert!(!theirs.releases(2, &mine), "older: a restored copy");
        theirs.index = Some(11);
        assert!(theirs.releases(2, &mine));
    }

    #[test]
    fn only_a_committed_membership_without_the_node_releases_it() {
        assert!(members(&[1, 3], &[], true).released(2));
        assert!(!members(&[1, 3], &[], false).released(2), "not committed");
        assert!(!members(&[1, 2], &[], true).released(2), "a voter");
        assert!(!members(&[1, 3], &[2], true).released(2), "a learner");
    }

    #[test]
    fn a_node_that_never_learned_a_membership_releases_nobody() {
        // What a wiped node answers while it waits to be admitted.
        assert!(!Members::default().released(2));
        assert!(!members(&[], &[], true).released(2));
    }
}
