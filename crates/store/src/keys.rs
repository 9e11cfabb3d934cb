//! The whole on-disk key layout, in one place.
//!
//! Every key starts with the 8-byte big-endian id of the Raft group (or
//! stream) it belongs to, so that one group's keys are contiguous in every
//! column family and `[group_bounds]` deletes a stream with one range
//! tombstone per column family. Integers after the id are big-endian too, so
//! byte order is numeric order (seq 255 sorts before seq 256).
//!
//! | column family        | key                                             |
//! |----------------------|-------------------------------------------------|
//! | [`Cf::RaftLog`]      | group · index                                   |
//! | [`Cf::RaftMeta`]     | group · kind (1 byte)                           |
//! | [`Cf::Messages`]     | stream · seq                                    |
//! | [`Cf::SubjectIndex`] | stream · escaped subject · `00 01` · seq        |
//! | [`Cf::State`]        | group · kind (1 byte) [· name bytes]            |
//!
//! Group id `u64::MAX` is reserved: its keys would have no upper bound that
//! fits the engines' half-open `[from, to)` ranges. Group id
//! [`NODE_GROUP`] (`u64::MAX - 1`) holds the node's own records (the data
//! directory's identity, [`StateKind::Identity`]).
//!
//! [`Cf::RaftLog`]: crate::Cf::RaftLog
//! [`Cf::RaftMeta`]: crate::Cf::RaftMeta
//! [`Cf::Messages`]: crate::Cf::Messages
//! [`Cf::SubjectIndex`]: crate::Cf::SubjectIndex
//! [`Cf::State`]: crate::Cf::State

/// Length of a group or stream id prefix.
const ID_LEN: usize = 8;
/// Length of a `group · u64` key.
const ID_U64_LEN: usize = ID_LEN + 8;

/// Ends an escaped subject. Sorts below the escape `00 FF`, so subject "a"
/// sorts before "a\0" before "ab" — subject order is preserved.
const SUBJECT_END: [u8; 2] = [0x00, 0x01];
/// A literal `00` byte inside a subject.
const SUBJECT_ESCAPED_NUL: [u8; 2] = [0x00, 0xFF];

/// The per-group records in [`Cf::RaftMeta`](crate::Cf::RaftMeta).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RaftMetaKind {
    Vote,
    Committed,
    Purged,
    Snapshot,
    Membership,
}

impl RaftMetaKind {
    /// Stable on-disk tags: never renumber, only append.
    fn tag(self) -> u8 {
        match self {
            RaftMetaKind::Vote => 1,
            RaftMetaKind::Committed => 2,
            RaftMetaKind::Purged => 3,
            RaftMetaKind::Snapshot => 4,
            RaftMetaKind::Membership => 5,
        }
    }
}

/// The per-group singleton records in [`Cf::State`](crate::Cf::State).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateKind {
    /// Last Raft log id applied to the state machine.
    Applied,
    /// Stream state summary (first/last seq, counts, deleted ranges).
    Summary,
    /// The meta group's catalog of streams and placements.
    Catalog,
    /// Stream configuration.
    Config,
    /// A stream replica's catch-up mark: a copy from a peer in progress,
    /// and the log index its state is at (entries up to it are in it).
    Catchup,
    /// The data directory's identity (its incarnation and the meta
    /// group's founding roster), under [`NODE_GROUP`].
    Identity,
    /// The durable marks this node heard from its peers, under
    /// [`NODE_GROUP`] (ARCHITECTURE decision 37).
    PeerMarks,
}

/// The pseudo group id of the node's own records; never a stream's.
pub const NODE_GROUP: u64 = u64::MAX - 1;

impl StateKind {
    /// Stable on-disk tags: never renumber, only append. Tags 0x80.. are
    /// the multi-record families below.
    fn tag(self) -> u8 {
        match self {
            StateKind::Applied => 1,
            StateKind::Summary => 2,
            StateKind::Catalog => 3,
            StateKind::Config => 4,
            StateKind::Catchup => 5,
            StateKind::Identity => 6,
            StateKind::PeerMarks => 7,
        }
    }
}

