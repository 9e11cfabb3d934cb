//! The openraft state machine of one group: the meta catalog or a stream.
//!
//! Both kinds persist their state in the node's engine in the same write
//! batch as the applied log id, so a restart resumes exactly where the
//! engine's durable prefix ends and replays only the Raft log after it.
//! Snapshots are state summaries, never messages: a follower that installs
//! a stream snapshot fetches the messages it lacks from its peers' stores
//! (see [`catchup`]).

pub mod catchup;
mod meta;
pub mod stream;

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, TryStreamExt};
use jetraft_meta::Catalog;
use jetraft_store::keys::{self, RaftMetaKind, StateKind};
use jetraft_store::{Cf, Engine, View, WriteBatch};
use jetraft_types::StoredMessage;
use jetraft_types::config::Compression;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use self::catchup::{Catchup, Frozen, Sessions, Source};
pub use self::stream::StreamView;
use crate::commit::{Committer, SyncFor};
use crate::kv;
use crate::standing::{Roster, roster_of};
use crate::types::{GroupId, LogId, NodeId, Response, SnapshotMeta, StoredMembership, TypeConfig};

pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, Vec<u8>>;

/// What a group's state machine holds.
pub enum Kind {
    Meta {
        catalog: Catalog,
        changes: watch::Sender<Arc<Catalog>>,
    },
    Stream(Box<stream::StreamState>),
}

struct Inner {
    applied: Option<LogId>,
    membership: StoredMembership,
    kind: Kind,
    /// A stream replica's catch-up state (see [`CatchupMark`]).
    catchup: CatchupMark,
}

/// Persisted beside a stream replica's state while and after it copies a
/// peer's frozen replica ([`catchup`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CatchupMark {
    /// A copy for a snapshot at this index is under way: the store may hold
    /// a half-copied mix, so the replica neither applies, serves reads nor
    /// lets others copy it until the copy completes.
    copying: Option<u64>,
    /// Whom to copy from, in order (an empty replica knows no members yet).
    sources: Vec<NodeId>,
    /// The log index the replica's state is at after a copy: Raft still
    /// hands it the entries up to here (it acknowledged only the snapshot's
    /// index), and they are already in the state.
    state_at: u64,
}

#[derive(Serialize, Deserialize)]
struct AppliedRecord {
    applied: Option<LogId>,
    membership: StoredMembership,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine handle openraft drives; clones share state so the
/// server can read it (catalog, stream state) while Raft applies.
#[derive(Clone)]
pub struct GroupSm {
    group: GroupId,
    engine: Arc<dyn Engine>,
    committer: Committer,
    catchup: Arc<dyn Catchup>,
    inner: Arc<Mutex<Inner>>,
    /// The node that sent the snapshot being installed (its leader): asked
    /// first for the messages the snapshot refers to.
    snapshot_source: Arc<Mutex<Option<NodeId>>>,
    /// The incarnations the applied membership records (what
    /// [`crate::standing::Standing::counts`] checks replies against).
    roster: Arc<watch::Sender<Arc<Roster>>>,
}

impl GroupSm {
    /// Opens the meta group's state machine; catalog changes are published
    /// on the returned receiver.
    pub fn open_meta(
        engine: Arc<dyn Engine>,
        committer: Committer,
        catchup: Arc<dyn Catchup>,
    ) -> io::Result<(Self, watch::Receiver<Arc<Catalog>>)> {
        let group = jetraft_meta::META_GROUP;
        let catalog = meta::load(engine.as_ref())?;
        let (changes, rx) = watch::channel(Arc::new(catalog.clone()));
        let sm = Self::open(
            group,
            engine,
            committer,
            catchup,
            Kind::Meta { catalog, changes },
        )?;
        Ok((sm, rx))
    }

    /// Opens a stream group's state machine (the stream id is its group id).
    pub fn open_stream(
        group: GroupId,
        config: jetraft_types::config::StreamConfig,
        engine: Arc<dyn Engine>,
        committer: Committer,
        catchup: Arc<dyn Catchup>,
    ) -> io::Result<Self> {
        let state = stream::StreamState::load(group, config, engine.as_ref())?;
        Self::open(
            group,
            engine,
            committer,
            catchup,
            Kind::Stream(Box::new(state)),
        )
    }

