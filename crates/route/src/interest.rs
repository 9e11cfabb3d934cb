//! Who wants what: this node's subscriptions as its peers are told them,
//! and each peer's as it told them, indexed for matching a published
//! subject.

use std::collections::{BTreeMap, BTreeSet};

use jetraft_gateway::sublist::{Match, Sublist};

use crate::NodeId;

/// (account, subject filter, queue group).
pub(crate) type Key = (String, String, Option<String>);

/// This node's subscriptions, counted per filter and queue group.
#[derive(Debug, Default)]
pub(crate) struct Local {
    counts: BTreeMap<Key, u32>,
}

impl Local {
    /// Counts a subscription in or out. Returns the weight to announce, if
    /// peers must hear of it: plain filters only when the first arrives or
    /// the last goes, queue groups on every change (their weight is their
    /// member count).
    pub(crate) fn change(&mut self, key: Key, added: bool) -> Option<u32> {
        let queue = key.2.is_some();
        let count = if added {
            let c = self.counts.entry(key).or_insert(0);
            *c += 1;
            *c
        } else {
            let c = self.counts.get_mut(&key)?;
            *c -= 1;
            let c = *c;
            if c == 0 {
                self.counts.remove(&key);
            }
            c
        };
        match (queue, added, count) {
            (true, _, c) => Some(c),
            (false, true, 1) => Some(1),
            (false, false, 0) => Some(0),
            _ => None,
        }
    }

    /// Everything to announce to a peer that just connected.
    pub(crate) fn table(&self) -> impl Iterator<Item = (&Key, u32)> {
        self.counts
            .iter()
            .map(|(k, c)| (k, if k.2.is_some() { *c } else { 1 }))
    }
}

/// Every peer's interest as it announced it.
#[derive(Debug, Default)]
pub(crate) struct Remote {
    /// Per account: filter (and queue) -> (node, weight), one entry per node.
    by_account: BTreeMap<String, Sublist<NodeId, (NodeId, u32)>>,
    /// What each node announced, to forget it all when its stream ends.
    of_node: BTreeMap<NodeId, BTreeSet<Key>>,
}

impl Remote {
    /// Records what `node` announced; weight 0 removes it. False if the
    /// filter or queue is not valid (the announcement is ignored).
    pub(crate) fn set(&mut self, node: NodeId, key: Key, weight: u32) -> bool {
        let (account, subject, queue) = &key;
        if weight == 0 {
            if let Some(list) = self.by_account.get_mut(account) {
                list.remove(subject, queue.as_deref(), &node);
                if list.is_empty() {
                    self.by_account.remove(account);
                }
            }
            if let Some(keys) = self.of_node.get_mut(&node) {
                keys.remove(&key);
            }
            return true;
        }
        let inserted = self
            .by_account
            .entry(account.clone())
            .or_default()
            .insert(subject, queue.as_deref(), node, (node, weight))
            .is_ok();
        if inserted {
            self.of_node.entry(node).or_default().insert(key);
        }
        inserted
    }

    /// Forgets everything `node` announced.
    pub(crate) fn forget(&mut self, node: NodeId) {
        for key in self.of_node.remove(&node).unwrap_or_default() {
            self.set(node, key, 0);
        }
    }

    /// How many filters `node` announced.
    pub(crate) fn count(&self, node: NodeId) -> usize {
        self.of_node.get(&node).map_or(0, BTreeSet::len)
    }

    pub(crate) fn matches(&self, account: &str, subject: &str) -> Option<Match<(NodeId, u32)>> {
        let list = self.by_account.get(account)?;
        let m = list.matches(subject);
        (!m.is_empty()).then_some(m)
    }
}

/// Which nodes get a message, and for what: its plain subscribers, and
/// the queue groups it was chosen for there.
pub(crate) type Plan = BTreeMap<NodeId, (bool, Vec<String>)>;

/// Plans a message's trip: every node with plain interest, and for each
/// queue group no local member took, one node picked by weight
/// (`counter` turns the choice round).
pub(crate) fn plan(m: &Match<(NodeId, u32)>, taken: &[String], counter: u64) -> Plan {
    let mut plan = Plan::new();
    for (node, _) in &m.plain {
        plan.entry(*node).or_default().0 = true;
    }
    for (queue, members) in &m.queues {
        if taken.contains(queue) {
            continue;
        }
        let total: u64 = members.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            continue;
        }
        let mut at = counter % total;
        for (node, w) in members {
            let w = u64::from(*w);
            if at < w {
                plan.entry(*node).or_default().1.push(queue.clone());
                break;
            }
            at -= w;
        }
    }
    plan
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(subject: &str, queue: Option<&str>) -> Key {
        ("$G".into(), subject.into(), queue.map(str::to_string))
    }

    #[test]
    fn plain_filters_are_announced_on_first_and_last_only() {
        let mut l = Local::default();
        assert_eq!(l.change(key("a.*", None), true), Some(1));
        assert_eq!(l.change(key("a.*", None), true), None);
        assert_eq!(l.change(key("a.*", None), false), None);
        assert_eq!(l.change(key("a.*", None), false), Some(0));
        assert_eq!(l.change(key("a.*", None), false), None, "nothing left");
        assert_eq!(l.table().count(), 0);
    }

    #[test]
    fn queue_weights_follow_member_count() {
        let mut l = Local::default();
        assert_eq!(l.change(key("a", Some("q")), true), Some(1));
        assert_eq!(l.change(key("a", Some("q")), true), Some(2));
        assert_eq!(
            l.table().collect::<Vec<_>>(),
            vec![(&key("a", Some("q")), 2)]
        );
        assert_eq!(l.change(key("a", Some("q")), false), Some(1));
        assert_eq!(l.change(key("a", Some("q")), false), Some(0));
    }

    #[test]
    fn one_copy_per_node_and_one_node_per_queue_group() {
        let mut r = Remote::default();
        r.set(2, key("a.*", None), 1);
        r.set(2, key("a.>", None), 1);
        r.set(3, key("a.b", Some("q")), 1);
        r.set(4, key("a.b", Some("q")), 3);
        let m = r.matches("$G", "a.b").unwrap();
        let mut to4 = 0;
        for counter in 0..400 {
            let p = plan(&m, &[], counter);
            assert_eq!(p.get(&2), Some(&(true, vec![])), "node 2 once, plain");
            let q: Vec<_> = p.iter().filter(|(_, (_, q))| !q.is_empty()).collect();
            assert_eq!(q.len(), 1, "exactly one node for the group");
            to4 += usize::from(p.contains_key(&4));
        }
        assert_eq!(to4, 300, "by weight: 3 of 4");
        assert!(
            plan(&m, &["q".into()], 0).keys().eq([2].iter()),
            "taken here"
        );
    }

    #[test]
    fn forgetting_a_node_removes_all_it_announced() {
        let mut r = Remote::default();
        r.set(2, key("a.*", None), 1);
        r.set(2, key("b", Some("q")), 2);
        r.set(3, key("b", None), 1);
        assert_eq!(r.count(2), 2);
        r.forget(2);
        assert_eq!(r.count(2), 0);
        assert!(r.matches("$G", "a.x").is_none());
        assert_eq!(r.matches("$G", "b").unwrap().plain, vec![(3, 1)]);
        assert!(r.matches("OTHER", "b").is_none(), "accounts are separate");
    }

    #[test]
    fn invalid_announcements_are_ignored() {
        let mut r = Remote::default();
        assert!(!r.set(2, key("a..b", None), 1));
        assert_eq!(r.count(2), 0);
    }
}
