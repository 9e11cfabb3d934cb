//! Priority groups (ADR-42) on the consumer leader: which waiting pull
//! request a delivery serves. `overflow` serves a request that names
//! `min_pending` / `min_ack_pending` only while the consumer is that far
//! behind; `pinned_client` serves one client (the pin, sent in the
//! `Nats-Pin-Id` header) until it stops pulling for `priority_timeout`;
//! `prioritized` serves lower `priority` first.
//!
//! The pin is leader state, as in nats-server, not replicated: a new
//! leader pins afresh, and a client still holding the old id hears
//! `423 Nats-Wrong-Pin-Id` and pulls again without it. A pin only decides
//! which request gets a message; the deliveries themselves are committed
//! like any other, so losing a pin loses no promise.

use std::collections::VecDeque;

use jetraft_types::consumer::{ConsumerConfig, NextRequest, PriorityPolicy};

use super::status::{self, Out};
use super::{Led, Waiting};

/// A pull request's priority fields (only the JSON form has them).
#[derive(Debug, Clone, Default)]
pub(super) struct Prio {
    pub group: String,
    pub min_pending: i64,
    pub min_ack_pending: i64,
    pub id: String,
    pub priority: i64,
}

impl Prio {
    pub fn of(r: &NextRequest) -> Option<Self> {
        r.json.then(|| Self {
            group: r.group.clone(),
            min_pending: r.min_pending,
            min_ack_pending: r.min_ack_pending,
            id: r.id.clone(),
            priority: r.priority,
        })
    }
}

/// The client a `pinned_client` consumer serves.
#[derive(Debug, Clone)]
pub(super) struct Pin {
    pub id: String,
    pub group: String,
    pub since_ns: i64,
    /// Unpinned if no request carrying the id comes by then.
    pub deadline_ns: i64,
}

/// nats-server's refusals of a request's priority fields, in its order.
pub(super) fn refusal(cfg: &ConsumerConfig, p: Option<&Prio>) -> Option<&'static str> {
    let p = p?;
    let policy = cfg.priority_policy;
    if (p.min_pending != 0 || p.min_ack_pending != 0) && policy != PriorityPolicy::Overflow {
        return Some("400 Bad Request - Not a Overflow Priority consumer");
    }
    if !p.id.is_empty() && policy != PriorityPolicy::PinnedClient {
        return Some("400 Bad Request - Not a Pinned Client Priority consumer");
    }
    if !(0..=9).contains(&p.priority) {
        return Some("400 Bad Request - Priority must be between 0 and 9");
    }
    if policy != PriorityPolicy::None {
        if p.group.is_empty() {
            return Some("400 Bad Request - Priority Group missing");
        }
        if !cfg.priority_groups.contains(&p.group) {
            return Some("400 Bad Request - Invalid Priority Group");
        }
    }
    None
}

/// A request naming the current pin keeps it; one naming another id is
/// refused (`Err`).
pub(super) fn touch_pin(led: &mut Led, p: Option<&Prio>, now: i64) -> Result<(), &'static str> {
    let (Some(pin), Some(p)) = (led.pin.as_mut(), p) else {
        return Ok(());
    };
    if p.id == pin.id {
        pin.deadline_ns = now.saturating_add(led.config.pinned_ttl);
        Ok(())
    } else if p.id.is_empty() {
        Ok(())
    } else {
        Err("423 Nats-Pin-Id mismatch")
    }
}

/// Queues a request: by priority (first come first within one) for a
/// `prioritized` consumer, else last.
pub(super) fn enqueue(waiting: &mut VecDeque<Waiting>, w: Waiting, prioritized: bool) {
    let rank = |w: &Waiting| w.prio.as_ref().map_or(i64::from(i32::MAX), |p| p.priority);
    if !prioritized {
        waiting.push_back(w);
        return;
    }
    let at = waiting
        .iter()
        .position(|x| rank(x) > rank(&w))
        .unwrap_or(waiting.len());
    waiting.insert(at, w);
}

/// The consumer's counts a choice depends on.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    /// Matching messages not delivered yet.
    pub num_pending: u64,
    /// Delivered and not acknowledged.
    pub ack_pending: u64,
}

