//! The stream to one peer: a queue of entries the connection tasks fill
//! without waiting, and the task that keeps a `Route` call open and drains
//! the queue into it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jetraft_proto::node::RouteFrame;
use jetraft_proto::node::node_client::NodeClient;
use jetraft_proto::node::route_entry::Kind;
use tokio::sync::Notify;
use tonic::transport::Channel;

use crate::Routes;
use crate::limits::{FRAME_TARGET_BYTES, RECONNECT_MAX, RECONNECT_MIN, SESSION_STABLE};

/// Counters of one peer's traffic, as `/routez` shows them.
#[derive(Debug, Default)]
pub struct Stats {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    /// Messages dropped because the stream to the peer was down or full.
    pub dropped_msgs: AtomicU64,
    /// Times the stream to the peer was cut for falling behind.
    pub slow_cuts: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    /// A session is open: entries are kept for it. While none is, changes
    /// and messages are dropped (the next session starts with the whole
    /// interest table).
    open: bool,
    entries: VecDeque<(Kind, usize)>,
    bytes: usize,
}

/// What this node sends one peer.
#[derive(Debug)]
pub(crate) struct PeerOut {
    pub(crate) id: crate::NodeId,
    pub(crate) name: String,
    pub(crate) addr: String,
    pub(crate) stats: Stats,
    /// The peer's stream to us is up (it said hello).
    pub(crate) inbound: AtomicBool,
    /// Our stream to it is up.
    pub(crate) outbound: AtomicBool,
    queue: Mutex<Queue>,
    wake: Notify,
    max_pending_bytes: usize,
}

impl PeerOut {
    pub(crate) fn new(
        id: crate::NodeId,
        name: String,
        addr: String,
        max_pending_bytes: usize,
    ) -> Self {
        Self {
            id,
            name,
            addr,
            stats: Stats::default(),
            inbound: AtomicBool::new(false),
            outbound: AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            max_pending_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an entry of about `size` bytes. False if no session is open
    /// or the peer fell `max_pending_bytes` behind: then the session is
    /// ended (the peer forgets our interest, and we start over with our
    /// whole table), as nats-server cuts a slow route.
    pub(crate) fn push(&self, entry: Kind, size: usize) -> bool {
        let mut q = self.lock();
        if !q.open {
            return false;
        }
        if q.bytes + size > self.max_pending_bytes {
            q.open = false;
            q.entries.clear();
            q.bytes = 0;
            drop(q);
            self.stats.slow_cuts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                peer = %self.name,
                max_pending_bytes = self.max_pending_bytes,
                "route to peer fell behind; reconnecting"
            );
            self.wake.notify_one();
            return false;
        }
        q.entries.push_back((entry, size));
        q.bytes += size;
        drop(q);
        self.wake.notify_one();
        true
    }

    /// Opens a session whose first entries are `first` (hello and table).
    /// The caller holds the local interest lock, so no change is lost or
    /// sent twice between the table and what follows.
    pub(crate) fn open(&self, first: Vec<Kind>) {
        let mut q = self.lock();
        q.open = true;
        q.bytes = 0;
        q.entries = first.into_iter().map(|k| (k, 0)).collect();
    }

    fn close(&self) {
        let mut q = self.lock();
        q.open = false;
        q.entries.clear();
        q.bytes = 0;
    }

    /// The next batch, waiting for one; None once the session was ended.
    async fn next(&self) -> Option<RouteFrame> {
        loop {
            let notified = self.wake.notified();
            {
                let mut q = self.lock();
                if !q.open {
                    return None;
                }
                if !q.entries.is_empty() {
                    // Everything queued, up to about a frame's worth.
                    let mut entries = Vec::new();
                    let mut size = 0;
                    while size < FRAME_TARGET_BYTES
                        && let Some((kind, n)) = q.entries.pop_front()
                    {
                        size += n;
                        entries.push(jetraft_proto::node::RouteEntry { kind: Some(kind) });
                    }
                    q.bytes -= size;
                    return Some(RouteFrame { entries });
                }
            }
            notified.await;
        }
    }

    pub(crate) fn pending_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Keeps a `Route` stream open to `peer` for as long as the node runs,
/// opening a new one (with the whole table again) whenever it ends.
pub(crate) async fn run(routes: Arc<Routes>, peer: Arc<PeerOut>, channel: Channel) {
    let mut backoff = RECONNECT_MIN;
    loop {
        routes.open_session(&peer);
        let frames = futures::stream::unfold(peer.clone(), |p| async move {
            let frame = p.next().await?;
            Some((frame, p))
        });
        let started = tokio::time::Instant::now();
        peer.outbound.store(true, Ordering::Release);
        let mut client = NodeClient::new(channel.clone())
            .max_decoding_message_size(crate::limits::MAX_FRAME_BYTES)
            .max_encoding_message_size(crate::limits::MAX_FRAME_BYTES);
        let result = client.route(frames).await;
        peer.outbound.store(false, Ordering::Release);
        peer.close();
        match result {
            Ok(_) => tracing::debug!(peer = %peer.name, "route stream ended"),
            Err(e) => tracing::debug!(peer = %peer.name, error = %e, "route stream failed"),
        }
        if started.elapsed() >= SESSION_STABLE {
            backoff = RECONNECT_MIN;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// The size an entry is counted with against `max_pending_bytes`.
pub(crate) fn entry_size(subject: &str, reply: &str, headers: usize, payload: usize) -> usize {
    subject.len() + reply.len() + headers + payload + 32
}
