//! openraft log storage for one group, over the node's shared engine.
//!
//! Entries live in `Cf::RaftLog` under (group, index); vote, committed and
//! purge marks in `Cf::RaftMeta`. Appends are written at once (readable
//! before `append` returns, as openraft requires) and acknowledged by the
//! [`Committer`] after the fsync that covers them.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use jetraft_store::keys::{self, RaftMetaKind};
use jetraft_store::{Cf, Dir, Engine, WriteBatch};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use tokio::sync::watch;

use crate::commit::{Committer, SyncFor};
use crate::kv;
use crate::types::{Entry, GroupId, LogId, TypeConfig, Vote};

/// Upper bound on the bytes of entries one AppendEntries carries.
const MAX_APPEND_BYTES: usize = 4 << 20;
/// Newest entries kept in memory for replication, which reads each entry
/// right after it is appended: no store read and decode on the hot path.
const TAIL_ENTRIES: usize = 512;

#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    engine: Arc<dyn Engine>,
    committer: Committer,
    /// The newest appended entries, contiguous by index (shared with the
    /// readers replication uses). Always a suffix of the stored log.
    tail: Arc<Mutex<VecDeque<Entry>>>,
    /// Index of the newest entry appended by this process (0: none yet).
    /// Replication watches it to tell that a real append is about to follow
    /// (`network::GroupConn`, commit piggybacking).
    appended: watch::Sender<u64>,
}

impl LogStore {
    pub fn new(group: GroupId, engine: Arc<dyn Engine>, committer: Committer) -> Self {
        Self {
            group,
            engine,
            committer,
            tail: Arc::new(Mutex::new(VecDeque::new())),
            appended: watch::Sender::new(0),
        }
    }

    /// Follows the index of the newest entry this process appended.
    pub fn appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries `[from, to_excl)` if the tail holds all of them.
    fn read_tail(&self, from: u64, to_excl: u64, max_bytes: usize) -> Option<Vec<Entry>> {
        let tail = self.tail();
        let first = tail.front()?.index();
        let last = tail.back()?.index();
        if from < first || to_excl > last + 1 {
            return None;
        }
        let skip = usize::try_from(from - first).ok()?;
        let take = usize::try_from(to_excl - from).ok()?;
        let mut out = Vec::with_capacity(take.min(tail.len()));
        let mut bytes = 0usize;
        for e in tail.iter().skip(skip).take(take) {
            let size = entry_size(e);
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            out.push(e.clone());
        }
        Some(out)
    }

    fn meta_key(&self, kind: RaftMetaKind) -> Vec<u8> {
        keys::raft_meta(self.group, kind)
    }

