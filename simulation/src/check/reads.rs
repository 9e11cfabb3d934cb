//! Reads are linearizable: a read that began after a write was acknowledged
//! sees that write (decision 33). The reads checked ask the stream leader
//! (`STREAM.MSG.GET`, last by subject) for the CAS subject's last sequence:
//! the one each compare-and-set starts with, and those of a reader pinned
//! to each node (a node cut off from the others keeps being asked). What a
//! read saw must be at least the sequence of every CAS acknowledged before
//! it was sent. Only CAS writes go to that subject and none is ever
//! removed, so a smaller answer is a stale read: a deposed leader answering
//! from what it had.

use std::time::Duration;

use crate::history::{CasOutcome, History};

pub fn check(history: &History) -> Vec<String> {
    // Acknowledged CAS writes by when their ack arrived.
    let mut acks: Vec<_> = history
        .cas
        .iter()
        .filter_map(|op| match op.outcome {
            CasOutcome::Acked { seq } => Some((op.done_at, seq, op.id.as_str())),
            _ => None,
        })
        .collect();
    acks.sort_by_key(|(at, seq, _)| (*at, *seq));
    // highest[i]: the ack with the highest sequence among acks[..=i].
    let highest: Vec<(Duration, u64, &str)> = acks
        .iter()
        .scan(None, |best: &mut Option<(Duration, u64, &str)>, a| {
            if best.is_none_or(|b| a.1 > b.1) {
                *best = Some(*a);
            }
            *best
        })
        .collect();
    let reads = history
        .cas
        .iter()
        .map(|op| {
            (
                format!("c{} (for {})", op.client, op.id),
                op.expected,
                op.read_sent_at,
            )
        })
        .chain(
            history
                .reads
                .iter()
                .map(|r| (format!("the reader at {}", r.node), r.seen, r.sent_at)),
        );
    let mut out = Vec::new();
    for (who, seen, sent_at) in reads {
        let before = acks.partition_point(|(at, _, _)| *at < sent_at);
        let Some((at, seq, id)) = before.checked_sub(1).map(|i| highest[i]) else {
            continue;
        };
        if seen < seq {
            out.push(format!(
                "stale read: {who} asked for the last CAS sequence at {} ms, after CAS {id} \
                 was acked at seq {seq} ({} ms), and saw seq {seen}",
                sent_at.as_millis(),
                at.as_millis(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::{CasOp, ReadOp};

    fn cas(id: &str, expected: u64, read_ms: u64, outcome: CasOutcome, done_ms: u64) -> CasOp {
        CasOp {
            client: 0,
            id: id.into(),
            expected,
            read_sent_at: Duration::from_millis(read_ms),
            outcome,
            done_at: Duration::from_millis(done_ms),
        }
    }

    #[test]
    fn a_read_after_an_ack_must_see_it() {
        let h = History {
            cas: vec![
                cas("a", 0, 0, CasOutcome::Acked { seq: 5 }, 100),
                // Concurrent with a's publish: may miss it.
                cas("b", 0, 50, CasOutcome::Rejected, 120),
                // Sent after a was acked: must see 5 or later.
                cas("c", 5, 150, CasOutcome::Acked { seq: 9 }, 200),
                cas("d", 5, 250, CasOutcome::Unknown, 300),
            ],
            reads: vec![
                ReadOp {
                    node: "n1".into(),
                    seen: 9,
                    sent_at: Duration::from_millis(260),
                },
                ReadOp {
                    node: "n2".into(),
                    seen: 5,
                    sent_at: Duration::from_millis(199),
                },
                ReadOp {
                    node: "n3".into(),
                    seen: 0,
                    sent_at: Duration::from_millis(400),
                },
            ],
            ..History::default()
        };
        let v = check(&h);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(
            v[0].contains("for d") && v[0].contains("CAS c was acked at seq 9"),
            "{v:?}"
        );
        assert!(
            v[1].contains("reader at n3") && v[1].contains("saw seq 0"),
            "{v:?}"
        );
    }
}
