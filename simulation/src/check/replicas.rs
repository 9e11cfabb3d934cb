//! The replicas are identical: stream by stream, every replica holds the
//! same messages (the `/jsz` digest agrees), its count matches what it
//! stores, and no replica served a record that failed its checksum. A run
//! that removed nothing (no delete, purge or rollup was attempted) must
//! also be gapless between first and last; the stream with limits never
//! is (its limits remove messages).

use std::collections::BTreeMap;

use super::{Final, Replica, existing};
use crate::history::History;

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let removed_some = !history.deletes.is_empty()
        || !history.purges.is_empty()
        || history.pubs.iter().any(|p| p.rollup);
    let mut out = Vec::new();
    if !fin.converged {
        out.push("replicas did not converge before the deadline".to_string());
    }
    out.extend(one_stream(
        "",
        &fin.replicas,
        fin.expected_replicas,
        !removed_some,
    ));
    if existing(&fin.limits).next().is_some() {
        out.extend(one_stream("L: ", &fin.limits, fin.expected_replicas, false));
    }
    // Nothing removes messages from the stream kept in memory: gapless
    // (from 1 again if it was founded again).
    if existing(&fin.memory).next().is_some() {
        out.extend(one_stream("M: ", &fin.memory, fin.expected_replicas, true));
    }
    out
}

fn one_stream(
    label: &str,
    replicas: &BTreeMap<String, Option<Replica>>,
    expected: usize,
    gapless: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let have = existing(replicas).count();
    if have < expected {
        out.push(format!(
            "{label}only {have} of {expected} replicas exist after the final heal"
        ));
    }
    let mut reference: Option<(&String, &Replica)> = None;
    for (node, r) in existing(replicas) {
        for e in &r.read_errors {
            out.push(format!("{label}{node}: read error {e}"));
        }
        let span = if r.last_seq >= r.first_seq && r.messages > 0 {
            r.last_seq - r.first_seq + 1
        } else {
            0
        };
        if (gapless && r.messages != span) || r.stored.len() as u64 != r.messages {
            out.push(format!(
                "{label}{node}: not gapless: first {} last {} messages {} stored {}",
                r.first_seq,
                r.last_seq,
                r.messages,
                r.stored.len()
            ));
        }
        match reference {
            None => reference = Some((node, r)),
            Some((rn, rr)) => {
                if rr.digest != r.digest || rr.last_seq != r.last_seq {
                    let first_diff = rr
                        .stored
                        .iter()
                        .find(|(seq, m)| r.stored.get(seq) != Some(m))
                        .map(|(seq, _)| *seq)
                        .or_else(|| {
                            r.stored
                                .keys()
                                .find(|s| !rr.stored.contains_key(s))
                                .copied()
                        });
                    out.push(format!(
                        "{label}replicas differ: {rn} last {} digest {}…, {node} last {} digest {}…; first differing seq {first_diff:?}",
                        rr.last_seq,
                        &rr.digest[..rr.digest.len().min(12)],
                        r.last_seq,
                        &r.digest[..r.digest.len().min(12)],
                    ));
                }
            }
        }
    }
    out
}