/// `Nats-Msg-Id` dedup entries of a stream: one record per msg id.
const STATE_TAG_DEDUP: u8 = 0x80;
/// Consumer state of a stream: one record per consumer name.
const STATE_TAG_CONSUMER: u8 = 0x81;

fn id_prefix(group: u64, extra: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(ID_LEN + extra);
    key.extend_from_slice(&group.to_be_bytes());
    key
}

fn id_u64(group: u64, n: u64) -> Vec<u8> {
    let mut key = id_prefix(group, 8);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The smallest key greater than every key that starts with `prefix`, or
/// `None` when no such key exists (`prefix` is all `FF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut next = prefix[..=last].to_vec();
    next[last] += 1;
    Some(next)
}

/// `[from, to)` covering every key that starts with `prefix`.
///
/// # Panics
/// If `prefix` is all `FF` bytes (only reachable with the reserved group id).
pub fn prefix_bounds(prefix: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let to = prefix_successor(&prefix).expect("group id u64::MAX is reserved (keys module docs)");
    (prefix, to)
}

/// Every key of `group` in any column family.
pub fn group_bounds(group: u64) -> (Vec<u8>, Vec<u8>) {
    prefix_bounds(id_prefix(group, 0))
}

/// The group (or stream) id of any key, if the key is long enough.
pub fn key_group(key: &[u8]) -> Option<u64> {
    read_u64(key.get(..ID_LEN)?)
}

// ---- Raft log ----------------------------------------------------------

pub fn raft_log(group: u64, index: u64) -> Vec<u8> {
    id_u64(group, index)
}

/// All of `group`'s log entries.
pub fn raft_log_bounds(group: u64) -> (Vec<u8>, Vec<u8>) {
    group_bounds(group)
}

/// Entries of `group` with `from <= index < to`.
pub fn raft_log_range(group: u64, from: u64, to: u64) -> (Vec<u8>, Vec<u8>) {
    (raft_log(group, from), raft_log(group, to))
}

pub fn raft_log_index(key: &[u8]) -> Option<u64> {
    if key.len() != ID_U64_LEN {
        return None;
    }
    read_u64(&key[ID_LEN..])
}

// ---- Raft meta ---------------------------------------------------------

pub fn raft_meta(group: u64, kind: RaftMetaKind) -> Vec<u8> {
    let mut key = id_prefix(group, 1);
    key.push(kind.tag());
    key
}

// ---- Messages ----------------------------------------------------------

pub fn message(stream: u64, seq: u64) -> Vec<u8> {
    id_u64(stream, seq)
}

/// Messages of `stream` with `from_seq <= seq < to_seq_exclusive`.
pub fn message_bounds(stream: u64, from_seq: u64, to_seq_exclusive: u64) -> (Vec<u8>, Vec<u8>) {
    (message(stream, from_seq), message(stream, to_seq_exclusive))
}

/// Every message of `stream`, including seq `u64::MAX`.
pub fn message_all_bounds(stream: u64) -> (Vec<u8>, Vec<u8>) {
    group_bounds(stream)
}

pub fn message_seq(key: &[u8]) -> Option<u64> {
    raft_log_index(key)
}

// ---- Subject index -----------------------------------------------------

/// Appends `subject` escaped, without the terminator: `00` becomes `00 FF`.
/// Escaping keeps the encoding prefix-preserving, so a raw subject prefix
/// maps to an encoded key prefix ([`subject_prefix_bounds`]).
fn push_escaped(key: &mut Vec<u8>, subject: &[u8]) {
    for &b in subject {
        if b == 0 {
            key.extend_from_slice(&SUBJECT_ESCAPED_NUL);
        } else {
            key.push(b);
        }
    }
}

fn subject_prefix(stream: u64, subject: &str) -> Vec<u8> {
    let mut key = id_prefix(stream, subject.len() + SUBJECT_END.len() + 8);
    push_escaped(&mut key, subject.as_bytes());
    key.extend_from_slice(&SUBJECT_END);
    key
}

