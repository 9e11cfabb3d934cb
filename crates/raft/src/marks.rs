//! Telling a data directory that was put back from an older copy
//! (ARCHITECTURE decision 37).
//!
//! A node restored from a backup keeps its incarnation (the identity is in
//! the copy), so decision 29's check does not see it; but its store is
//! behind what it told its peers. Every Raft reply carries two *marks* of
//! the replying store ([`crate::commit::Marks`]): its sequence when the
//! process started (`boot`) and as of its last completed fsync (`mark`).
//! A store's sequence never goes back across restarts or crashes for what
//! was synced, so a process that starts behind what an earlier process of
//! the same data directory reported lost state it had acknowledged:
//! [`MarkBook::reply`] says so and the reply does not count. Requests
//! carry what the caller heard ([`MarkBook::heard`]), so the restored node
//! learns it too and stops; it comes back as a new incarnation and is
//! re-admitted like a node with a new disk.
//!
//! What it cannot see: a restore that no live peer heard the later marks
//! of (the peers that did are down, or restarted: the book is not
//! persisted).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use jetraft_store::keys::{self, NODE_GROUP, StateKind};
use jetraft_store::{Cf, Engine, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::kv;
use crate::network::Peers;
use crate::types::NodeId;

/// How often a node writes down what it heard ([`keep_written`]): a
/// restore is still seen after the peers restart, unless it undoes less
/// than this much of the last moments they heard of.
pub const WRITE_EVERY: Duration = Duration::from_secs(1);

/// How many earlier processes of a node are remembered, so a late reply
/// from one of them is told from a new process.
const RETIRED_PROCESSES: usize = 8;

/// What one reply's marks say about the node that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing against it.
    Counts,
    /// A late reply from a process of the node that has since been
    /// replaced by a newer one: it does not count, and says nothing.
    EarlierProcess,
    /// The replying process started behind what an earlier process of
    /// the same data directory reported: its store was put back from an
    /// older copy.
    Behind { reported: u64, boot: u64 },
}

/// What this node heard from one peer, for the peer's current data
/// directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Heard {
    disk: u64,
    process: u64,
    /// The highest mark the current process reported.
    mark: u64,
    /// The highest mark any earlier process of this directory reported.
    earlier: u64,
    retired: Vec<u64>,
    /// The current process is behind `earlier` (it keeps not counting).
    behind: bool,
}

/// The marks this node heard from each peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkBook {
    nodes: BTreeMap<NodeId, Heard>,
}

impl MarkBook {
    /// Records a reply of `node` (data directory `disk`, process
    /// `process`, marks `boot` and `mark`) and judges it. 0 for `disk` or
    /// `process`: a node that does not send marks; it counts.
    pub fn reply(
        &mut self,
        node: NodeId,
        disk: u64,
        process: u64,
        boot: u64,
        mark: u64,
    ) -> Verdict {
        if disk == 0 || process == 0 {
            return Verdict::Counts;
        }
        let h = self.nodes.entry(node).or_default();
        if h.disk != disk {
            *h = Heard {
                disk,
                process,
                mark,
                ..Heard::default()
            };
            return Verdict::Counts;
        }
        if h.process != process {
            if h.retired.contains(&process) {
                return Verdict::EarlierProcess;
            }
            let earlier = h.earlier.max(h.mark);
            h.retired.push(h.process);
            if h.retired.len() > RETIRED_PROCESSES {
                h.retired.remove(0);
            }
            h.process = process;
            h.earlier = earlier;
            h.mark = mark;
            h.behind = boot < earlier;
        } else {
            h.mark = h.mark.max(mark);
        }
        if h.behind {
            return Verdict::Behind {
                reported: h.earlier,
                boot,
            };
        }
        Verdict::Counts
    }

    /// What this node heard from `node`: its data directory and the
    /// highest mark any of its processes reported there ((0, 0): nothing).
    pub fn heard(&self, node: NodeId) -> (u64, u64) {
        self.nodes
            .get(&node)
            .map_or((0, 0), |h| (h.disk, h.mark.max(h.earlier)))
    }
}

/// The book this node wrote down last (empty if none).
pub fn load(engine: &dyn Engine) -> io::Result<MarkBook> {
    Ok(kv::get(
        engine,
        Cf::State,
        &keys::state(NODE_GROUP, StateKind::PeerMarks),
    )?
    .unwrap_or_default())
}

