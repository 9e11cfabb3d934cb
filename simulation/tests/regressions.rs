//! Seeds that caught engine bugs, pinned, each named for what broke. They
//! must pass (all faults on, default options).
#![allow(clippy::unwrap_used)]

mod common;

use common::{run_seed, violations};

fn passes(seed: u64) {
    let r = run_seed(seed, &[]);
    let v = violations(&r);
    assert!(v.is_empty(), "seed {seed}: {v:?}");
}

/// The stream leader's fsync failed (`sync-fail`) after it had sent its
/// last entry to the followers; it came back, resumed leadership in the
/// same term (openraft's `enable_leader_restore`) without that entry, and
/// appended a different one under the same log id: a follower kept the
/// old one and diverged. Leader restore is off now.
#[test]
fn t_restarted_leader_reused_a_log_id_after_a_failed_fsync() {
    passes(8);
}

/// A delete applied over a message record that had rotted (`bit-flip`)
/// failed the apply (it must read the message) and stopped the group on
/// that replica; the record stayed corrupt. The apply now repairs it from
/// a voter, or copies a voter's replica when none still has it.
#[test]
fn t_a_delete_of_a_corrupt_record_stopped_the_group() {
    passes(32);
}
