//! The stream kept in memory (`storage: "memory"`, decision 35) keeps
//! what it acknowledged for as long as one replica that held it kept it:
//! an acknowledged publish to `m.*` is on every replica, once, at its
//! sequence, unless after it was sent a majority of the stream's replicas
//! (as many distinct nodes) lost their process. An ack means a quorum of
//! counting voters held the message, so only then can every holder have
//! forgotten it (and the stream have been founded again, empty). No
//! publish is stored twice either way.

use std::collections::{BTreeMap, BTreeSet};

use super::{Final, existing};
use crate::history::{History, PubOutcome};

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    for (node, r) in existing(&fin.memory) {
        let mut copies: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (seq, (_, payload)) in &r.stored {
            copies.entry(payload.as_str()).or_default().push(*seq);
        }
        for (id, seqs) in copies.iter().filter(|(_, s)| s.len() > 1) {
            out.push(format!(
                "M: {node}: publish {id} stored {} times, at {seqs:?}",
                seqs.len()
            ));
        }
    }
    for op in history.pubs.iter().filter(|p| p.subject.starts_with("m.")) {
        let PubOutcome::Acked { seq, .. } = op.outcome else {
            continue;
        };
        let forgotten_by: BTreeSet<&str> = history
            .crashes
            .iter()
            .filter(|(_, at)| *at >= op.sent_at)
            .map(|(n, _)| n.as_str())
            .collect();
        if forgotten_by.len() > fin.expected_replicas / 2 {
            continue;
        }
        for (node, r) in existing(&fin.memory) {
            match r.stored.get(&seq) {
                Some((_, payload)) if payload == &op.id => {}
                Some((subject, payload)) => out.push(format!(
                    "M: {node}: publish {} acked at seq {seq}, but seq {seq} holds {subject} \
                     {payload:?}; only {forgotten_by:?} restarted since",
                    op.id
                )),
                None => out.push(format!(
                    "M: {node}: publish {} acked at seq {seq} is missing (lost acked write); \
                     only {forgotten_by:?} restarted since",
                    op.id
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::Replica;
    use crate::history::PubOp;

    fn acked(id: &str, seq: u64, sent_ms: u64) -> PubOp {
        PubOp {
            client: 0,
            id: id.into(),
            subject: "m.c0".into(),
            attempts: 1,
            outcome: PubOutcome::Acked {
                seq,
                duplicate: false,
            },
            rollup: false,
            sent_at: Duration::from_millis(sent_ms),
            done_at: Duration::from_millis(sent_ms + 5),
        }
    }

    fn fin_with(stored: &[(u64, &str)]) -> Final {
        let r = Replica {
            stored: stored
                .iter()
                .map(|(s, p)| (*s, ("m.c0".to_string(), p.to_string())))
                .collect(),
            ..Replica::default()
        };
        Final {
            memory: ["n1", "n2", "n3"]
                .iter()
                .map(|n| (n.to_string(), Some(r.clone())))
                .collect(),
            expected_replicas: 3,
            ..Final::default()
        }
    }

    #[test]
    fn a_lost_ack_counts_unless_every_replica_could_have_forgotten_it() {
        let mut h = History::default();
        h.pubs.push(acked("a", 1, 100));
        h.crashes = vec![
            ("n1".into(), Duration::from_millis(50)),
            ("n2".into(), Duration::from_millis(200)),
            ("n3".into(), Duration::from_millis(300)),
        ];
        // n1 restarted before the publish was sent, n2 after: one holder
        // of the quorum that acked it is left.
        h.crashes.pop();
        let v = check(&h, &fin_with(&[]));
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v[0].contains("lost acked write"), "{v:?}");
        // Once n3 restarts too, a majority forgot: every holder may have.
        h.crashes.push(("n3".into(), Duration::from_millis(300)));
        assert!(check(&h, &fin_with(&[(1, "b")])).is_empty());
        // Kept: it must be at its sequence, and once.
        h.crashes.clear();
        assert!(check(&h, &fin_with(&[(1, "a")])).is_empty());
        let v = check(&h, &fin_with(&[(1, "b"), (2, "a")]));
        assert!(v.iter().all(|m| m.contains("holds")), "{v:?}");
        let v = check(&h, &fin_with(&[(1, "a"), (2, "a")]));
        assert!(v.iter().all(|m| m.contains("stored 2 times")), "{v:?}");
    }
}
