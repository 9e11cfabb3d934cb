//! Founding the meta group (or a group kept in memory, below), or waiting
//! to be admitted to it.
//!
//! A node whose store holds no meta state is either one of a brand-new
//! cluster's nodes or a node that lost its disk. Only its peers can tell
//! which, so it asks every one of them ([`Peers::identify`]):
//!
//! - a peer that created or adopted the cluster's *founding roster* (node →
//!   data-directory incarnation) listing this node with its current
//!   incarnation: this node was one of the founders and never held meta
//!   state with this disk, so it adopts the roster (persisted), may vote
//!   while it holds no state, and initializes the group if the lowest
//!   founder does not;
//! - every peer answers and none holds meta state or a roster: a new
//!   cluster. The lowest node creates the roster from the incarnations it
//!   collected; the others adopt it from there;
//! - otherwise (a peer holds meta state and lists this node with another
//!   incarnation, or not every peer answered): this node waits. It counts
//!   in nothing until the meta leader re-admits it ([`crate::membership`]).
//!
//! So a cluster forms once every node of `--peers` has started, and no
//! node with a new disk ever founds a second cluster beside the first.

use std::sync::Arc;
use std::time::Duration;

use jetraft_meta::META_GROUP;
use jetraft_types::config::StreamConfig;

use crate::codec;
use crate::host::{Group, Host};
use crate::network::replied;
use crate::standing::Roster;
use crate::types::NodeId;

/// How often a node without the group's state asks its peers again.
const ASK_EVERY: Duration = Duration::from_millis(500);

/// What the peers said, once.
enum Verdict {
    /// Adopt this roster (it lists this node with its incarnation).
    Adopt(Roster),
    /// Everyone is new: found the group with these incarnations.
    NewGroup(Roster),
    Wait(String),
}

/// Asks each of `nodes` about `group`, whose replicas are named by their
/// incarnation for `storage`.
async fn ask(host: &Host, group: &Group, nodes: &[NodeId]) -> Verdict {
    let me = host.me();
    let storage = group.standing.storage();
    let mine = host.incarnation_for(storage);
    let mut collected = Roster::from([(me, mine)]);
    let mut all_fresh = true;
    let mut why = String::new();
    for peer in nodes.iter().copied().filter(|p| *p != me) {
        match host.peers.identify(peer, group.id).await {
            Ok(r) => {
                let theirs = replied(r.incarnation, r.memory_incarnation);
                collected.insert(peer, theirs.of(storage));
                if !r.founding.is_empty() {
                    if let Ok(roster) = codec::decode::<Roster>(&r.founding)
                        && roster.get(&me) == Some(&mine)
                    {
                        return Verdict::Adopt(roster);
                    }
                    all_fresh = false;
                    why = format!(
                        "node {peer} knows the group, and not this node's incarnation: \
                         waiting for its leader to admit this node"
                    );
                } else if r.has_state {
                    all_fresh = false;
                    why = format!("node {peer} holds the group's state: waiting to be admitted");
                }
            }
            Err(e) => {
                all_fresh = false;
                why = format!("node {peer} did not answer ({e}): every replica must answer first");
            }
        }
    }
    if all_fresh {
        Verdict::NewGroup(collected)
    } else {
        Verdict::Wait(why)
    }
}

/// Runs until this node founded or adopted the meta group's roster, or
/// holds meta state (a leader admitted it).
pub async fn found_meta(host: Arc<Host>, group: Group) {
    let nodes: Vec<NodeId> = host.peers.addrs().keys().copied().collect();
    found(host, group, nodes, None).await;
}

/// The same for a group kept in memory (decision 35) whose replicas are
/// `nodes`: after every replica restarted, none holds its state, and they
/// found it again, empty, with the incarnations their processes have now.
/// While any replica still holds the group ([`Host::holds_group`]), this
/// node waits for that group's leader to re-admit it. What this replica
/// kept of an earlier generation (a vote, or a log it got as a learner
/// that was never admitted) is dropped before it founds the new one:
/// openraft initializes only an empty replica. `config` is the stream's
/// config to start the new generation from.
pub async fn found_memory(host: Arc<Host>, group: Group, nodes: Vec<NodeId>, config: StreamConfig) {
    found(host, group, nodes, Some(config)).await;
}

async fn found(host: Arc<Host>, group: Group, nodes: Vec<NodeId>, config: Option<StreamConfig>) {
    let me = host.me();
    let id = group.id;
    let lowest = nodes.iter().min().copied() == Some(me);
    let mut last_why = String::new();
    loop {
        if host.holds_group(id).unwrap_or(false) || host.group(id).is_none() {
            return;
        }
        let roster = match ask(&host, &group, &nodes).await {
            Verdict::Adopt(r) => Some(r),
            Verdict::NewGroup(r) if lowest => {
                tracing::info!(group = id, roster = ?r, "founding the group: every replica is new");
                Some(r)
            }
            Verdict::NewGroup(_) => {
                let why = "every replica is new: waiting for the lowest to found the group";
                if why != last_why {
                    tracing::info!(group = id, "{why}");
                    last_why = why.to_string();
                }
                None
            }
            Verdict::Wait(why) => {
                if why != last_why {
                    tracing::warn!(group = id, "{why}");
                    last_why = why;
                }
                None
            }
        };
        if let Some(roster) = roster {
            // The meta group's roster outlives restarts; a memory group's
            // is forgotten with the group.
            if id == META_GROUP
                && let Err(e) = host
                    .identity
                    .set_meta_founding(host.engine.as_ref(), roster.clone())
            {
                tracing::error!(error = %e, "persisting the founding roster");
            } else if let Some(config) = config.filter(|_| host.has_replica(id).unwrap_or(true)) {
                if let Err(e) = host.start_over(id, config, roster).await {
                    tracing::error!(group = id, error = %e, "starting the group over");
                }
                return;
            } else {
                group.standing.set_founding(roster.clone());
                if let Err(e) = host.found(&group, roster).await {
                    tracing::error!(group = id, error = %e, "initializing the group");
                }
                return;
            }
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
}
