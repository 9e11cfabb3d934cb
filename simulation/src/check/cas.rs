//! Compare-and-set is linearizable: read in sequence order, the messages on
//! the CAS subject form one chain in which each names the previous one's
//! sequence as its expected last sequence (the first names 0). So at most
//! one CAS per expected sequence succeeded; every acknowledged CAS is in the
//! chain at its sequence, and no refused one (10071) is.

use std::collections::BTreeMap;

use super::{Final, present};
use crate::history::{CasOutcome, History};
use crate::workload::CAS_SUBJECT;

fn parse(payload: &str) -> Option<(u64, &str)> {
    let rest = payload.strip_prefix("exp=")?;
    let (exp, id) = rest.split_once(";id=")?;
    Some((exp.parse().ok()?, id))
}

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    // The replicas agree or `replicas` reports it; check the first one.
    let Some((node, r)) = present(fin).next() else {
        return out;
    };
    let mut chain: BTreeMap<&str, u64> = BTreeMap::new();
    let mut prev = 0;
    for (seq, (subject, payload)) in &r.stored {
        if subject != CAS_SUBJECT {
            continue;
        }
        let Some((exp, id)) = parse(payload) else {
            out.push(format!(
                "{node}: seq {seq} on {CAS_SUBJECT} is not a CAS write: {payload:?}"
            ));
            continue;
        };
        if exp != prev {
            out.push(format!(
                "{node}: CAS {id} at seq {seq} expected last {exp}, but the last write before it is {prev} (not linearizable)"
            ));
        }
        chain.insert(id, *seq);
        prev = *seq;
    }
    for op in &history.cas {
        match (&op.outcome, chain.get(op.id.as_str())) {
            (CasOutcome::Acked { seq }, Some(s)) if s == seq => {}
            (CasOutcome::Acked { seq }, found) => out.push(format!(
                "CAS {} acked at seq {seq} but found at {found:?}",
                op.id
            )),
            (CasOutcome::Rejected, Some(s)) => out.push(format!(
                "CAS {} was refused (10071) but is stored at seq {s}",
                op.id
            )),
            _ => {}
        }
    }
    out
}
