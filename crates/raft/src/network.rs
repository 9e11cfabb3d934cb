//! Client side of the cluster protocol: one gRPC channel per peer, shared
//! by every group on this node (the group id travels in each request).

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use jetraft_proto::cluster_client::ClusterClient;
use jetraft_proto::{
    BeginCatchupRequest, EndCatchupRequest, FetchRequest, ForwardRequest, IdentifyReply,
    IdentifyRequest, RaftKind, RaftReply, RaftRequest,
};
use jetraft_types::StoredMessage;
use jetraft_types::config::StorageType;
use openraft::entry::RaftEntry;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, RaftNetworkV2};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::codec;
use crate::commit::Marks;
use crate::marks::{MarkBook, Verdict};
use crate::sm::{Catchup, Frozen, Snapshot, Source};
use crate::standing::{Incarnations, Standing};
use crate::types::{GroupId, LogId, Member, NodeId, TypeConfig, Vote};

pub use jetraft_proto::Connector;

/// The incarnations a reply (Raft or `Identify`) carries.
pub fn replied(disk: u64, memory: u64) -> Incarnations {
    Incarnations { disk, memory }
}

/// This node as the network tells it to its peers (decision 37).
struct Local {
    disk: u64,
    marks: Arc<Marks>,
    behind: Box<dyn Fn(String) + Send + Sync>,
    fired: std::sync::Once,
}

/// The node's view of its peers and their shared channels.
pub struct Peers {
    me: NodeId,
    connector: Arc<dyn Connector>,
    addrs: BTreeMap<NodeId, String>,
    channels: Mutex<BTreeMap<NodeId, Channel>>,
    /// The `RaftStream` to each peer, opened on first use and again after
    /// it broke.
    pipes: Mutex<BTreeMap<NodeId, Arc<RaftPipe>>>,
    /// The incarnations each peer last replied with: of its data directory,
    /// and of its process (for groups kept in memory).
    seen: Mutex<BTreeMap<NodeId, Incarnations>>,
    /// The durable marks each peer reported (decision 37).
    marks: Mutex<MarkBook>,
    /// This node's own data directory and marks, once the host is up.
    local: std::sync::OnceLock<Local>,
    /// Bound on each RPC that has no openraft deadline.
    pub rpc_timeout: Duration,
}

impl Peers {
    pub fn new(me: NodeId, addrs: BTreeMap<NodeId, String>, connector: Arc<dyn Connector>) -> Self {
        Self {
            me,
            connector,
            addrs,
            channels: Mutex::new(BTreeMap::new()),
            pipes: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(BTreeMap::new()),
            marks: Mutex::new(MarkBook::default()),
            local: std::sync::OnceLock::new(),
            rpc_timeout: Duration::from_secs(5),
        }
    }

    /// Tells the network this node's data directory and its marks, and
    /// what to do when a peer heard more of it than its store holds
    /// (`behind`, called once with the reason).
    pub fn set_local(
        &self,
        disk: u64,
        marks: Arc<Marks>,
        behind: Box<dyn Fn(String) + Send + Sync>,
    ) {
        let _ = self.local.set(Local {
            disk,
            marks,
            behind,
            fired: std::sync::Once::new(),
        });
    }

    /// This node's marks for a reply: (boot, durable); zeros before the
    /// host is up.
    pub fn my_marks(&self) -> (u64, u64) {
        self.local
            .get()
            .map_or((0, 0), |l| (l.marks.boot(), l.marks.durable()))
    }

    /// What this node heard from `peer`: (its data directory, its highest
    /// mark there), to send with a request or reply.
    pub fn heard_of(&self, peer: NodeId) -> (u64, u64) {
        self.marks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .heard(peer)
    }

