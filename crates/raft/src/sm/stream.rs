//! A stream group's state machine over the node's store.
//!
//! [`jetraft_stream::StreamMachine`] decides; this module reads the store
//! for it ([`StoreReader`]), turns its [`StoreOp`]s into a write batch, and
//! persists its summary and dedup window with every apply.

use std::io;
use std::sync::Arc;

use jetraft_store::keys::{self, StateKind};
use jetraft_store::{Cf, Dir, Engine, View, WriteBatch, record};
use jetraft_stream::consumer::Consumer;
use jetraft_stream::{DedupEntry, ReadError, StoreOp, StreamMachine, StreamReader, StreamSummary};
use jetraft_types::StoredMessage;
use jetraft_types::config::{Compression, StreamConfig, StreamState as ApiStreamState};
use jetraft_types::subject;
use serde::{Deserialize, Serialize};

use super::GroupSm;
use super::catchup::{Catchup, Source};
use crate::kv;
use crate::types::{GroupId, NodeId, Request, Response};

/// Messages fetched per catch-up request.
const CATCHUP_BATCH: usize = 4096;

pub struct StreamState {
    id: u64,
    machine: StreamMachine,
}

/// The Raft snapshot of a stream: its summary, dedup window and consumers,
/// no messages. A peer's frozen replica
/// ([`super::catchup::Frozen::state`]) is one too.
#[derive(Serialize, Deserialize)]
pub struct StreamSnapshot {
    summary: StreamSummary,
    dedup: Vec<DedupEntry>,
    #[serde(default)]
    consumers: Vec<Consumer>,
}

impl StreamState {
    pub fn load(id: u64, config: StreamConfig, engine: &dyn Engine) -> io::Result<Self> {
        let summary: Option<StreamSummary> =
            kv::get(engine, Cf::State, &keys::state(id, StateKind::Summary))?;
        let machine = match summary {
            Some(summary) => {
                let dedup = kv::scan::<DedupEntry>(
                    engine,
                    Cf::State,
                    &keys::dedup_bounds(id),
                    Dir::Forward,
                    usize::MAX,
                )?
                .into_iter()
                .map(|(_, e)| e)
                .collect();
                let consumers = load_consumers(engine, id)?;
                let reader = StoreReader { engine, id };
                StreamMachine::restore(summary, dedup, consumers, &reader).map_err(read_error)?
            }
            None => StreamMachine::new(config),
        };
        Ok(Self { id, machine })
    }

    pub fn view(&self, engine: Arc<dyn Engine>) -> StreamView {
        StreamView {
            id: self.id,
            engine,
            config: self.machine.config().clone(),
            state: self.machine.state(self.machine.consumers().len() as u64),
        }
    }

    /// The consumer's replicated state, if it exists.
    pub fn consumer(&self, name: &str) -> Option<Consumer> {
        self.machine.consumers().get(name).cloned()
    }

    pub fn consumer_with<R>(&self, name: &str, f: impl FnOnce(&Consumer) -> R) -> Option<R> {
        self.machine.consumers().get(name).map(f)
    }

    pub fn consumer_pending(
        &self,
        name: &str,
        sseq: u64,
    ) -> Option<jetraft_stream::consumer::PendingMsg> {
        self.machine
            .consumers()
            .get(name)?
            .pending
            .get(&sseq)
            .cloned()
    }

    pub fn consumer_briefs(&self) -> Vec<(String, bool)> {
        self.machine
            .consumers()
            .values()
            .map(|c| {
                let needs = c.config.is_push() || c.config.inactive_threshold > 0;
                (c.name.clone(), needs)
            })
            .collect()
    }

    /// Every consumer, by name.
    pub fn consumers(&self) -> Vec<Consumer> {
        self.machine.consumers().values().cloned().collect()
    }