    fn open(
        group: GroupId,
        engine: Arc<dyn Engine>,
        committer: Committer,
        catchup: Arc<dyn Catchup>,
        kind: Kind,
    ) -> io::Result<Self> {
        let rec: Option<AppliedRecord> = kv::get(
            engine.as_ref(),
            Cf::State,
            &keys::state(group, StateKind::Applied),
        )?;
        let (applied, membership) = rec.map_or((None, StoredMembership::default()), |r| {
            (r.applied, r.membership)
        });
        let mark: Option<CatchupMark> = kv::get(
            engine.as_ref(),
            Cf::State,
            &keys::state(group, StateKind::Catchup),
        )?;
        let (roster, _) = watch::channel(Arc::new(roster_of(&membership)));
        let inner = Inner {
            applied,
            membership,
            kind,
            catchup: mark.unwrap_or_default(),
        };
        Ok(Self {
            group,
            engine,
            committer,
            catchup,
            inner: Arc::new(Mutex::new(inner)),
            snapshot_source: Arc::new(Mutex::new(None)),
            roster: Arc::new(roster),
        })
    }

    /// The incarnations the applied membership records, as it changes.
    pub fn roster(&self) -> watch::Receiver<Arc<Roster>> {
        self.roster.subscribe()
    }

    fn publish_roster(&self, membership: &StoredMembership) {
        let now = roster_of(membership);
        self.roster.send_if_modified(|r| {
            if **r == now {
                return false;
            }
            *r = Arc::new(now);
            true
        });
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records who sends the snapshot about to be installed.
    pub fn set_snapshot_source(&self, node: NodeId) {
        *self
            .snapshot_source
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(node);
    }

    pub fn group(&self) -> GroupId {
        self.group
    }

    /// A consistent read of a stream group's state (None for the meta
    /// group, and while the replica copies a peer's).
    pub fn stream_view(&self) -> Option<StreamView> {
        if self.committer.fatal().is_raised() {
            return None;
        }
        let inner = self.lock();
        match &inner.kind {
            Kind::Stream(s) if inner.catchup.copying.is_none() => Some(s.view(self.engine.clone())),
            _ => None,
        }
    }

    /// A consumer of this stream group, as applied here (None for the meta
    /// group, while copying, or when it does not exist).
    pub fn consumer(&self, name: &str) -> Option<jetraft_stream::consumer::Consumer> {
        let inner = self.lock();
        match &inner.kind {
            Kind::Stream(s) if inner.catchup.copying.is_none() => s.consumer(name),
            _ => None,
        }
    }

    /// `f` of a consumer of this stream group, as applied here, without
    /// copying its state.
    pub fn consumer_with<R>(
        &self,
        name: &str,
        f: impl FnOnce(&jetraft_stream::consumer::Consumer) -> R,
    ) -> Option<R> {
        let inner = self.lock();
        match &inner.kind {
            Kind::Stream(s) if inner.catchup.copying.is_none() => s.consumer_with(name, f),
            _ => None,
        }
    }

    /// One pending delivery of a consumer, as applied here.
    pub fn consumer_pending(
        &self,
        name: &str,
        sseq: u64,
    ) -> Option<jetraft_stream::consumer::PendingMsg> {
        let inner = self.lock();
        match &inner.kind {
            Kind::Stream(s) if inner.catchup.copying.is_none() => s.consumer_pending(name, sseq),
            _ => None,
        }
    }

    /// Each consumer's name, and whether it needs its leader's runtime
    /// without a request (push consumers deliver when messages come;
    /// consumers with an `inactive_threshold` go when unused).
    pub fn consumer_briefs(&self) -> Vec<(String, bool)> {
        let inner = self.lock();
        match &inner.kind {
            Kind::Stream(s) if inner.catchup.copying.is_none() => s.consumer_briefs(),
            _ => Vec::new(),
        }
    }

    /// Every consumer of this stream group, as applied here.
    pub fn consumers(&self) -> Vec<jetraft_stream::consumer::Consumer> {
        let inner = self.lock();
        match &inner.kind {
            Kind::Stream(s) if inner.catchup.copying.is_none() => s.consumers(),
            _ => Vec::new(),
        }
    }

    /// Puts `m`, a peer's copy of a message record that failed its
    /// checksum here, in place of the corrupt record, if the message is
    /// still live here. Checked under the state machine lock, which every
    /// apply and every catch-up switch holds while it writes, so nothing
    /// removes the message between the check and the write: the corrupt
    /// record is still stored (a delete, purge, rollup or limit applied
    /// since the scrubber read it removed it), still corrupt (a catch-up
    /// copy may have replaced it), within the stream's first..=last, the
    /// subject index still lists `m`'s subject at its sequence (the peer's
    /// copy is the same message), and no catch-up copy is under way. A
    /// message record never changes once written, so any peer's copy of a
    /// message live here is this message, however far the peer applied.
    /// Returns whether it wrote the repair.
    pub fn repair_message(&self, m: &StoredMessage) -> io::Result<bool> {
        let inner = self.lock();
        let Kind::Stream(s) = &inner.kind else {
            return Ok(false);
        };
        if inner.catchup.copying.is_some() {
            return Ok(false);
        }
        let key = keys::message(self.group, m.seq);
        let live = match self.engine.get(Cf::Messages, &key)? {
            None => false,
            Some(value) => {
                let (first, last) = s.live_range();
                jetraft_store::record::verify_for(&key, &value).is_err()
                    && (first..=last).contains(&m.seq)
                    && self
                        .engine
                        .get(
                            Cf::SubjectIndex,
                            &keys::subject(self.group, &m.subject, m.seq),
                        )?
                        .is_some()
            }
        };
        if !live {
            return Ok(false);
        }
        let compression = s.config().compression;
        let mut batch = WriteBatch::new();
        stream::put_message(self.group, m, compression, &mut batch)?;
        self.engine.write(batch)?;
        Ok(true)
    }

    /// Freezes this stream replica for a follower to copy: the applied
    /// index, the state there, and a view of the store at that very point
    /// (applies write under the same lock, so the three agree).
    pub fn freeze(&self) -> io::Result<(u64, Vec<u8>, Arc<dyn View>)> {
        // After a failed write or fsync the machine in memory may be ahead
        // of the store: never hand it out.
        self.committer.fatal().check()?;
        let inner = self.lock();
        let Kind::Stream(s) = &inner.kind else {
            return Err(io::Error::other("the meta group is not copied"));
        };
        if inner.catchup.copying.is_some() {
            return Err(io::Error::other("this replica is catching up itself"));
        }
        let at = inner
            .applied
            .map_or(0, |l| l.index)
            .max(inner.catchup.state_at);
        Ok((at, s.snapshot_data()?, self.engine.frozen()?))
    }

    fn put_catchup_mark(&self, mark: &CatchupMark, batch: &mut WriteBatch) -> io::Result<()> {
        kv::put(
            batch,
            Cf::State,
            keys::state(self.group, StateKind::Catchup),
            mark,
        )
    }

    /// Copies a peer's replica that has applied at least `min_index` into
    /// this one: marks the copy as under way (so a crash halfway is
    /// finished on restart), copies the messages, then switches the state
    /// in one batch with `extra` (what else the caller records with it).
    /// Returns nothing until a peer served the copy.
    async fn copy_stream(
        &self,
        min_index: u64,
        peers: &[NodeId],
        extra: impl FnOnce(&mut Inner, &mut WriteBatch) -> io::Result<()>,
    ) -> io::Result<()> {
        let (mark, compression) = {
            let mut inner = self.lock();
            let compression = match &inner.kind {
                Kind::Stream(s) => s.config().compression,
                _ => Compression::None,
            };
            inner.catchup.copying = Some(min_index);
            inner.catchup.sources = peers.to_vec();
            (inner.catchup.clone(), compression)
        };
        let mut batch = WriteBatch::new();
        self.put_catchup_mark(&mark, &mut batch)?;
        self.engine.write(batch)?;
        let (at, state) = stream::copy_replica(
            self.group,
            min_index,
            peers,
            self.engine.as_ref(),
            compression,
            self.catchup.as_ref(),
        )
        .await?;
        let mut batch = WriteBatch::new();
        let mut inner = self.lock();
        if let Kind::Stream(s) = &mut inner.kind {
            s.install(state, self.engine.as_ref(), &mut batch)?;
        }
        inner.catchup = CatchupMark {
            copying: None,
            sources: Vec::new(),
            state_at: at,
        };
        self.put_catchup_mark(&inner.catchup, &mut batch)?;
        extra(&mut inner, &mut batch)?;
        self.engine.write(batch)
    }

    /// The voters of the group, `first` (when given) ahead of the others.
    fn copy_sources(membership: &StoredMembership, first: Option<NodeId>) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = first.into_iter().collect();
        peers.extend(
            membership
                .membership()
                .voter_ids()
                .filter(|p| Some(*p) != first),
        );
        peers
    }

