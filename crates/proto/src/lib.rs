//! Generated gRPC code for the node-to-node protocols: Raft and catch-up
//! (`proto/cluster.proto`) and core NATS routing (`proto/node.proto`),
//! and the one way both open channels to a peer ([`Connector`]).

#[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
pub mod cluster {
    tonic::include_proto!("jetraft.cluster.v1");
}

#[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
pub mod node {
    tonic::include_proto!("jetraft.node.v1");
}

pub use cluster::*;

/// Makes a (lazily connecting) channel to a peer's cluster address. The
/// server supplies TCP; the simulation supplies turmoil's network.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, addr: &str) -> tonic::transport::Channel;
}
