//! The machine: the stream's summary counters, its config and the dedup
//! window, plus the bookkeeping shared by every command.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use jetraft_types::config::{StreamConfig, StreamState};
use jetraft_types::{ApiError, StoredMessage};
use serde::{Deserialize, Serialize};

use crate::command::{Applied, AppliedBatch, DedupEntry, StoreOp, StreamCommand, StreamReply};
use crate::consumer::Consumer;
use crate::overlay::Overlay;
use crate::reader::{ReadError, StreamReader};
use crate::{DEDUP_MAX_ENTRIES, stored_size};

/// Everything about a stream except its messages and dedup entries:
/// persisted with every apply and used as the Raft snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    pub config: StreamConfig,
    pub messages: u64,
    pub bytes: u64,
    /// First stored sequence; `last_seq + 1` when empty (0 for a new
    /// stream without `first_seq`), as nats-server reports it.
    pub first_seq: u64,
    /// Unix ns, 0 when empty.
    pub first_ts_ns: i64,
    pub last_seq: u64,
    /// Unix ns of the last stored message, 0 if none ever was.
    pub last_ts_ns: i64,
    pub num_subjects: u64,
    /// `Nats-Msg-Id` of the last stored message ("" if it had none), for
    /// `Nats-Expected-Last-Msg-Id`.
    pub last_msg_id: String,
    /// The latest proposal time applied. Time never runs backwards inside
    /// the machine, even when leadership moves to a node whose clock lags.
    pub clock_ns: i64,
}

#[derive(Debug, Clone)]
pub struct StreamMachine {
    pub(crate) s: StreamSummary,
    pub(crate) dedup: BTreeMap<String, DedupEntry>,
    /// Dedup ids in the order they were added (non-decreasing time).
    pub(crate) dedup_order: VecDeque<String>,
    /// The stream's consumers, by name.
    pub(crate) consumers: BTreeMap<String, Consumer>,
    /// Consumers changed (or removed) by the commands being applied: their
    /// records are written with the entry.
    pub(crate) dirty: BTreeSet<String>,
}

