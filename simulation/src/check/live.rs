//! Each replica's live sequences agree with a model of which must be live
//! and which must be gone, derived from what the clients were told. The
//! model only claims what the acknowledgements prove, whatever order the
//! leader applied concurrent requests in:
//!
//! * `d.*` (deleted one by one): a sequence whose `STREAM.MSG.DELETE` was
//!   acknowledged is gone; an acknowledged publish that no delete was sent
//!   for is live.
//! * `p.*` (purged with filter `p.>` and some `keep`; only purges remove
//!   these, and each keeps the newest of what is live, so what is live is
//!   always a suffix in sequence order): for an acknowledged purge keeping
//!   K, of the publishes acknowledged before it was sent all but the
//!   newest K are gone. An acknowledged publish sent after every purge was
//!   acknowledged (and no purge's fate is unknown) is live.
//! * `r.*` (rollups, `Nats-Rollup: sub`): below an acknowledged rollup
//!   nothing of its subject is live; an acknowledged publish with no later
//!   acknowledged rollup of its subject (and no rollup of unknown fate) is
//!   live.
//! * the stream with limits (discard new): never more than `max_msgs`,
//!   nor more than `max_msgs_per_subject` of a subject; of a subject's
//!   acknowledged publishes, one with `max_msgs_per_subject` acknowledged
//!   ones after it is gone; nothing older than `max_age` survives the end
//!   of the run; a publish refused as over the limit (on its only attempt)
//!   is not stored. (Clock jumps make no publish provably young enough to
//!   be live at the end; the replicas' equality covers what is.)
//!
//! A scrubber or catch-up that brought back a removed message fails the
//! "gone" rules; one that lost a live message fails the "live" ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Final, Replica, existing, present};
use crate::history::{History, PubOp, PubOutcome, RemoveOutcome};
use crate::workload::{LIMIT_MAX_AGE, LIMIT_MAX_MSGS, LIMIT_PER_SUBJECT};

/// How long after `max_age` a message may still be stored at the end:
/// the leader expires once a second, and the last expiry must commit.
const EXPIRY_SLACK: Duration = Duration::from_secs(5);

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let model = Model::new(history);
    let mut out = Vec::new();
    for (node, r) in present(fin) {
        for (seq, why) in &model.gone {
            if let Some((subject, payload)) = r.stored.get(seq) {
                out.push(format!(
                    "{node}: seq {seq} ({subject} {payload:?}) is stored but {why}"
                ));
            }
        }
        for (seq, (id, why)) in &model.live {
            match r.stored.get(seq) {
                Some((_, payload)) if payload == id => {}
                other => out.push(format!(
                    "{node}: publish {id} acked at seq {seq} must be live ({why}) but seq {seq} holds {other:?}"
                )),
            }
        }
        out.extend(rollups(node, r, history));
    }
    for (node, r) in existing(&fin.limits) {
        out.extend(limits(node, r, history, fin.end_ns));
    }
    out
}

fn acked_seq(op: &PubOp) -> Option<u64> {
    match op.outcome {
        PubOutcome::Acked { seq, .. } => Some(seq),
        _ => None,
    }
}

/// What must be gone (seq → why) and what must be live (seq → id, why) in
/// the stream, for `d.*` and `p.*`.
struct Model {
    gone: BTreeMap<u64, String>,
    live: BTreeMap<u64, (String, &'static str)>,
}

impl Model {
    fn new(h: &History) -> Self {
        let mut m = Model {
            gone: BTreeMap::new(),
            live: BTreeMap::new(),
        };
        m.deletes(h);
        m.purges(h);
        m
    }

    fn deletes(&mut self, h: &History) {
        let mut tried = BTreeSet::new();
        for d in &h.deletes {
            match d.outcome {
                RemoveOutcome::Acked { .. } => {
                    self.gone
                        .insert(d.seq, "its STREAM.MSG.DELETE was acknowledged".into());
                    tried.insert(d.seq);
                }
                RemoveOutcome::Unknown => {
                    tried.insert(d.seq);
                }
                RemoveOutcome::Refused { .. } => {}
            }
        }
        for p in h.pubs.iter().filter(|p| p.subject.starts_with("d.")) {
            if let Some(seq) = acked_seq(p)
                && !tried.contains(&seq)
            {
                self.live
                    .insert(seq, (p.id.clone(), "no delete was sent for it"));
            }
        }
    }