    /// A copy of what this node heard from its peers (to write down).
    pub fn mark_book(&self) -> MarkBook {
        self.marks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts from what this node wrote down before it restarted.
    pub fn load_mark_book(&self, book: MarkBook) {
        *self.marks.lock().unwrap_or_else(|p| p.into_inner()) = book;
    }

    /// Records the marks of a reply from `peer` and judges it.
    pub fn judge(&self, peer: NodeId, is: Incarnations, boot: u64, mark: u64) -> Verdict {
        self.marks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reply(peer, is.disk, is.memory, boot, mark)
    }

    /// Checks what `peer` heard from this node against this node's store:
    /// behind it, this node stops (the host's `behind` action) and the
    /// reason is returned.
    pub fn check_heard_of_me(
        &self,
        peer: NodeId,
        seen_disk: u64,
        seen_mark: u64,
    ) -> Result<(), String> {
        let Some(l) = self.local.get() else {
            return Ok(());
        };
        match crate::marks::behind_what_peer_heard(
            peer,
            seen_disk,
            seen_mark,
            l.disk,
            l.marks.durable(),
        ) {
            None => Ok(()),
            Some(why) => {
                l.fired.call_once(|| (l.behind)(why.clone()));
                Err(why)
            }
        }
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    pub fn addrs(&self) -> &BTreeMap<NodeId, String> {
        &self.addrs
    }

    /// The membership record of node `id` with data directory `incarnation`.
    pub fn node(&self, id: NodeId, incarnation: u64) -> Option<Member> {
        self.addrs.get(&id).map(|a| Member {
            addr: a.clone(),
            incarnation,
        })
    }

    /// The incarnation `id` last replied with for groups kept in `storage`
    /// (None: no reply yet).
    pub fn seen_incarnation(&self, id: NodeId, storage: StorageType) -> Option<u64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let i = seen.get(&id)?.of(storage);
        (i != 0).then_some(i)
    }

    fn saw(&self, id: NodeId, is: Incarnations) {
        if is.disk != 0 {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let s = seen.entry(id).or_default();
            s.disk = is.disk;
            if is.memory != 0 {
                s.memory = is.memory;
            }
        }
    }

    /// Asks `peer` who it is and what it holds of `group`.
    pub async fn identify(&self, peer: NodeId, group: GroupId) -> io::Result<IdentifyReply> {
        let mut c = self.client(peer)?;
        let (seen_incarnation, seen_mark) = self.heard_of(peer);
        let request = IdentifyRequest {
            group,
            seen_incarnation,
            seen_mark,
            from_node: self.me,
        };
        let reply = tokio::time::timeout(self.rpc_timeout, c.identify(request))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "identify timed out"))?
            .map_err(status_to_io)?
            .into_inner();
        let is = replied(reply.incarnation, reply.memory_incarnation);
        if let Verdict::Behind { reported, boot } =
            self.judge(peer, is, reply.boot_mark, reply.mark)
        {
            return Err(io::Error::other(format!(
                "node {peer} started behind what it reported before ({boot} < {reported}):                  its data directory was put back from an older copy"
            )));
        }
        self.saw(peer, is);
        Ok(reply)
    }

    pub fn client(&self, id: NodeId) -> io::Result<ClusterClient<Channel>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = channels.get(&id) {
            return Ok(client(ch.clone()));
        }
        let addr = self
            .addrs
            .get(&id)
            .ok_or_else(|| io::Error::other(format!("unknown node {id}")))?;
        let ch = self.connector.connect(addr);
        channels.insert(id, ch.clone());
        Ok(client(ch))
    }

    /// The open `RaftStream` to `id`, opening one if there is none.
    fn pipe(&self, id: NodeId) -> io::Result<Arc<RaftPipe>> {
        let mut pipes = self.pipes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pipes.get(&id).filter(|p| !p.is_closed()) {
            return Ok(p.clone());
        }
        let pipe = Arc::new(RaftPipe::open(self.client(id)?));
        pipes.insert(id, pipe.clone());
        Ok(pipe)
    }

    /// Sends a forwarded request to `peer` and returns its payload.
    pub async fn forward(
        &self,
        peer: NodeId,
        group: GroupId,
        payload: Vec<u8>,
        hops: u32,
        batch: bool,
    ) -> io::Result<Vec<u8>> {
        let mut c = self.client(peer)?;
        let req = ForwardRequest {
            group,
            payload: Bytes::from(payload),
            hops,
            batch,
        };
        let reply = tokio::time::timeout(self.rpc_timeout * 2, c.forward(req))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("forward to node {peer} timed out"),
                )
            })?
            .map_err(status_to_io)?
            .into_inner();
        if !reply.error.is_empty() {
            return Err(io::Error::other(reply.error));
        }
        Ok(reply.payload.to_vec())
    }
}

