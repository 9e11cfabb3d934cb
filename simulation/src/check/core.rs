//! Core NATS across nodes (`crate::core`): at most once and in order per
//! publisher on each subscriber connection, only what was published, a
//! queue group's message to one member cluster-wide, and after the final
//! heal every subscriber hears every publisher.

use std::collections::{BTreeMap, BTreeSet};

use super::Final;
use crate::core::{FINAL_MSGS, subscriber};
use crate::history::History;

pub fn check(history: &History, fin: &Final) -> Vec<String> {
    let mut out = Vec::new();
    let published: BTreeSet<(usize, u64)> = history
        .core_pubs
        .iter()
        .map(|p| (p.publisher, p.seq))
        .collect();
    // (connection, subject prefix, publisher) -> last seq seen.
    let mut last: BTreeMap<(&str, &str, usize), u64> = BTreeMap::new();
    let mut queue_deliveries: BTreeMap<(usize, u64), &str> = BTreeMap::new();
    // final subscriber (all its connections) -> publisher -> seqs.
    let mut finals: BTreeMap<&str, BTreeMap<usize, BTreeSet<u64>>> = BTreeMap::new();
    for m in &history.core_msgs {
        let Some((p, seq)) = m.sent else {
            out.push(format!(
                "core: {} got {} with a payload nobody sent",
                m.conn, m.subject
            ));
            continue;
        };
        let prefix = m.subject.rsplit_once('.').map_or("", |(a, _)| a);
        if m.subject != format!("{prefix}.{p}") {
            out.push(format!(
                "core: {} got publisher {p}'s message on {}",
                m.conn, m.subject
            ));
        }
        if prefix == "final" {
            let sub = m.conn.rsplit_once('x').map_or(m.conn.as_str(), |(s, _)| s);
            finals
                .entry(sub)
                .or_default()
                .entry(p)
                .or_default()
                .insert(seq);
        } else if !published.contains(&(p, seq)) {
            out.push(format!(
                "core: {} got {}:{seq}, which was never published",
                m.conn, m.subject
            ));
        }
        let at = last.entry((m.conn.as_str(), prefix, p)).or_insert(0);
        if seq <= *at {
            out.push(format!(
                "core: {} got {}:{seq} after {}:{} (a duplicate or out of order)",
                m.conn, m.subject, m.subject, *at
            ));
        }
        *at = (*at).max(seq);
        if m.queue
            && let Some(first) = queue_deliveries.insert((p, seq), m.conn.as_str())
        {
            out.push(format!(
                "core: queue group message {p}:{seq} delivered to {first} and to {}",
                m.conn
            ));
        }
    }
    let nodes = fin.replicas.len();
    if history.core_final_pubs.len() != nodes {
        out.push(format!(
            "core: only publishers {:?} sent the final messages after the heal",
            history.core_final_pubs
        ));
    }
    for idx in 0..nodes {
        let sub = subscriber(idx);
        for p in &history.core_final_pubs {
            let got = finals
                .get(sub.as_str())
                .and_then(|f| f.get(p))
                .map_or(0, BTreeSet::len);
            if got as u64 != FINAL_MSGS {
                out.push(format!(
                    "core: after the final heal {sub} heard {got} of publisher {p}'s \
                     {FINAL_MSGS} messages (interest lost or stale)"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::{CoreMsg, CorePub};

    fn msg(conn: &str, subject: &str, queue: bool, p: usize, seq: u64) -> CoreMsg {
        CoreMsg {
            conn: conn.into(),
            subject: subject.into(),
            queue,
            sent: Some((p, seq)),
            at: Duration::ZERO,
        }
    }

    /// Every subscriber of `nodes` hearing every final message.
    pub(crate) fn finals(nodes: usize) -> Vec<CoreMsg> {
        let mut out = Vec::new();
        for sub in 0..nodes {
            for p in 0..nodes {
                for seq in 1..=FINAL_MSGS {
                    out.push(msg(
                        &format!("csub{sub}x1"),
                        &format!("final.{p}"),
                        false,
                        p,
                        seq,
                    ));
                }
            }
        }
        out
    }

    fn two_nodes() -> Final {
        Final {
            replicas: [("n1".into(), None), ("n2".into(), None)].into(),
            ..Final::default()
        }
    }

    fn history(msgs: Vec<CoreMsg>) -> History {
        let mut core_msgs = finals(2);
        core_msgs.extend(msgs);
        History {
            core_pubs: (1..=3)
                .map(|seq| CorePub {
                    publisher: 0,
                    seq,
                    at: Duration::ZERO,
                })
                .collect(),
            core_msgs,
            core_final_pubs: vec![0, 1],
            ..History::default()
        }
    }

    #[test]
    fn in_order_once_passes() {
        let h = history(vec![
            msg("csub1x1", "core.p.0", false, 0, 1),
            msg("csub1x1", "core.p.0", false, 0, 3),
            msg("csub1x2", "core.p.0", false, 0, 2),
            msg("csub0x1", "core.q.0", true, 0, 1),
            msg("csub1x1", "core.q.0", true, 0, 2),
        ]);
        assert_eq!(check(&h, &two_nodes()), Vec::<String>::new());
    }

    #[test]
    fn duplicates_reorders_strangers_and_double_queue_deliveries_are_caught() {
        let h = history(vec![
            msg("csub1x1", "core.p.0", false, 0, 2),
            msg("csub1x1", "core.p.0", false, 0, 1),
            msg("csub1x1", "core.p.0", false, 0, 9),
            msg("csub1x1", "core.p.1", false, 0, 3),
            msg("csub0x1", "core.q.0", true, 0, 1),
            msg("csub1x1", "core.q.0", true, 0, 1),
        ]);
        let v = check(&h, &two_nodes());
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("never published")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("on core.p.1")), "{v:?}");
        assert!(
            v.iter()
                .any(|v| v.contains("delivered to csub0x1 and to csub1x1")),
            "{v:?}"
        );
    }

    #[test]
    fn a_missed_final_message_is_lost_interest() {
        let mut h = history(Vec::new());
        h.core_msgs
            .retain(|m| !(m.conn == "csub1x1" && m.subject == "final.0" && m.sent == Some((0, 4))));
        let v = check(&h, &two_nodes());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("csub1 heard 9 of publisher 0's"), "{v:?}");
    }
}
