//! Replica placement: R distinct nodes, least loaded first.

use std::collections::BTreeMap;

/// Picks `replicas` distinct nodes out of `nodes`, preferring those that
/// host the fewest stream replicas (`load`), ties broken by node id so that
/// every meta replica picks the same set. Returns `None` when there are not
/// enough nodes.
pub fn place(nodes: &[u64], load: &BTreeMap<u64, usize>, replicas: usize) -> Option<Vec<u64>> {
    let mut candidates: Vec<u64> = nodes.to_vec();
    candidates.sort_unstable();
    candidates.dedup();
    if replicas == 0 || candidates.len() < replicas {
        return None;
    }
    candidates.sort_by_key(|n| (load.get(n).copied().unwrap_or(0), *n));
    let mut chosen: Vec<u64> = candidates.into_iter().take(replicas).collect();
    chosen.sort_unstable();
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_loaded_first_ties_by_id() {
        let load = BTreeMap::from([(1, 2), (2, 0), (3, 1)]);
        assert_eq!(place(&[1, 2, 3], &load, 1), Some(vec![2]));
        assert_eq!(place(&[3, 2, 1], &load, 2), Some(vec![2, 3]));
        assert_eq!(place(&[1, 2, 3], &BTreeMap::new(), 3), Some(vec![1, 2, 3]));
    }

    #[test]
    fn not_enough_nodes() {
        assert_eq!(place(&[1, 2, 3], &BTreeMap::new(), 5), None);
        assert_eq!(place(&[1, 1, 2], &BTreeMap::new(), 3), None);
        assert_eq!(place(&[], &BTreeMap::new(), 1), None);
    }
}