    pub fn apply(
        &mut self,
        req: &Request,
        engine: &dyn Engine,
        batch: &mut WriteBatch,
    ) -> io::Result<Response> {
        let reader = StoreReader {
            engine,
            id: self.id,
        };
        let (applied, response) = match req {
            Request::Stream { cmd, now_ns } => {
                let a = self
                    .machine
                    .apply(cmd, *now_ns, &reader)
                    .map_err(read_error)?;
                (a.ops, Response::Stream(a.reply))
            }
            Request::StreamBatch { cmds, now_ns } => {
                let a = self
                    .machine
                    .apply_batch(cmds, *now_ns, &reader)
                    .map_err(read_error)?;
                (a.ops, Response::StreamBatch(a.replies))
            }
            Request::Meta(_) => return Ok(Response::WrongGroup),
        };
        for op in &applied {
            self.write_op(op, batch)?;
        }
        kv::put(
            batch,
            Cf::State,
            keys::state(self.id, StateKind::Summary),
            &self.machine.summary(),
        )?;
        Ok(response)
    }

    fn write_op(&self, op: &StoreOp, batch: &mut WriteBatch) -> io::Result<()> {
        let id = self.id;
        match op {
            StoreOp::PutMessage(m) => put_message(id, m, self.config().compression, batch)?,
            StoreOp::DeleteMessage { seq, subject } => {
                batch.delete(Cf::Messages, keys::message(id, *seq));
                batch.delete(Cf::SubjectIndex, keys::subject(id, subject, *seq));
            }
            StoreOp::PurgeAll => {
                let (from, to) = keys::group_bounds(id);
                batch.delete_range(Cf::Messages, from.clone(), to.clone());
                batch.delete_range(Cf::SubjectIndex, from, to);
            }
            StoreOp::PutDedup(e) => kv::put(batch, Cf::State, keys::dedup(id, &e.id), e)?,
            StoreOp::DeleteDedup { id: msg_id } => batch.delete(Cf::State, keys::dedup(id, msg_id)),
            StoreOp::PutConsumer(c) => kv::put(batch, Cf::State, keys::consumer(id, &c.name), c)?,
            StoreOp::DeleteConsumer { name } => batch.delete(Cf::State, keys::consumer(id, name)),
        }
        Ok(())
    }

    pub fn config(&self) -> &StreamConfig {
        self.machine.config()
    }

    /// The stream's first and last sequence: nothing outside is stored.
    pub fn live_range(&self) -> (u64, u64) {
        let summary = self.machine.summary();
        (summary.first_seq, summary.last_seq)
    }

    pub fn snapshot_data(&self) -> io::Result<Vec<u8>> {
        crate::codec::encode(&StreamSnapshot {
            summary: self.machine.summary(),
            dedup: self.machine.dedup_entries(),
            consumers: self.machine.consumers().values().cloned().collect(),
        })
    }

    /// Switches to a copied replica's state (its messages are stored
    /// already: [`copy_replica`]).
    pub fn install(
        &mut self,
        snapshot: StreamSnapshot,
        engine: &dyn Engine,
        batch: &mut WriteBatch,
    ) -> io::Result<()> {
        let id = self.id;
        let (from, to) = keys::dedup_bounds(id);
        batch.delete_range(Cf::State, from, to);
        for e in &snapshot.dedup {
            kv::put(batch, Cf::State, keys::dedup(id, &e.id), e)?;
        }
        let (from, to) = keys::consumer_bounds(id);
        batch.delete_range(Cf::State, from, to);
        for c in &snapshot.consumers {
            kv::put(batch, Cf::State, keys::consumer(id, &c.name), c)?;
        }
        kv::put(
            batch,
            Cf::State,
            keys::state(id, StateKind::Summary),
            &snapshot.summary,
        )?;
        // The copied messages are stored already: derived counts come from
        // them.
        let reader = StoreReader { engine, id };
        self.machine = StreamMachine::restore(
            snapshot.summary,
            snapshot.dedup,
            snapshot.consumers,
            &reader,
        )
        .map_err(read_error)?;
        Ok(())
    }

    pub fn destroy(&self, batch: &mut WriteBatch) {
        let (from, to) = keys::group_bounds(self.id);
        for cf in [Cf::Messages, Cf::SubjectIndex, Cf::State] {
            batch.delete_range(cf, from.clone(), to.clone());
        }
    }
}

