//! The replicas are identical and gapless: every replica holds the same
//! messages (the `/jsz` digest agrees), the sequences between first and last
//! have no holes (this workload deletes nothing and sets no limits), and no
//! replica served a record that failed its checksum.

use super::{Final, present};

pub fn check(fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    let have = present(fin).count();
    if have < fin.expected_replicas {
        out.push(format!(
            "only {have} of {} replicas exist after the final heal",
            fin.expected_replicas
        ));
    }
    if !fin.converged {
        out.push("replicas did not converge before the deadline".to_string());
    }
    let mut reference: Option<(&String, &super::Replica)> = None;
    for (node, r) in present(fin) {
        for e in &r.read_errors {
            out.push(format!("{node}: read error {e}"));
        }
        let span = if r.last_seq >= r.first_seq && r.messages > 0 {
            r.last_seq - r.first_seq + 1
        } else {
            0
        };
        if r.messages != span || r.stored.len() as u64 != r.messages {
            out.push(format!(
                "{node}: not gapless: first {} last {} messages {} stored {}",
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
                        "replicas differ: {rn} last {} digest {}…, {node} last {} digest {}…; first differing seq {first_diff:?}",
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
