//! Generated gRPC code for the cluster protocol (`proto/cluster.proto`).

#[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
pub mod cluster {
    tonic::include_proto!("jetraft.cluster.v1");
}

pub use cluster::*;
