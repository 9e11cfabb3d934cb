//! A follower that installs a stream snapshot copies a peer's replica
//! frozen at or after the snapshot, and ends up identical to the leader
//! even while the leader goes on deleting messages (limits, deletes) during
//! the copy, from a lagging store, an empty one, or a copy a crash cut off.
//!
//! Three state machines over in-memory engines; the catch-up "network" is
//! an in-process [`Catchup`] that freezes and reads the peers' replicas
//! exactly as the gRPC service does.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::BoxFuture;
use jetraft_raft::commit::{Committer, SyncMode};
use jetraft_raft::sm::stream::{read_messages, read_seqs};
use jetraft_raft::sm::{Catchup, Frozen, GroupSm, Sessions, Snapshot, Source};
use jetraft_raft::types::{Entry, NodeId, Request, SnapshotMeta, StoredMembership, TypeConfig};
use jetraft_store::mem::MemEngine;
use jetraft_store::{Engine, View};
use jetraft_stream::StreamCommand;
use jetraft_types::StoredMessage;
use jetraft_types::config::{Compression, StreamConfig};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, Membership, RaftSnapshotBuilder};

const GROUP: u64 = 42;

/// The peers' state machines, reachable by node id.
#[derive(Default)]
struct Local {
    sms: Mutex<BTreeMap<NodeId, GroupSm>>,
    sessions: Sessions,
    /// While set, every fetch fails once one page was served.
    cut: AtomicBool,
    pages: AtomicUsize,
}

impl Local {
    fn view(&self, at: Source) -> io::Result<Arc<dyn View>> {
        self.sessions
            .get(at.group, at.session)
            .ok_or_else(|| io::Error::other("session expired"))
    }

    fn page(&self) -> io::Result<()> {
        let served = self.pages.fetch_add(1, Ordering::SeqCst);
        if self.cut.load(Ordering::SeqCst) && served >= 1 {
            return Err(io::Error::other("connection cut"));
        }
        Ok(())
    }
}

impl Catchup for Local {
    fn begin(&self, peer: NodeId, group: u64) -> BoxFuture<'static, io::Result<Frozen>> {
        let sm = self.sms.lock().unwrap().get(&peer).cloned();
        let frozen = sm
            .ok_or_else(|| io::Error::other("no such peer"))
            .and_then(|sm| sm.freeze())
            .map(|(applied, state, view)| Frozen {
                at: Source {
                    peer,
                    group,
                    session: self.sessions.open(group, view),
                },
                applied,
                state,
            });
        Box::pin(async move { frozen })
    }

    fn fetch(
        &self,
        at: Source,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<StoredMessage>>> {
        let r = self
            .page()
            .and_then(|()| self.view(at))
            .and_then(|v| read_messages(v.as_ref(), at.group, from, to, limit));
        Box::pin(async move { r })
    }

    fn fetch_seqs(
        &self,
        at: Source,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<u64>>> {
        let r = self
            .page()
            .and_then(|()| self.view(at))
            .and_then(|v| read_seqs(v.as_ref(), at.group, from, to, limit));
        Box::pin(async move { r })
    }

    fn end(&self, at: Source) -> BoxFuture<'static, ()> {
        self.sessions.close(at.group, at.session);
        Box::pin(async {})
    }
}

fn config() -> StreamConfig {
    StreamConfig {
        name: "C".into(),
        subjects: vec!["c.>".into()],
        max_msgs_per_subject: 1_500,
        ..Default::default()
    }
    .normalize()
    .unwrap()
}

fn open(local: &Arc<Local>, node: NodeId, engine: &MemEngine) -> GroupSm {
    open_with(local, node, engine, config())
}

fn open_with(
    local: &Arc<Local>,
    node: NodeId,
    engine: &MemEngine,
    config: StreamConfig,
) -> GroupSm {
    let engine: Arc<dyn Engine> = Arc::new(engine.clone());
    let committer = Committer::start(engine.clone(), SyncMode::Always, false);
    let sm = GroupSm::open_stream(GROUP, config, engine, committer, local.clone()).unwrap();
    local.sms.lock().unwrap().insert(node, sm.clone());
    sm
}

/// Entry `index` of the workload: publishes to five subjects (the
/// per-subject limit keeps deleting the oldest), and every 7th entry
/// deletes a message somewhere behind.
fn entry(index: u64) -> Entry {
    let cmds = if index.is_multiple_of(7) {
        vec![StreamCommand::DeleteMsg {
            seq: index * 13,
            no_erase: true,
        }]
    } else {
        (0..40)
            .map(|i| StreamCommand::Publish {
                subject: format!("c.{}", (index + i) % 5),
                headers: None,
                payload: Bytes::from(format!("{index}/{i}")),
            })
            .collect()
    };
    Entry {
        log_id: openraft::testing::log_id::<TypeConfig>(1, 1, index),
        payload: EntryPayload::Normal(Request::StreamBatch {
            cmds,
            now_ns: 1_000_000 * index as i64,
        }),
    }
}

