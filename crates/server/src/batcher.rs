//! Proposal batching for the stream groups this node leads.
//!
//! Every stream command (publishes above all) is queued on its group's
//! batcher, in the order the requests arrived. One task per group takes
//! everything queued so far and proposes it as one Raft entry
//! ([`Request::StreamBatch`]), so a burst of publishes costs one log append,
//! one replication message, one fsync share and one store write instead of
//! one of each per message. At most [`MAX_IN_FLIGHT`] entries are
//! outstanding; while they are, new commands gather into the next batch
//! (the same idea as the WAL's group commit, one layer up).
//!
//! Order is kept: commands are proposed in queue order, and a batch applies
//! its commands in order ([`jetraft_stream::StreamMachine::apply_batch`]),
//! so publishes a connection sends to a stream led here get increasing
//! sequences in the order it sent them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jetraft_raft::host::{Group, ProposeError};
use jetraft_raft::types::{Callback, TypeConfig};
use jetraft_raft::{GroupId, Request, Response};
use jetraft_stream::{StreamCommand, StreamReply};
use jetraft_types::ApiError;
use openraft::raft::ClientWriteResult;
use tokio::sync::{Semaphore, mpsc};

use crate::env::Clock;

/// Entries of one group proposed and not yet applied. Enough to keep the
/// pipeline full across a round trip and an fsync; few enough that a burst
/// gathers into large batches.
pub const MAX_IN_FLIGHT: usize = 4;
/// Commands per entry.
pub const MAX_BATCH_COMMANDS: usize = 1024;
/// Message bytes per entry (one larger message still goes alone). Bounds
/// a replication message: openraft sends up to `max_payload_entries`
/// entries in one.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

pub type Reply = Result<StreamReply, ApiError>;

/// Takes a command's reply where the batch completes (in openraft's task),
/// so it must be quick and must not block. One dropped unanswered (the
/// group shut down first) answers `cluster_not_avail` (10008).
pub struct Answer(Option<Box<dyn FnOnce(Reply) + Send>>);

impl Answer {
    pub fn new(f: impl FnOnce(Reply) + Send + 'static) -> Self {
        Self(Some(Box::new(f)))
    }

    /// An answer and the reply it will deliver, for a caller that awaits it.
    pub fn channel() -> (
        Self,
        impl std::future::Future<Output = Reply> + Send + use<>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let answer = Self::new(move |r| {
            let _ = tx.send(r);
        });
        // The sender always sends (dropped unanswered, it says so first).
        let reply = async move {
            rx.await
                .unwrap_or_else(|_| Err(ApiError::cluster_not_avail()))
        };
        (answer, reply)
    }

    pub fn send(mut self, reply: Reply) {
        if let Some(f) = self.0.take() {
            f(reply);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(ApiError::cluster_not_avail()));
        }
    }
}

struct Pending {
    cmd: StreamCommand,
    reply: Answer,
}

/// The queue of one stream group led (or believed led) by this node.
struct Batcher {
    tx: mpsc::UnboundedSender<Pending>,
}

/// Called with a group's id once an entry that stored messages applied.
pub type OnStored = Arc<dyn Fn(GroupId) + Send + Sync>;

/// The batchers of the groups on this node, created on first use.
pub struct Batchers {
    by_group: Mutex<BTreeMap<GroupId, Batcher>>,
    on_stored: OnStored,
}

impl Batchers {
    pub fn new(on_stored: OnStored) -> Self {
        Self {
            by_group: Mutex::new(BTreeMap::new()),
            on_stored,
        }
    }

    /// Queues `cmd` for `group` at once (so queue order is call order);
    /// `reply` is called with its outcome. If this node does not lead the
    /// group, that is `cluster_not_leader` (10009) and nothing was
    /// proposed.
    pub fn submit(&self, group: &Group, clock: &Arc<dyn Clock>, cmd: StreamCommand, reply: Answer) {
        let mut pending = Pending { cmd, reply };
        let mut map = self.by_group.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..2 {
            let batcher = map.entry(group.id).or_insert_with(|| {
                Batcher::start(group.clone(), clock.clone(), self.on_stored.clone())
            });
            match batcher.tx.send(pending) {
                Ok(()) => return,
                // The group's task stopped (the group shut down and was
                // opened again): start a new one.
                Err(mpsc::error::SendError(p)) => {
                    pending = p;
                    map.remove(&group.id);
                }
            }
        }
        pending.reply.send(Err(ApiError::cluster_not_avail()));
    }