fn load_consumers(engine: &dyn Engine, id: u64) -> io::Result<Vec<Consumer>> {
    Ok(kv::scan::<Consumer>(
        engine,
        Cf::State,
        &keys::consumer_bounds(id),
        Dir::Forward,
        usize::MAX,
    )?
    .into_iter()
    .map(|(_, c)| c)
    .collect())
}

/// Stores `m` (compressed if the stream says so: `compression: "s2"`).
pub(super) fn put_message(
    id: u64,
    m: &StoredMessage,
    compression: Compression,
    batch: &mut WriteBatch,
) -> io::Result<()> {
    let key = keys::message(id, m.seq);
    match compression {
        Compression::None => kv::put(batch, Cf::Messages, key, m)?,
        Compression::S2 => kv::put_compressed(batch, Cf::Messages, key, m)?,
    }
    kv::put(
        batch,
        Cf::SubjectIndex,
        keys::subject(id, &m.subject, m.seq),
        &(),
    )
}

fn read_error(e: ReadError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}"))
}

/// Copies a replica of `group` that has applied at least `min_index` from
/// one of `peers` (tried in order, round after round until one serves):
/// afterwards the local store holds exactly the frozen replica's messages.
/// Returns the index the copy is at and its state, to install.
pub async fn copy_replica(
    group: GroupId,
    min_index: u64,
    peers: &[NodeId],
    engine: &dyn Engine,
    compression: Compression,
    catchup: &dyn Catchup,
) -> io::Result<(u64, StreamSnapshot)> {
    let mut round = 0u32;
    loop {
        for &peer in peers {
            match copy_from(group, min_index, peer, engine, compression, catchup).await {
                Ok(copied) => return Ok(copied),
                Err(e) => tracing::info!(group, peer, error = %e, "catch-up source unavailable"),
            }
        }
        round += 1;
        tracing::warn!(
            group,
            min_index,
            round,
            "no peer could serve the stream for catch-up yet; retrying"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn copy_from(
    group: GroupId,
    min_index: u64,
    peer: NodeId,
    engine: &dyn Engine,
    compression: Compression,
    catchup: &dyn Catchup,
) -> io::Result<(u64, StreamSnapshot)> {
    let frozen = catchup.begin(peer, group).await?;
    let result = async {
        if frozen.applied < min_index {
            return Err(io::Error::other(format!(
                "peer {peer} has applied only {} < {min_index}",
                frozen.applied
            )));
        }
        let target: StreamSnapshot = crate::codec::decode(&frozen.state)?;
        mirror(frozen.at, &target.summary, engine, compression, catchup).await?;
        tracing::info!(
            group,
            peer,
            index = frozen.applied,
            first = target.summary.first_seq,
            last = target.summary.last_seq,
            "stream caught up from a peer's frozen replica"
        );
        Ok((frozen.applied, target))
    }
    .await;
    catchup.end(frozen.at).await;
    result
}

/// Makes the local store of `at.group` hold exactly the messages stored at
/// `at` (a frozen replica whose summary is `target`). Works from any local
/// state, including a half-finished earlier copy from another peer: it
/// drops what the source lacks, fetches what this store lacks.
async fn mirror(
    at: Source,
    target: &StreamSummary,
    engine: &dyn Engine,
    compression: Compression,
    catchup: &dyn Catchup,
) -> io::Result<()> {
    let group = at.group;
    let mut batch = WriteBatch::new();
    let (from, to) = keys::group_bounds(group);
    // Below the first sequence nothing survives; above the last nothing
    // exists.
    if target.first_seq > 0 {
        batch.delete_range(Cf::Messages, from, keys::message(group, target.first_seq));
    }
    batch.delete_range(
        Cf::Messages,
        keys::message(group, target.last_seq.saturating_add(1)),
        to,
    );
    engine.write(batch)?;
    drop_stale_subjects(group, engine, target.first_seq, target.last_seq)?;

    let stored = stored_range(engine, group)?;
    let mut fetch_from = target.first_seq.max(1);
    let all = |_| true;
    if let Some((local_first, local_last)) = stored {
        // Below what this store holds: a half-finished copy from a source
        // that was further on (its first sequence higher) left nothing
        // there. Without this a follower once held every message but the
        // first and reported a first sequence it did not store (CI,
        // `catchup.rs`: first_seq 5000 instead of 5001).
        if local_first > fetch_from {
            let below_to = (local_first - 1).min(target.last_seq);
            copy_messages(at, fetch_from, below_to, all, engine, compression, catchup).await?;
        }
        // Where both may hold messages, compare sequence lists page by page.
        let overlap_to = local_last.min(target.last_seq);
        let mut next = local_first.max(target.first_seq).max(1);
        while next <= overlap_to {
            let theirs = catchup
                .fetch_seqs(at, next, overlap_to, CATCHUP_BATCH)
                .await?;
            let page_end = match theirs.last() {
                Some(last) if theirs.len() == CATCHUP_BATCH => *last,
                _ => overlap_to,
            };
            let ours = read_seqs(engine, group, next, page_end, usize::MAX)?;
            reconcile(at, engine, compression, catchup, &ours, &theirs).await?;
            next = page_end + 1;
        }
        fetch_from = fetch_from.max(local_last.saturating_add(1));
    }
    copy_messages(
        at,
        fetch_from,
        target.last_seq,
        all,
        engine,
        compression,
        catchup,
    )
    .await
}

/// Fetches the messages stored at `at` in `from..=to`, page by page, and
/// stores those whose sequence `wanted` accepts.
async fn copy_messages(
    at: Source,
    from: u64,
    to: u64,
    wanted: impl Fn(u64) -> bool,
    engine: &dyn Engine,
    compression: Compression,
    catchup: &dyn Catchup,
) -> io::Result<()> {
    let mut next = from;
    while next <= to {
        let msgs = catchup.fetch(at, next, to, CATCHUP_BATCH).await?;
        let mut batch = WriteBatch::new();
        for m in msgs.iter().filter(|m| wanted(m.seq)) {
            put_message(at.group, m, compression, &mut batch)?;
        }
        engine.write(batch)?;
        match msgs.last() {
            Some(last) if msgs.len() == CATCHUP_BATCH => next = last.seq + 1,
            _ => break,
        }
    }
    Ok(())
}

/// One page of the overlap: deletes what only this store holds, fetches
/// what only the source holds.
async fn reconcile(
    at: Source,
    engine: &dyn Engine,
    compression: Compression,
    catchup: &dyn Catchup,
    ours: &[u64],
    theirs: &[u64],
) -> io::Result<()> {
    let group = at.group;
    let mut batch = WriteBatch::new();
    for seq in ours.iter().filter(|s| theirs.binary_search(s).is_err()) {
        match read_message(engine, group, *seq) {
            Ok(Some(m)) => {
                batch.delete(Cf::Messages, keys::message(group, *seq));
                batch.delete(Cf::SubjectIndex, keys::subject(group, &m.subject, *seq));
            }
            Ok(None) => {}
            // A record that rotted names no subject: find its index entry.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                batch.delete(Cf::Messages, keys::message(group, *seq));
                delete_subject_entries(engine, group, &mut batch, |at| at == *seq)?;
            }
            Err(e) => return Err(e),
        }
    }
    engine.write(batch)?;
    let lacking: Vec<u64> = theirs
        .iter()
        .copied()
        .filter(|s| ours.binary_search(s).is_err())
        .collect();
    match (lacking.first(), lacking.last()) {
        (Some(&lo), Some(&hi)) => {
            let wanted = |seq| lacking.binary_search(&seq).is_ok();
            copy_messages(at, lo, hi, wanted, engine, compression, catchup).await
        }
        _ => Ok(()),
    }
}

/// The lowest and highest sequence stored for `group`, if any.
fn stored_range(engine: &dyn Engine, group: GroupId) -> io::Result<Option<(u64, u64)>> {
    let (from, to) = keys::message_bounds(group, 1, u64::MAX);
    let edge = |dir| -> io::Result<Option<u64>> {
        Ok(engine
            .scan(Cf::Messages, &from, &to, dir, 1)?
            .first()
            .and_then(|(k, _)| keys::message_seq(k)))
    };
    Ok(edge(Dir::Forward)?.zip(edge(Dir::Reverse)?))
}

/// Verifies up to `limit` message records of the stream `sm` from
/// sequence `from` on, and replaces each that fails its checksum (bit rot)
/// with the copy a peer stores. Returns the next sequence to verify (0 once
/// the end is reached) and how many records were repaired. A corrupt
/// record is never served meanwhile: every read verifies the checksum and
/// fails instead. The repair is written only if the message is still live
/// when the peer's copy arrives ([`GroupSm::repair_message`]): applies go
/// on while the scrubber waits for the peer, and a delete, purge, rollup
/// or limit among them must not be undone.
pub async fn scrub(
    sm: &GroupSm,
    from: u64,
    limit: usize,
    peers: &[NodeId],
    catchup: &dyn Catchup,
) -> io::Result<(u64, usize)> {
    let group = sm.group();
    let engine = sm.engine.as_ref();
    let bounds = keys::message_bounds(group, from.max(1), u64::MAX);
    let raw = engine.scan(Cf::Messages, &bounds.0, &bounds.1, Dir::Forward, limit)?;
    let next = match raw.last().and_then(|(k, _)| keys::message_seq(k)) {
        Some(last) if raw.len() == limit => last + 1,
        _ => 0,
    };
    let mut repaired = 0;
    for (key, value) in &raw {
        if record::verify_for(key, value).is_ok() {
            continue;
        }
        let Some(seq) = keys::message_seq(key) else {
            continue;
        };
        tracing::warn!(
            group,
            seq,
            "message record fails its checksum; repairing from peers"
        );
        let theirs = ask_peers(peers, |p| {
            catchup.fetch(Source::live(p, group), seq, seq, 1)
        })
        .await?;
        // A peer without it may only be behind; a message deleted for
        // real goes when this replica applies the delete.
        let Some(m) = theirs.into_iter().find(|m| m.seq == seq) else {
            continue;
        };
        if sm.repair_message(&m)? {
            repaired += 1;
        } else {
            tracing::info!(
                group,
                seq,
                "corrupt message removed or replaced while its repair was fetched; repair dropped"
            );
        }
    }
    Ok((next, repaired))
}

async fn ask_peers<T, F>(peers: &[NodeId], mut ask: F) -> io::Result<T>
where
    F: FnMut(NodeId) -> futures::future::BoxFuture<'static, io::Result<T>>,
{
    let mut last_err = io::Error::other("no peer to catch up from");
    for p in peers {
        match ask(*p).await {
            Ok(v) => return Ok(v),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// Removes subject-index entries that point outside `[first, last]`.
fn drop_stale_subjects(
    group: GroupId,
    engine: &dyn Engine,
    first: u64,
    last: u64,
) -> io::Result<()> {
    let mut batch = WriteBatch::new();
    delete_subject_entries(engine, group, &mut batch, |seq| seq < first || seq > last)?;
    engine.write(batch)
}

/// Adds to `batch` the deletion of every subject-index entry of `group`
/// whose sequence `doomed` picks (a full scan of the group's index).
fn delete_subject_entries(
    engine: &dyn Engine,
    group: GroupId,
    batch: &mut WriteBatch,
    doomed: impl Fn(u64) -> bool,
) -> io::Result<()> {
    let bounds = keys::group_bounds(group);
    let index = engine.scan(
        Cf::SubjectIndex,
        &bounds.0,
        &bounds.1,
        Dir::Forward,
        usize::MAX,
    )?;
    for (k, _) in index {
        if keys::subject_seq(&k).is_some_and(&doomed) {
            batch.delete(Cf::SubjectIndex, k);
        }
    }
    Ok(())
}

pub fn read_message(
    engine: &dyn View,
    group: GroupId,
    seq: u64,
) -> io::Result<Option<StoredMessage>> {
    kv::get(engine, Cf::Messages, &keys::message(group, seq))
}

/// Stored messages with `from <= seq <= to`, ascending, at most `limit`.
pub fn read_messages(
    engine: &dyn View,
    group: GroupId,
    from: u64,
    to: u64,
    limit: usize,
) -> io::Result<Vec<StoredMessage>> {
    let bounds = keys::message_bounds(group, from, to.saturating_add(1));
    Ok(
        kv::scan(engine, Cf::Messages, &bounds, Dir::Forward, limit)?
            .into_iter()
            .map(|(_, m)| m)
            .collect(),
    )
}

/// Stored sequences with `from <= seq <= to`, ascending, at most `limit`.
pub fn read_seqs(
    engine: &dyn View,
    group: GroupId,
    from: u64,
    to: u64,
    limit: usize,
) -> io::Result<Vec<u64>> {
    let bounds = keys::message_bounds(group, from, to.saturating_add(1));
    Ok(engine
        .scan(Cf::Messages, &bounds.0, &bounds.1, Dir::Forward, limit)?
        .into_iter()
        .filter_map(|(k, _)| keys::message_seq(&k))
        .collect())
}

/// [`StreamReader`] over the store.
struct StoreReader<'a> {
    engine: &'a dyn Engine,
    id: u64,
}

fn corrupt(e: io::Error) -> ReadError {
    ReadError::Corrupt(e.to_string())
}

impl StreamReader for StoreReader<'_> {
    fn message(&self, seq: u64) -> Result<Option<StoredMessage>, ReadError> {
        read_message(self.engine, self.id, seq).map_err(corrupt)
    }

    fn next_seq(&self, from: u64) -> Result<Option<u64>, ReadError> {
        let bounds = keys::message_bounds(self.id, from, u64::MAX);
        let found = self
            .engine
            .scan(Cf::Messages, &bounds.0, &bounds.1, Dir::Forward, 1)
            .map_err(corrupt)?;
        Ok(found.first().and_then(|(k, _)| keys::message_seq(k)))
    }

    fn subject_seqs(&self, subj: &str, limit: usize) -> Result<Vec<u64>, ReadError> {
        let bounds = keys::subject_bounds(self.id, subj);
        let found = self
            .engine
            .scan(Cf::SubjectIndex, &bounds.0, &bounds.1, Dir::Forward, limit)
            .map_err(corrupt)?;
        Ok(found
            .iter()
            .filter_map(|(k, _)| keys::subject_seq(k))
            .collect())
    }

    fn last_seq_for_subject(&self, subj: &str) -> Result<Option<u64>, ReadError> {
        let bounds = keys::subject_bounds(self.id, subj);
        let found = self
            .engine
            .scan(Cf::SubjectIndex, &bounds.0, &bounds.1, Dir::Reverse, 1)
            .map_err(corrupt)?;
        Ok(found.first().and_then(|(k, _)| keys::subject_seq(k)))
    }

    fn subjects_matching(&self, filter: &str) -> Result<Vec<String>, ReadError> {
        distinct_subjects(self.engine, self.id, filter).map_err(corrupt)
    }
}

/// Distinct stored subjects matching `filter`, sorted: one seek per subject.
pub fn distinct_subjects(engine: &dyn Engine, id: u64, filter: &str) -> io::Result<Vec<String>> {
    let literal: Vec<&str> = filter
        .split('.')
        .take_while(|t| *t != "*" && *t != ">")
        .collect();
    let prefix = if literal.len() == filter.split('.').count() {
        filter.to_string()
    } else if literal.is_empty() {
        String::new()
    } else {
        format!("{}.", literal.join("."))
    };
    let (mut from, to) = keys::subject_prefix_bounds(id, &prefix);
    let mut out = Vec::new();
    loop {
        let found = engine.scan(Cf::SubjectIndex, &from, &to, Dir::Forward, 1)?;
        let Some((k, _)) = found.first() else { break };
        let Some((_, subj, _)) = keys::subject_parts(k) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed subject index key",
            ));
        };
        if subject::matches(filter, &subj) {
            out.push(subj.clone());
        }
        from = keys::subject_bounds(id, &subj).1;
    }
    Ok(out)
}

