//! A run that did nothing proves nothing: the workload must have had at
//! least `Final::min_acked` publishes acknowledged (probes not counted), or
//! the seed fails. A cluster that refuses everything under faults would
//! otherwise pass every other invariant.

use super::Final;
use crate::history::{History, PubOutcome};

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let acked = history
        .pubs
        .iter()
        .filter(|p| matches!(p.outcome, PubOutcome::Acked { .. }) && !p.id.starts_with("probe"))
        .count() as u64;
    if acked < fin.min_acked {
        return vec![format!(
            "progress: the workload had only {acked} publishes acked, below the minimum of {} \
             for this run (a run that does nothing proves nothing)",
            fin.min_acked
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::PubOp;

    fn op(id: &str, outcome: PubOutcome) -> PubOp {
        PubOp {
            client: 0,
            id: id.into(),
            subject: "s.c0".into(),
            attempts: 1,
            outcome,
            rollup: false,
            sent_at: Duration::ZERO,
            done_at: Duration::ZERO,
        }
    }

    #[test]
    fn too_few_acked_publishes_fail_the_run() {
        let acked = PubOutcome::Acked {
            seq: 1,
            duplicate: false,
        };
        let h = History {
            pubs: vec![
                op("c0-1", acked.clone()),
                op("c0-2", PubOutcome::Unknown),
                op("probe-n1", acked.clone()),
                op("c0-3", acked),
            ],
            ..History::default()
        };
        let fin = |min_acked| Final {
            min_acked,
            ..Final::default()
        };
        assert_eq!(check(&h, &fin(2)), Vec::<String>::new());
        let v = check(&h, &fin(3));
        assert!(v[0].contains("only 2 publishes acked"), "{v:?}");
    }
}