/// The request the next delivery serves, and at most how many messages
/// it may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Choice {
    pub id: u64,
    pub cap: Option<u64>,
    /// A pin was just given to this request (its deadline timer is due).
    pub pinned: bool,
}

/// Picks the request the next delivery serves. Requests carrying a stale
/// pin are answered `423` and dropped; when no request may be served, the
/// no-wait ones that were passed over hear `404`. `has_work`: something
/// could be delivered now (a pin is only given with a message).
pub(super) fn choose(
    led: &mut Led,
    counts: Counts,
    has_work: bool,
    now: i64,
    sends: &mut Vec<Out>,
) -> Option<Choice> {
    let policy = led.config.priority_policy;
    let mut passed = false;
    let mut i = 0;
    while i < led.waiting.len() {
        let w = &led.waiting[i];
        let id = w.prio.as_ref().map_or("", |p| p.id.as_str());
        match policy {
            PriorityPolicy::PinnedClient => match &led.pin {
                None if !has_work => {
                    return Some(Choice {
                        id: w.id,
                        cap: None,
                        pinned: false,
                    });
                }
                None if id.is_empty() => {
                    let group = w.prio.as_ref().map(|p| p.group.clone());
                    let wid = w.id;
                    let pinned = group.filter(|g| !g.is_empty()).is_some_and(|g| {
                        let pin = Pin {
                            id: pin_id(led, wid, now),
                            group: g,
                            since_ns: now,
                            deadline_ns: now.saturating_add(led.config.pinned_ttl),
                        };
                        sends.push(status::pinned(led, &pin, now));
                        led.pin = Some(pin);
                        true
                    });
                    return Some(Choice {
                        id: wid,
                        cap: None,
                        pinned,
                    });
                }
                Some(pin) if id == pin.id => {
                    return Some(Choice {
                        id: w.id,
                        cap: None,
                        pinned: false,
                    });
                }
                Some(_) if id.is_empty() => {
                    passed = true;
                    i += 1;
                }
                _ => {
                    sends.push(Out::with_pending(led, w, status::WRONG_PIN_ID));
                    led.waiting.remove(i);
                }
            },
            PriorityPolicy::Overflow => match overflow_cap(w, counts) {
                Some(cap) => {
                    return Some(Choice {
                        id: w.id,
                        cap,
                        pinned: false,
                    });
                }
                None => {
                    passed = true;
                    i += 1;
                }
            },
            _ => {
                return Some(Choice {
                    id: w.id,
                    cap: None,
                    pinned: false,
                });
            }
        }
    }
    if passed {
        led.end_no_wait(sends);
    }
    None
}

/// Whether an overflow request may be served now (`Some`), and how many
/// messages it may take: while `num_pending` stays at or above its
/// `min_pending`, or without bound once `min_ack_pending` is reached.
fn overflow_cap(w: &Waiting, c: Counts) -> Option<Option<u64>> {
    let Some(p) = &w.prio else {
        return Some(None);
    };
    if p.min_pending <= 0 && p.min_ack_pending <= 0 {
        return Some(None);
    }
    if p.min_ack_pending > 0 && p.min_ack_pending as u64 <= c.ack_pending {
        return Some(None);
    }
    if p.min_pending > 0 && p.min_pending as u64 <= c.num_pending {
        return Some(Some(c.num_pending - p.min_pending as u64 + 1));
    }
    None
}

/// A pin id: 22 characters like nats-server's nuid, from the leader's
/// state so the simulation replays it.
fn pin_id(led: &Led, request: u64, now: i64) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&led.stream, &led.name, led.term).hash(&mut h);
    let a = jetraft_stream::consumer::ephemeral_name(h.finish());
    let b = jetraft_stream::consumer::ephemeral_name(request);
    let c = jetraft_stream::consumer::ephemeral_name(now as u64);
    let mut id = a + &b + &c;
    id.truncate(22);
    id
}

/// Drops the pin (`UNPIN`, or its timeout): the `UNPINNED` advisory.
pub(super) fn unpin(led: &mut Led, reason: &str, now: i64) -> Option<Out> {
    let pin = led.pin.take()?;
    Some(status::unpinned(led, &pin.group, reason, now))
}