async fn apply(sm: &mut GroupSm, range: std::ops::RangeInclusive<u64>) {
    let entries = range.map(|i| Ok((entry(i), None)));
    sm.apply(futures::stream::iter(entries)).await.unwrap();
}

/// Entry `index` of a workload of compressible JSON-like readings.
fn reading(index: u64) -> Entry {
    let cmds = (0..20)
        .map(|i| StreamCommand::Publish {
            subject: format!("c.{}", i % 3),
            headers: None,
            payload: Bytes::from(
                format!("{{\"sensor\":\"kitchen\",\"unit\":\"C\",\"entry\":{index},\"i\":{i}}}")
                    .repeat(8),
            ),
        })
        .collect();
    Entry {
        log_id: openraft::testing::log_id::<TypeConfig>(1, 1, index),
        payload: EntryPayload::Normal(Request::StreamBatch {
            cmds,
            now_ns: 1_000_000 * index as i64,
        }),
    }
}

/// The raw message records a store holds: (records, of them compressed, bytes).
fn stored(engine: &MemEngine) -> (usize, usize, usize) {
    let (from, to) = jetraft_store::keys::group_bounds(GROUP);
    let raw = engine
        .scan(
            jetraft_store::Cf::Messages,
            &from,
            &to,
            jetraft_store::Dir::Forward,
            usize::MAX,
        )
        .unwrap();
    let compressed = raw
        .iter()
        .filter(|(_, v)| v[0] == jetraft_store::record::VERSION_2_COMPRESSED)
        .count();
    (
        raw.len(),
        compressed,
        raw.iter().map(|(_, v)| v.len()).sum(),
    )
}

/// What two replicas must agree on: the API state, the digest over every
/// stored message, and the deleted sequences.
fn fingerprint(sm: &GroupSm) -> (String, [u8; 32], Vec<u64>) {
    let view = sm.stream_view().expect("a readable stream replica");
    (
        serde_json::to_string(view.state()).unwrap(),
        view.digest().unwrap(),
        view.deleted().unwrap(),
    )
}

async fn snapshot(sm: &mut GroupSm) -> Snapshot {
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
}

fn with_voters(mut meta: SnapshotMeta) -> SnapshotMeta {
    let voters: BTreeSet<NodeId> = [1, 2, 3].into();
    meta.last_membership =
        StoredMembership::new(None, Membership::new_with_defaults(vec![voters], []));
    meta
}

/// Starts installing `meta` on `sm` (copying from node 1 first) with the
/// catch-up connection cut after one page, and kills the install once it
/// has tried a few: the copy is left half done, as a crash would leave it.
/// Leaves the connection cut.
async fn install_cut_off(local: &Arc<Local>, sm: &GroupSm, meta: &SnapshotMeta) {
    local.cut.store(true, Ordering::SeqCst);
    local.pages.store(0, Ordering::SeqCst);
    let install = {
        let mut sm = sm.clone();
        let meta = meta.clone();
        tokio::spawn(async move {
            sm.set_snapshot_source(1);
            sm.install_snapshot(&meta, Vec::new()).await
        })
    };
    while local.pages.load(Ordering::SeqCst) < 3 {
        if install.is_finished() {
            panic!("the cut copy finished: {:?}", install.await);
        }
        tokio::task::yield_now().await;
    }
    install.abort();
    let _ = install.await;
}

#[tokio::test]
async fn follower_copies_a_frozen_replica_while_the_leader_deletes() {
    let local = Arc::new(Local::default());
    let mut leader = open(&local, 1, &MemEngine::new());
    let mut lagging = open(&local, 2, &MemEngine::new());
    let empty_disk = MemEngine::new();
    let empty = open(&local, 3, &empty_disk);
    local.sms.lock().unwrap().remove(&3); // not a source while empty

    apply(&mut leader, 1..=200).await;
    apply(&mut lagging, 1..=60).await;
    let snap = snapshot(&mut leader).await;
    assert_eq!(snap.meta.last_log_id.unwrap().index, 200);
    // After the snapshot the leader deletes much of what it summarises.
    apply(&mut leader, 201..=320).await;
    let meta = with_voters(snap.meta.clone());
    // The copy must be exact, not trivially equal: the leader holds the
    // per-subject limit's worth, and deleted sequences the follower holds.
    let state = leader.stream_view().unwrap().state().clone();
    assert_eq!(state.messages, 5 * 1_500, "{state:?}");
    let stale = lagging.stream_view().unwrap().state().first_seq;
    assert!(
        stale < state.first_seq,
        "the follower holds messages since deleted"
    );

    lagging.set_snapshot_source(1);
    lagging
        .install_snapshot(&meta, snap.snapshot.clone())
        .await
        .unwrap();
    // Raft acknowledged index 200 and hands it 201.. again: entries up to
    // the copied index (320) are already in its state.
    assert_eq!(lagging.applied().unwrap().index, 200);
    assert_eq!(fingerprint(&lagging), fingerprint(&leader));
    apply(&mut lagging, 201..=400).await;
    apply(&mut leader, 321..=400).await;
    assert_eq!(fingerprint(&lagging), fingerprint(&leader));

    // An empty follower whose copy is cut halfway, and whose process then
    // dies: the restarted replica finishes the copy before applying.
    let meta = with_voters(snapshot(&mut leader).await.meta);
    install_cut_off(&local, &empty, &meta).await;
    assert!(
        empty.stream_view().is_none(),
        "a half-copied replica serves no reads"
    );
    assert!(empty.freeze().is_err(), "nor lets others copy it");
    drop(empty);
    local.cut.store(false, Ordering::SeqCst);
    apply(&mut leader, 401..=450).await;
    let mut restarted = open(&local, 3, &empty_disk);
    assert!(restarted.stream_view().is_none());
    apply(&mut restarted, 1..=450).await;
    assert_eq!(fingerprint(&restarted), fingerprint(&leader));
    assert!(local.sessions.is_empty(), "every frozen view was released");
}

