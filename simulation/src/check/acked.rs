//! Every acknowledged publish to `s.*` (which nothing removes) is present,
//! exactly once, at its acknowledged sequence, on every replica. No
//! publish, acknowledged or not, is stored more than once in either stream
//! (its `Nats-Msg-Id` deduplicates retries). What deletes, purges, rollups
//! and limits may take away is `live.rs`'s business.

use std::collections::BTreeMap;

use super::{Final, existing, present};
use crate::history::{History, PubOutcome};

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    for (node, r) in present(fin).chain(existing(&fin.limits)) {
        let mut copies: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (seq, (subject, payload)) in &r.stored {
            if !subject.starts_with("cas.") {
                copies.entry(payload.as_str()).or_default().push(*seq);
            }
        }
        for (id, seqs) in copies.iter().filter(|(_, s)| s.len() > 1) {
            out.push(format!(
                "{node}: publish {id} stored {} times, at {seqs:?}",
                seqs.len()
            ));
        }
    }
    for (node, r) in present(fin) {
        for op in history.pubs.iter().filter(|p| p.subject.starts_with("s.")) {
            if let PubOutcome::Acked { seq, .. } = op.outcome {
                match r.stored.get(&seq) {
                    Some((_, payload)) if payload == &op.id => {}
                    Some((subject, payload)) => out.push(format!(
                        "{node}: publish {} acked at seq {seq}, but seq {seq} holds {subject} {payload:?}",
                        op.id
                    )),
                    None => out.push(format!(
                        "{node}: publish {} acked at seq {seq} is missing (lost acked write)",
                        op.id
                    )),
                }
            }
        }
    }
    out
}
