//! The scrubber never brings a removed message back: a record that fails
//! its checksum is repaired from a peer's copy only if, when the copy
//! arrives, the message is still live here. Each case corrupts a record,
//! starts a scrub whose peer answer is held back, applies a command that
//! removes the message meanwhile (a delete, a purge, a rollup, the
//! per-subject limit), and then lets the answer through: the message must
//! stay removed, and the replica must equal one that never saw the
//! corruption.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::BoxFuture;
use jetraft_raft::commit::{Committer, SyncMode};
use jetraft_raft::sm::stream::{read_messages, scrub};
use jetraft_raft::sm::{Catchup, Frozen, GroupSm, Source};
use jetraft_raft::types::{Entry, NodeId, Request, TypeConfig};
use jetraft_store::keys;
use jetraft_store::mem::MemEngine;
use jetraft_store::{Cf, Engine, View};
use jetraft_stream::StreamCommand;
use jetraft_types::StoredMessage;
use jetraft_types::api::PurgeRequest;
use jetraft_types::config::StreamConfig;
use openraft::EntryPayload;
use openraft::storage::RaftStateMachine;
use tokio::sync::{Notify, oneshot};

const GROUP: u64 = 9;
/// The sequence whose record rots.
const ROTTEN: u64 = 3;

/// The peer's live store, with every answer held until `release`.
struct HeldPeer {
    engine: MemEngine,
    /// Told when the scrubber asked.
    asked: Mutex<Option<oneshot::Sender<()>>>,
    release: Arc<Notify>,
}

impl Catchup for HeldPeer {
    fn begin(&self, _: NodeId, _: u64) -> BoxFuture<'static, io::Result<Frozen>> {
        Box::pin(async { Err(io::Error::other("the scrubber does not freeze")) })
    }

    fn fetch(
        &self,
        at: Source,
        from: u64,
        to: u64,
        limit: usize,
    ) -> BoxFuture<'static, io::Result<Vec<StoredMessage>>> {
        // Read now (the peer has the message); the first answer (the
        // scrubber's) is held back, later ones come at once.
        let answer = read_messages(&self.engine, at.group, from, to, limit);
        let Some(tx) = self.asked.lock().unwrap().take() else {
            return Box::pin(async move { answer });
        };
        let _ = tx.send(());
        let release = self.release.clone();
        Box::pin(async move {
            release.notified().await;
            answer
        })
    }

    fn fetch_seqs(
        &self,
        _: Source,
        _: u64,
        _: u64,
        _: usize,
    ) -> BoxFuture<'static, io::Result<Vec<u64>>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn end(&self, _: Source) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

fn config() -> StreamConfig {
    StreamConfig {
        name: "R".into(),
        subjects: vec!["r.>".into()],
        max_msgs_per_subject: 4,
        allow_rollup_hdrs: true,
        ..Default::default()
    }
    .normalize()
    .unwrap()
}

fn publish(subject: &str, payload: &str) -> StreamCommand {
    StreamCommand::Publish {
        subject: subject.into(),
        headers: None,
        payload: Bytes::from(payload.to_string()),
    }
}

fn entry(index: u64, cmds: Vec<StreamCommand>) -> Entry {
    Entry {
        log_id: openraft::testing::log_id::<TypeConfig>(1, 1, index),
        payload: EntryPayload::Normal(Request::StreamBatch {
            cmds,
            now_ns: 1_000_000 * index as i64,
        }),
    }
}

async fn apply(sm: &mut GroupSm, e: Entry) {
    sm.apply(futures::stream::iter([Ok((e, None))]))
        .await
        .unwrap();
}

fn open(engine: &MemEngine, peer: Arc<HeldPeer>) -> GroupSm {
    let engine: Arc<dyn Engine> = Arc::new(engine.clone());
    let committer = Committer::start(engine.clone(), SyncMode::Always, false);
    GroupSm::open_stream(GROUP, config(), engine, committer, peer).unwrap()
}

/// This replica and a peer, both having applied the membership and the
/// first entry, with this replica's record of [`ROTTEN`] corrupt; the peer
/// answers through `held` (`asked` hears when the scrubber asks, and then
/// the answer waits for `held.release`).
struct Rotten {
    local_disk: MemEngine,
    held: Arc<HeldPeer>,
    local: GroupSm,
    peer: GroupSm,
}

async fn rotten(asked: Option<oneshot::Sender<()>>) -> Rotten {
    let local_disk = MemEngine::new();
    let peer_disk = MemEngine::new();
    let held = Arc::new(HeldPeer {
        engine: peer_disk.clone(),
        asked: Mutex::new(asked),
        release: Arc::new(Notify::new()),
    });
    let mut local = open(&local_disk, held.clone());
    let mut peer = open(&peer_disk, held.clone());
    for sm in [&mut local, &mut peer] {
        apply(sm, members()).await;
        apply(sm, first_entry()).await;
    }
    assert!(local_disk.corrupt(Cf::Messages, &keys::message(GROUP, ROTTEN), 77));
    Rotten {
        local_disk,
        held,
        local,
        peer,
    }
}

fn subject_indexed(engine: &MemEngine, subject: &str, seq: u64) -> bool {
    engine
        .get(Cf::SubjectIndex, &keys::subject(GROUP, subject, seq))
        .unwrap()
        .is_some()
}

/// Entry 1: the voters, nodes 1 (this replica) and 2 (the peer).
fn members() -> Entry {
    let voters: std::collections::BTreeSet<NodeId> = [1, 2].into();
    Entry {
        log_id: openraft::testing::log_id::<TypeConfig>(1, 1, 1),
        payload: EntryPayload::Membership(openraft::Membership::new_with_defaults(
            vec![voters],
            [],
        )),
    }
}