fn client(ch: Channel) -> ClusterClient<Channel> {
    ClusterClient::new(ch)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

fn status_to_io(s: tonic::Status) -> io::Error {
    let kind = match s.code() {
        tonic::Code::Unavailable => io::ErrorKind::ConnectionRefused,
        tonic::Code::DeadlineExceeded => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, s.message().to_string())
}

/// openraft's network factory for one group.
pub struct GroupNetwork {
    pub group: GroupId,
    pub peers: Arc<Peers>,
    /// The group's newest appended index on this node
    /// ([`crate::log_store::LogStore::appended`]).
    pub appended: watch::Receiver<u64>,
    /// The group's heartbeat interval: how long a peer's last real reply
    /// vouches for it (see [`Piggyback`]).
    pub heartbeat: Duration,
    /// Whose replies count ([`Standing::counts`]), and whether this node
    /// may ask for votes ([`Standing::may_vote`]).
    pub standing: Arc<Standing>,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = GroupConn;

    async fn new_client(&mut self, target: NodeId, _node: &Member) -> Self::Network {
        GroupConn {
            group: self.group,
            target,
            peers: self.peers.clone(),
            standing: self.standing.clone(),
            piggyback: Piggyback {
                appended: self.appended.clone(),
                fresh_for: self.heartbeat,
                confirmed: None,
            },
        }
    }
}

/// A group's connection to one peer (a view on the shared channel).
pub struct GroupConn {
    group: GroupId,
    target: NodeId,
    peers: Arc<Peers>,
    standing: Arc<Standing>,
    piggyback: Piggyback,
}

/// Commit piggybacking. When the leader's commit index moves, openraft
/// sends every follower an AppendEntries without entries at once, only to
/// tell it the new commit index; its heartbeats are empty appends too. With
/// one publish in flight that doubles the Raft traffic of every write: two
/// more messages each way, two more wake-ups of every follower, while the
/// next publish is already on its way. When the leader is about to send the
/// follower new entries anyway (which carry the commit index), an empty
/// append adds nothing, so it is answered here without being sent:
///
/// - only if this connection's last real reply, under the same vote and at
///   most one heartbeat interval ago, confirmed that the follower's log
///   matches at exactly the request's `prev_log_id` (so the answer,
///   "matching at `prev_log_id`", repeats what the follower itself said and
///   tells the leader nothing new; nothing is counted toward a commit that
///   the follower did not acknowledge);
/// - only if the leader's own log holds no entry past `prev_log_id` yet but
///   gains one within [`PIGGYBACK_WAIT`], so the real append that carries
///   the commit index follows at once. That is the one-publish-in-flight
///   case. When entries are waiting already (a pipeline under load), the
///   empty append is sent: its round trip gathers them into one larger
///   append, which measured better for throughput than eliding it.
///
/// Otherwise the empty append is sent as usual (after that wait), so an idle
/// group still tells its followers the commit index within milliseconds,
/// and heartbeats still flow whenever no entries do.
struct Piggyback {
    appended: watch::Receiver<u64>,
    fresh_for: Duration,
    /// What the last real reply confirmed: (vote, matching log id, when).
    confirmed: Option<(Vote, Option<LogId>, Instant)>,
}

/// How long an empty append waits for the leader's next entry before it is
/// sent after all: longer than a client's round trip to its next publish,
/// short next to an election timeout.
const PIGGYBACK_WAIT: Duration = Duration::from_millis(2);

impl Piggyback {
    /// Whether `rpc` may be answered `Success` without being sent.
    async fn covered(&mut self, rpc: &AppendEntriesRequest<TypeConfig>) -> bool {
        if !rpc.entries.is_empty() {
            return false;
        }
        let Some((vote, matching, at)) = &self.confirmed else {
            return false;
        };
        if *vote != rpc.vote || *matching != rpc.prev_log_id || at.elapsed() > self.fresh_for {
            return false;
        }
        let prev = rpc.prev_log_id.map_or(0, |l| l.index());
        if *self.appended.borrow_and_update() > prev {
            // Entries are waiting already: send it. Its round trip gathers
            // them into one larger append, which under load is worth more
            // than the messages saved.
            return false;
        }
        matches!(
            tokio::time::timeout(PIGGYBACK_WAIT, self.appended.wait_for(|&last| last > prev)).await,
            Ok(Ok(_))
        )
    }

    /// Records the follower's real reply to `rpc` (`None`: no reply came).
    fn replied(
        &mut self,
        rpc: &AppendEntriesRequest<TypeConfig>,
        resp: Option<&AppendEntriesResponse<TypeConfig>>,
    ) {
        let matching = match resp {
            Some(AppendEntriesResponse::Success) => rpc
                .entries
                .last()
                .map_or(rpc.prev_log_id, |e| Some(e.log_id())),
            Some(AppendEntriesResponse::PartialSuccess(m)) => *m,
            _ => {
                self.confirmed = None;
                return;
            }
        };
        self.confirmed = Some((rpc.vote, matching, Instant::now()));
    }
}

impl GroupConn {
    /// Sends one Raft RPC. A reply counts only if the target's data
    /// directory is the incarnation this group admitted ([`Standing`]):
    /// otherwise it is reported as unreachable, so neither a commit nor an
    /// election counts a node that forgot what it acknowledged.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        kind: RaftKind,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let unreachable = |e: &dyn std::fmt::Display| {
            RPCError::Unreachable(Unreachable::new(&AnyError::error(e)))
        };
        // Known not to count: send nothing. A node that lost its state gets
        // nothing from this group (no appends it would store, no snapshot
        // it would copy) until the leader has re-admitted it as a learner.
        if let Some(seen) = self
            .peers
            .seen_incarnation(self.target, self.standing.storage())
            && !self.standing.counts(self.target, seen)
        {
            return Err(unreachable(&format!(
                "node {} has data directory {seen:016x}, not the one group {} admitted: \
                 nothing is sent to it until it is re-admitted",
                self.target, self.group
            )));
        }
        // `send` recorded the incarnation in `Peers::seen`.
        let (resp, incarnation) = self.send(kind, req, timeout).await?;
        if !self.standing.counts(self.target, incarnation) {
            return Err(unreachable(&format!(
                "node {} answers with data directory {incarnation:016x}, not the one group {} \
                 admitted: it lost its state and does not count until re-admitted",
                self.target, self.group
            )));
        }
        Ok(resp)
    }

    async fn send<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        kind: RaftKind,
        req: &Req,
        timeout: Duration,
    ) -> Result<(Resp, u64), RPCError<TypeConfig>> {
        let unreachable = |e: &dyn std::fmt::Display| {
            RPCError::Unreachable(Unreachable::new(&AnyError::error(e)))
        };
        let payload = codec::encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let (seen_incarnation, seen_mark) = self.peers.heard_of(self.target);
        let req = RaftRequest {
            group: self.group,
            kind: kind as i32,
            from_node: self.peers.me,
            payload: payload.into(),
            id: 0,
            seen_incarnation,
            seen_mark,
        };
        let timed_out = || unreachable(&format!("raft rpc to node {} timed out", self.target));
        let reply = if kind != RaftKind::Snapshot && req.payload.len() <= PIPE_MAX_PAYLOAD {
            let pipe = self.peers.pipe(self.target).map_err(|e| unreachable(&e))?;
            let (id, rx) = pipe
                .send(req)
                .ok_or_else(|| unreachable(&"raft stream closed"))?;
            match tokio::time::timeout(timeout, rx).await {
                Err(_) => {
                    pipe.forget(id);
                    return Err(timed_out());
                }
                Ok(Err(_)) => return Err(unreachable(&"raft stream closed")),
                Ok(Ok(r)) => r,
            }
        } else {
            let mut c = self
                .peers
                .client(self.target)
                .map_err(|e| unreachable(&e))?;
            match tokio::time::timeout(timeout, c.raft(req)).await {
                Err(_) => return Err(timed_out()),
                Ok(Err(status)) => return Err(unreachable(&status)),
                Ok(Ok(r)) => r.into_inner(),
            }
        };
        let is = replied(reply.incarnation, reply.memory_incarnation);
        // What the target heard from this node first: if this store is
        // behind it, nothing more is done here (this node stops).
        self.peers
            .check_heard_of_me(self.target, reply.seen_incarnation, reply.seen_mark)
            .map_err(|why| unreachable(&why))?;
        match self
            .peers
            .judge(self.target, is, reply.boot_mark, reply.mark)
        {
            Verdict::Counts => {}
            Verdict::EarlierProcess => {
                return Err(unreachable(&format!(
                    "a late reply from an earlier process of node {}",
                    self.target
                )));
            }
            Verdict::Behind { reported, boot } => {
                return Err(unreachable(&format!(
                    "node {} started behind what it reported before ({boot} < {reported}): its \
                     data directory was put back from an older copy; it does not count",
                    self.target
                )));
            }
        }
        self.peers.saw(self.target, is);
        if !reply.error.is_empty() {
            return Err(unreachable(&reply.error));
        }
        let resp =
            codec::decode(&reply.payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        Ok((resp, is.of(self.standing.storage())))
    }

    /// A candidate that does not count in the group asks nobody for votes.
    fn may_campaign(&self) -> Result<(), RPCError<TypeConfig>> {
        self.standing.may_vote().map_err(|why| {
            RPCError::Unreachable(Unreachable::new(&AnyError::error(format!(
                "not asking node {} for a vote in group {}: {why}",
                self.target, self.group
            ))))
        })
    }
}

