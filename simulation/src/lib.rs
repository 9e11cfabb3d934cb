//! jetraft under deterministic simulation.
//!
//! Three or five real jetraft nodes — the same assembly `jetraft server`
//! runs — live inside one turmoil simulation: turmoil's TCP carries their
//! gRPC and the clients' NATS protocol, turmoil's clock is their time (the
//! wall clock the leader stamps into proposals is simulated time plus a
//! jumpable offset), every RNG is seeded from the run's seed, and each node
//! keeps its data in the in-memory engine, which keeps synced and unsynced
//! writes apart so a crash loses exactly what was not yet fsynced.
//!
//! A nemesis ([`nemesis`]) injects faults; clients ([`workload`]) publish
//! with `Nats-Msg-Id`, retry on timeout, and compare-and-set; core NATS
//! publishers and subscribers on different nodes ([`core`]); the checker
//! ([`check`], one file per invariant) reads the history and every
//! replica's store. See `docs/simulation.md`.

pub mod check;
pub mod client;
pub mod consumer;
pub mod core;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod run;
pub mod workload;
pub mod world;

pub use run::{Options, Outcome, run};
