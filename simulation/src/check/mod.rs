//! The checker: one file per invariant, each reading the history the
//! clients recorded and the final state of every replica, and returning
//! the violations it found (empty: the invariant holds).

mod acked;
mod cas;
mod consumers;
mod core;
mod fatal;
mod live;
mod liveness;
mod memory;
mod progress;
mod reads;
mod replicas;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::history::History;

/// One replica of the stream after the final heal, read from its store.
#[derive(Debug, Clone, Default)]
pub struct Replica {
    pub first_seq: u64,
    pub last_seq: u64,
    pub messages: u64,
    /// The same digest `/jsz` shows.
    pub digest: String,
    /// seq → (subject, payload).
    pub stored: BTreeMap<u64, (String, String)>,
    /// seq → the time stamped into the message (Unix ns).
    pub times: BTreeMap<u64, i64>,
    /// Reads that failed (a checksum error must never be served).
    pub read_errors: Vec<String>,
}

/// One replica of the work queue's consumer after the final heal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerReplica {
    pub next_sseq: u64,
    pub delivered_cseq: u64,
    /// (consumer seq, stream seq).
    pub ack_floor: (u64, u64),
    /// Stream seq → (consumer seq of the first delivery, deliveries).
    pub pending: BTreeMap<u64, (u64, u64)>,
    pub num_pending: u64,
}

/// What the checker sees at the end of a run.
#[derive(Debug, Default)]
pub struct Final {
    /// Node name → its replica of the stream (None: the node has none).
    pub replicas: BTreeMap<String, Option<Replica>>,
    /// The same for the stream with limits.
    pub limits: BTreeMap<String, Option<Replica>>,
    /// The same for the stream kept in memory.
    pub memory: BTreeMap<String, Option<Replica>>,
    /// The same for the work queue.
    pub jobs: BTreeMap<String, Option<Replica>>,
    /// Node name → its replica of the work queue's consumer.
    pub consumers: BTreeMap<String, Option<ConsumerReplica>>,
    /// The nodes' wall clock (all reset) when the replicas were read.
    pub end_ns: i64,
    /// The nodes that must hold a replica.
    pub expected_replicas: usize,
    /// How long liveness may take after the final heal.
    pub liveness_bound: Duration,
    /// Set when the replicas never converged before the deadline.
    pub converged: bool,
    /// Fewer acknowledged workload publishes than this fail the seed.
    pub min_acked: u64,
}

/// Every invariant, in a fixed order.
pub fn check_all(history: &History, fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(replicas::check(history, fin));
    out.extend(live::check(history, fin));
    out.extend(acked::check(history, fin));
    out.extend(cas::check(history, fin));
    out.extend(memory::check(history, fin));
    out.extend(reads::check(history));
    out.extend(liveness::check(history, fin));
    out.extend(progress::check(history, fin));
    out.extend(fatal::check(history));
    out.extend(core::check(history, fin));
    out.extend(consumers::check(history, fin));
    out
}

/// The replicas of the stream that exist, in name order.
fn present(fin: &Final) -> impl Iterator<Item = (&String, &Replica)> {
    existing(&fin.replicas)
}

/// The replicas in `of` that exist, in name order.
fn existing(of: &BTreeMap<String, Option<Replica>>) -> impl Iterator<Item = (&String, &Replica)> {
    of.iter().filter_map(|(n, r)| r.as_ref().map(|r| (n, r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{CasOp, CasOutcome, PubOp, PubOutcome};

    fn replica(msgs: &[(u64, &str, &str)]) -> Replica {
        let stored: BTreeMap<u64, (String, String)> = msgs
            .iter()
            .map(|(s, subj, p)| (*s, (subj.to_string(), p.to_string())))
            .collect();
        Replica {
            first_seq: msgs.first().map_or(0, |m| m.0),
            last_seq: msgs.last().map_or(0, |m| m.0),
            messages: msgs.len() as u64,
            digest: format!("{stored:?}"),
            stored,
            ..Replica::default()
        }
    }

    fn fin(replicas: Vec<Replica>) -> Final {
        Final {
            expected_replicas: replicas.len(),
            replicas: replicas
                .into_iter()
                .enumerate()
                .map(|(i, r)| (format!("n{}", i + 1), Some(r)))
                .collect(),
            liveness_bound: Duration::from_secs(30),
            converged: true,
            ..Final::default()
        }
    }

    fn acked(id: &str, seq: u64) -> PubOp {
        PubOp {
            client: 0,
            id: id.into(),
            subject: "s.c0".into(),
            attempts: 1,
            outcome: PubOutcome::Acked {
                seq,
                duplicate: false,
            },
            rollup: false,
            sent_at: Duration::ZERO,
            done_at: Duration::ZERO,
        }
    }

    #[test]
    fn a_clean_history_passes() {
        let r = replica(&[
            (1, "s.c0", "a"),
            (2, "cas.k", "exp=0;id=x"),
            (3, "s.c0", "b"),
        ]);
        let h = History {
            pubs: vec![acked("a", 1), acked("b", 3)],
            cas: vec![CasOp {
                client: 0,
                id: "x".into(),
                expected: 0,
                read_sent_at: Duration::ZERO,
                outcome: CasOutcome::Acked { seq: 2 },
                done_at: Duration::ZERO,
            }],
            probes: vec![crate::history::Probe {
                node: "n1".into(),
                acked_after_heal: Some(Duration::from_secs(1)),
            }],
            core_final_pubs: vec![0, 1],
            core_msgs: core::tests::finals(2),
            ..History::default()
        };
        assert_eq!(
            check_all(&h, &fin(vec![r.clone(), r])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn lost_duplicated_and_divergent_writes_are_reported() {
        let good = replica(&[(1, "s.c0", "a"), (2, "s.c0", "b")]);
        let bad = replica(&[(1, "s.c0", "a"), (2, "s.c0", "a")]);
        let h = History {
            pubs: vec![acked("a", 1), acked("b", 2), acked("c", 3)],
            ..History::default()
        };
        let v = check_all(&h, &fin(vec![good, bad]));
        assert!(v.iter().any(|v| v.contains("replicas differ")), "{v:?}");
        assert!(
            v.iter().any(|v| v.contains("n2: publish a stored 2 times")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|v| v.contains("publish c acked at seq 3 is missing")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|v| v.contains("liveness: no probe ran")),
            "{v:?}"
        );
    }

    #[test]
    fn a_forked_cas_chain_and_a_stored_refusal_are_reported() {
        let r = replica(&[(1, "cas.k", "exp=0;id=x"), (2, "cas.k", "exp=0;id=y")]);
        let h = History {
            cas: vec![CasOp {
                client: 1,
                id: "y".into(),
                expected: 0,
                read_sent_at: Duration::ZERO,
                outcome: CasOutcome::Rejected,
                done_at: Duration::ZERO,
            }],
            ..History::default()
        };
        let v = check_all(&h, &fin(vec![r]));
        assert!(v.iter().any(|v| v.contains("not linearizable")), "{v:?}");
        assert!(
            v.iter()
                .any(|v| v.contains("was refused (10071) but is stored")),
            "{v:?}"
        );
    }

    #[test]
    fn holes_and_unreadable_records_are_reported() {
        let mut r = replica(&[(1, "s.c0", "a"), (3, "s.c0", "b")]);
        r.read_errors.push("seq 2: corrupt record".into());
        let v = check_all(&History::default(), &fin(vec![r]));
        assert!(v.iter().any(|v| v.contains("not gapless")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("read error seq 2")), "{v:?}");
    }
}
