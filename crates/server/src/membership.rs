//! Moving streams between replica sets (`STREAM.UPDATE` with a new
//! `num_replicas`).
//!
//! The catalog says which nodes should hold a stream; the stream's Raft
//! group says which do. Every node runs [`membership_loop`]:
//! - as a stream's leader (also one the catalog dropped: it leads until
//!   the change that removes it commits) it moves the group toward the catalog one
//!   [`Group::reshape`] step at a time: new replicas join as learners and
//!   catch up, then the voters are replaced in one joint-consensus change;
//! - as a replica the catalog no longer lists, it keeps serving the group
//!   (the old quorum may need it) until a membership without it is
//!   committed, which it sees itself or learns from one of the stream's
//!   replicas; only then does it delete its copy.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jetraft_meta::{META_GROUP, StreamAssignment};
use jetraft_raft::{Group, GroupId, Reshape};

use crate::cluster::Cluster;
use crate::wire::{NodeCall, NodeReply};

const TICK: Duration = Duration::from_millis(250);

/// Groups with a reshape step running, so a slow step (a voter change
/// waits for its commits) is not started twice.
#[derive(Default)]
struct InFlight(Mutex<BTreeSet<GroupId>>);

impl InFlight {
    fn claim(&self, id: GroupId) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(id)
    }

    fn release(&self, id: GroupId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

pub async fn membership_loop(cluster: Arc<Cluster>) {
    let in_flight = Arc::new(InFlight::default());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let me = cluster.host().me();
        let catalog = cluster.catalog();
        close_accepted_losses(&cluster);
        let meta = cluster.meta_group();
        if meta.leader() == Some(me) && in_flight.claim(META_GROUP) {
            // The meta group's voters are every configured node; a node
            // that lost its state is re-admitted like a stream's replica.
            let wanted: BTreeSet<u64> = cluster.host().peers.addrs().keys().copied().collect();
            let cluster = cluster.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                step(&meta, &wanted, &cluster, "meta").await;
                in_flight.release(META_GROUP);
            });
        }
        for a in catalog.streams() {
            let Some(g) = cluster.host().group(a.group) else {
                continue;
            };
            if g.leader() == Some(me) && in_flight.claim(a.group) {
                let wanted: BTreeSet<u64> = a.peers.iter().copied().collect();
                let cluster = cluster.clone();
                let in_flight = in_flight.clone();
                let name = a.config.name.clone();
                tokio::spawn(async move {
                    step(&g, &wanted, &cluster, &name).await;
                    in_flight.release(g.id);
                });
            } else if !a.peers.contains(&me)
                && g.leader() != Some(me)
                && leaving_done(&cluster, &g, a).await
            {
                leave(&cluster, a).await;
            }
        }
    }
}

/// One [`Group::reshape`] step, logged.
async fn step(g: &Group, wanted: &BTreeSet<u64>, cluster: &Cluster, name: &str) {
    match g.reshape(wanted, &cluster.host().peers).await {
        Ok(Reshape::Changed(what)) => tracing::info!(group = %name, "replicas: {what}"),
        Ok(Reshape::Waiting(why)) => tracing::debug!(group = %name, "replicas: {why}"),
        Ok(Reshape::Settled) => {}
        Err(e) => {
            tracing::info!(group = %name, error = %e, "replica change step failed; retrying")
        }
    }
}

/// A follower's accept-loss ends once a leader elected after it (a later
/// term: not the dead leader it may still name) has admitted it; the
/// leader's own ends in [`Group::reshape`].
fn close_accepted_losses(cluster: &Cluster) {
    let me = cluster.host().me();
    for id in cluster.host().group_ids() {
        let Some(g) = cluster.host().group(id) else {
            continue;
        };
        if g.standing.accepting_loss()
            && g.metrics().vote.leader_id().term > g.standing.accepted_in()
            && g.leader().is_some_and(|l| l != me)
            && g.standing.may_vote_strictly().is_ok()
        {
            g.standing.clear_accept_loss();
            tracing::warn!(
                group = id,
                "accept-loss done: the leader admitted this node"
            );
        }
    }
}

/// Deletes this node's copy of a stream it no longer holds (unless the
/// catalog moved the stream back here meanwhile).
async fn leave(cluster: &Cluster, a: &StreamAssignment) {
    let _removing = cluster.groups_lock.lock().await;
    let still_away = cluster
        .catalog()
        .by_group(a.group)
        .is_some_and(|now| !now.peers.contains(&cluster.host().me()));
    if !still_away {
        return;
    }
    tracing::info!(stream = %a.config.name, group = a.group,
        "replica moved off this node; deleting the local copy");
    if let Err(e) = cluster.host().remove_group(a.group, true).await {
        tracing::error!(group = a.group, error = %e, "removing stream group");
    }
    cluster.group_removed(a.group);
}

/// Whether the group goes on without this node: its own view of the
/// membership says so, or one of the stream's replicas' does.
async fn leaving_done(cluster: &Cluster, g: &Group, a: &StreamAssignment) -> bool {
    let me = cluster.host().me();
    let mine = g.members();
    if mine.released(me) {
        return true;
    }
    for peer in &a.peers {
        let ask = NodeCall::GroupMembers { group: a.group };
        let Ok(NodeReply::GroupMembers(seen)) = cluster.call(*peer, &ask).await else {
            continue;
        };
        if seen.is_some_and(|m| m.releases(me, &mine)) {
            return true;
        }
    }
    false
}