    fn purges(&mut self, h: &History) {
        let pubs: Vec<&PubOp> = h
            .pubs
            .iter()
            .filter(|p| p.subject.starts_with("p."))
            .collect();
        for purge in &h.purges {
            if !matches!(purge.outcome, RemoveOutcome::Acked { .. }) {
                continue;
            }
            let before: BTreeSet<u64> = pubs
                .iter()
                .filter(|p| p.done_at < purge.sent_at)
                .filter_map(|p| acked_seq(p))
                .collect();
            let doomed = before.len().saturating_sub(purge.keep as usize);
            for seq in before.iter().take(doomed) {
                self.gone.entry(*seq).or_insert_with(|| {
                    format!(
                        "the purge of {} keeping {} sent at {:?} was acknowledged",
                        purge.filter, purge.keep, purge.sent_at
                    )
                });
            }
        }
        let settled = |p: &PubOp| {
            h.purges.iter().all(|purge| match purge.outcome {
                RemoveOutcome::Refused { .. } => true,
                RemoveOutcome::Acked { .. } => purge.done_at < p.sent_at,
                RemoveOutcome::Unknown => false,
            })
        };
        for p in pubs {
            if let Some(seq) = acked_seq(p)
                && settled(p)
            {
                self.live
                    .insert(seq, (p.id.clone(), "published after every purge"));
            }
        }
    }
}

/// Rollups of `r.*` on one replica.
fn rollups(node: &str, r: &Replica, h: &History) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_subject: BTreeMap<&str, Vec<&PubOp>> = BTreeMap::new();
    for p in h.pubs.iter().filter(|p| p.subject.starts_with("r.")) {
        by_subject.entry(p.subject.as_str()).or_default().push(p);
    }
    for (subject, pubs) in by_subject {
        let rolled: Vec<u64> = pubs
            .iter()
            .filter(|p| p.rollup)
            .filter_map(|p| acked_seq(p))
            .collect();
        if let Some(&top) = rolled.iter().max() {
            for (seq, (s, payload)) in r.stored.range(..top) {
                if s == subject {
                    out.push(format!(
                        "{node}: seq {seq} ({s} {payload:?}) is stored below the acknowledged rollup of {subject} at {top}"
                    ));
                }
            }
        }
        let unknown_rollup = pubs
            .iter()
            .any(|p| p.rollup && p.outcome == PubOutcome::Unknown);
        if unknown_rollup {
            continue;
        }
        for p in &pubs {
            let Some(seq) = acked_seq(p) else { continue };
            if rolled.iter().any(|r| *r > seq) {
                continue;
            }
            match r.stored.get(&seq) {
                Some((_, payload)) if *payload == p.id => {}
                other => out.push(format!(
                    "{node}: publish {} acked at seq {seq} must be live (no later rollup of {subject}) but seq {seq} holds {other:?}",
                    p.id
                )),
            }
        }
    }
    out
}