/// What an unbounded channel receives, as a stream (the body of a gRPC
/// streaming call on either side).
pub(crate) fn receiver_stream<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
}

/// Raft messages up to this size travel on the peer's `RaftStream`; larger
/// ones (catch-up appends, snapshots) take a call of their own, so they do
/// not hold up the small ones behind them on one HTTP/2 stream.
const PIPE_MAX_PAYLOAD: usize = 64 * 1024;

/// One long-lived `RaftStream` to a peer: requests go out in order, replies
/// come back in any order and are matched by id. Saves the per-call HTTP/2
/// stream setup, request buffer task and service spawn of a unary call on
/// the hot path of every replicated write.
struct RaftPipe {
    tx: mpsc::UnboundedSender<RaftRequest>,
    state: Arc<Mutex<PipeState>>,
}

#[derive(Default)]
struct PipeState {
    next_id: u64,
    /// BTreeMap: nothing about this map may depend on hash order.
    pending: BTreeMap<u64, oneshot::Sender<RaftReply>>,
    closed: bool,
}

fn lock_pipe(state: &Mutex<PipeState>) -> std::sync::MutexGuard<'_, PipeState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl RaftPipe {
    fn open(mut client: ClusterClient<Channel>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<RaftRequest>();
        let state = Arc::new(Mutex::new(PipeState::default()));
        let st = state.clone();
        tokio::spawn(async move {
            if let Ok(resp) = client.raft_stream(receiver_stream(rx)).await {
                let mut replies = resp.into_inner();
                while let Ok(Some(reply)) = replies.message().await {
                    let waiter = lock_pipe(&st).pending.remove(&reply.id);
                    if let Some(w) = waiter {
                        let _ = w.send(reply);
                    }
                }
            }
            // Dropping the waiting senders fails every caller still waiting.
            let mut s = lock_pipe(&st);
            s.closed = true;
            s.pending.clear();
        });
        Self { tx, state }
    }

    fn is_closed(&self) -> bool {
        lock_pipe(&self.state).closed
    }

    /// Queues `req`; its reply arrives on the receiver, which fails if the
    /// stream breaks first. `None`: the stream is closed already.
    fn send(&self, mut req: RaftRequest) -> Option<(u64, oneshot::Receiver<RaftReply>)> {
        let (waiter, rx) = oneshot::channel();
        {
            let mut s = lock_pipe(&self.state);
            if s.closed {
                return None;
            }
            s.next_id += 1;
            req.id = s.next_id;
            s.pending.insert(req.id, waiter);
        }
        let id = req.id;
        self.tx.send(req).ok()?;
        Some((id, rx))
    }

    /// The caller gave up waiting for `id`.
    fn forget(&self, id: u64) {
        lock_pipe(&self.state).pending.remove(&id);
    }
}