impl StreamMachine {
    /// A new, empty stream. `config` must already be normalised.
    pub fn new(config: StreamConfig) -> Self {
        let (first_seq, last_seq) = match config.first_seq {
            0 => (0, 0),
            f => (f, f - 1),
        };
        Self {
            s: StreamSummary {
                config,
                messages: 0,
                bytes: 0,
                first_seq,
                first_ts_ns: 0,
                last_seq,
                last_ts_ns: 0,
                num_subjects: 0,
                last_msg_id: String::new(),
                clock_ns: 0,
            },
            dedup: BTreeMap::new(),
            dedup_order: VecDeque::new(),
            consumers: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub fn summary(&self) -> StreamSummary {
        self.s.clone()
    }

    pub fn config(&self) -> &StreamConfig {
        &self.s.config
    }

    /// Rebuilds the machine from a persisted summary, dedup entries and
    /// consumers (their derived counts recounted from `reader`).
    pub fn restore(
        summary: StreamSummary,
        mut dedup: Vec<DedupEntry>,
        consumers: Vec<Consumer>,
        reader: &dyn StreamReader,
    ) -> Result<Self, ReadError> {
        dedup.sort_by_key(|e| (e.time_ns, e.seq));
        let mut m = Self {
            s: summary,
            dedup: BTreeMap::new(),
            dedup_order: VecDeque::new(),
            consumers: BTreeMap::new(),
            dirty: BTreeSet::new(),
        };
        let ov = Overlay::new(reader);
        for mut c in consumers {
            c.recount(&ov, m.s.last_seq)?;
            m.consumers.insert(c.name.clone(), c);
        }
        for e in dedup {
            m.dedup_order.push_back(e.id.clone());
            m.dedup.insert(e.id.clone(), e);
        }
        Ok(m)
    }

    /// The consumers, by name.
    pub fn consumers(&self) -> &BTreeMap<String, Consumer> {
        &self.consumers
    }

    /// The dedup window's entries, for snapshots, oldest first.
    pub fn dedup_entries(&self) -> Vec<DedupEntry> {
        self.dedup_order
            .iter()
            .filter_map(|id| self.dedup.get(id).cloned())
            .collect()
    }

    /// `state` for `STREAM.INFO` (without per-subject or deleted details,
    /// which the caller reads from the store when asked).
    pub fn state(&self, consumer_count: u64) -> StreamState {
        let s = &self.s;
        StreamState {
            messages: s.messages,
            bytes: s.bytes,
            first_seq: s.first_seq,
            first_ts: s.first_ts_ns,
            last_seq: s.last_seq,
            last_ts: s.last_ts_ns,
            num_subjects: s.num_subjects,
            subjects: None,
            num_deleted: self.num_deleted(),
            deleted: None,
            consumer_count,
        }
    }

    /// Sequences missing between first and last.
    pub fn num_deleted(&self) -> u64 {
        let s = &self.s;
        if s.messages == 0 || s.last_seq < s.first_seq {
            return 0;
        }
        (s.last_seq - s.first_seq + 1).saturating_sub(s.messages)
    }

    /// Applies one command at the leader-stamped time `now_ns`. On
    /// `Err` nothing may be written: the machine is unchanged only in the
    /// sense that the caller must treat this replica as failed.
    pub fn apply(
        &mut self,
        cmd: &StreamCommand,
        now_ns: i64,
        reader: &dyn StreamReader,
    ) -> Result<Applied, ReadError> {
        let mut batch = self.apply_batch(std::slice::from_ref(cmd), now_ns, reader)?;
        let reply = batch.replies.pop().unwrap_or_else(|| {
            Self::refuse(ApiError::stream_store_failed("no reply for the command"))
        });
        Ok(Applied {
            ops: batch.ops,
            reply,
        })
    }

    /// Applies several commands proposed together (one Raft entry), in
    /// order, at one leader-stamped time: each sees the effects of those
    /// before it, exactly as if they had been applied one by one, and the
    /// store ops of all of them are written as one batch.
    pub fn apply_batch(
        &mut self,
        cmds: &[StreamCommand],
        now_ns: i64,
        reader: &dyn StreamReader,
    ) -> Result<AppliedBatch, ReadError> {
        self.s.clock_ns = self.s.clock_ns.max(now_ns);
        let mut ov = Overlay::new(reader);
        let mut replies = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            self.expire_dedup(&mut ov);
            replies.push(self.apply_one(&mut ov, cmd)?);
        }
        for name in std::mem::take(&mut self.dirty) {
            match self.consumers.get(&name) {
                Some(c) => ov.ops.push(StoreOp::PutConsumer(Box::new(c.clone()))),
                None => ov.ops.push(StoreOp::DeleteConsumer { name }),
            }
        }
        Ok(AppliedBatch {
            ops: ov.ops,
            replies,
        })
    }

    fn apply_one(
        &mut self,
        ov: &mut Overlay<'_>,
        cmd: &StreamCommand,
    ) -> Result<StreamReply, ReadError> {
        Ok(match cmd {
            StreamCommand::Publish {
                subject,
                headers,
                payload,
            } => self.publish(ov, subject, headers.as_ref(), payload)?,
            StreamCommand::Purge(req) => {
                let reply = self.purge(ov, req)?;
                self.after_purge(ov)?;
                reply
            }
            StreamCommand::DeleteMsg { seq, no_erase: _ } => self.delete_msg(ov, *seq)?,
            StreamCommand::UpdateConfig(cfg) => self.update_config(ov, cfg)?,
            StreamCommand::Expire => StreamReply::Expired(self.expire_max_age(ov)?),
            StreamCommand::AddConsumer { config, action } => {
                self.add_consumer(ov, config, *action)?
            }
            StreamCommand::DeleteConsumer { name } => self.delete_consumer(name),
            StreamCommand::PauseConsumer { name, until } => self.pause_consumer(name, *until),
            StreamCommand::ResetConsumer { name, seq } => self.reset_consumer(ov, name, *seq)?,
            StreamCommand::Deliver {
                consumer,
                batch,
                max_bytes,
                redeliver,
            } => self.deliver(ov, consumer, *batch as usize, *max_bytes, redeliver)?,
            StreamCommand::Ack { consumer, acks } => self.ack(ov, consumer, acks)?,
        })
    }

    pub(crate) fn now(&self) -> i64 {
        self.s.clock_ns
    }

    pub(crate) fn size_of(&self, m: &StoredMessage) -> u64 {
        let hdr = m.headers.as_ref().map_or(0, |h| h.len());
        stored_size(self.s.config.storage, &m.subject, hdr, m.payload.len())
    }

    /// Forgets ids older than the window (nats-server: `now - ts >= window`)
    /// and, past the hard cap, the oldest ones.
    fn expire_dedup(&mut self, ov: &mut Overlay<'_>) {
        let window = self.s.config.duplicate_window;
        let now = self.now();
        while let Some(id) = self.dedup_order.front() {
            let expired = match self.dedup.get(id) {
                Some(e) => now.saturating_sub(e.time_ns) >= window,
                None => true,
            };
            if !expired && self.dedup_order.len() <= DEDUP_MAX_ENTRIES {
                break;
            }
            if let Some(id) = self.dedup_order.pop_front()
                && self.dedup.remove(&id).is_some()
            {
                ov.ops.push(StoreOp::DeleteDedup { id });
            }
        }
    }

    pub(crate) fn remember_msg_id(&mut self, ov: &mut Overlay<'_>, id: &str, seq: u64) {
        let e = DedupEntry {
            id: id.to_string(),
            seq,
            time_ns: self.now(),
        };
        if self.dedup.insert(e.id.clone(), e.clone()).is_some() {
            self.dedup_order.retain(|x| x != id);
        }
        self.dedup_order.push_back(e.id.clone());
        ov.ops.push(StoreOp::PutDedup(e));
    }

    pub(crate) fn lookup_msg_id(&self, id: &str) -> Option<u64> {
        if jetraft_types::bugs::enabled(jetraft_types::bugs::Bug::SkipDedup) {
            return None;
        }
        self.dedup.get(id).map(|e| e.seq)
    }

    /// Records a stored message in the counters.
    pub(crate) fn account_put(
        &mut self,
        ov: &mut Overlay<'_>,
        msg: StoredMessage,
    ) -> Result<(), ReadError> {
        let new_subject = ov.subject_is_empty(&msg.subject)?;
        let s = &mut self.s;
        if s.messages == 0 {
            s.first_seq = msg.seq;
            s.first_ts_ns = msg.time_ns;
        }
        s.messages += 1;
        s.bytes += stored_size(
            s.config.storage,
            &msg.subject,
            msg.headers.as_ref().map_or(0, |h| h.len()),
            msg.payload.len(),
        );
        s.last_seq = msg.seq;
        s.last_ts_ns = msg.time_ns;
        if new_subject {
            s.num_subjects += 1;
        }
        for c in self.consumers.values_mut() {
            c.on_stored(&msg.subject);
        }
        ov.put(msg);
        Ok(())
    }

    /// Removes one stored message and fixes the counters. Returns false if
    /// it was not stored.
    pub(crate) fn remove(&mut self, ov: &mut Overlay<'_>, seq: u64) -> Result<bool, ReadError> {
        let Some(msg) = ov.message(seq)? else {
            return Ok(false);
        };
        let size = self.size_of(&msg);
        ov.delete(seq, &msg.subject);
        for c in self.consumers.values_mut() {
            c.on_removed(seq, &msg.subject);
        }
        let s = &mut self.s;
        s.messages = s.messages.saturating_sub(1);
        s.bytes = s.bytes.saturating_sub(size);
        if ov.subject_is_empty(&msg.subject)? {
            self.s.num_subjects = self.s.num_subjects.saturating_sub(1);
        }
        if seq == self.s.first_seq {
            self.refresh_first(ov, seq + 1)?;
        }
        Ok(true)
    }

    /// Moves `first_seq` to the first stored sequence `>= from`.
    pub(crate) fn refresh_first(&mut self, ov: &Overlay<'_>, from: u64) -> Result<(), ReadError> {
        if self.s.messages == 0 {
            self.mark_empty();
            return Ok(());
        }
        match ov.next_seq(from)? {
            Some(next) => {
                let ts = ov.message(next)?.map_or(0, |m| m.time_ns);
                self.s.first_seq = next;
                self.s.first_ts_ns = ts;
            }
            None => self.mark_empty(),
        }
        Ok(())
    }

    pub(crate) fn mark_empty(&mut self) {
        let s = &mut self.s;
        s.messages = 0;
        s.bytes = 0;
        s.num_subjects = 0;
        s.first_seq = s.last_seq + 1;
        s.first_ts_ns = 0;
    }

    pub(crate) fn refuse(err: ApiError) -> StreamReply {
        StreamReply::Error(err)
    }
}
