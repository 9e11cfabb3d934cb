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
use crate::network::Peers;
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
}

impl Members {
    /// A committed membership that does not include `node`: the group
    /// goes on without it, so it may drop its replica.
    pub fn released(&self, node: NodeId) -> bool {
        self.committed && !self.voters.contains(&node) && !self.learners.contains(&node)
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
        }
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
                let node = peers
                    .node(*id)
                    .ok_or_else(|| ProposeError::Unavailable(format!("unknown node {id}")))?;
                nodes.insert(*id, node);
            }
            self.change(ChangeMembers::AddNodes(nodes)).await?;
            return Ok(Reshape::Changed(format!("added learners {missing:?}")));
        }
        let m = self.metrics();
        let last = m.last_log_index.unwrap_or(0);
        for id in wanted.difference(&now.voters) {
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .map_or(0, |l| l.index);
            if matched + CAUGHT_UP_LAG < last {
                return Ok(Reshape::Waiting(format!(
                    "learner {id} is catching up ({matched} of {last})"
                )));
            }
        }
        self.change(ChangeMembers::ReplaceAllVoters(wanted.clone()))
            .await?;
        Ok(Reshape::Changed(format!("voters are now {wanted:?}")))
    }

    async fn change(
        &self,
        change: ChangeMembers<NodeId, openraft::BasicNode>,
    ) -> Result<(), ProposeError> {
        use openraft::error::RaftError;
        match self.raft.change_membership(change, false).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(e)) => Err(e.into()),
            Err(e) => Err(ProposeError::Unavailable(e.to_string())),
        }
    }
}