#[tokio::test]
async fn an_s2_stream_stores_its_messages_compressed_and_a_copy_stays_compressed() {
    let local = Arc::new(Local::default());
    let s2 = StreamConfig {
        compression: Compression::S2,
        ..config()
    };
    let (s2_disk, plain_disk, copy_disk) = (MemEngine::new(), MemEngine::new(), MemEngine::new());
    let mut leader = open_with(&local, 1, &s2_disk, s2.clone());
    let mut plain = open_with(&local, 2, &plain_disk, config());
    local.sms.lock().unwrap().remove(&2); // not a source: another config
    for sm in [&mut leader, &mut plain] {
        let entries = (1..=50).map(|i| Ok((reading(i), None)));
        sm.apply(futures::stream::iter(entries)).await.unwrap();
    }
    // The same messages, read back as written.
    assert_eq!(fingerprint(&leader), fingerprint(&plain));
    let (count, compressed, s2_bytes) = stored(&s2_disk);
    let (plain_count, plain_compressed, plain_bytes) = stored(&plain_disk);
    assert_eq!((count, compressed), (1_000, 1_000));
    assert_eq!((plain_count, plain_compressed), (1_000, 0));
    assert!(
        s2_bytes * 3 < plain_bytes,
        "s2 stored {s2_bytes} bytes, uncompressed {plain_bytes}"
    );
    // A follower catching up from the compressed replica stores what it
    // copies compressed too.
    let mut follower = open_with(&local, 3, &copy_disk, s2);
    let meta = with_voters(snapshot(&mut leader).await.meta);
    follower.set_snapshot_source(1);
    follower.install_snapshot(&meta, Vec::new()).await.unwrap();
    assert_eq!(fingerprint(&follower), fingerprint(&leader));
    assert_eq!(stored(&copy_disk), (1_000, 1_000, s2_bytes));
}

/// A copy cut short from a source that was further on (the per-subject
/// limit had deleted more there, so its first sequence is higher), then
/// finished from one that was not: the messages below what the first copy
/// stored must be fetched too. They were not, once: the follower held every
/// message but those and reported a first sequence it did not store.
#[tokio::test]
async fn a_copy_finished_from_a_source_further_behind_fetches_what_lies_below() {
    let local = Arc::new(Local::default());
    let mut ahead = open(&local, 1, &MemEngine::new());
    let mut behind = open(&local, 2, &MemEngine::new());
    let disk = MemEngine::new();
    let follower = open(&local, 3, &disk);
    local.sms.lock().unwrap().remove(&3);
    apply(&mut ahead, 1..=260).await;
    apply(&mut behind, 1..=200).await;
    let (first_ahead, first_behind) = (
        ahead.stream_view().unwrap().state().first_seq,
        behind.stream_view().unwrap().state().first_seq,
    );
    assert!(first_behind < first_ahead, "{first_behind} {first_ahead}");
    let meta = with_voters(snapshot(&mut behind).await.meta);

    // The copy from `ahead` stores one page and is cut.
    install_cut_off(&local, &follower, &meta).await;
    drop(follower);
    let (records, _, _) = stored(&disk);
    assert!(records > 0, "the first page was stored");

    // `ahead` is gone; the restarted follower finishes from `behind`.
    local.sms.lock().unwrap().remove(&1);
    local.cut.store(false, Ordering::SeqCst);
    let mut restarted = open(&local, 3, &disk);
    apply(&mut restarted, 1..=200).await;
    assert_eq!(fingerprint(&restarted), fingerprint(&behind));
    assert_eq!(
        restarted.stream_view().unwrap().state().first_seq,
        first_behind
    );
    assert!(local.sessions.is_empty(), "every frozen view was released");
}
