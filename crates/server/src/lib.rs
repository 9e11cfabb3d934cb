//! A jetraft node: configuration, assembly, the JetStream API on top of the
//! Raft groups, monitoring, and the `jetraft dev` launcher. `main.rs` only
//! parses the command line.

pub mod cluster;
pub mod config;
pub mod dev;
pub mod env;
pub mod jsapi;
pub mod monitor;
mod net;
pub mod node;

pub use node::{Node, run_until_signal};
