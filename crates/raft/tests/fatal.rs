//! A failed fsync stops the node: after it, no append is acknowledged and
//! no vote granted, and the node's fatal latch says which sync failed.
//!
//! One node of a two-member stream group, its peer unreachable (so it
//! never leads and only answers what the test sends it, as a follower
//! answers a candidate and a leader). Its store is a `FaultyEngine` over
//! the in-memory engine, wrapped in `FailStop` and synced by a committer
//! with the latch, exactly as `node::assemble` wires them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jetraft_raft::commit::{Committer, SyncMode};
use jetraft_raft::types::{Entry, LogId, Request, TypeConfig, Vote};
use jetraft_raft::{Connector, Group, Host, Peers, RaftTiming};
use jetraft_store::Engine;
use jetraft_store::failstop::{FailStop, Fatal};
use jetraft_store::faulty::FaultyEngine;
use jetraft_store::mem::MemEngine;
use jetraft_stream::StreamCommand;
use jetraft_types::config::StreamConfig;
use openraft::EntryPayload;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use tonic::transport::Channel;

/// Every peer is unreachable.
struct Nowhere;

impl Connector for Nowhere {
    fn connect(&self, _: &str) -> Channel {
        Channel::from_static("http://127.0.0.1:9").connect_lazy()
    }
}

struct Node {
    host: Host,
    group: Group,
    faulty: FaultyEngine,
    fatal: Fatal,
}

async fn node(mode: SyncMode) -> Node {
    let faulty = FaultyEngine::new(Arc::new(MemEngine::new()));
    let fatal = Fatal::new();
    let committer = Committer::start_with(Arc::new(faulty.clone()), mode, false, fatal.clone());
    let engine: Arc<dyn Engine> = Arc::new(FailStop::new(Arc::new(faulty.clone()), fatal.clone()));
    let addrs = BTreeMap::from([(1, "n1:1".to_string()), (2, "n2:1".to_string())]);
    let peers = Arc::new(Peers::new(1, addrs, Arc::new(Nowhere)));
    let host = Host::new(peers, engine, committer, RaftTiming::default(), 7, 7).unwrap();
    let config = StreamConfig {
        name: "F".into(),
        subjects: vec!["f.>".into()],
        ..Default::default()
    }
    .normalize()
    .unwrap();
    // Node 2 never answers; its incarnation is unknown (0).
    let roster = BTreeMap::from([(1, host.incarnation()), (2, 0)]);
    let group = host.start_stream(5, config, Some(roster)).await.unwrap();
    // Node 1 is the lowest member: it initializes the group at once.
    for _ in 0..200 {
        if group.metrics().last_log_index.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(group.metrics().last_log_index, Some(0), "initialized");
    Node {
        host,
        group,
        faulty,
        fatal,
    }
}

fn log_id(term: u64, index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(term, 2, index)
}

/// A candidate (node 2) in `term` whose log is far ahead.
fn vote_request(term: u64) -> VoteRequest<TypeConfig> {
    VoteRequest::new(Vote::new(term, 2), Some(log_id(term - 1, 100)))
}

fn publish(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::Stream {
            cmd: StreamCommand::Publish {
                subject: "f.x".into(),
                headers: None,
                payload: bytes::Bytes::from_static(b"m"),
            },
            now_ns: 1,
        }),
    }
}

/// Leader 2 of `term` sends entries `from..=to` after `prev`.
fn append(term: u64, prev: Option<LogId>, from: u64, to: u64) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(term, 2),
        prev_log_id: prev,
        entries: (from..=to).map(|i| publish(term, i)).collect(),
        leader_commit: None,
    }
}

/// Whether node 1 granted node 2's vote in `term`.
async fn grants(n: &Node, term: u64) -> bool {
    match n.group.raft.vote(vote_request(term)).await {
        Ok(resp) => resp.vote_granted,
        Err(_) => false,
    }
}

