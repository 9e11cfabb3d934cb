//! Several commands in one Raft entry apply exactly as if each had its own
//! entry at the same time: same replies, same store, same summary.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{Harness, header_block};
use jetraft_stream::{StreamCommand, StreamReply};
use jetraft_types::api::PurgeRequest;

const CONFIG: &str = r#"{"name":"B","subjects":["b.>"],"max_msgs_per_subject":3,
    "max_msgs":20,"allow_rollup_hdrs":true}"#;

/// A mix that makes later commands depend on earlier ones: dedup ids
/// repeated inside a batch, expected-last-sequence chains, per-subject and
/// stream limits trimming messages added in the same batch, rollups,
/// deletes and purges of messages the batch itself stored.
fn commands() -> Vec<StreamCommand> {
    let mut cmds = Vec::new();
    for i in 0..120u64 {
        let subject = format!("b.{}", i % 5);
        let mut headers = vec![("Nats-Msg-Id".to_string(), format!("id{}", i % 17))];
        if i % 11 == 0 {
            headers.push(("Nats-Expected-Last-Sequence".into(), format!("{}", i / 2)));
        }
        if i % 13 == 0 {
            headers.push(("Nats-Expected-Last-Subject-Sequence".into(), "0".into()));
        }
        if i % 29 == 0 {
            headers.push(("Nats-Rollup".into(), "sub".into()));
        }
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        cmds.push(StreamCommand::Publish {
            subject,
            headers: Some(header_block(&pairs)),
            payload: Bytes::from(format!("payload {i}")),
        });
        if i % 19 == 7 {
            cmds.push(StreamCommand::DeleteMsg {
                seq: i / 2,
                no_erase: false,
            });
        }
        if i % 37 == 36 {
            let req: PurgeRequest = serde_json::from_str(r#"{"filter":"b.2","keep":1}"#).unwrap();
            cmds.push(StreamCommand::Purge(req));
        }
    }
    cmds
}

fn one_by_one(cmds: &[StreamCommand]) -> (Harness, Vec<StreamReply>) {
    let mut h = Harness::new(CONFIG);
    let replies = cmds.iter().map(|c| h.apply(c.clone())).collect();
    (h, replies)
}

fn in_batches(cmds: &[StreamCommand], size: usize) -> (Harness, Vec<StreamReply>) {
    let mut h = Harness::new(CONFIG);
    let mut replies = Vec::new();
    for chunk in cmds.chunks(size) {
        let applied = h.m.apply_batch(chunk, h.now, &h.store).unwrap();
        assert_eq!(applied.replies.len(), chunk.len());
        h.store.apply_ops(&applied.ops);
        replies.extend(applied.replies);
    }
    (h, replies)
}

#[test]
fn a_batch_applies_like_its_commands_one_by_one() {
    let cmds = commands();
    let (single, expected) = one_by_one(&cmds);
    // The mix must exercise refusals, duplicates and trimming, or the
    // comparison below proves little.
    let errors = expected
        .iter()
        .filter(|r| matches!(r, StreamReply::Error(_)))
        .count();
    let dups = expected
        .iter()
        .filter(|r| matches!(r, StreamReply::PubAck(a) if a.duplicate))
        .count();
    assert!(errors > 0 && dups > 0, "errors {errors}, duplicates {dups}");
    for size in [2, 3, 7, 64, cmds.len()] {
        let (batched, replies) = in_batches(&cmds, size);
        assert_eq!(replies, expected, "batch size {size}");
        assert_eq!(batched.m.summary(), single.m.summary(), "batch size {size}");
        assert_eq!(batched.store.messages, single.store.messages);
        assert_eq!(batched.store.by_subject, single.store.by_subject);
        assert_eq!(batched.store.dedup, single.store.dedup);
        batched.check_invariants();
    }
}
