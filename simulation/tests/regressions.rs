//! Seeds that caught engine bugs, pinned, each named for what broke. They
//! must pass (all faults on, default options).
#![allow(clippy::unwrap_used)]

mod common;

use common::{run_seed, violations};

fn passes(seed: u64) {
    passes_with(seed, &[]);
}

fn passes_with(seed: u64, flags: &[&str]) {
    let r = run_seed(seed, flags);
    let v = violations(&r);
    assert!(v.is_empty(), "seed {seed} {flags:?}: {v:?}");
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

/// A replica stopped applying with a message record that failed its
/// checksum (`bit-flip`) never repaired, while the workload deleted and
/// purged around it; the others went on without it. Seen before an apply
/// that meets a corrupt record repaired it from a voter first (or copies a
/// voter's replica when none still has it) and before leader restore was
/// turned off; the scenario itself is pinned in `raft/tests/scrub.rs`
/// (`removing_a_corrupt_record_repairs_it_first_…`), as this seed's
/// schedule has changed since.
#[test]
fn t_a_replica_stopped_on_a_corrupt_record_it_could_not_remove() {
    passes(32);
}

/// A stream rescaled to R2 lost its quorum (both voters crashed at once),
/// and the operator's `STREAM.UPDATE` back to R3 first asked the stream's
/// leader for its info, which now needs a confirmed leader (decision 33):
/// the update that would give the group its third replica waited for the
/// quorum it lacked, and the replicas never converged. The update asks any
/// replica for a leader hint instead.
#[test]
fn t_a_rescale_back_to_r3_waited_for_the_quorum_it_restores() {
    passes(23);
}

/// A replica the catalog dropped (a rescale to R2) asked its peers whether
/// the group had released it; one of them had just lost its disk
/// (`wipe-disk`) and, knowing no membership yet, answered with an empty
/// one, which read as "released". The replica deleted its copy while it
/// was one of the two voters that still held the stream, and the group
/// never had a quorum again. A node that never learned a membership
/// releases nobody now (`Members::released`).
#[test]
fn t_a_wiped_peer_released_a_replica_the_group_still_needed() {
    passes(31);
}

/// A shrink to R2 kept a replica that had just crashed (the leader still
/// counted it) and entered joint consensus, which needs a majority of the
/// new voters; the replica came back with a wiped disk and could never
/// be counted, so the group stayed stuck. A shrink now keeps the voters
/// the leader heard from last, and the voter change waits until every
/// new voter is live (`Group::not_live`); the scenario is pinned in
/// `server/tests/replicas.rs` (`a_shrink_while_a_replica_is_down_…`).
#[test]
fn t_a_shrink_waited_in_joint_consensus_for_a_wiped_replica() {
    passes(91);
}

/// A node put back from a backup (`restore-backup`) held a membership from
/// when the stream had other replicas; a replica the catalog had just
/// dropped asked it whether the group had released it, read "yes" in that
/// old membership, and deleted one of the two copies the group still
/// had. A peer's view releases a node now only if it is newer than the
/// node's own, and a node that does not count answers with none.
#[test]
fn t_a_restored_peer_released_a_replica_with_its_old_membership() {
    passes_with(
        49,
        &[
            "--faults",
            "restore-backup,crash,partition,leader-kill,rescale",
        ],
    );
}