/// The stream with limits, on one replica.
fn limits(node: &str, r: &Replica, h: &History, end_ns: i64) -> Vec<String> {
    let mut out = Vec::new();
    if r.messages > LIMIT_MAX_MSGS {
        out.push(format!(
            "L {node}: {} messages stored, max_msgs is {LIMIT_MAX_MSGS} (discard new)",
            r.messages
        ));
    }
    let mut per_subject: BTreeMap<&str, u64> = BTreeMap::new();
    for (subject, _) in r.stored.values() {
        *per_subject.entry(subject.as_str()).or_default() += 1;
    }
    for (subject, n) in per_subject {
        if n > LIMIT_PER_SUBJECT {
            out.push(format!(
                "L {node}: {n} messages of {subject} stored, max_msgs_per_subject is {LIMIT_PER_SUBJECT}"
            ));
        }
    }
    let mut acked: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for p in h.pubs.iter().filter(|p| p.subject.starts_with("l.")) {
        if let Some(seq) = acked_seq(p) {
            acked.entry(p.subject.as_str()).or_default().insert(seq);
        }
        let refused = p.outcome == (PubOutcome::Refused { err_code: 10077 });
        if refused && p.attempts == 1 && r.stored.values().any(|(_, id)| *id == p.id) {
            out.push(format!(
                "L {node}: publish {} was refused (10077, stream full) but is stored",
                p.id
            ));
        }
    }
    let per = LIMIT_PER_SUBJECT as usize;
    for (subject, seqs) in acked {
        let doomed = seqs.len().saturating_sub(per);
        for seq in seqs.iter().take(doomed) {
            if let Some((s, payload)) = r.stored.get(seq) {
                out.push(format!(
                    "L {node}: seq {seq} ({s} {payload:?}) is stored but {per} later publishes of {subject} were acknowledged (max_msgs_per_subject)"
                ));
            }
        }
    }
    let cutoff = end_ns - (LIMIT_MAX_AGE + EXPIRY_SLACK).as_nanos() as i64;
    for (seq, ts) in &r.times {
        if *ts <= cutoff {
            out.push(format!(
                "L {node}: seq {seq} stamped {:.1}s before the end outlived max_age {}s",
                (end_ns - ts) as f64 / 1e9,
                LIMIT_MAX_AGE.as_secs()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{DeleteOp, PurgeOp};

    fn pubop(id: &str, subject: &str, seq: u64, at: u64, rollup: bool) -> PubOp {
        PubOp {
            client: 0,
            id: id.into(),
            subject: subject.into(),
            attempts: 1,
            outcome: PubOutcome::Acked {
                seq,
                duplicate: false,
            },
            rollup,
            sent_at: Duration::from_millis(at),
            done_at: Duration::from_millis(at + 1),
        }
    }

    fn replica(msgs: &[(u64, &str, &str)]) -> Replica {
        Replica {
            stored: msgs
                .iter()
                .map(|(s, subj, p)| (*s, (subj.to_string(), p.to_string())))
                .collect(),
            messages: msgs.len() as u64,
            ..Replica::default()
        }
    }

    fn fin(r: Replica) -> Final {
        Final {
            replicas: [("n1".to_string(), Some(r))].into(),
            ..Final::default()
        }
    }

    #[test]
    fn a_resurrected_delete_purge_or_rollup_is_reported() {
        let h = History {
            pubs: vec![
                pubop("d1", "d.c0", 1, 10, false),
                pubop("p1", "p.c0", 2, 20, false),
                pubop("p2", "p.c0", 3, 30, false),
                pubop("r1", "r.0", 4, 40, false),
                pubop("r2", "r.0", 5, 50, true),
                pubop("p3", "p.c0", 6, 80, false),
            ],
            deletes: vec![DeleteOp {
                client: 0,
                seq: 1,
                outcome: RemoveOutcome::Acked { purged: 1 },
                sent_at: Duration::from_millis(60),
                done_at: Duration::from_millis(61),
            }],
            purges: vec![PurgeOp {
                client: 0,
                filter: "p.>".into(),
                keep: 1,
                outcome: RemoveOutcome::Acked { purged: 1 },
                sent_at: Duration::from_millis(70),
                done_at: Duration::from_millis(71),
            }],
            ..History::default()
        };
        let right = replica(&[(3, "p.c0", "p2"), (5, "r.0", "r2"), (6, "p.c0", "p3")]);
        assert_eq!(check(&h, &fin(right)), Vec::<String>::new());
        let wrong = replica(&[
            (1, "d.c0", "d1"),
            (2, "p.c0", "p1"),
            (4, "r.0", "r1"),
            (5, "r.0", "r2"),
        ]);
        let v = check(&h, &fin(wrong));
        assert!(
            v.iter()
                .any(|v| v.contains("seq 1") && v.contains("DELETE")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|v| v.contains("seq 2") && v.contains("purge")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|v| v.contains("seq 4") && v.contains("rollup")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|v| v.contains("p3 acked at seq 6 must be live")),
            "{v:?}"
        );
    }

    #[test]
    fn limits_are_checked() {
        let mut pubs: Vec<PubOp> = (1..=8)
            .map(|i| pubop(&format!("l{i}"), "l.0", i, i * 10, false))
            .collect();
        let mut refused = pubop("l9", "l.1", 0, 100, false);
        refused.outcome = PubOutcome::Refused { err_code: 10077 };
        pubs.push(refused);
        let h = History {
            pubs,
            ..History::default()
        };
        let mut r = replica(&[(1, "l.0", "l1"), (9, "l.1", "l9")]);
        r.times.insert(1, 0);
        let f = Final {
            limits: [("n1".to_string(), Some(r))].into(),
            end_ns: 60_000_000_000,
            ..Final::default()
        };
        let v = check(&h, &f);
        assert!(
            v.iter().any(|v| v.contains("max_msgs_per_subject")),
            "{v:?}"
        );
        assert!(v.iter().any(|v| v.contains("refused (10077")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("outlived max_age")), "{v:?}");
    }
}