    pub fn applied(&self) -> Option<LogId> {
        self.lock().applied
    }

    fn applied_record(inner: &Inner, batch: &mut WriteBatch, group: GroupId) -> io::Result<()> {
        let rec = AppliedRecord {
            applied: inner.applied,
            membership: inner.membership.clone(),
        };
        kv::put(
            batch,
            Cf::State,
            keys::state(group, StateKind::Applied),
            &rec,
        )
    }

    fn snapshot_data(inner: &Inner) -> io::Result<Vec<u8>> {
        match &inner.kind {
            Kind::Meta { catalog, .. } => crate::codec::encode(catalog),
            Kind::Stream(s) => s.snapshot_data(),
        }
    }

    /// Records `meta` + `data` as this group's current snapshot.
    fn put_snapshot(
        &self,
        batch: &mut WriteBatch,
        meta: &SnapshotMeta,
        data: &[u8],
    ) -> io::Result<()> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.to_vec(),
        };
        kv::put(
            batch,
            Cf::RaftMeta,
            keys::raft_meta(self.group, RaftMetaKind::Snapshot),
            &stored,
        )
    }

    /// Deletes everything this group stored in the state, message and
    /// subject column families (the stream was deleted).
    pub fn destroy(&self, batch: &mut WriteBatch) {
        if let Kind::Stream(s) = &self.lock().kind {
            s.destroy(batch);
        }
        batch.delete(Cf::State, keys::state(self.group, StateKind::Applied));
    }
}