/// Whether node 1 acknowledged leader 2's append (`Success`).
async fn acks(n: &Node, req: AppendEntriesRequest<TypeConfig>) -> bool {
    matches!(
        n.group.raft.append_entries(req).await,
        Ok(openraft::raft::AppendEntriesResponse::Success)
    )
}

/// After the latch is up: nothing is granted or acknowledged again, even
/// though the disk would now take writes (the fault fired once).
async fn stays_stopped(n: &Node, term: u64) {
    assert!(n.fatal.is_raised());
    assert!(
        !n.faulty.armed(),
        "the fault fired once; later syncs would pass"
    );
    let syncs = n.faulty.syncs();
    assert!(!grants(n, term + 1).await, "no vote after the failed fsync");
    assert!(
        !acks(n, append(term + 1, None, 0, 3)).await,
        "no append acknowledged after the failed fsync"
    );
    assert_eq!(n.faulty.syncs(), syncs, "no fsync after the failed one");
    n.host.shutdown().await;
}

#[tokio::test]
async fn a_failed_vote_fsync_stops_voting_and_acking() {
    let n = node(SyncMode::Always).await;
    assert!(grants(&n, 2).await, "a healthy node grants the vote");
    n.faulty.fail_sync_after(0);
    assert!(
        !grants(&n, 3).await,
        "the vote whose fsync failed is not granted"
    );
    let why = n.fatal.reason().unwrap().to_string();
    assert!(
        why.contains("WAL fsync failed") && why.contains("a vote"),
        "{why}"
    );
    assert!(why.contains("injected fsync failure"), "{why}");
    stays_stopped(&n, 3).await;
}

#[tokio::test]
async fn a_failed_append_fsync_stops_acking_and_voting() {
    let n = node(SyncMode::Always).await;
    assert!(acks(&n, append(2, None, 0, 2)).await, "a healthy node acks");
    n.faulty.fail_sync_after(0);
    assert!(
        !acks(&n, append(2, Some(log_id(2, 2)), 3, 5)).await,
        "the append whose fsync failed is not acknowledged"
    );
    let why = n.fatal.reason().unwrap().to_string();
    assert!(
        why.contains("WAL fsync failed") && why.contains("Raft append"),
        "{why}"
    );
    stays_stopped(&n, 2).await;
}

#[tokio::test]
async fn a_failed_periodic_fsync_in_interval_mode_stops_the_node() {
    let n = node(SyncMode::Interval(Duration::from_millis(50))).await;
    // Interval mode acks appends before their fsync...
    assert!(acks(&n, append(2, None, 0, 2)).await);
    n.faulty.fail_sync_after(0);
    for _ in 0..100 {
        if n.fatal.is_raised() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...so the failed periodic fsync must stop every later ack.
    let why = n.fatal.reason().unwrap().to_string();
    assert!(why.contains("periodic WAL fsync failed"), "{why}");
    stays_stopped(&n, 2).await;
}

#[tokio::test]
async fn a_failed_fsync_before_a_snapshot_is_built_stops_the_node() {
    use openraft::RaftSnapshotBuilder;
    use openraft::storage::RaftStateMachine;
    let n = node(SyncMode::Always).await;
    assert!(acks(&n, append(2, None, 0, 2)).await);
    n.faulty.fail_sync_after(0);
    let mut sm = n.group.sm.clone();
    let built = sm.get_snapshot_builder().await.build_snapshot().await;
    assert!(built.is_err(), "no snapshot over state that is not durable");
    let why = n.fatal.reason().unwrap().to_string();
    assert!(why.contains("a snapshot build"), "{why}");
    stays_stopped(&n, 2).await;
}

#[tokio::test]
async fn a_failed_store_write_stops_the_node() {
    // RocksDB fails every write once a background flush or compaction
    // (and its fsync) failed: that is fatal too.
    let n = node(SyncMode::Always).await;
    n.faulty.fail_write_after(0);
    assert!(!acks(&n, append(2, None, 0, 2)).await);
    let why = n.fatal.reason().unwrap().to_string();
    assert!(why.contains("store write failed"), "{why}");
    assert!(!grants(&n, 3).await);
    n.host.shutdown().await;
}
