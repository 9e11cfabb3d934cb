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
use jetraft_store::{Cf, Engine, WriteBatch};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use self::catchup::Catchup;
pub use self::stream::StreamView;
use crate::commit::Committer;
use crate::kv;
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
        let inner = Inner {
            applied,
            membership,
            kind,
        };
        Ok(Self {
            group,
            engine,
            committer,
            catchup,
            inner: Arc::new(Mutex::new(inner)),
            snapshot_source: Arc::new(Mutex::new(None)),
        })
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

    /// A consistent read of a stream group's state (None for the meta group).
    pub fn stream_view(&self) -> Option<StreamView> {
        match &self.lock().kind {
            Kind::Stream(s) => Some(s.view(self.engine.clone())),
            Kind::Meta { .. } => None,
        }
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

    fn snapshot_data(inner: &Inner, engine: &dyn Engine) -> io::Result<Vec<u8>> {
        match &inner.kind {
            Kind::Meta { catalog, .. } => crate::codec::encode(catalog),
            Kind::Stream(s) => s.snapshot_data(engine),
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

impl RaftSnapshotBuilder<TypeConfig> for GroupSm {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (meta, data) = {
            let inner = self.lock();
            let meta = SnapshotMeta {
                last_log_id: inner.applied,
                last_membership: inner.membership.clone(),
            };
            (meta, Self::snapshot_data(&inner, self.engine.as_ref())?)
        };
        // The log may be purged up to this snapshot only once the state it
        // summarises is durable.
        self.committer.sync().await?;
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
            let mut batch = WriteBatch::new();
            let response = {
                let mut inner = self.lock();
                inner.applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => Response::None,
                    EntryPayload::Membership(m) => {
                        inner.membership = StoredMembership::new(Some(entry.log_id), m);
                        Response::None
                    }
                    EntryPayload::Normal(req) => match &mut inner.kind {
                        Kind::Meta { catalog, changes } => {
                            meta::apply(catalog, changes, &req, &mut batch)?
                        }
                        Kind::Stream(s) => s.apply(&req, self.engine.as_ref(), &mut batch)?,
                    },
                };
                Self::applied_record(&inner, &mut batch, self.group)?;
                self.engine.write(batch)?;
                if let Kind::Meta { catalog, changes } = &inner.kind {
                    changes.send_replace(Arc::new(catalog.clone()));
                }
                response
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
        // Streams first fetch the messages the summary refers to; nothing
        // changes locally until they are stored.
        // The sender (the leader, which built the snapshot) first; then the
        // other voters. The catch-up source never answers for this node.
        let source = *self
            .snapshot_source
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut peers: Vec<u64> = source.into_iter().collect();
        peers.extend(
            meta.last_membership
                .membership()
                .voter_ids()
                .filter(|p| Some(*p) != source),
        );
        let prepared = match &self.lock().kind {
            Kind::Stream(s) => Some(s.prepare_install(&data)?),
            Kind::Meta { .. } => None,
        };
        if let Some(plan) = &prepared {
            stream::fetch_missing(
                self.group,
                plan,
                &peers,
                self.engine.as_ref(),
                self.catchup.as_ref(),
            )
            .await?;
        }
        let mut batch = WriteBatch::new();
        {
            let mut inner = self.lock();
            match &mut inner.kind {
                Kind::Meta { catalog, changes } => {
                    *catalog = crate::codec::decode(&data)?;
                    meta::persist(catalog, &mut batch)?;
                    changes.send_replace(Arc::new(catalog.clone()));
                }
                Kind::Stream(s) => {
                    if let Some(plan) = prepared {
                        s.install(plan, &mut batch)?;
                    }
                }
            }
            inner.applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            Self::applied_record(&inner, &mut batch, self.group)?;
            self.put_snapshot(&mut batch, meta, &data)?;
            self.engine.write(batch)?;
        }
        self.committer.sync().await
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