impl GroupSm {
    fn is_stream(&self) -> bool {
        matches!(self.lock().kind, Kind::Stream(_))
    }

    /// Applies one entry and writes its effects with the applied index. On
    /// an error nothing is written and the applied index stays where it
    /// was (the in-memory stream machine may be off: see
    /// [`GroupSm::repair_then_apply`]).
    fn apply_entry(&self, entry: &crate::types::Entry) -> io::Result<Response> {
        let mut batch = WriteBatch::new();
        let mut inner = self.lock();
        let before = inner.applied;
        inner.applied = Some(entry.log_id);
        let response = match &entry.payload {
            EntryPayload::Blank => Response::None,
            EntryPayload::Membership(m) => {
                inner.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                self.publish_roster(&inner.membership);
                Response::None
            }
            // Already in a state copied from a peer.
            EntryPayload::Normal(_)
                if matches!(inner.kind, Kind::Stream(_))
                    && entry.log_id.index <= inner.catchup.state_at =>
            {
                Response::None
            }
            EntryPayload::Normal(req) => {
                let applied = match &mut inner.kind {
                    Kind::Meta { catalog, changes } => {
                        meta::apply(catalog, changes, req, &mut batch)
                    }
                    Kind::Stream(s) => s.apply(req, self.engine.as_ref(), &mut batch),
                };
                match applied {
                    Ok(r) => r,
                    Err(e) => {
                        inner.applied = before;
                        return Err(e);
                    }
                }
            }
        };
        let written = Self::applied_record(&inner, &mut batch, self.group)
            .and_then(|()| self.engine.write(batch));
        if let Err(e) = written {
            // The store is fatal now (FailStop); what is in memory is ahead
            // of it and must not be shown to anyone (freeze, reads).
            inner.applied = before;
            return Err(e);
        }
        if let Kind::Meta { catalog, changes } = &inner.kind {
            changes.send_replace(Arc::new(catalog.clone()));
        }
        Ok(response)
    }

