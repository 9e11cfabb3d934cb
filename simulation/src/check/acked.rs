//! Every acknowledged publish is present, exactly once, at its acknowledged
//! sequence, on every replica. Publishes never acknowledged may be stored,
//! but at most once (their `Nats-Msg-Id` deduplicates retries).

use std::collections::BTreeMap;

use super::{Final, present};
use crate::history::{History, PubOutcome};

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    for (node, r) in present(fin) {
        let mut copies: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (seq, (subject, payload)) in &r.stored {
            if subject.starts_with("s.") {
                copies.entry(payload.as_str()).or_default().push(*seq);
            }
        }
        for op in &history.pubs {
            let seqs = copies.get(op.id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            if seqs.len() > 1 {
                out.push(format!(
                    "{node}: publish {} stored {} times, at {seqs:?}",
                    op.id,
                    seqs.len()
                ));
            }
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