    /// Forgets the batcher of a group that is gone (its task ends once the
    /// queue drains).
    pub fn remove(&self, group: GroupId) {
        self.by_group
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&group);
    }
}

impl Batcher {
    fn start(group: Group, clock: Arc<dyn Clock>, on_stored: OnStored) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(group, clock, on_stored, rx));
        Self { tx }
    }
}

async fn run(
    group: Group,
    clock: Arc<dyn Clock>,
    on_stored: OnStored,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for room in the pipeline first: what arrives meanwhile joins
        // this batch.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let batch = take_batch(first, &mut rx, MAX_BATCH_COMMANDS, MAX_BATCH_BYTES, |p| {
            command_bytes(&p.cmd)
        });
        let (cmds, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.cmd, p.reply)).unzip();
        let req = Request::StreamBatch {
            cmds,
            now_ns: clock.now_ns(),
        };
        let id = group.id;
        let on_stored = on_stored.clone();
        // Answered where openraft completes the entry: no task in between.
        let responder = Callback::new(move |result: ClientWriteResult<TypeConfig>| {
            drop(permit);
            match result.map_err(|e| proposal_failed(id, ProposeError::from(e))) {
                Ok(resp) => {
                    let stored = stored_any(&resp.data);
                    answer_batch(replies, resp.data);
                    if stored {
                        on_stored(id);
                    }
                }
                Err(e) => answer_all(replies, &Err(e)),
            }
        });
        if let Err(fatal) = group.raft.client_write_ff(req, Some(responder)).await {
            // The responder was dropped, and its answers with it: each
            // answers "not available" as it drops.
            tracing::warn!(group = group.id, error = %fatal, "stream group stopped");
            return;
        }
    }
}

/// Whether an applied entry stored a message (consumers may deliver it).
fn stored_any(data: &Response) -> bool {
    let stored = |r: &StreamReply| matches!(r, StreamReply::PubAck(a) if !a.duplicate);
    match data {
        Response::StreamBatch(out) => out.iter().any(stored),
        Response::Stream(r) => stored(r),
        _ => false,
    }
}

/// One reply per command of the batch, in order.
fn answer_batch(replies: Vec<Answer>, data: Response) {
    match data {
        Response::StreamBatch(out) if out.len() == replies.len() => {
            for (answer, r) in replies.into_iter().zip(out) {
                answer.send(Ok(r));
            }
        }
        other => answer_all(
            replies,
            &Err(ApiError::stream_store_failed(format!(
                "unexpected response {other:?}"
            ))),
        ),
    }
}

/// `first` and whatever is already queued behind it, up to `max_items` or
/// until the items' `size` reaches `max_bytes` (a single larger item still
/// goes alone). Never waits.
pub(crate) fn take_batch<T>(
    first: T,
    rx: &mut mpsc::UnboundedReceiver<T>,
    max_items: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut bytes = size(&first);
    let mut batch = vec![first];
    while batch.len() < max_items && bytes < max_bytes {
        match rx.try_recv() {
            Ok(item) => {
                bytes += size(&item);
                batch.push(item);
            }
            Err(_) => break,
        }
    }
    batch
}

fn answer_all(replies: Vec<Answer>, result: &Reply) {
    for answer in replies {
        answer.send(result.clone());
    }
}

fn command_bytes(cmd: &StreamCommand) -> usize {
    cmd.message_bytes().unwrap_or(64)
}

/// The API error for a proposal that was not applied: "not the leader"
/// (nothing was proposed; the origin may retry) or unavailable.
pub(crate) fn proposal_failed(group: jetraft_raft::GroupId, e: ProposeError) -> ApiError {
    match e {
        ProposeError::NotLeader(_) => ApiError::cluster_not_leader(),
        e => {
            tracing::warn!(group, error = %e, "proposal failed");
            ApiError::cluster_not_avail()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> (Answer, std::sync::mpsc::Receiver<Reply>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let answer = Answer::new(move |r| {
            let _ = tx.send(r);
        });
        (answer, rx)
    }

    #[test]
    fn an_answer_is_called_once_and_a_dropped_one_says_not_available() {
        let (answer, rx) = recorder();
        answer.send(Err(ApiError::cluster_not_leader()));
        let got: Vec<Reply> = rx.try_iter().collect();
        assert_eq!(got, vec![Err(ApiError::cluster_not_leader())]);

        let (answer, rx) = recorder();
        drop(answer);
        let got: Vec<Reply> = rx.try_iter().collect();
        assert_eq!(got, vec![Err(ApiError::cluster_not_avail())]);
    }
}
