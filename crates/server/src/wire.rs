//! What travels between nodes: client requests and their replies, and the
//! typed calls nodes make on each other (answered in [`crate::calls`]).
//! MessagePack over the cluster protocol's `Forward` RPC.

use bytes::Bytes;
use jetraft_gateway::Outbound;
use jetraft_raft::{GroupId, Members, NodeId};
use jetraft_types::ApiError;
use jetraft_types::config::StreamConfig;
use serde::{Deserialize, Serialize};

/// A client request as it travels between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiRequest {
    /// The requester's account: the stream names, subjects and API of that
    /// account only.
    #[serde(default = "jetraft_types::global_account")]
    pub account: String,
    pub subject: String,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
    /// The requester's reply subject: where a pull request's messages go
    /// (other requests are answered on the way back).
    #[serde(default)]
    pub reply: Option<String>,
}

impl ApiRequest {
    /// A request in `account` with no headers and no body (node-internal
    /// requests and `STREAM.INFO` probes).
    pub fn empty(account: &str, subject: String) -> Self {
        Self {
            account: account.to_string(),
            subject,
            headers: None,
            payload: Bytes::new(),
            reply: None,
        }
    }
}

/// A reply as it travels back to the node that forwarded the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireOutbound {
    headers: Option<Bytes>,
    payload: Bytes,
}

impl From<WireOutbound> for Outbound {
    fn from(o: WireOutbound) -> Self {
        Outbound {
            headers: o.headers,
            payload: o.payload,
        }
    }
}

impl From<Outbound> for WireOutbound {
    fn from(o: Outbound) -> Self {
        WireOutbound {
            headers: o.headers,
            payload: o.payload,
        }
    }
}

/// What one node asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum NodeCall {
    /// A client request: run it there, or forward it on (`hops` counts).
    Api(ApiRequest),
    /// Adopt the config the meta group accepted, in the stream's own group
    /// (sent to the stream's leader).
    ApplyConfig {
        account: String,
        stream: String,
        config: Box<StreamConfig>,
    },
    /// Which node this replica believes leads the stream (a hint, without
    /// the read barrier of `STREAM.INFO`), and, from the leader itself, the
    /// voters it knows to be up and whole.
    LeaderHint { account: String, stream: String },
    /// Whether this node's catalog lists the stream yet.
    CatalogHas { account: String, stream: String },
    /// This node's view of a stream group's membership.
    GroupMembers { group: GroupId },
    /// What the streams of `account` this node leads use (for the meta
    /// leader's `$JS.API.INFO`).
    AccountUsage { account: String },
}

/// The answer to a [`NodeCall`], of the same kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum NodeReply {
    Api(Vec<WireOutbound>),
    Applied(Result<(), ApiError>),
    LeaderHint {
        leader: Option<NodeId>,
        live: Vec<NodeId>,
    },
    CatalogHas(bool),
    /// None when the node does not run the group, or does not count in it
    /// (a node waiting to be admitted may hold a stale copy).
    GroupMembers(Option<Members>),
    AccountUsage(AccountUsage),
}

/// What the streams one node leads in an account use.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct AccountUsage {
    pub(crate) memory: u64,
    pub(crate) storage: u64,
    pub(crate) consumers: u64,
}

impl NodeReply {
    pub(crate) fn into_outbound(self) -> Vec<Outbound> {
        match self {
            NodeReply::Api(outs) => outs.into_iter().map(Outbound::from).collect(),
            _ => Vec::new(),
        }
    }
}

/// Who leads a stream, as one of its replicas knows, and (when that
/// replica is the leader) which voters it knows to be up and whole.
#[derive(Debug, Default, Clone)]
pub(crate) struct LeaderHint {
    pub(crate) leader: Option<NodeId>,
    pub(crate) live: Vec<NodeId>,
}
