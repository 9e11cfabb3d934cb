//! The unit a stream stores.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One message as stored in a stream, identical on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Stream sequence, starting at 1.
    pub seq: u64,
    pub subject: String,
    /// The raw `NATS/1.0` header block, if the publish carried headers.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
    /// Time stamped by the leader into the proposal, Unix nanoseconds.
    pub time_ns: i64,
}

impl StoredMessage {
    /// Size accounted against `max_bytes`, as nats-server's file store
    /// counts it: subject + headers + payload + 16 bytes of overhead.
    pub fn stored_size(&self) -> u64 {
        let hdr = self.headers.as_ref().map_or(0, |h| h.len());
        (self.subject.len() + hdr + self.payload.len() + 16) as u64
    }
}