impl RaftNetworkV2<TypeConfig> for GroupConn {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        if self.piggyback.covered(&rpc).await {
            return Ok(AppendEntriesResponse::Success);
        }
        let resp = self.call(RaftKind::Append, &rpc, option.soft_ttl()).await;
        self.piggyback.replied(&rpc, resp.as_ref().ok());
        resp
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.may_campaign()?;
        self.call(RaftKind::Vote, &rpc, option.soft_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.may_campaign()?;
        self.call(RaftKind::PreVote, &rpc, option.soft_ttl()).await
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(RaftKind::TransferLeader, &rpc, option.soft_ttl())
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        // A snapshot is a state summary (small); the follower fetches the
        // messages itself, which can take a while: allow for it.
        let req = (vote, snapshot.meta, snapshot.snapshot);
        let timeout = option.hard_ttl().max(Duration::from_secs(600));
        self.call(RaftKind::Snapshot, &req, timeout)
            .await
            .map_err(|e| match e {
                RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                RPCError::Network(n) => StreamingError::Network(n),
                other => StreamingError::Network(NetworkError::new(&AnyError::error(other))),
            })
    }
}

impl Peers {
    /// A client for a catch-up call to `peer`; never to this node.
    fn catchup_client(&self, peer: NodeId) -> io::Result<ClusterClient<Channel>> {
        if peer == self.me {
            return Err(io::Error::other("a node does not catch up from itself"));
        }
        self.client(peer)
    }

