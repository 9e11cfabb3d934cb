//! Routing of client requests to the node that can answer them.
//!
//! Any node accepts any request. JetStream API calls and publishes to a
//! stream's subjects are executed where the answer is authoritative — the
//! meta leader for catalog changes, the stream leader for writes and
//! leader reads, any replica for direct gets — by forwarding the request
//! over the cluster protocol ([`crate::wire::NodeCall::Api`]). The
//! receiving node runs the same code, so a forwarded request behaves
//! exactly like a local one. This is the gateway's [`Backend`] and the
//! cluster protocol's [`ForwardHandler`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use jetraft_gateway::{Backend, Inbound, Outbound, ReplyTo};
use jetraft_meta::StreamAssignment;
use jetraft_raft::{ForwardHandler, NodeId};
use jetraft_types::ApiError;

use crate::cluster::Cluster;
use crate::jsapi::{self, Op, Target, publish};
use crate::wire::{ApiRequest, WireOutbound};

/// How many times one request may be forwarded before giving up (leaders
/// moving while the request travels).
pub(crate) const MAX_HOPS: u32 = 4;
/// Attempts for a request that did not run because no leader was reachable.
const RETRY_ATTEMPTS: u32 = 25;
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A reply that says "not the leader" (10009): the request was refused
/// before anything was proposed, so running it again is safe.
fn retryable(payload: &[u8]) -> bool {
    // Most replies are PubAcks: skip the JSON parse unless the code is there.
    if !payload.windows(5).any(|w| w == b"10009") {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("error")?.get("err_code")?.as_u64())
        == Some(10009)
}

