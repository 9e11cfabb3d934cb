//! The stream state machine, applied identically on every replica at Raft
//! apply time (sans-IO: no tokio, no RocksDB, no openraft).
//!
//! [`StreamMachine::apply`] takes a [`StreamCommand`], the proposal time the
//! leader stamped, and read access to what the store already holds
//! ([`StreamReader`]); it returns the [`StoreOp`]s to write and the
//! [`StreamReply`] to send. Every check that decides an outcome (dedup,
//! expected-* headers, limits, discard policy) runs here, so the outcome is
//! the same on every replica and a compare-and-set is linearizable.
//!
//! Behaviour follows nats-server 2.15 (`server/stream.go`
//! `processJetStreamMsg`, `server/filestore.go` limit enforcement and
//! `PurgeEx`), checked scenario by scenario against a running
//! `nats-server`.

pub mod command;
pub mod consumer;
mod consumers;
mod limits;
pub mod machine;
mod overlay;
mod publish;
mod purge;
pub mod reader;
pub mod testing;

pub use command::{Applied, AppliedBatch, DedupEntry, StoreOp, StreamCommand, StreamReply};
pub use machine::{StreamMachine, StreamSummary};
pub use reader::{ReadError, StreamReader};

use jetraft_types::config::StorageType;

/// Bytes a message counts against `max_bytes` and in `state.bytes`, as
/// nats-server's stores count them, so `STREAM.INFO` matches nats-server
/// for the same messages: the file store's record length (`fileStoreMsgSize`:
/// 22 + subject + payload + 8, plus 4 + headers when there are headers), the
/// memory store's `subject + headers + payload + 16`.
pub fn stored_size(storage: StorageType, subject: &str, headers: usize, payload: usize) -> u64 {
    let s = subject.len() as u64;
    let (h, p) = (headers as u64, payload as u64);
    match storage {
        StorageType::File if h == 0 => 22 + s + p + 8,
        StorageType::File => 22 + s + 4 + h + p + 8,
        StorageType::Memory => s + h + p + 16,
    }
}

/// Largest header block nats-server accepts (its length is stored as u16).
pub const MAX_HEADER_LEN: usize = u16::MAX as usize;

/// Hard cap on remembered `Nats-Msg-Id`s, on top of the time window, so a
/// flood of unique ids inside one window cannot grow the set without bound.
pub const DEDUP_MAX_ENTRIES: usize = 1 << 20;
