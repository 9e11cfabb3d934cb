//! Liveness: after the final heal, every node accepts a publish within a
//! bounded simulated time.

use super::Final;
use crate::history::History;

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    for p in &history.probes {
        match p.acked_after_heal {
            Some(t) if t <= fin.liveness_bound => {}
            Some(t) => out.push(format!(
                "liveness: a publish through {} took {t:?} after the final heal (bound {:?})",
                p.node, fin.liveness_bound
            )),
            None => out.push(format!(
                "liveness: no publish through {} was acknowledged within {:?} of the final heal",
                p.node, fin.liveness_bound
            )),
        }
    }
    if history.probes.is_empty() {
        out.push("liveness: no probe ran".to_string());
    }
    out
}