    fn read_entries(&self, from: u64, to_excl: u64, max_bytes: usize) -> io::Result<Vec<Entry>> {
        if from >= to_excl {
            return Ok(Vec::new());
        }
        if let Some(hit) = self.read_tail(from, to_excl, max_bytes) {
            return Ok(hit);
        }
        let bounds = (
            keys::raft_log(self.group, from),
            keys::raft_log(self.group, to_excl),
        );
        let raw = self
            .engine
            .scan(Cf::RaftLog, &bounds.0, &bounds.1, Dir::Forward, usize::MAX)?;
        let mut out = Vec::with_capacity(raw.len());
        let mut bytes = 0usize;
        for (k, v) in raw {
            if !out.is_empty() && bytes + v.len() > max_bytes {
                break;
            }
            bytes += v.len();
            let entry: Entry = kv::decode_value(Cf::RaftLog, &k, &v)?;
            let expect = keys::raft_log_index(&k);
            if expect != Some(entry.index()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "group {}: log key {expect:?} holds entry {}",
                        self.group,
                        entry.index()
                    ),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// Whether this node has ever taken part in the group (it persisted a
    /// vote, which a replica does as soon as it follows a leader).
    pub fn exists(&self) -> io::Result<bool> {
        Ok(self
            .engine
            .get(Cf::RaftMeta, &self.meta_key(RaftMetaKind::Vote))?
            .is_some())
    }

    /// Removes every log entry and mark of this group (stream deleted).
    pub fn destroy(&self, batch: &mut WriteBatch) {
        let (from, to) = keys::raft_log_bounds(self.group);
        batch.delete_range(Cf::RaftLog, from, to);
        for kind in [
            RaftMetaKind::Vote,
            RaftMetaKind::Committed,
            RaftMetaKind::Purged,
            RaftMetaKind::Snapshot,
            RaftMetaKind::Membership,
        ] {
            batch.delete(Cf::RaftMeta, self.meta_key(kind));
        }
    }
}

/// About the encoded size of an entry, for the per-message byte bound.
fn entry_size(e: &Entry) -> usize {
    use crate::types::Request;
    use jetraft_stream::StreamCommand;
    let cmd_size = |c: &StreamCommand| c.message_bytes().map_or(256, |b| 32 + b);
    match &e.payload {
        openraft::EntryPayload::Normal(Request::Stream { cmd, .. }) => 64 + cmd_size(cmd),
        openraft::EntryPayload::Normal(Request::StreamBatch { cmds, .. }) => {
            64 + cmds.iter().map(cmd_size).sum::<usize>()
        }
        _ => 256,
    }
}

fn range_to_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(x) => *x,
        Bound::Excluded(x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(x) => x.saturating_add(1),
        Bound::Excluded(x) => *x,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (from, to) = range_to_bounds(&range);
        self.read_entries(from, to, usize::MAX)
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, io::Error> {
        self.read_entries(start, end, MAX_APPEND_BYTES)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        kv::get(
            self.engine.as_ref(),
            Cf::RaftMeta,
            &self.meta_key(RaftMetaKind::Vote),
        )
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let purged: Option<LogId> = kv::get(
            self.engine.as_ref(),
            Cf::RaftMeta,
            &self.meta_key(RaftMetaKind::Purged),
        )?;
        let bounds = keys::raft_log_bounds(self.group);
        let last = kv::scan::<Entry>(self.engine.as_ref(), Cf::RaftLog, &bounds, Dir::Reverse, 1)?
            .pop()
            .map(|(_, e)| e.log_id());
        Ok(LogState {
            last_log_id: last.or(purged),
            last_purged_log_id: purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let mut batch = WriteBatch::new();
        kv::put(
            &mut batch,
            Cf::RaftMeta,
            self.meta_key(RaftMetaKind::Vote),
            vote,
        )?;
        self.engine.write(batch)?;
        // A vote must be durable before it is sent, whatever the sync mode.
        self.committer.sync_for(SyncFor::Vote).await
    }

    // No `save_committed` / `read_committed`: every state machine persists
    // its applied position with each apply, so a restarted node never needs
    // the committed index to rebuild its state, and a store write per commit
    // on the leader's and the followers' commit path is saved. A restarted
    // node learns the commit index from the leader's next message.

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        let entries: Vec<Entry> = entries.into_iter().collect();
        for entry in &entries {
            kv::put(
                &mut batch,
                Cf::RaftLog,
                keys::raft_log(self.group, entry.index()),
                entry,
            )?;
        }
        self.engine.write(batch)?;
        if let Some(last) = entries.last() {
            self.appended.send_replace(last.index());
        }
        {
            let mut tail = self.tail();
            for entry in entries {
                // Keep the tail contiguous; a gap (never expected: openraft
                // appends in order) starts it afresh.
                if tail.back().is_some_and(|b| b.index() + 1 != entry.index()) {
                    tail.clear();
                }
                tail.push_back(entry);
                if tail.len() > TAIL_ENTRIES {
                    tail.pop_front();
                }
            }
        }
        self.committer.flushed(callback);
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index() + 1);
        let (_, to) = keys::raft_log_bounds(self.group);
        let mut batch = WriteBatch::new();
        batch.delete_range(Cf::RaftLog, keys::raft_log(self.group, from), to);
        self.tail().retain(|e| e.index() < from);
        let kept = from.saturating_sub(1);
        self.appended.send_modify(|last| *last = (*last).min(kept));
        self.engine.write(batch)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut batch = WriteBatch::new();
        kv::put(
            &mut batch,
            Cf::RaftMeta,
            self.meta_key(RaftMetaKind::Purged),
            &log_id,
        )?;
        let (from, _) = keys::raft_log_bounds(self.group);
        batch.delete_range(
            Cf::RaftLog,
            from,
            keys::raft_log(self.group, log_id.index() + 1),
        );
        self.tail().retain(|e| e.index() > log_id.index());
        self.engine.write(batch)
    }
}