    /// An entry met a message record that fails its checksum (a delete,
    /// purge or limit must read the message it removes). The stream
    /// machine, which may have changed in memory before the read failed, is
    /// reloaded from the store (nothing of the entry was written), every
    /// corrupt record is repaired from a voter that still has it
    /// ([`stream::scrub`]: only while still live here), and the entry is
    /// applied again. If no voter has the message any more (all applied
    /// its removal already), it copies a
    /// voter's replica frozen at or after this entry, which has dropped
    /// the message, and applies the entry on top of the copy (or skips it
    /// if the copy already holds it).
    async fn repair_then_apply(
        &self,
        entry: &crate::types::Entry,
        first: io::Error,
    ) -> io::Result<Response> {
        tracing::warn!(
            group = self.group,
            index = entry.log_id.index,
            error = %first,
            "applying met a corrupt message record; repairing it from peers first"
        );
        let peers = {
            let mut inner = self.lock();
            if let Kind::Stream(s) = &mut inner.kind {
                let config = s.config().clone();
                **s = stream::StreamState::load(self.group, config, self.engine.as_ref())?;
            }
            Self::copy_sources(&inner.membership, None)
        };
        let mut from = 0;
        loop {
            let (next, repaired) =
                stream::scrub(self, from, 4096, &peers, self.catchup.as_ref()).await?;
            if repaired > 0 {
                tracing::warn!(
                    group = self.group,
                    repaired,
                    "repaired corrupt message records before applying"
                );
            }
            if next == 0 {
                break;
            }
            from = next;
        }
        match self.apply_entry(entry) {
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // No voter has the message any more: they applied its
                // removal already. Copy a voter's replica at or after this
                // entry instead (decision 6), which drops the record.
                tracing::warn!(
                    group = self.group,
                    error = %e,
                    "a corrupt record no voter still stores blocks the apply; copying a voter's replica"
                );
                let at = self.applied().map_or(0, |l| l.index);
                self.copy_stream(at, &peers, |_, _| Ok(())).await?;
                self.apply_entry(entry)
            }
            other => other,
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for GroupSm {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (meta, data) = {
            let inner = self.lock();
            let meta = SnapshotMeta {
                last_log_id: inner.applied,
                last_membership: inner.membership.clone(),
            };
            (meta, Self::snapshot_data(&inner)?)
        };
        // The log may be purged up to this snapshot only once the state it
        // summarises is durable.
        self.committer.sync_for(SyncFor::Snapshot).await?;
        let mut batch = WriteBatch::new();
        self.put_snapshot(&mut batch, &meta, &data)?;
        self.engine.write(batch)?;
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for GroupSm {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let inner = self.lock();
        Ok((inner.applied, inner.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            // A copy a crash interrupted is finished before anything else
            // applies to the half-copied store.
            let unfinished = {
                let inner = self.lock();
                inner
                    .catchup
                    .copying
                    .map(|min| (min, inner.catchup.sources.clone()))
            };
            if let Some((min_index, peers)) = unfinished {
                tracing::warn!(
                    group = self.group,
                    min_index,
                    "finishing an interrupted catch-up"
                );
                self.copy_stream(min_index, &peers, |_, _| Ok(())).await?;
            }
            let response = match self.apply_entry(&entry) {
                Err(e) if e.kind() == io::ErrorKind::InvalidData && self.is_stream() => {
                    self.repair_then_apply(&entry, e).await?
                }
                other => other?,
            };
            if let Some(r) = responder {
                r.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        data: Vec<u8>,
    ) -> Result<(), io::Error> {
        let is_stream = matches!(self.lock().kind, Kind::Stream(_));
        if is_stream {
            // A stream copies a peer's replica frozen at or after the
            // snapshot (the snapshot's own data is only a summary): the
            // sender (the leader, which built it) first, then the other
            // voters. Nothing changes locally until the copy is complete.
            let source = *self
                .snapshot_source
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let peers = Self::copy_sources(&meta.last_membership, source);
            let min_index = meta.last_log_id.map_or(0, |l| l.index);
            self.copy_stream(min_index, &peers, |inner, batch| {
                inner.applied = meta.last_log_id;
                inner.membership = meta.last_membership.clone();
                self.publish_roster(&inner.membership);
                Self::applied_record(inner, batch, self.group)?;
                self.put_snapshot(batch, meta, &data)
            })
            .await?;
        } else {
            let mut batch = WriteBatch::new();
            let mut inner = self.lock();
            if let Kind::Meta { catalog, changes } = &mut inner.kind {
                *catalog = crate::codec::decode(&data)?;
                meta::persist(catalog, &mut batch)?;
                changes.send_replace(Arc::new(catalog.clone()));
            }
            inner.applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            self.publish_roster(&inner.membership);
            Self::applied_record(&inner, &mut batch, self.group)?;
            self.put_snapshot(&mut batch, meta, &data)?;
            self.engine.write(batch)?;
        }
        self.committer.sync_for(SyncFor::Install).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let stored: Option<StoredSnapshot> = kv::get(
            self.engine.as_ref(),
            Cf::RaftMeta,
            &keys::raft_meta(self.group, RaftMetaKind::Snapshot),
        )?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: s.data,
        }))
    }
}