/// A consistent read-only view of a stream replica for the API and `/jsz`.
pub struct StreamView {
    pub id: u64,
    engine: Arc<dyn Engine>,
    pub config: StreamConfig,
    state: ApiStreamState,
}

impl StreamView {
    pub fn state(&self) -> &ApiStreamState {
        &self.state
    }

    pub fn message(&self, seq: u64) -> io::Result<Option<StoredMessage>> {
        read_message(self.engine.as_ref(), self.id, seq)
    }

    /// First stored message with seq >= `from` whose subject matches `filter`.
    pub fn next_matching(&self, from: u64, filter: &str) -> io::Result<Option<StoredMessage>> {
        let mut next = from.max(1);
        loop {
            let batch = read_messages(self.engine.as_ref(), self.id, next, u64::MAX - 1, 256)?;
            let Some(last) = batch.last().map(|m| m.seq) else {
                return Ok(None);
            };
            if let Some(m) = batch
                .into_iter()
                .find(|m| subject::matches(filter, &m.subject))
            {
                return Ok(Some(m));
            }
            next = last + 1;
        }
    }

    /// The last stored message whose subject matches `filter` (wildcards
    /// allowed: the highest sequence among the matching subjects).
    pub fn last_for_subject(&self, filter: &str) -> io::Result<Option<StoredMessage>> {
        let subjects = if subject::is_valid_subject(filter) {
            vec![filter.to_string()]
        } else {
            distinct_subjects(self.engine.as_ref(), self.id, filter)?
        };
        let mut best: Option<u64> = None;
        for s in subjects {
            let bounds = keys::subject_bounds(self.id, &s);
            let found =
                self.engine
                    .scan(Cf::SubjectIndex, &bounds.0, &bounds.1, Dir::Reverse, 1)?;
            if let Some(seq) = found.first().and_then(|(k, _)| keys::subject_seq(k)) {
                best = best.max(Some(seq));
            }
        }
        match best {
            Some(seq) => self.message(seq),
            None => Ok(None),
        }
    }

