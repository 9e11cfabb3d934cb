//! The work queue's consumer promises (decision 41), from the workers'
//! history and every replica's final state:
//! - a confirmed ack is never undone: the job is no longer pending on any
//!   replica, and gone from the stream (work-queue retention);
//! - nothing is skipped: every job the stream acked reached a worker, and
//!   after the final heal none is left in the stream;
//! - a job whose ack was confirmed is never delivered again: no delivery
//!   newer than the confirmed one ever arrives (only the ack of a job's
//!   latest delivery is confirmed, so none newer exists or will);
//! - every replica ends with the same consumer state, and its counts are
//!   exact for that replica's messages.

use std::collections::{BTreeMap, BTreeSet};

use super::{ConsumerReplica, Final, existing};
use crate::history::History;

pub fn check(h: &History, fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    let replicas: Vec<(&String, &ConsumerReplica)> = fin
        .consumers
        .iter()
        .filter_map(|(n, c)| c.as_ref().map(|c| (n, c)))
        .collect();
    if !h.job_pubs.is_empty() && fin.converged && replicas.len() != fin.expected_replicas {
        out.push(format!(
            "consumer: {} replicas of the work queue's consumer, expected {}",
            replicas.len(),
            fin.expected_replicas
        ));
    }
    if let Some((first, c0)) = replicas.first() {
        for (n, c) in &replicas[1..] {
            if c != c0 {
                out.push(format!(
                    "consumer: replica {n} differs from {first}: {c:?} vs {c0:?}"
                ));
            }
        }
    }
    let jobs: BTreeMap<&String, BTreeSet<u64>> = existing(&fin.jobs)
        .map(|(n, r)| (n, r.stored.keys().copied().collect()))
        .collect();
    for (n, c) in &replicas {
        if let Some(stored) = jobs.get(n) {
            out.extend(exact(n, c, stored));
        }
    }
    let mut confirmed: BTreeMap<u64, u64> = BTreeMap::new();
    for a in &h.job_acks {
        let c = confirmed.entry(a.seq).or_default();
        *c = (*c).max(a.delivered);
    }
    for &seq in confirmed.keys() {
        for (n, c) in &replicas {
            if c.pending.contains_key(&seq) {
                out.push(format!(
                    "consumer: job {seq}'s ack was confirmed, yet {n} still has it pending"
                ));
            }
        }
        for (n, stored) in &jobs {
            if stored.contains(&seq) {
                out.push(format!(
                    "consumer: job {seq}'s ack was confirmed, yet {n} still stores it"
                ));
            }
        }
    }
    for d in &h.job_deliveries {
        if let Some(c) = confirmed.get(&d.seq)
            && d.delivered > *c
        {
            out.push(format!(
                "consumer: job {} delivered again (delivery {}) at {:?}, after the ack of its \
                 delivery {c} was confirmed",
                d.seq, d.delivered, d.at
            ));
        }
    }
    if fin.converged {
        // Every job the stream acked reached a worker, and after the final
        // heal it is retired everywhere (its ack's answer may have been
        // lost: then it is not among the confirmed, and rightly never
        // delivered again).
        let delivered: BTreeSet<u64> = h.job_deliveries.iter().map(|d| d.seq).collect();
        let never: Vec<u64> = h
            .job_pubs
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| !delivered.contains(s))
            .collect();
        if !never.is_empty() {
            out.push(format!(
                "consumer: {} acked jobs never delivered: {:?}",
                never.len(),
                &never[..never.len().min(10)]
            ));
        }
        let left: BTreeSet<u64> = jobs.values().flatten().copied().collect();
        let unfinished: Vec<u64> = h
            .job_pubs
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| left.contains(s))
            .collect();
        if !unfinished.is_empty() {
            out.push(format!(
                "consumer: {} acked jobs never processed after the final heal: {:?}",
                unfinished.len(),
                &unfinished[..unfinished.len().min(10)]
            ));
        }
    }
    out
}

/// One replica's counts against its own messages.
fn exact(node: &str, c: &ConsumerReplica, stored: &BTreeSet<u64>) -> Vec<String> {
    let mut out = Vec::new();
    let ahead = stored.range(c.next_sseq..).count() as u64;
    if c.num_pending != ahead {
        out.push(format!(
            "consumer: {node} num_pending {} but {ahead} messages wait at or after {}",
            c.num_pending, c.next_sseq
        ));
    }
    for seq in c.pending.keys() {
        if !stored.contains(seq) {
            out.push(format!(
                "consumer: {node} has job {seq} pending but the stream no longer holds it"
            ));
        }
    }
    let floor = match c.pending.iter().next() {
        Some((s, (cseq, _))) => (cseq.saturating_sub(1), s.saturating_sub(1)),
        None => (c.delivered_cseq, c.next_sseq.saturating_sub(1)),
    };
    if c.ack_floor != floor {
        out.push(format!(
            "consumer: {node} ack floor {:?}, its pending says {floor:?}",
            c.ack_floor
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Replica;
    use crate::history::{JobAck, JobDelivery};
    use std::time::Duration;

    fn fin(pending: &[u64], stored: &[u64]) -> Final {
        let c = ConsumerReplica {
            next_sseq: 4,
            delivered_cseq: 3,
            ack_floor: match pending.first() {
                Some(s) => (0, s - 1),
                None => (3, 3),
            },
            pending: pending.iter().map(|s| (*s, (1, 1))).collect(),
            num_pending: 0,
        };
        let r = Replica {
            stored: stored
                .iter()
                .map(|s| (*s, (String::new(), String::new())))
                .collect(),
            ..Replica::default()
        };
        Final {
            consumers: [("n1".to_string(), Some(c))].into(),
            jobs: [("n1".to_string(), Some(r))].into(),
            expected_replicas: 1,
            converged: true,
            ..Final::default()
        }
    }

    #[test]
    fn a_confirmed_ack_that_is_undone_is_caught() {
        let mut h = History {
            job_pubs: vec![(1, Duration::ZERO)],
            job_acks: vec![JobAck {
                seq: 1,
                delivered: 1,
                at: Duration::from_secs(1),
            }],
            job_deliveries: vec![JobDelivery {
                worker: "w".into(),
                seq: 1,
                delivered: 1,
                at: Duration::from_millis(500),
            }],
            ..History::default()
        };
        assert!(check(&h, &fin(&[], &[])).is_empty());
        let v = check(&h, &fin(&[1], &[1]));
        assert!(
            v.iter().any(|v| v.contains("still has it pending")),
            "{v:?}"
        );
        assert!(v.iter().any(|v| v.contains("still stores it")), "{v:?}");
        h.job_deliveries.push(JobDelivery {
            worker: "w".into(),
            seq: 1,
            delivered: 2,
            at: Duration::from_secs(30),
        });
        assert!(
            check(&h, &fin(&[], &[]))
                .iter()
                .any(|v| v.contains("delivered again"))
        );
    }

    #[test]
    fn a_skipped_job_and_wrong_counts_are_caught() {
        let h = History {
            job_pubs: vec![(1, Duration::ZERO), (2, Duration::ZERO)],
            job_acks: vec![JobAck {
                seq: 1,
                delivered: 1,
                at: Duration::from_secs(1),
            }],
            ..History::default()
        };
        let v = check(&h, &fin(&[], &[2, 5]));
        assert!(v.iter().any(|v| v.contains("never delivered")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("never processed")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("num_pending")), "{v:?}");
    }
}
