//! Server side of the cluster protocol: dispatches each RPC to the group it
//! names, hands forwarded client requests to the server layer, and streams
//! stored messages of frozen replicas to followers catching up.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use futures::future::BoxFuture;
use jetraft_proto::cluster_server::{Cluster, ClusterServer};
use jetraft_proto::{
    BeginCatchupReply, BeginCatchupRequest, EndCatchupReply, EndCatchupRequest, FetchChunk,
    FetchRequest, ForwardReply, ForwardRequest, IdentifyReply, IdentifyRequest, RaftKind,
    RaftReply, RaftRequest,
};
use jetraft_store::View;
use jetraft_types::config::StorageType;
use tonic::{Request, Response, Status};

use crate::codec;
use crate::host::Host;
use crate::sm::Snapshot;
use crate::types::{GroupId, SnapshotMeta, Vote};

/// Messages per catch-up chunk; HTTP/2 flow control paces the chunks.
const FETCH_CHUNK_MSGS: usize = 512;

/// The server layer's handler for forwarded client requests.
pub trait ForwardHandler: Send + Sync + 'static {
    fn handle(
        &self,
        group: GroupId,
        payload: Vec<u8>,
        hops: u32,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>>;

    /// A batch of requests to run in order (`ForwardRequest.batch`).
    fn handle_batch(
        &self,
        payload: Vec<u8>,
        hops: u32,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

#[derive(Clone)]
pub struct ClusterService {
    host: Arc<Host>,
    forward: Arc<dyn ForwardHandler>,
}

impl ClusterService {
    pub fn new(host: Arc<Host>, forward: Arc<dyn ForwardHandler>) -> Self {
        Self { host, forward }
    }

    pub fn into_server(self) -> ClusterServer<Self> {
        ClusterServer::new(self)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    async fn raft(&self, req: RaftRequest) -> Result<Vec<u8>, String> {
        // A caller that heard more of this store than it holds: this node
        // stops (decision 37) and handles nothing.
        self.host
            .peers
            .check_heard_of_me(req.from_node, req.seen_incarnation, req.seen_mark)?;
        let group = self
            .host
            .group(req.group)
            .ok_or_else(|| format!("group {} is not hosted here", req.group))?;
        let raft = &group.raft;
        let enc = |r: Result<Vec<u8>, std::io::Error>| r.map_err(|e| e.to_string());
        match RaftKind::try_from(req.kind).unwrap_or(RaftKind::Unspecified) {
            RaftKind::Append => {
                let rpc = codec::decode(&req.payload).map_err(|e| e.to_string())?;
                let resp = raft.append_entries(rpc).await.map_err(|e| e.to_string())?;
                enc(codec::encode(&resp))
            }
            RaftKind::Vote | RaftKind::PreVote => {
                // A node that forgot its state (or never had the group's)
                // grants no vote: it may have granted one already in this
                // term, or acknowledged entries the candidate lacks.
                group
                    .standing
                    .may_vote()
                    .map_err(|why| format!("node {} refuses to vote: {why}", self.host.me()))?;
                let rpc = codec::decode(&req.payload).map_err(|e| e.to_string())?;
                let resp = if req.kind == RaftKind::PreVote as i32 {
                    raft.pre_vote(rpc).await
                } else {
                    raft.vote(rpc).await
                };
                enc(codec::encode(&resp.map_err(|e| e.to_string())?))
            }
            RaftKind::Snapshot => {
                let (vote, meta, data): (Vote, SnapshotMeta, Vec<u8>) =
                    codec::decode(&req.payload).map_err(|e| e.to_string())?;
                group.sm.set_snapshot_source(req.from_node);
                let resp = raft
                    .install_full_snapshot(
                        vote,
                        Snapshot {
                            meta,
                            snapshot: data,
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                enc(codec::encode(&resp))
            }
            RaftKind::TransferLeader => {
                let rpc = codec::decode(&req.payload).map_err(|e| e.to_string())?;
                let resp = raft
                    .handle_transfer_leader(rpc)
                    .await
                    .map_err(|e| e.to_string())?;
                enc(codec::encode(&resp))
            }
            RaftKind::Unspecified => Err(format!("unknown raft rpc kind {}", req.kind)),
        }
    }
}

type FetchStream = Pin<Box<dyn Stream<Item = Result<FetchChunk, Status>> + Send>>;
type RaftReplies = Pin<Box<dyn Stream<Item = Result<RaftReply, Status>> + Send>>;

impl ClusterService {
    async fn raft_reply(&self, req: RaftRequest) -> RaftReply {
        let id = req.id;
        let from = req.from_node;
        let is = self.host.identity.incarnations();
        let (payload, error) = match self.raft(req).await {
            Ok(payload) => (Bytes::from(payload), String::new()),
            Err(error) => (Bytes::new(), error),
        };
        // Read after the request ran: its writes are covered (the reply
        // goes out only once they are synced, in `sync = "always"`).
        let (boot_mark, mark) = self.host.peers.my_marks();
        let (seen_incarnation, seen_mark) = self.host.peers.heard_of(from);
        RaftReply {
            payload,
            error,
            id,
            incarnation: is.disk,
            memory_incarnation: is.memory,
            boot_mark,
            mark,
            seen_incarnation,
            seen_mark,
        }
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn raft(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        Ok(Response::new(self.raft_reply(request.into_inner()).await))
    }

    type RaftStreamStream = RaftReplies;

    /// Each request runs on its own task (one group's slow append must not
    /// hold up another's); replies leave in completion order.
    async fn raft_stream(
        &self,
        request: Request<tonic::Streaming<RaftRequest>>,
    ) -> Result<Response<RaftReplies>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let svc = self.clone();
        tokio::spawn(async move {
            while let Ok(Some(req)) = inbound.message().await {
                let svc = svc.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Ok(svc.raft_reply(req).await));
                });
            }
        });
        Ok(Response::new(Box::pin(crate::network::receiver_stream(rx))))
    }

    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardReply>, Status> {
        let req = request.into_inner();
        let answer = if req.batch {
            self.forward.handle_batch(req.payload.to_vec(), req.hops)
        } else {
            self.forward
                .handle(req.group, req.payload.to_vec(), req.hops)
        };
        let reply = match answer.await {
            Ok(payload) => ForwardReply {
                payload: Bytes::from(payload),
                error: String::new(),
            },
            Err(error) => ForwardReply {
                payload: Bytes::new(),
                error,
            },
        };
        Ok(Response::new(reply))
    }

    type FetchMessagesStream = FetchStream;

    async fn identify(
        &self,
        request: Request<IdentifyRequest>,
    ) -> Result<Response<IdentifyReply>, Status> {
        let request = request.into_inner();
        let group = request.group;
        self.host
            .peers
            .check_heard_of_me(
                request.from_node,
                request.seen_incarnation,
                request.seen_mark,
            )
            .map_err(Status::failed_precondition)?;
        let has_state = self
            .host
            .holds_group(group)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let founding = if group == jetraft_meta::META_GROUP {
            self.host.identity.meta_founding()
        } else {
            // A group kept in memory is founded again after all its
            // replicas restarted (decision 35); a disk group's roster is
            // the catalog's.
            self.host
                .group(group)
                .filter(|g| g.standing.storage() == StorageType::Memory)
                .and_then(|g| g.standing.founding())
        };
        let founding = match founding {
            Some(r) => codec::encode(&r).map_err(|e| Status::internal(e.to_string()))?,
            None => Vec::new(),
        };
        let is = self.host.identity.incarnations();
        let (boot_mark, mark) = self.host.peers.my_marks();
        Ok(Response::new(IdentifyReply {
            node: self.host.me(),
            incarnation: is.disk,
            has_state,
            founding: Bytes::from(founding),
            memory_incarnation: is.memory,
            boot_mark,
            mark,
        }))
    }

    async fn begin_catchup(
        &self,
        request: Request<BeginCatchupRequest>,
    ) -> Result<Response<BeginCatchupReply>, Status> {
        let group_id = request.into_inner().group;
        let group = self
            .host
            .group(group_id)
            .ok_or_else(|| Status::not_found(format!("group {group_id} is not hosted here")))?;
        let (applied, state, view) = group
            .sm
            .freeze()
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let session = self.host.sessions.open(group_id, view);
        Ok(Response::new(BeginCatchupReply {
            session,
            applied,
            state: Bytes::from(state),
        }))
    }

    async fn end_catchup(
        &self,
        request: Request<EndCatchupRequest>,
    ) -> Result<Response<EndCatchupReply>, Status> {
        let req = request.into_inner();
        self.host.sessions.close(req.group, req.session);
        Ok(Response::new(EndCatchupReply {}))
    }

    async fn fetch_messages(
        &self,
        request: Request<FetchRequest>,
    ) -> Result<Response<FetchStream>, Status> {
        let req = request.into_inner();
        let engine: Arc<dyn View> = if req.session == 0 {
            self.host.engine.clone()
        } else {
            self.host
                .sessions
                .get(req.group, req.session)
                .ok_or_else(|| Status::not_found("catch-up session expired"))?
        };
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX).max(1);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<FetchChunk, Status>>(2);
        tokio::spawn(async move {
            let mut next = req.from_seq;
            let mut sent = 0usize;
            while next <= req.to_seq && sent < limit {
                let want = FETCH_CHUNK_MSGS.min(limit - sent);
                let chunk = if req.seqs_only {
                    crate::sm::stream::read_seqs(engine.as_ref(), req.group, next, req.to_seq, want)
                        .map(|seqs| {
                            (
                                seqs.last().copied(),
                                seqs.len(),
                                FetchChunk {
                                    messages: Bytes::new(),
                                    seqs,
                                },
                            )
                        })
                } else {
                    crate::sm::stream::read_messages(
                        engine.as_ref(),
                        req.group,
                        next,
                        req.to_seq,
                        want,
                    )
                    .and_then(|msgs| {
                        let last = msgs.last().map(|m| m.seq);
                        let n = msgs.len();
                        Ok((
                            last,
                            n,
                            FetchChunk {
                                messages: Bytes::from(codec::encode(&msgs)?),
                                seqs: vec![],
                            },
                        ))
                    })
                };
                match chunk {
                    Err(e) => {
                        let _ = tx.send(Err(Status::data_loss(e.to_string()))).await;
                        return;
                    }
                    Ok((None, _, _)) => return,
                    Ok((Some(last), n, chunk)) => {
                        if tx.send(Ok(chunk)).await.is_err() {
                            return;
                        }
                        sent += n;
                        next = last + 1;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream_from(rx))))
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
