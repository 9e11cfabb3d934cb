//! A node stops on a fatal storage error only when one was injected
//! (`sync-fail`): a store that fails on its own is a bug of the engine or
//! of the simulation.

use crate::history::History;

pub fn check(history: &History) -> Vec<String> {
    history
        .unexpected_fatal
        .iter()
        .map(|e| format!("fatal stop nobody injected: {e}"))
        .collect()
}