/// Writes the book down every [`WRITE_EVERY`] when it changed; the next
/// fsync of the store (any group's commit) makes it durable. Runs until
/// the process ends.
pub async fn keep_written(peers: Arc<Peers>, engine: Arc<dyn Engine>) {
    let mut written = MarkBook::default();
    loop {
        tokio::time::sleep(WRITE_EVERY).await;
        let now = peers.mark_book();
        if now == written {
            continue;
        }
        let mut batch = WriteBatch::new();
        let put = kv::put(
            &mut batch,
            Cf::State,
            keys::state(NODE_GROUP, StateKind::PeerMarks),
            &now,
        );
        match put.and_then(|()| engine.write(batch)) {
            Ok(()) => written = now,
            // The store stopped (a fatal error): the node is going away.
            Err(e) => {
                tracing::warn!(error = %e, "could not write down the peers' marks");
                return;
            }
        }
    }
}

/// Whether what a peer heard from this node (`seen_disk`, `seen_mark`)
/// shows this node's store behind (this data directory is `disk`, durable
/// up to `durable`): the reason, if so.
pub fn behind_what_peer_heard(
    peer: NodeId,
    seen_disk: u64,
    seen_mark: u64,
    disk: u64,
    durable: u64,
) -> Option<String> {
    (seen_disk == disk && seen_mark > durable).then(|| {
        format!(
            "this data directory ({disk:016x}) is behind what it reported to node {peer} \
             (its store is durable to {durable}, it had reported {seen_mark}): it was put back \
             from an older copy, such as a backup, and may lack writes it acknowledged. It \
             starts again as a new incarnation and is re-admitted by each group like a new \
             disk (ARCHITECTURE decision 37)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_counts_whatever_order_its_replies_come_in() {
        let mut b = MarkBook::default();
        assert_eq!(b.reply(2, 7, 100, 10, 15), Verdict::Counts);
        assert_eq!(b.reply(2, 7, 100, 10, 20), Verdict::Counts);
        assert_eq!(b.reply(2, 7, 100, 10, 12), Verdict::Counts, "a late reply");
        assert_eq!(b.heard(2), (7, 20));
    }

    #[test]
    fn a_restart_that_kept_what_it_synced_counts() {
        let mut b = MarkBook::default();
        b.reply(2, 7, 100, 10, 20);
        // The new process starts at least where the last fsync was.
        assert_eq!(b.reply(2, 7, 101, 20, 20), Verdict::Counts);
        assert_eq!(b.reply(2, 7, 102, 25, 30), Verdict::Counts);
        assert_eq!(b.heard(2), (7, 30));
    }

    #[test]
    fn a_process_that_starts_behind_an_earlier_one_never_counts() {
        let mut b = MarkBook::default();
        b.reply(2, 7, 100, 10, 50);
        let behind = Verdict::Behind {
            reported: 50,
            boot: 30,
        };
        assert_eq!(b.reply(2, 7, 101, 30, 30), behind);
        // Catching up does not make it count: it still lacks what it lost.
        assert_eq!(b.reply(2, 7, 101, 30, 60), behind);
        // Still heard at 60, so the restored node learns it is behind.
        assert_eq!(b.heard(2), (7, 60));
    }

    #[test]
    fn a_late_reply_of_an_earlier_process_is_not_a_new_start() {
        let mut b = MarkBook::default();
        b.reply(2, 7, 100, 10, 50);
        b.reply(2, 7, 101, 50, 55);
        assert_eq!(b.reply(2, 7, 100, 10, 50), Verdict::EarlierProcess);
        assert_eq!(b.reply(2, 7, 101, 50, 56), Verdict::Counts);
    }

    #[test]
    fn a_new_data_directory_starts_over() {
        let mut b = MarkBook::default();
        b.reply(2, 7, 100, 10, 50);
        assert_eq!(b.reply(2, 8, 101, 0, 1), Verdict::Counts);
        assert_eq!(b.heard(2), (8, 1));
        assert_eq!(b.reply(3, 0, 0, 0, 0), Verdict::Counts, "no marks sent");
    }

    #[test]
    fn a_node_sees_itself_behind_only_under_the_same_directory() {
        assert!(behind_what_peer_heard(1, 7, 60, 7, 30).is_some());
        assert!(behind_what_peer_heard(1, 7, 30, 7, 30).is_none());
        assert!(
            behind_what_peer_heard(1, 7, 60, 8, 0).is_none(),
            "a new disk"
        );
        assert!(
            behind_what_peer_heard(1, 0, 0, 7, 30).is_none(),
            "nothing heard"
        );
    }
}
