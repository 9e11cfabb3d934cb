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

/// A new replica set of size `replicas` for a stream now on `current`.
/// Growing keeps every current replica and adds the least loaded of the
/// other `nodes` ([`place`]); shrinking keeps the current replicas in the
/// order of `prefer` (the stream leader first: no election needed; then
/// the replicas its leader knows to be up and whole, so the new voters
/// have a quorum) and then the lowest ids. Ids in `prefer` that are not
/// current replicas are ignored. Returns `None` when there are not enough
/// nodes.
pub fn replace(
    current: &[u64],
    replicas: usize,
    nodes: &[u64],
    load: &BTreeMap<u64, usize>,
    prefer: &[u64],
) -> Option<Vec<u64>> {
    if replicas == 0 {
        return None;
    }
    let mut chosen: Vec<u64> = if replicas >= current.len() {
        let others: Vec<u64> = nodes
            .iter()
            .copied()
            .filter(|n| !current.contains(n))
            .collect();
        let added = if replicas == current.len() {
            Vec::new()
        } else {
            place(&others, load, replicas - current.len())?
        };
        current.iter().copied().chain(added).collect()
    } else {
        let mut order: Vec<u64> = current.to_vec();
        let rank = |n: &u64| prefer.iter().position(|p| p == n).unwrap_or(usize::MAX);
        order.sort_unstable_by_key(|n| (rank(n), *n));
        order.truncate(replicas);
        order
    };
    chosen.sort_unstable();
    chosen.dedup();
    (chosen.len() == replicas).then_some(chosen)
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
    fn replace_grows_onto_least_loaded_and_shrinks_around_keep() {
        let load = BTreeMap::from([(1, 1), (2, 5), (3, 0), (4, 2)]);
        let nodes = [1, 2, 3, 4];
        assert_eq!(replace(&[2], 3, &nodes, &load, &[]), Some(vec![1, 2, 3]));
        assert_eq!(replace(&[1, 2, 3], 1, &nodes, &load, &[2]), Some(vec![2]));
        assert_eq!(replace(&[1, 2, 3], 1, &nodes, &load, &[]), Some(vec![1]));
        // A preferred node that is not a replica (leader moved meanwhile)
        // is ignored.
        assert_eq!(
            replace(&[1, 2, 3], 2, &nodes, &load, &[4]),
            Some(vec![1, 2])
        );
        assert_eq!(replace(&[1, 3], 5, &nodes, &load, &[]), None);
        assert_eq!(replace(&[1, 3], 0, &nodes, &load, &[]), None);
    }

    #[test]
    fn a_shrink_keeps_the_leader_then_the_replicas_that_are_up() {
        let load = BTreeMap::new();
        let nodes = [1, 2, 3];
        // Node 1 is down or forgot its state: the leader (2) and the
        // other live replica (3) stay, whatever the ids.
        assert_eq!(
            replace(&[1, 2, 3], 2, &nodes, &load, &[2, 3]),
            Some(vec![2, 3])
        );
        assert_eq!(
            replace(&[1, 2, 3], 1, &nodes, &load, &[3, 2]),
            Some(vec![3])
        );
        // With nothing known, the lowest ids.
        assert_eq!(replace(&[1, 2, 3], 2, &nodes, &load, &[]), Some(vec![1, 2]));
    }

    #[test]
    fn not_enough_nodes() {
        assert_eq!(place(&[1, 2, 3], &BTreeMap::new(), 5), None);
        assert_eq!(place(&[1, 1, 2], &BTreeMap::new(), 3), None);
        assert_eq!(place(&[], &BTreeMap::new(), 1), None);
    }
}
