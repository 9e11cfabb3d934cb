//! Making and answering the typed node-to-node calls ([`crate::wire`]):
//! a client request to run where it belongs, and the questions and orders
//! nodes give each other, each with a typed answer. No internal subjects,
//! no JSON parsed back.

use std::io;
use std::time::Duration;

use jetraft_meta::StreamAssignment;
use jetraft_raft::NodeId;
use jetraft_types::ApiError;
use jetraft_types::config::StreamConfig;

use crate::cluster::Cluster;
use crate::wire::{LeaderHint, NodeCall, NodeReply, WireOutbound};

/// Attempts at reaching a stream's leader while leadership moves.
const LEADER_ATTEMPTS: u32 = 25;
const LEADER_RETRY_PAUSE: Duration = Duration::from_millis(100);

impl Cluster {
    /// Answers a call another node made (or this one, for itself).
    pub(crate) async fn answer(&self, call: NodeCall, hops: u32) -> NodeReply {
        match call {
            NodeCall::Api(req) => match self.arc() {
                Some(me) => {
                    let out = me.dispatch_request(req, hops).await;
                    NodeReply::Api(out.into_iter().map(WireOutbound::from).collect())
                }
                None => NodeReply::Api(Vec::new()),
            },
            NodeCall::ApplyConfig {
                account,
                stream,
                config,
            } => NodeReply::Applied(
                crate::jsapi::apply_config(self, &account, &stream, *config).await,
            ),
            NodeCall::LeaderHint { account, stream } => {
                let hint = self.local_leader_hint(&account, &stream);
                NodeReply::LeaderHint {
                    leader: hint.leader,
                    live: hint.live,
                }
            }
            NodeCall::CatalogHas { account, stream } => {
                NodeReply::CatalogHas(self.catalog().stream(&account, &stream).is_some())
            }
            NodeCall::GroupMembers { group } => NodeReply::GroupMembers(
                (group != jetraft_meta::META_GROUP)
                    .then(|| self.host().group(group))
                    .flatten()
                    .filter(|g| g.standing.may_vote_strictly().is_ok())
                    .map(|g| g.members()),
            ),
            NodeCall::AccountUsage { account } => {
                NodeReply::AccountUsage(crate::jsapi::local_usage(self, &account))
            }
        }
    }

    /// Makes a call to `peer` (which answers it itself, forwarding nothing).
    pub(crate) async fn call(&self, peer: NodeId, call: &NodeCall) -> io::Result<NodeReply> {
        self.call_with_hops(peer, call, crate::dispatch::MAX_HOPS)
            .await
    }

    pub(crate) async fn call_with_hops(
        &self,
        peer: NodeId,
        call: &NodeCall,
        hops: u32,
    ) -> io::Result<NodeReply> {
        let payload = jetraft_raft::codec::encode(call)?;
        let reply = self
            .host()
            .peers
            .forward(peer, 0, payload, hops, false)
            .await?;
        jetraft_raft::codec::decode(&reply)
    }

    /// This node's own idea of who leads the stream (and, if it leads,
    /// its live voters).
    pub(crate) fn local_leader_hint(&self, account: &str, stream: &str) -> LeaderHint {
        let group = self
            .catalog()
            .stream(account, stream)
            .and_then(|a| self.host().group(a.group));
        LeaderHint {
            leader: group.as_ref().and_then(|g| g.leader()),
            live: group
                .map(|g| g.current_voters(&self.host().peers))
                .unwrap_or_default(),
        }
    }

    /// Who leads `a`, asked of a replica (this node if it hosts one); when
    /// a follower answered, the leader is asked for its live voters.
    pub(crate) async fn leader_hint(&self, a: &StreamAssignment) -> LeaderHint {
        let ask = NodeCall::LeaderHint {
            account: a.account.clone(),
            stream: a.config.name.clone(),
        };
        let mut hint = if self.host().group(a.group).is_some() {
            self.local_leader_hint(&a.account, &a.config.name)
        } else {
            match a.peers.first() {
                Some(p) => match self.call(*p, &ask).await {
                    Ok(NodeReply::LeaderHint { leader, live }) => LeaderHint { leader, live },
                    _ => LeaderHint::default(),
                },
                None => LeaderHint::default(),
            }
        };
        if let Some(leader) = hint.leader
            && hint.live.is_empty()
        {
            let asked = if leader == self.host().me() {
                Some(self.local_leader_hint(&a.account, &a.config.name))
            } else {
                match self.call(leader, &ask).await {
                    Ok(NodeReply::LeaderHint { leader, live }) => Some(LeaderHint { leader, live }),
                    _ => None,
                }
            };
            if let Some(asked) = asked
                && asked.leader == Some(leader)
            {
                hint.live = asked.live;
            }
        }
        hint
    }

    /// Has the stream's leader adopt `config`, wherever it is; retried
    /// while no leader is known or leadership moves (nothing was applied).
    pub(crate) async fn apply_config_on_leader(
        &self,
        a: &StreamAssignment,
        config: &StreamConfig,
    ) -> Result<(), ApiError> {
        let call = NodeCall::ApplyConfig {
            account: a.account.clone(),
            stream: a.config.name.clone(),
            config: Box::new(config.clone()),
        };
        let not_leader = ApiError::cluster_not_leader().err_code;
        let mut last = ApiError::cluster_not_avail();
        for _ in 0..LEADER_ATTEMPTS {
            let leader = self.host().group(a.group).and_then(|g| g.leader());
            let leader = match leader {
                Some(l) => Some(l),
                None => self.leader_hint(a).await.leader,
            };
            let result = match leader {
                Some(l) if l == self.host().me() => {
                    crate::jsapi::apply_config(self, &a.account, &a.config.name, config.clone())
                        .await
                }
                Some(l) => match self.call(l, &call).await {
                    Ok(NodeReply::Applied(r)) => r,
                    Ok(_) => Err(ApiError::cluster_not_avail()),
                    Err(e) => {
                        tracing::debug!(peer = l, error = %e, "apply config call failed");
                        Err(ApiError::cluster_not_leader())
                    }
                },
                None => Err(ApiError::cluster_not_leader()),
            };
            match result {
                Err(e) if e.err_code == not_leader => last = e,
                r => return r,
            }
            tokio::time::sleep(LEADER_RETRY_PAUSE).await;
        }
        Err(last)
    }
}