/// Entry 2, seq 1..=4: r.a, r.a, r.b (the one that rots), r.c.
fn first_entry() -> Entry {
    entry(
        2,
        vec![
            publish("r.a", "a1"),
            publish("r.a", "a2"),
            publish("r.b", "b1"),
            publish("r.c", "c1"),
        ],
    )
}

/// Runs one case: `removal` (entry 3) removes seq 3 while the scrubber
/// waits for the peer's copy of it.
async fn removed_while_repairing(removal: Vec<StreamCommand>) -> (Option<StoredMessage>, bool) {
    let (asked_tx, asked) = oneshot::channel();
    let Rotten {
        local_disk,
        held,
        local,
        mut peer,
    } = rotten(Some(asked_tx)).await;

    let mut applier = local.clone();
    let scrubbing = scrub(&local, 0, 1024, &[2], held.as_ref());
    let meanwhile = async {
        asked.await.unwrap();
        // The removal commits; the local replica applies it before the
        // peer's answer arrives (the peer applies it too, later).
        apply(&mut applier, entry(3, removal.clone())).await;
        held.release.notify_one();
    };
    let (scrubbed, ()) = futures::join!(scrubbing, meanwhile);
    let (_, repaired) = scrubbed.unwrap();
    assert_eq!(repaired, 0, "nothing to repair: the message is gone");
    apply(&mut peer, entry(3, removal)).await;

    let view = local.stream_view().unwrap();
    let after = view.message(ROTTEN).unwrap();
    let indexed = subject_indexed(&local_disk, "r.b", ROTTEN);
    assert_eq!(
        view.digest().unwrap(),
        peer.stream_view().unwrap().digest().unwrap(),
        "the scrubbed replica equals its peer"
    );
    assert_eq!(
        view.state().messages,
        peer.stream_view().unwrap().state().messages
    );
    (after, indexed)
}

fn rollup(subject: &str) -> StreamCommand {
    StreamCommand::Publish {
        subject: subject.into(),
        headers: Some(Bytes::from_static(b"NATS/1.0\r\nNats-Rollup: sub\r\n\r\n")),
        payload: Bytes::from_static(b"rolled"),
    }
}

#[tokio::test]
async fn a_delete_applied_during_a_repair_stays_deleted() {
    let removal = vec![StreamCommand::DeleteMsg {
        seq: ROTTEN,
        no_erase: true,
    }];
    assert_eq!(removed_while_repairing(removal).await, (None, false));
}

#[tokio::test]
async fn a_purge_applied_during_a_repair_stays_purged() {
    let removal = vec![StreamCommand::Purge(PurgeRequest {
        filter: Some("r.b".into()),
        seq: None,
        keep: None,
    })];
    assert_eq!(removed_while_repairing(removal).await, (None, false));
}

#[tokio::test]
async fn a_purge_of_everything_during_a_repair_stays_purged() {
    let removal = vec![StreamCommand::Purge(PurgeRequest::default())];
    assert_eq!(removed_while_repairing(removal).await, (None, false));
}

#[tokio::test]
async fn a_rollup_applied_during_a_repair_stays_rolled_up() {
    assert_eq!(
        removed_while_repairing(vec![rollup("r.b")]).await,
        (None, false)
    );
}

#[tokio::test]
async fn a_limit_trim_applied_during_a_repair_stays_trimmed() {
    // Four more r.b: the per-subject limit (4) drops the oldest, seq 3.
    let removal = (0..4)
        .map(|i| publish("r.b", &format!("b{}", i + 2)))
        .collect();
    assert_eq!(removed_while_repairing(removal).await, (None, false));
}

#[tokio::test]
async fn a_corrupt_record_still_live_is_repaired() {
    let Rotten {
        held, local, peer, ..
    } = rotten(None).await;
    assert!(local.stream_view().unwrap().message(ROTTEN).is_err());
    held.release.notify_one();
    let (_, repaired) = scrub(&local, 0, 1024, &[2], held.as_ref()).await.unwrap();
    assert_eq!(repaired, 1);
    let m = local
        .stream_view()
        .unwrap()
        .message(ROTTEN)
        .unwrap()
        .unwrap();
    assert_eq!(m.payload.as_ref(), b"b1");
    assert_eq!(
        local.stream_view().unwrap().digest().unwrap(),
        peer.stream_view().unwrap().digest().unwrap()
    );
}

/// Found by the first version of these tests: a delete (or purge, or
/// limit) of a message whose record had rotted failed its apply (it must
/// read the message to remove it), which stopped the group on that
/// replica. Now the apply repairs the record from a voter first.
#[tokio::test]
async fn removing_a_corrupt_record_repairs_it_first_instead_of_stopping_the_group() {
    let Rotten {
        mut local,
        mut peer,
        ..
    } = rotten(None).await;
    let delete = vec![StreamCommand::DeleteMsg {
        seq: ROTTEN,
        no_erase: true,
    }];
    apply(&mut local, entry(3, delete.clone())).await;
    apply(&mut peer, entry(3, delete)).await;
    let (mine, theirs) = (local.stream_view().unwrap(), peer.stream_view().unwrap());
    assert_eq!(mine.message(ROTTEN).unwrap(), None);
    assert_eq!(mine.state().messages, 3);
    assert_eq!(
        mine.state().bytes,
        theirs.state().bytes,
        "the same accounting"
    );
    assert_eq!(mine.digest().unwrap(), theirs.digest().unwrap());
    assert_eq!(local.applied().unwrap().index, 3);
}
