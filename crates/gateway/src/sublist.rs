//! Subscription index: a token trie with `*`/`>` wildcards and queue groups.
//!
//! Ordered maps everywhere, so a match lists subscribers in a deterministic
//! order and queue-member choice can be a plain round-robin over that order.

use std::collections::BTreeMap;

use jetraft_types::subject;

/// The subject (or queue name) was not a valid subscription filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subject")]
pub struct InvalidSubject;

#[derive(Debug)]
struct Node<K, V> {
    /// Keyed by token; `*` and `>` are the wildcard children.
    children: BTreeMap<String, Node<K, V>>,
    plain: BTreeMap<K, V>,
    queues: BTreeMap<String, BTreeMap<K, V>>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Self {
            children: BTreeMap::new(),
            plain: BTreeMap::new(),
            queues: BTreeMap::new(),
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.plain.is_empty() && self.queues.is_empty()
    }
}

/// Everything interested in one subject: plain subscribers each get the
/// message; of each queue group (merged by name across filters, as
/// nats-server does) exactly one member should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<V> {
    pub plain: Vec<V>,
    pub queues: BTreeMap<String, Vec<V>>,
}

impl<V> Default for Match<V> {
    fn default() -> Self {
        Self {
            plain: Vec::new(),
            queues: BTreeMap::new(),
        }
    }
}

impl<V> Match<V> {
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }

    /// The member of `group` that a round-robin `counter` designates.
    pub fn pick(group: &[V], counter: u64) -> Option<&V> {
        if group.is_empty() {
            return None;
        }
        group.get((counter % group.len() as u64) as usize)
    }
}

/// The index. `K` identifies a subscription (connection + sid), `V` is what
/// a match hands back.
#[derive(Debug)]
pub struct Sublist<K, V> {
    root: Node<K, V>,
    len: usize,
}

