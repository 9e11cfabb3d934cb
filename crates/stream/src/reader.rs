//! Read access to what the store holds for one stream.
//!
//! Every method must be cheap on an ordered KV store keyed by
//! `(stream, seq) -> message` and `(stream, subject, seq) -> ()`: a point
//! lookup or a short range scan. The machine never asks for "all messages"
//! except in purges and config updates, which are rare and bounded by the
//! stream size anyway.

use jetraft_types::StoredMessage;

/// The store could not answer. The lead decides what that means (a replica
/// that cannot read its own data must stop voting); the machine only passes
/// it up, having changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub trait StreamReader {
    /// The message at exactly `seq`, if stored.
    fn message(&self, seq: u64) -> Result<Option<StoredMessage>, ReadError>;
    /// The first stored sequence `>= from`.
    fn next_seq(&self, from: u64) -> Result<Option<u64>, ReadError>;
    /// Up to `limit` stored sequences of exactly `subject`, oldest first.
    fn subject_seqs(&self, subject: &str, limit: usize) -> Result<Vec<u64>, ReadError>;
    /// The newest stored sequence of exactly `subject`.
    fn last_seq_for_subject(&self, subject: &str) -> Result<Option<u64>, ReadError>;
    /// The distinct subjects with at least one stored message that match
    /// `filter` (wildcards allowed), sorted. A literal filter yields at most
    /// itself.
    fn subjects_matching(&self, filter: &str) -> Result<Vec<String>, ReadError>;
}
