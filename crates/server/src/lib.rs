//! A jetraft node: configuration, assembly, the JetStream API on top of the
//! Raft groups, monitoring, and the `jetraft dev` launcher. `main.rs` only
//! parses the command line.

mod batcher;
mod calls;
pub mod cluster;
pub mod config;
mod consumers;
pub mod dev;
mod dispatch;
pub mod env;
mod forwarder;
pub mod jsapi;
mod membership;
pub mod monitor;
#[cfg(feature = "standalone")]
mod net;
pub mod node;
#[cfg(feature = "standalone")]
pub mod standalone;
pub mod wire;

#[cfg(feature = "standalone")]
pub use standalone::{FatalStop, Node, run_until_signal};