impl<K: Ord + Clone, V: Clone> Default for Sublist<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone, V: Clone> Sublist<K, V> {
    pub fn new() -> Self {
        Self {
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a subscription; an existing one with the same key, filter and
    /// queue is replaced.
    pub fn insert(
        &mut self,
        filter: &str,
        queue: Option<&str>,
        key: K,
        value: V,
    ) -> Result<(), InvalidSubject> {
        if !subject::is_valid_filter(filter) || queue.is_some_and(|q| q.is_empty()) {
            return Err(InvalidSubject);
        }
        let mut node = &mut self.root;
        for t in subject::tokens(filter) {
            node = node.children.entry(t.to_owned()).or_default();
        }
        let old = match queue {
            None => node.plain.insert(key, value),
            Some(q) => node
                .queues
                .entry(q.to_owned())
                .or_default()
                .insert(key, value),
        };
        if old.is_none() {
            self.len += 1;
        }
        Ok(())
    }

    /// Removes a subscription, pruning emptied trie nodes.
    pub fn remove(&mut self, filter: &str, queue: Option<&str>, key: &K) -> Option<V> {
        self.remove_if(filter, queue, key, |_| true)
    }

    /// Removes a subscription only if `pred` accepts its value, so a stale
    /// remover cannot take out a newer subscription under the same key.
    pub fn remove_if(
        &mut self,
        filter: &str,
        queue: Option<&str>,
        key: &K,
        pred: impl FnOnce(&V) -> bool,
    ) -> Option<V> {
        let tokens: Vec<&str> = subject::tokens(filter).collect();
        let removed = remove_at(&mut self.root, &tokens, queue, key, pred);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Every subscription whose filter matches the literal `subject`.
    pub fn matches(&self, subject: &str) -> Match<V> {
        let tokens: Vec<&str> = subject::tokens(subject).collect();
        let mut out = Match::default();
        if tokens.iter().any(|t| t.is_empty()) {
            return out;
        }
        collect(&self.root, &tokens, &mut out);
        out
    }

    /// Whether anything at all would receive `subject`.
    pub fn has_interest(&self, subject: &str) -> bool {
        !self.matches(subject).is_empty()
    }
}

fn collect<K, V: Clone>(node: &Node<K, V>, tokens: &[&str], out: &mut Match<V>) {
    let Some((first, rest)) = tokens.split_first() else {
        add_all(node, out);
        return;
    };
    // A literal `*` or `>` token in the subject is reached through the
    // wildcard children below, so do not visit those nodes twice.
    if *first != subject::PWC
        && *first != subject::FWC
        && let Some(child) = node.children.get(*first)
    {
        collect(child, rest, out);
    }
    if let Some(child) = node.children.get(subject::PWC) {
        collect(child, rest, out);
    }
    if let Some(child) = node.children.get(subject::FWC) {
        add_all(child, out);
    }
}

fn add_all<K, V: Clone>(node: &Node<K, V>, out: &mut Match<V>) {
    out.plain.extend(node.plain.values().cloned());
    for (q, members) in &node.queues {
        out.queues
            .entry(q.clone())
            .or_default()
            .extend(members.values().cloned());
    }
}

fn remove_at<K: Ord, V>(
    node: &mut Node<K, V>,
    tokens: &[&str],
    queue: Option<&str>,
    key: &K,
    pred: impl FnOnce(&V) -> bool,
) -> Option<V> {
    let Some((first, rest)) = tokens.split_first() else {
        return match queue {
            None => {
                if !pred(node.plain.get(key)?) {
                    return None;
                }
                node.plain.remove(key)
            }
            Some(q) => {
                let members = node.queues.get_mut(q)?;
                if !pred(members.get(key)?) {
                    return None;
                }
                let v = members.remove(key);
                if members.is_empty() {
                    node.queues.remove(q);
                }
                v
            }
        };
    };
    let child = node.children.get_mut(*first)?;
    let v = remove_at(child, rest, queue, key, pred);
    if child.is_empty() {
        node.children.remove(*first);
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn list(subs: &[(&str, Option<&str>, u32)]) -> Sublist<u32, u32> {
        let mut s = Sublist::new();
        for (f, q, id) in subs {
            s.insert(f, *q, *id, *id).unwrap();
        }
        s
    }

    fn plain(s: &Sublist<u32, u32>, subject: &str) -> Vec<u32> {
        let mut v = s.matches(subject).plain;
        v.sort();
        v
    }

    #[test]
    fn literal_and_wildcards() {
        let s = list(&[
            ("foo", None, 1),
            ("foo.*", None, 2),
            ("foo.>", None, 3),
            (">", None, 4),
            ("*.bar", None, 5),
            ("foo.bar", None, 6),
        ]);
        assert_eq!(plain(&s, "foo"), [1, 4]);
        assert_eq!(plain(&s, "foo.bar"), [2, 3, 4, 5, 6]);
        assert_eq!(plain(&s, "foo.bar.baz"), [3, 4]);
        assert_eq!(plain(&s, "x.bar"), [4, 5]);
        assert_eq!(plain(&s, "nope"), [4]);
        assert_eq!(plain(&s, "foo..bar"), Vec::<u32>::new());
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn literal_wildcard_tokens_in_subject_not_double_counted() {
        let s = list(&[("foo.*", None, 1), ("foo.>", None, 2)]);
        assert_eq!(plain(&s, "foo.*"), [1, 2]);
        assert_eq!(plain(&s, "foo.>"), [1, 2]);
    }

    #[test]
    fn queue_groups_merge_by_name() {
        let s = list(&[
            ("work.*", Some("q"), 1),
            ("work.a", Some("q"), 2),
            ("work.a", Some("other"), 3),
            ("work.a", None, 4),
        ]);
        let m = s.matches("work.a");
        assert_eq!(m.plain, [4]);
        let mut q = m.queues["q"].clone();
        q.sort();
        assert_eq!(q, [1, 2]);
        assert_eq!(m.queues["other"], [3]);
    }

    #[test]
    fn round_robin_pick_is_deterministic_and_fair() {
        let group = [10, 20, 30];
        let picks: Vec<u32> = (0..6).map(|c| *Match::pick(&group, c).unwrap()).collect();
        assert_eq!(picks, [10, 20, 30, 10, 20, 30]);
        assert_eq!(Match::<u32>::pick(&[], 3), None);
    }

    #[test]
    fn remove_prunes_and_keeps_others() {
        let mut s = list(&[
            ("a.b.c", None, 1),
            ("a.b.c", None, 2),
            ("a.*.c", Some("q"), 3),
        ]);
        assert_eq!(s.remove("a.b.c", None, &1), Some(1));
        assert_eq!(s.remove("a.b.c", None, &1), None);
        assert_eq!(
            s.remove("a.b.c", Some("q"), &2),
            None,
            "queue must match too"
        );
        assert_eq!(plain(&s, "a.b.c"), [2]);
        assert_eq!(s.remove("a.*.c", Some("q"), &3), Some(3));
        assert_eq!(s.remove("a.b.c", None, &2), Some(2));
        assert!(s.is_empty());
        assert!(s.root.is_empty(), "all nodes pruned");
    }

    #[test]
    fn remove_if_checks_the_value() {
        let mut s: Sublist<u32, &str> = Sublist::new();
        s.insert("a.b", Some("q"), 1, "new").unwrap();
        assert_eq!(s.remove_if("a.b", Some("q"), &1, |v| *v == "old"), None);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.remove_if("a.b", Some("q"), &1, |v| *v == "new"),
            Some("new")
        );
        assert!(s.is_empty());
    }

    #[test]
    fn invalid_filters_refused() {
        let mut s: Sublist<u32, u32> = Sublist::new();
        for bad in ["", "foo.>.bar", "a..b", "a b"] {
            assert_eq!(s.insert(bad, None, 1, 1), Err(InvalidSubject), "{bad:?}");
        }
        assert_eq!(s.insert("a", Some(""), 1, 1), Err(InvalidSubject));
        assert!(
            s.insert("foo.*x", None, 1, 1).is_ok(),
            "a token containing * is a literal"
        );
        assert!(!s.has_interest("foo.ax"));
        assert!(s.has_interest("foo.*x"));
    }

    #[test]
    fn reinsert_same_key_replaces() {
        let mut s: Sublist<u32, &str> = Sublist::new();
        s.insert("a", None, 1, "x").unwrap();
        s.insert("a", None, 1, "y").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.matches("a").plain, ["y"]);
    }

    /// Brute force: the trie agrees with `subject::matches` on every pair.
    #[test]
    fn agrees_with_subject_matches() {
        let filters = [
            "a", "b", "a.b", "*", "*.b", "a.*", "a.>", ">", "*.>", "*.*", "a.*.b", "b.>", "a.b.c",
        ];
        let subjects = [
            "a", "b", "a.b", "b.b", "a.a", "a.b.c", "a.a.b", "b.a.b", "c",
        ];
        let mut s = Sublist::new();
        for (i, f) in filters.iter().enumerate() {
            s.insert(f, None, i, *f).unwrap();
        }
        for subj in subjects {
            let mut got = s.matches(subj).plain;
            got.sort();
            let mut want: Vec<&str> = filters
                .iter()
                .copied()
                .filter(|f| subject::matches(f, subj))
                .collect();
            want.sort();
            assert_eq!(got, want, "{subj}");
        }
    }
}