impl Cluster {
    /// Waits until the stream's group has a leader, asking a replica when the
    /// group is not hosted here.
    pub async fn await_stream_leader(&self, a: &StreamAssignment, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(g) = self.host().group(a.group) {
                if g.leader().is_some() {
                    return true;
                }
            } else if let Some(peer) = a.peers.first() {
                let probe = ApiRequest::empty(
                    &a.account,
                    format!("{}{}", jsapi::STREAM_INFO, a.config.name),
                );
                if let Ok(out) = self.forward(*peer, &probe, MAX_HOPS - 1).await
                    && out.first().is_some_and(|o| !jsapi::is_error(&o.payload))
                {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// Classifies and dispatches a request (node-internal callers and
    /// forwarded requests). A subject this node's catalog does not know yet
    /// gets no reply, as for a subject nobody serves.
    pub async fn dispatch_request(self: Arc<Self>, req: ApiRequest, hops: u32) -> Vec<Outbound> {
        match jsapi::classify(&self, &req.account, &req.subject) {
            Some(op) => self.dispatch(op, req, hops).await,
            None => Vec::new(),
        }
    }

    /// Handles a request here or forwards it to the node it belongs to.
    pub(crate) fn dispatch(
        self: Arc<Self>,
        op: Op,
        req: ApiRequest,
        hops: u32,
    ) -> BoxFuture<'static, Vec<Outbound>> {
        self.dispatch_inner(op, req, hops).boxed()
    }

    /// Like [`Self::dispatch_once`], but when the request provably did not
    /// run (no leader known yet, or the node we reached had just lost
    /// leadership: nothing was proposed) it retries for a short while, as a
    /// leader election takes about a second.
    async fn dispatch_inner(self: Arc<Self>, op: Op, req: ApiRequest, hops: u32) -> Vec<Outbound> {
        let mut attempt = 0;
        loop {
            let out = self.clone().dispatch_once(&op, req.clone(), hops).await;
            attempt += 1;
            // Only the node the client talks to retries; forwarded hops answer at once.
            if hops > 0
                || attempt >= RETRY_ATTEMPTS
                || !out.first().is_some_and(|o| retryable(&o.payload))
            {
                return out;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn dispatch_once(self: Arc<Self>, op: &Op, req: ApiRequest, hops: u32) -> Vec<Outbound> {
        let target = match jsapi::target(&self, &req.account, op) {
            Ok(t) => t,
            Err(out) => return out,
        };
        match self.route(&target) {
            Route::Here => jsapi::execute(self.clone(), op.clone(), req).await,
            Route::Forward(peer) if hops < MAX_HOPS => {
                match self.forward(peer, &req, hops + 1).await {
                    Ok(out) => out,
                    Err(e) => {
                        tracing::warn!(peer, error = %e, subject = %req.subject, "forward failed");
                        jsapi::error_reply(op, ApiError::cluster_not_avail())
                    }
                }
            }
            // No leader known yet, or leaders moved while the request
            // travelled: nothing was proposed, so the origin may retry.
            Route::Forward(_) | Route::Nowhere => {
                jsapi::error_reply(op, ApiError::cluster_not_leader())
            }
        }
    }

    fn route(&self, target: &Target) -> Route {
        let me = self.host().me();
        let leader_route = |leader: Option<NodeId>| match leader {
            Some(l) if l == me => Route::Here,
            Some(l) => Route::Forward(l),
            None => Route::Nowhere,
        };
        match target {
            Target::MetaLeader => leader_route(self.meta_leader()),
            Target::StreamLeader(a) => match self.host().group(a.group) {
                Some(g) => leader_route(g.leader()),
                None => Self::via_replica(a, me),
            },
            Target::StreamReplica(a) => {
                if self.host().group(a.group).is_some() {
                    Route::Here
                } else {
                    Self::via_replica(a, me)
                }
            }
        }
    }

    /// The stream is not hosted here: ask one of its replicas. If this node
    /// is a replica whose group has not started yet, nothing can be said yet
    /// (the request is retried).
    fn via_replica(a: &StreamAssignment, me: NodeId) -> Route {
        if a.peers.contains(&me) {
            return Route::Nowhere;
        }
        a.peers
            .first()
            .map_or(Route::Nowhere, |p| Route::Forward(*p))
    }

    async fn forward(
        &self,
        peer: NodeId,
        req: &ApiRequest,
        hops: u32,
    ) -> io::Result<Vec<Outbound>> {
        let call = crate::wire::NodeCall::Api(req.clone());
        Ok(self
            .call_with_hops(peer, &call, hops)
            .await?
            .into_outbound())
    }

    /// Queues a publish for the leader of the stream it goes to when that
    /// is another node ([`crate::forwarder`]): None when this node leads it
    /// or no leader is known (the caller dispatches it as usual).
    fn forward_in_order(
        &self,
        op: &Op,
        req: &ApiRequest,
    ) -> Option<tokio::sync::oneshot::Receiver<crate::forwarder::Reply>> {
        let Ok(target) = jsapi::target(self, &req.account, op) else {
            return None;
        };
        let (Target::StreamLeader(a), Route::Forward(peer)) = (&target, self.route(&target)) else {
            return None;
        };
        Some(
            self.forwarders()
                .submit(&self.host().peers, peer, a.group, req.clone()),
        )
    }
}

/// The answer to a request queued for another node's leader: what it
/// replied, or (it was not the leader after all: nothing ran) the request
/// dispatched again.
fn forwarded(
    me: Arc<Cluster>,
    op: Op,
    req: ApiRequest,
    reply: tokio::sync::oneshot::Receiver<crate::forwarder::Reply>,
) -> BoxFuture<'static, Vec<Outbound>> {
    async move {
        match reply.await {
            Ok(Ok(out)) if !out.first().is_some_and(|o| retryable(&o.payload)) => out,
            Ok(Ok(_)) => me.dispatch(op, req, 0).await,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, subject = %req.subject, "forward failed");
                jsapi::error_reply(&op, ApiError::cluster_not_avail())
            }
            Err(_) => jsapi::error_reply(&op, ApiError::cluster_not_avail()),
        }
    }
    .boxed()
}

enum Route {
    Here,
    Forward(NodeId),
    Nowhere,
}

impl Backend for Cluster {
    fn take(&self, msg: &Inbound, reply_to: &ReplyTo) -> bool {
        let Some(op) = jsapi::client_op(self, &msg.account, &msg.subject) else {
            return false;
        };
        let Some(me) = self.arc() else {
            return false;
        };
        let req = ApiRequest {
            account: msg.account.clone(),
            subject: msg.subject.clone(),
            headers: msg.headers.clone(),
            payload: msg.payload.clone(),
            reply: msg.reply.clone(),
        };
        let Op::Publish(stream) = &op else {
            // Acks to a stream led elsewhere share the ordered queue to
            // its leader with publishes: a burst of them is one RPC (and
            // one batcher entry there), not one call each.
            if matches!(op, Op::Ack { .. })
                && let Some(reply) = self.forward_in_order(&op, &req)
            {
                reply_to.clone().spawn(forwarded(me, op, req, reply));
                return true;
            }
            reply_to.clone().spawn(me.dispatch(op, req, 0));
            return true;
        };
        // A publish is queued right now, before this returns, so one
        // connection's publishes keep their order: on the batcher when
        // this node leads the stream, else on the queue to its leader.
        let queued = {
            let (name, me, op, retry, reply_to) = (
                stream.clone(),
                me.clone(),
                op.clone(),
                req.clone(),
                reply_to.clone(),
            );
            // Answered where the batch completes: no task waits for it.
            publish::queue_then(
                self,
                stream,
                req.clone(),
                move |no_ack, result| match result {
                    // Leadership moved before it was proposed: route it.
                    Err(e) if e.err_code == ApiError::cluster_not_leader().err_code => {
                        reply_to.spawn(me.dispatch(op, retry, 0));
                    }
                    result => reply_to.send(publish::answer(&name, no_ack, result)),
                },
            )
        };
        if queued.is_ok() {
            return true;
        }
        if let Some(reply) = self.forward_in_order(&op, &req) {
            reply_to.clone().spawn(forwarded(me, op, req, reply));
            return true;
        }
        reply_to.clone().spawn(me.dispatch(op, req, 0));
        true
    }
}

impl ForwardHandler for Cluster {
    fn handle(
        &self,
        _group: u64,
        payload: Vec<u8>,
        hops: u32,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let Some(me) = self.arc() else {
            return futures::future::ready(Err("node shutting down".to_string())).boxed();
        };
        async move {
            let call: crate::wire::NodeCall =
                jetraft_raft::codec::decode(&payload).map_err(|e| e.to_string())?;
            let reply = me.answer(call, hops).await;
            jetraft_raft::codec::encode(&reply).map_err(|e| e.to_string())
        }
        .boxed()
    }

    /// Publishes another node forwarded in order ([`crate::forwarder`]):
    /// each is queued on its stream's batcher before any is awaited, so
    /// they are proposed in the order sent; one this node cannot queue
    /// (leadership moved) is dispatched like a forwarded request.
    fn handle_batch(
        &self,
        payload: Vec<u8>,
        hops: u32,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let Some(me) = self.arc() else {
            return futures::future::ready(Err("node shutting down".to_string())).boxed();
        };
        let reqs: Vec<ApiRequest> = match jetraft_raft::codec::decode(&payload) {
            Ok(r) => r,
            Err(e) => return futures::future::ready(Err(e.to_string())).boxed(),
        };
        let answers: Vec<BoxFuture<'static, Vec<Outbound>>> = reqs
            .into_iter()
            .map(|req| {
                let op = jsapi::classify(self, &req.account, &req.subject);
                if let Some(Op::Publish(stream)) = &op
                    && let Ok((no_ack, reply)) = publish::queue(self, stream, req.clone())
                {
                    let stream = stream.clone();
                    return async move { publish::answer(&stream, no_ack, reply.await) }.boxed();
                }
                me.clone().dispatch_request(req, hops).boxed()
            })
            .collect();
        async move {
            let outs = futures::future::join_all(answers).await;
            let wire: Vec<Vec<WireOutbound>> = outs
                .into_iter()
                .map(|out| out.into_iter().map(WireOutbound::from).collect())
                .collect();
            jetraft_raft::codec::encode(&wire).map_err(|e| e.to_string())
        }
        .boxed()
    }
}