    /// One `FetchMessages` call, collected.
    fn fetch_from(
        &self,
        range: FetchRange,
        seqs_only: bool,
    ) -> BoxFuture<'static, io::Result<Vec<jetraft_proto::FetchChunk>>> {
        let client = self.catchup_client(range.at.peer);
        let timeout = self.rpc_timeout * 6;
        Box::pin(async move { fetch_chunks(client?, range, seqs_only, timeout).await })
    }
}

/// The messages with `from <= seq <= to` stored at `at`, at most `limit`.
#[derive(Debug, Clone, Copy)]
struct FetchRange {
    at: Source,
    from: u64,
    to: u64,
    limit: usize,
}

impl Catchup for Peers {
    fn begin(&self, peer: NodeId, group: GroupId) -> BoxFuture<'static, io::Result<Frozen>> {
        let client = self.catchup_client(peer);
        let timeout = self.rpc_timeout;
        Box::pin(async move {
            let mut client = client?;
            let call = client.begin_catchup(BeginCatchupRequest { group });
            let reply = tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "catch-up begin timed out"))?
                .map_err(status_to_io)?
                .into_inner();
            Ok(Frozen {
                at: Source {
                    peer,
                    group,
                    session: reply.session,
                },
                applied: reply.applied,
                state: reply.state.to_vec(),
            })
        })
    }

    fn fetch(
        &self,
        at: Source,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<StoredMessage>>> {
        let chunks = self.fetch_from(
            FetchRange {
                at,
                from,
                to,
                limit,
            },
            false,
        );
        Box::pin(async move {
            let mut out = Vec::new();
            for c in chunks.await? {
                out.extend(codec::decode::<Vec<StoredMessage>>(&c.messages)?);
            }
            Ok(out)
        })
    }

    fn fetch_seqs(
        &self,
        at: Source,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<u64>>> {
        let chunks = self.fetch_from(
            FetchRange {
                at,
                from,
                to,
                limit,
            },
            true,
        );
        Box::pin(async move { Ok(chunks.await?.into_iter().flat_map(|c| c.seqs).collect()) })
    }

    fn end(&self, at: Source) -> BoxFuture<'static, ()> {
        let client = self.catchup_client(at.peer);
        let timeout = self.rpc_timeout;
        Box::pin(async move {
            let Ok(mut client) = client else { return };
            let req = EndCatchupRequest {
                group: at.group,
                session: at.session,
            };
            // Best effort: the peer evicts forgotten views by itself.
            let _ = tokio::time::timeout(timeout, client.end_catchup(req)).await;
        })
    }
}

