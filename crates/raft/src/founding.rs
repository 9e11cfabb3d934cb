//! Founding the meta group, or waiting to be admitted to it.
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

use crate::codec;
use crate::host::{Group, Host};
use crate::standing::Roster;

/// How often a node without meta state asks its peers again.
const ASK_EVERY: Duration = Duration::from_millis(500);

/// What the peers said, once.
enum Verdict {
    /// Adopt this roster (it lists this node with its incarnation).
    Adopt(Roster),
    /// Everyone is new: found the cluster with these incarnations.
    NewCluster(Roster),
    Wait(String),
}

async fn ask(host: &Host) -> Verdict {
    let me = host.me();
    let mut collected = Roster::from([(me, host.incarnation())]);
    let mut all_fresh = true;
    let mut why = String::new();
    for peer in host.peers.addrs().keys().copied().filter(|p| *p != me) {
        match host.peers.identify(peer, META_GROUP).await {
            Ok(r) => {
                collected.insert(peer, r.incarnation);
                if !r.founding.is_empty() {
                    if let Ok(roster) = codec::decode::<Roster>(&r.founding)
                        && roster.get(&me) == Some(&host.incarnation())
                    {
                        return Verdict::Adopt(roster);
                    }
                    all_fresh = false;
                    why = format!(
                        "node {peer} knows the cluster, and not this node's data directory: \
                         waiting for the meta leader to admit it"
                    );
                } else if r.has_state {
                    all_fresh = false;
                    why = format!("node {peer} holds meta state: waiting to be admitted");
                }
            }
            Err(e) => {
                all_fresh = false;
                why = format!("node {peer} did not answer ({e}): every node must answer first");
            }
        }
    }
    if all_fresh {
        Verdict::NewCluster(collected)
    } else {
        Verdict::Wait(why)
    }
}

/// Runs until this node founded or adopted the meta group's roster, or
/// holds meta state (a leader admitted it).
pub async fn found_meta(host: Arc<Host>, group: Group) {
    let me = host.me();
    let lowest = host.peers.addrs().keys().next().copied() == Some(me);
    let mut last_why = String::new();
    loop {
        if host.has_replica(META_GROUP).unwrap_or(false) {
            return;
        }
        let roster = match ask(&host).await {
            Verdict::Adopt(r) => Some(r),
            Verdict::NewCluster(r) if lowest => {
                tracing::info!(roster = ?r, "founding a new cluster: every peer is new");
                Some(r)
            }
            Verdict::NewCluster(_) => {
                let why = "every node is new: waiting for the lowest to found the cluster";
                if why != last_why {
                    tracing::info!("{why}");
                    last_why = why.to_string();
                }
                None
            }
            Verdict::Wait(why) => {
                if why != last_why {
                    tracing::warn!("meta group: {why}");
                    last_why = why;
                }
                None
            }
        };
        if let Some(roster) = roster {
            if let Err(e) = host
                .identity
                .set_meta_founding(host.engine.as_ref(), roster.clone())
            {
                tracing::error!(error = %e, "persisting the founding roster");
            } else {
                group.standing.set_founding(roster.clone());
                if let Err(e) = host.found(&group, roster).await {
                    tracing::error!(error = %e, "initializing the meta group");
                }
                return;
            }
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
}