pub fn subject(stream: u64, subject: &str, seq: u64) -> Vec<u8> {
    let mut key = subject_prefix(stream, subject);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Index entries of exactly `subject` ("a" does not match "ab"), all seqs.
pub fn subject_bounds(stream: u64, subject: &str) -> (Vec<u8>, Vec<u8>) {
    prefix_bounds(subject_prefix(stream, subject))
}

/// Index entries of exactly `subject` with `from_seq <= seq < to_seq`.
pub fn subject_seq_bounds(
    stream: u64,
    subj: &str,
    from_seq: u64,
    to_seq: u64,
) -> (Vec<u8>, Vec<u8>) {
    (
        subject(stream, subj, from_seq),
        subject(stream, subj, to_seq),
    )
}

/// Index entries of every subject that starts with the raw bytes `prefix`
/// (e.g. `"orders."`), ordered by subject then seq.
pub fn subject_prefix_bounds(stream: u64, prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let mut key = id_prefix(stream, prefix.len());
    push_escaped(&mut key, prefix.as_bytes());
    prefix_bounds(key)
}

pub fn subject_seq(key: &[u8]) -> Option<u64> {
    subject_parts(key).map(|(_, _, seq)| seq)
}

/// `(stream, subject, seq)` of a subject-index key; `None` if malformed.
pub fn subject_parts(key: &[u8]) -> Option<(u64, String, u64)> {
    let stream = key_group(key)?;
    let seq_at = key.len().checked_sub(8)?;
    let body = key.get(ID_LEN..seq_at)?;
    let escaped = body.strip_suffix(&SUBJECT_END)?;
    let mut raw = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&b) = bytes.next() {
        // A lone 00 never occurs in an escaped subject.
        if b == 0 && bytes.next() != Some(&0xFF) {
            return None;
        }
        raw.push(b);
    }
    let subject = String::from_utf8(raw).ok()?;
    Some((stream, subject, read_u64(&key[seq_at..])?))
}

// ---- State -------------------------------------------------------------

pub fn state(group: u64, kind: StateKind) -> Vec<u8> {
    let mut key = id_prefix(group, 1);
    key.push(kind.tag());
    key
}

fn state_named(group: u64, tag: u8, name: &str) -> Vec<u8> {
    let mut key = id_prefix(group, 1 + name.len());
    key.push(tag);
    key.extend_from_slice(name.as_bytes());
    key
}

/// Dedup record of `msg_id` in `stream`. The id is the key's tail, so no
/// terminator is needed: two ids never share a key.
pub fn dedup(stream: u64, msg_id: &str) -> Vec<u8> {
    state_named(stream, STATE_TAG_DEDUP, msg_id)
}

/// Every dedup record of `stream`.
pub fn dedup_bounds(stream: u64) -> (Vec<u8>, Vec<u8>) {
    prefix_bounds(state_named(stream, STATE_TAG_DEDUP, ""))
}

/// The msg id of a dedup key.
pub fn dedup_msg_id(key: &[u8]) -> Option<&str> {
    named_tail(key, STATE_TAG_DEDUP)
}

/// State of consumer `name` of `stream`.
pub fn consumer(stream: u64, name: &str) -> Vec<u8> {
    state_named(stream, STATE_TAG_CONSUMER, name)
}

/// Every consumer record of `stream`.
pub fn consumer_bounds(stream: u64) -> (Vec<u8>, Vec<u8>) {
    prefix_bounds(state_named(stream, STATE_TAG_CONSUMER, ""))
}

/// The consumer name of a consumer key.
pub fn consumer_name(key: &[u8]) -> Option<&str> {
    named_tail(key, STATE_TAG_CONSUMER)
}

fn named_tail(key: &[u8], tag: u8) -> Option<&str> {
    if *key.get(ID_LEN)? != tag {
        return None;
    }
    std::str::from_utf8(&key[ID_LEN + 1..]).ok()
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
