//! Ordered forwarding of publishes to a stream led by another node.
//!
//! A client may send many publishes without waiting for their acks, and
//! nats-server stores one connection's publishes in the order sent. Each
//! forwarded as its own gRPC call could overtake another on the way, so
//! publishes bound for a stream's leader are queued here, per (leader,
//! stream group), in the order they arrived. One task per queue sends
//! everything queued as one `Forward` call (`batch`) and waits for its
//! answer before sending the next; the leader queues the whole batch on its
//! batcher before answering anything ([`crate::cluster`]'s
//! `ForwardHandler::handle_batch`). So publishes keep their order end to
//! end, and a burst through a non-leader costs one round trip per batch
//! instead of one call per message.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use jetraft_gateway::Outbound;
use jetraft_raft::network::Peers;
use jetraft_raft::{GroupId, NodeId};
use tokio::sync::{mpsc, oneshot};

use crate::batcher::take_batch;
use crate::wire::{ApiRequest, WireOutbound};

/// Publishes per forwarded batch.
pub const MAX_BATCH_REQUESTS: usize = 1024;
/// Payload bytes per forwarded batch (one larger publish still goes alone).
pub const MAX_BATCH_BYTES: usize = 1 << 20;

pub type Reply = io::Result<Vec<Outbound>>;

struct Pending {
    req: ApiRequest,
    reply: oneshot::Sender<Reply>,
}

/// The forwarding queues of this node, created on first use.
#[derive(Default)]
pub struct Forwarders {
    queues: Mutex<BTreeMap<(NodeId, GroupId), mpsc::UnboundedSender<Pending>>>,
}

impl Forwarders {
    /// Queues `req` for `peer` (the leader of `group`) at once, so queue
    /// order is call order, and returns where its answer will arrive.
    pub fn submit(
        &self,
        peers: &Arc<Peers>,
        peer: NodeId,
        group: GroupId,
        req: ApiRequest,
    ) -> oneshot::Receiver<Reply> {
        let (reply, rx) = oneshot::channel();
        let pending = Pending { req, reply };
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let tx = queues.entry((peer, group)).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(peers.clone(), peer, rx));
            tx
        });
        if let Err(mpsc::error::SendError(p)) = tx.send(pending) {
            // The task never stops on its own; only a shutdown ends it.
            let _ = p.reply.send(Err(io::Error::other("node shutting down")));
        }
        rx
    }

    /// Drops the queues of groups that no longer exist (their tasks end).
    pub fn retain_groups(&self, exists: impl Fn(GroupId) -> bool) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, group), _| exists(*group));
    }
}

async fn run(peers: Arc<Peers>, peer: NodeId, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let batch = take_batch(first, &mut rx, MAX_BATCH_REQUESTS, MAX_BATCH_BYTES, |p| {
            p.req.payload.len()
        });
        let (reqs, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.req, p.reply)).unzip();
        match send(&peers, peer, &reqs).await {
            Ok(outs) if outs.len() == replies.len() => {
                for (tx, out) in replies.into_iter().zip(outs) {
                    let _ = tx.send(Ok(out));
                }
            }
            Ok(outs) => answer_all(
                replies,
                &format!("peer answered {} of {} publishes", outs.len(), reqs.len()),
            ),
            Err(e) => {
                tracing::warn!(peer, error = %e, publishes = reqs.len(), "forward failed");
                answer_all(replies, &e.to_string());
            }
        }
    }
}

async fn send(peers: &Peers, peer: NodeId, reqs: &[ApiRequest]) -> io::Result<Vec<Vec<Outbound>>> {
    let payload = jetraft_raft::codec::encode(reqs)?;
    let reply = peers.forward(peer, 0, payload, 1, true).await?;
    let outs: Vec<Vec<WireOutbound>> = jetraft_raft::codec::decode(&reply)?;
    Ok(outs
        .into_iter()
        .map(|o| o.into_iter().map(Outbound::from).collect())
        .collect())
}

fn answer_all(replies: Vec<oneshot::Sender<Reply>>, error: &str) {
    for tx in replies {
        let _ = tx.send(Err(io::Error::other(error.to_string())));
    }
}