    /// Per-subject message counts for subjects matching `filter`.
    pub fn subject_counts(
        &self,
        filter: &str,
    ) -> io::Result<std::collections::BTreeMap<String, u64>> {
        let mut out = std::collections::BTreeMap::new();
        for s in distinct_subjects(self.engine.as_ref(), self.id, filter)? {
            let bounds = keys::subject_bounds(self.id, &s);
            let n = self
                .engine
                .scan(
                    Cf::SubjectIndex,
                    &bounds.0,
                    &bounds.1,
                    Dir::Forward,
                    usize::MAX,
                )?
                .len();
            out.insert(s, n as u64);
        }
        Ok(out)
    }

    /// Sequences between first and last that hold no message.
    pub fn deleted(&self) -> io::Result<Vec<u64>> {
        let (first, last) = (self.state.first_seq, self.state.last_seq);
        let mut out = Vec::new();
        let mut expect = first;
        let mut next = first;
        while next <= last && first > 0 {
            let seqs = read_seqs(self.engine.as_ref(), self.id, next, last, 4096)?;
            let Some(&end) = seqs.last() else { break };
            for s in seqs {
                out.extend(expect..s);
                expect = s + 1;
            }
            next = end + 1;
        }
        if first > 0 {
            out.extend(expect..=last);
        }
        Ok(out)
    }

    /// SHA-256 over every stored (seq, subject, headers, payload), in order.
    /// Equal digests mean equal replicas.
    pub fn digest(&self) -> io::Result<[u8; 32]> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut next = 1u64;
        loop {
            let batch = read_messages(self.engine.as_ref(), self.id, next, u64::MAX - 1, 1024)?;
            let Some(last) = batch.last().map(|m| m.seq) else {
                break;
            };
            for m in &batch {
                h.update(m.seq.to_be_bytes());
                for part in [
                    m.subject.as_bytes(),
                    m.headers.as_deref().unwrap_or_default(),
                    &m.payload,
                ] {
                    h.update((part.len() as u64).to_be_bytes());
                    h.update(part);
                }
            }
            next = last + 1;
        }
        Ok(h.finalize().into())
    }
}