async fn fetch_chunks(
    mut client: ClusterClient<Channel>,
    range: FetchRange,
    seqs_only: bool,
    timeout: Duration,
) -> io::Result<Vec<jetraft_proto::FetchChunk>> {
    let req = FetchRequest {
        group: range.at.group,
        stream: range.at.group,
        from_seq: range.from,
        to_seq: range.to,
        limit: range.limit as u64,
        seqs_only,
        session: range.at.session,
    };
    let work = async {
        let mut stream = client
            .fetch_messages(req)
            .await
            .map_err(status_to_io)?
            .into_inner();
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(status_to_io)? {
            chunks.push(chunk);
        }
        Ok(chunks)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "catch-up fetch timed out"))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use openraft::testing::log_id;

    use super::*;
    use crate::types::Entry;

    fn empty_append(term: u64, prev: u64) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(term, 1),
            prev_log_id: Some(log_id::<TypeConfig>(term, 1, prev)),
            entries: Vec::new(),
            leader_commit: Some(log_id::<TypeConfig>(term, 1, prev)),
        }
    }

    fn piggyback() -> (watch::Sender<u64>, Piggyback) {
        let (tx, rx) = watch::channel(0);
        let p = Piggyback {
            appended: rx,
            fresh_for: Duration::from_millis(150),
            confirmed: None,
        };
        (tx, p)
    }

    /// Appends `index` to the leader's log after `after`.
    fn append_later(appended: &watch::Sender<u64>, index: u64, after: Duration) {
        let appended = appended.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            appended.send_replace(index);
        });
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_append_is_answered_here_only_when_the_follower_confirmed_its_match_and_an_entry_follows()
     {
        let (appended, mut p) = piggyback();
        let req = empty_append(2, 10);
        appended.send_replace(10);

        // Nothing confirmed yet: sent, even though an entry follows.
        append_later(&appended, 11, Duration::from_millis(1));
        assert!(!p.covered(&req).await);

        // The follower confirmed index 10 under this vote, and entry 11 is
        // appended while the commit update waits: answered here.
        appended.send_replace(10);
        p.replied(&req, Some(&AppendEntriesResponse::Success));
        append_later(&appended, 11, Duration::from_millis(1));
        let t = Instant::now();
        assert!(p.covered(&req).await);
        assert_eq!(t.elapsed(), Duration::from_millis(1));

        // Entries were waiting already: sent, at once.
        let t = Instant::now();
        assert!(!p.covered(&req).await);
        assert_eq!(t.elapsed(), Duration::ZERO);

        // A probe at another index, or under another vote: sent, at once.
        appended.send_replace(10);
        let t = Instant::now();
        assert!(!p.covered(&empty_append(2, 9)).await);
        assert!(!p.covered(&empty_append(3, 10)).await);
        assert_eq!(t.elapsed(), Duration::ZERO);

        // No entry past the match within the wait: sent after it.
        appended.send_replace(10);
        let t = Instant::now();
        assert!(!p.covered(&req).await);
        assert_eq!(t.elapsed(), PIGGYBACK_WAIT);

        // The confirmation grows stale after a heartbeat interval.
        p.replied(&req, Some(&AppendEntriesResponse::Success));
        tokio::time::advance(Duration::from_millis(200)).await;
        let t = Instant::now();
        assert!(!p.covered(&req).await);
        assert_eq!(t.elapsed(), Duration::ZERO);

        // A conflict forgets it.
        appended.send_replace(10);
        p.replied(&req, Some(&AppendEntriesResponse::Success));
        p.replied(&req, Some(&AppendEntriesResponse::Conflict));
        let t = Instant::now();
        assert!(!p.covered(&req).await);
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_to_entries_confirms_the_last_entry() {
        let (appended, mut p) = piggyback();
        appended.send_replace(11);
        let mut req = empty_append(2, 10);
        req.entries = vec![Entry::new_blank(log_id::<TypeConfig>(2, 1, 11))];
        p.replied(&req, Some(&AppendEntriesResponse::Success));
        append_later(&appended, 12, Duration::from_millis(1));
        assert!(!p.covered(&empty_append(2, 10)).await);
        appended.send_replace(11);
        append_later(&appended, 12, Duration::from_millis(1));
        assert!(p.covered(&empty_append(2, 11)).await);
    }
}
