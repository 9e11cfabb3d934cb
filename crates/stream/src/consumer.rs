//! Consumers inside the stream's state machine (ARCHITECTURE decision 41):
//! what each has delivered, what is acknowledged, what is pending with its
//! delivery count. Applied identically on every replica, so a new leader
//! knows exactly what the old one delivered and what was acknowledged.
//!
//! Which messages a delivery takes is decided here, at apply, from the
//! replica's own store: the leader proposes "deliver up to N" and sends
//! what the applied command chose. A delivery therefore goes out only
//! once it is committed (nothing a client saw is unknown to the next
//! leader), and an acknowledgement is answered only once committed.

use std::collections::{BTreeMap, VecDeque};

use jetraft_types::consumer::{AckPolicy, ConsumerConfig, DeliverPolicy};
use jetraft_types::{ApiError, StoredMessage};
use serde::{Deserialize, Serialize};

use crate::overlay::Overlay;
use crate::reader::ReadError;

/// Messages one delivery may examine for a filter before it stops
/// (bounds an apply on a large stream whose filter matches little).
pub const DELIVER_SCAN_LIMIT: usize = 100_000;

/// A delivered message not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMsg {
    /// Consumer sequence of its first delivery.
    pub cseq: u64,
    /// Times delivered so far.
    pub deliveries: u64,
    /// Leader time of the last delivery, Unix ns.
    pub ts_ns: i64,
}

/// One consumer's replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub name: String,
    pub config: ConsumerConfig,
    pub created_ns: i64,
    /// Next stream sequence to look at for new messages.
    pub next_sseq: u64,
    /// Last consumer sequence handed out (every delivery, redeliveries too).
    pub delivered_cseq: u64,
    /// Leader time of the last delivery.
    pub last_delivered_ns: i64,
    pub ack_floor_cseq: u64,
    pub ack_floor_sseq: u64,
    pub last_ack_ns: i64,
    /// Delivered and unacknowledged, by stream sequence.
    pub pending: BTreeMap<u64, PendingMsg>,
    /// `last_per_subject`: the sequences to deliver first (`next_sseq`
    /// is the first of them, as nats-server reports it), then new ones
    /// from `initial_end`.
    pub initial: VecDeque<u64>,
    #[serde(default)]
    pub initial_end: u64,
    /// Matching messages at or after `next_sseq` (derived; recounted on
    /// load).
    #[serde(skip)]
    pub num_pending: u64,
}

/// One message a delivery hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub msg: StoredMessage,
    pub cseq: u64,
    pub deliveries: u64,
    /// Matching messages left after this one (`num_pending`).
    pub pending: u64,
}

/// What a `Deliver` command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub deliveries: Vec<Delivery>,
    /// Messages that reached `max_deliver` and were dropped from pending
    /// (stream seq, deliveries), for the MAX_DELIVERIES advisory.
    pub exhausted: Vec<(u64, u64)>,
    /// A message did not fit the request's `max_bytes` (its size), so the
    /// request is done.
    pub too_large: Option<u64>,
    /// More messages could be delivered now (the batch was the limit).
    pub more: bool,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    /// Messages left the pending set.
    pub retired: bool,
    /// It may be answered: it retired the latest delivery (or the consumer
    /// takes no acks).
    pub confirmed: bool,
}

/// The kind of an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckOp {
    Ack,
    Term,
}

impl Consumer {
    pub(crate) fn new(
        name: String,
        config: ConsumerConfig,
        created_ns: i64,
        ov: &Overlay<'_>,
        first_seq: u64,
        last_seq: u64,
    ) -> Result<Self, ReadError> {
        let mut c = Self {
            name,
            config,
            created_ns,
            next_sseq: first_seq.max(1),
            delivered_cseq: 0,
            last_delivered_ns: 0,
            ack_floor_cseq: 0,
            ack_floor_sseq: 0,
            last_ack_ns: 0,
            pending: BTreeMap::new(),
            initial: VecDeque::new(),
            initial_end: 0,
            num_pending: 0,
        };
        c.next_sseq = c.start_seq(ov, first_seq, last_seq)?;
        c.ack_floor_sseq = c.next_sseq.saturating_sub(1);
        c.recount(ov, last_seq)?;
        Ok(c)
    }

    /// Where delivery starts (nats-server `selectStartingSeqNo`).
    fn start_seq(&mut self, ov: &Overlay<'_>, first: u64, last: u64) -> Result<u64, ReadError> {
        let cfg = &self.config;
        let first = first.max(1);
        Ok(match cfg.deliver_policy {
            DeliverPolicy::All => first,
            DeliverPolicy::New => last + 1,
            DeliverPolicy::ByStartSequence => cfg.opt_start_seq.max(first).min(last + 1),
            DeliverPolicy::ByStartTime => {
                let t = cfg.opt_start_time.unwrap_or(0);
                let mut seq = last + 1;
                let mut next = ov.next_seq(first)?;
                // Binary search would need random access by time; a
                // forward walk stops at the first message at or after t.
                while let Some(s) = next {
                    if ov.message(s)?.is_some_and(|m| m.time_ns >= t) {
                        seq = s;
                        break;
                    }
                    next = ov.next_seq(s + 1)?;
                }
                seq
            }
            DeliverPolicy::Last => {
                let filters = cfg.filters();
                let mut best = None;
                if filters.is_empty() {
                    best = (last >= first).then_some(last);
                } else {
                    for f in &filters {
                        best = best.max(ov.last_seq_matching(f)?);
                    }
                }
                best.unwrap_or(last + 1)
            }
            DeliverPolicy::LastPerSubject => {
                let mut seqs = Vec::new();
                for f in cfg.filters() {
                    for subj in ov.subjects_matching(&f)? {
                        if let Some(s) = ov.last_seq_matching(&subj)? {
                            seqs.push(s);
                        }
                    }
                }
                seqs.sort_unstable();
                seqs.dedup();
                self.initial = seqs.into_iter().collect();
                self.initial_end = last + 1;
                self.initial.front().copied().unwrap_or(last + 1)
            }
        })
    }

    /// Counts the matching messages from `next_sseq` on (plus those still
    /// to deliver from `initial`).
    pub(crate) fn recount(&mut self, ov: &Overlay<'_>, last_seq: u64) -> Result<(), ReadError> {
        let mut n = self.initial.len() as u64;
        let mut next = ov.next_seq(self.cursor())?;
        while let Some(s) = next {
            if s > last_seq {
                break;
            }
            if let Some(m) = ov.message(s)?
                && self.config.wants(&m.subject)
            {
                n += 1;
            }
            next = ov.next_seq(s + 1)?;
        }
        self.num_pending = n;
        Ok(())
    }

    fn acks(&self) -> bool {
        self.config.ack_policy != AckPolicy::None
    }

    /// Room for new deliveries under `max_ack_pending`.
    fn ack_room(&self) -> usize {
        if !self.acks() || self.config.max_ack_pending <= 0 {
            return usize::MAX;
        }
        (self.config.max_ack_pending as usize).saturating_sub(self.pending.len())
    }

    /// Whether more could be delivered right now.
    pub fn has_deliverable(&self) -> bool {
        self.num_pending > 0 && self.ack_room() > 0
    }

    /// Hands out up to `batch` messages (and at most `max_bytes` of them,
    /// 0: no limit): the `redeliver` sequences that are still pending
    /// first, then new ones.
    pub(crate) fn deliver(
        &mut self,
        ov: &Overlay<'_>,
        stream: &str,
        now_ns: i64,
        batch: usize,
        max_bytes: u64,
        redeliver: &[u64],
    ) -> Result<Delivered, ReadError> {
        let mut out = Delivered::default();
        let mut bytes = 0u64;
        // As nats-server counts it: the delivery's reply (ack) subject too.
        let ack_len =
            (jetraft_types::consumer::ACK_PREFIX.len() + stream.len() + self.name.len()) as u64;
        let size = |m: &StoredMessage, dc: u64, cseq: u64, pending: u64| {
            message_size(m)
                + ack_len
                + digits(dc)
                + digits(m.seq)
                + digits(cseq)
                + digits(m.time_ns.max(0) as u64)
                + digits(pending)
                + 6
        };
        let fits = |bytes: u64, n: u64| max_bytes == 0 || bytes + n <= max_bytes;
        for &sseq in redeliver {
            if out.deliveries.len() >= batch {
                out.more = true;
                break;
            }
            let Some(p) = self.pending.get(&sseq) else {
                continue;
            };
            let max = self.config.max_deliver;
            if max > 0 && p.deliveries >= max as u64 {
                out.exhausted.push((sseq, p.deliveries));
                self.pending.remove(&sseq);
                self.refresh_ack_floor();
                continue;
            }
            let Some(msg) = ov.message(sseq)? else {
                // Gone from the stream (limits, purge, delete).
                self.pending.remove(&sseq);
                self.refresh_ack_floor();
                continue;
            };
            let n = size(
                &msg,
                p.deliveries + 1,
                self.delivered_cseq + 1,
                self.num_pending,
            );
            if !fits(bytes, n) {
                out.too_large = Some(n);
                break;
            }
            bytes += n;
            self.delivered_cseq += 1;
            self.last_delivered_ns = now_ns;
            let p = self.pending.entry(sseq).or_insert(PendingMsg {
                cseq: self.delivered_cseq,
                deliveries: 0,
                ts_ns: now_ns,
            });
            p.deliveries += 1;
            p.ts_ns = now_ns;
            let deliveries = p.deliveries;
            out.deliveries.push(Delivery {
                msg,
                cseq: self.delivered_cseq,
                deliveries,
                pending: self.num_pending,
            });
        }
        let mut scanned = 0usize;
        while out.deliveries.len() < batch && self.ack_room() > 0 && out.too_large.is_none() {
            let Some(msg) = self.next_new(ov, &mut scanned)? else {
                break;
            };
            let n = size(
                &msg,
                1,
                self.delivered_cseq + 1,
                self.num_pending.saturating_sub(1),
            );
            if !fits(bytes, n) {
                out.too_large = Some(n);
                break;
            }
            bytes += n;
            self.take_new(&msg, now_ns);
            out.deliveries.push(Delivery {
                cseq: self.delivered_cseq,
                deliveries: 1,
                pending: self.num_pending,
                msg,
            });
        }
        if out.deliveries.len() >= batch && self.has_deliverable() {
            out.more = true;
        }
        Ok(out)
    }

    /// The next new message to deliver, without taking it.
    fn next_new(
        &mut self,
        ov: &Overlay<'_>,
        scanned: &mut usize,
    ) -> Result<Option<StoredMessage>, ReadError> {
        while let Some(&seq) = self.initial.front() {
            match ov.message(seq)? {
                Some(m) => return Ok(Some(m)),
                None => {
                    self.pop_initial();
                    self.num_pending = self.num_pending.saturating_sub(1);
                }
            }
        }
        let mut next = ov.next_seq(self.next_sseq)?;
        while let Some(s) = next {
            *scanned += 1;
            if *scanned > DELIVER_SCAN_LIMIT {
                return Ok(None);
            }
            match ov.message(s)? {
                Some(m) if self.config.wants(&m.subject) => return Ok(Some(m)),
                _ => {
                    // Nothing for this consumer below s + 1.
                    self.next_sseq = s + 1;
                }
            }
            next = ov.next_seq(s + 1)?;
        }
        Ok(None)
    }

    fn take_new(&mut self, msg: &StoredMessage, now_ns: i64) {
        if self.initial.front() == Some(&msg.seq) {
            self.pop_initial();
        } else {
            self.next_sseq = msg.seq + 1;
        }
        self.num_pending = self.num_pending.saturating_sub(1);
        self.delivered_cseq += 1;
        self.last_delivered_ns = now_ns;
        if self.acks() {
            self.pending.insert(
                msg.seq,
                PendingMsg {
                    cseq: self.delivered_cseq,
                    deliveries: 1,
                    ts_ns: now_ns,
                },
            );
        } else {
            self.ack_floor_cseq = self.delivered_cseq;
            self.ack_floor_sseq = msg.seq;
        }
    }

    /// Applies an acknowledgement of `sseq`'s delivery number `deliveries`
    /// (from its ack subject). Only the ack of a message's latest delivery
    /// counts: one of a delivery a redelivery superseded changes nothing,
    /// and neither does one of a message no longer pending. So an ack that
    /// retires a message may be confirmed: no newer copy of it exists or
    /// ever will (decision 41). Returns whether it retired the message.
    pub fn ack(&mut self, sseq: u64, deliveries: u64, op: AckOp, now_ns: i64) -> Acked {
        if self.config.ack_policy == AckPolicy::None {
            return Acked {
                retired: false,
                confirmed: true,
            };
        }
        let latest = self
            .pending
            .get(&sseq)
            .is_some_and(|p| deliveries >= p.deliveries);
        if !latest {
            return Acked {
                retired: false,
                confirmed: false,
            };
        }
        match (self.config.ack_policy, op) {
            (AckPolicy::All, AckOp::Ack) => {
                self.pending = self.pending.split_off(&(sseq + 1));
            }
            _ => {
                self.pending.remove(&sseq);
            }
        }
        self.last_ack_ns = now_ns;
        self.refresh_ack_floor();
        Acked {
            retired: true,
            confirmed: true,
        }
    }

    /// Ack floor: just below the oldest pending delivery, else everything
    /// delivered.
    fn refresh_ack_floor(&mut self) {
        match self.pending.iter().next() {
            Some((sseq, p)) => {
                self.ack_floor_sseq = sseq.saturating_sub(1);
                self.ack_floor_cseq = p.cseq.saturating_sub(1);
            }
            None => {
                self.ack_floor_cseq = self.delivered_cseq;
                self.ack_floor_sseq = self.delivered_sseq();
            }
        }
    }

    /// Where new messages are looked for: after the last-per-subject
    /// list while one is left.
    fn cursor(&self) -> u64 {
        if self.initial.is_empty() {
            self.next_sseq
        } else {
            self.initial_end
        }
    }

    fn pop_initial(&mut self) {
        self.initial.pop_front();
        self.next_sseq = self.initial.front().copied().unwrap_or(self.initial_end);
    }

    /// `delivered.stream_seq` as nats-server reports it.
    pub fn delivered_sseq(&self) -> u64 {
        self.next_sseq.saturating_sub(1)
    }

    /// `num_redelivered`: pending messages delivered more than once.
    pub fn num_redelivered(&self) -> u64 {
        self.pending.values().filter(|p| p.deliveries > 1).count() as u64
    }

    /// Whether this consumer still needs `seq` (interest retention): it
    /// wants the subject and has not acknowledged it.
    pub fn needs(&self, seq: u64, subj: &str) -> bool {
        if !self.config.wants(subj) {
            return false;
        }
        seq >= self.cursor() || self.pending.contains_key(&seq) || self.initial.contains(&seq)
    }

    /// A message was stored.
    pub(crate) fn on_stored(&mut self, subj: &str) {
        if self.config.wants(subj) {
            self.num_pending += 1;
        }
    }

    /// A message was removed from the stream.
    pub(crate) fn on_removed(&mut self, seq: u64, subj: &str) {
        if seq >= self.cursor() && self.config.wants(subj) {
            self.num_pending = self.num_pending.saturating_sub(1);
        }
    }

    /// The stream now starts at `first`: nothing below it exists.
    pub(crate) fn on_purged(
        &mut self,
        ov: &Overlay<'_>,
        first: u64,
        last: u64,
    ) -> Result<(), ReadError> {
        if self.next_sseq < first {
            self.next_sseq = first;
        }
        self.initial.retain(|s| *s >= first);
        match self.initial.front() {
            Some(f) => self.next_sseq = *f,
            None => self.next_sseq = self.next_sseq.max(self.initial_end),
        }
        let gone: Vec<u64> = self
            .pending
            .keys()
            .copied()
            .filter(|s| *s < first)
            .collect();
        for s in gone {
            self.pending.remove(&s);
        }
        if self.ack_floor_sseq + 1 < first {
            self.ack_floor_sseq = first - 1;
        }
        if self.pending.is_empty() {
            self.refresh_ack_floor();
        }
        self.recount(ov, last)
    }

    /// `CONSUMER.RESET`: starts over at `seq` (default: just above the ack
    /// floor), nothing pending, consumer sequences from 1 again. Returns
    /// the sequence it starts at.
    pub(crate) fn reset(
        &mut self,
        ov: &Overlay<'_>,
        seq: Option<u64>,
        last_seq: u64,
    ) -> Result<u64, ReadError> {
        let at = seq.unwrap_or(self.ack_floor_sseq + 1).max(1);
        self.pending.clear();
        self.initial.clear();
        self.next_sseq = at;
        self.delivered_cseq = 0;
        self.last_delivered_ns = 0;
        self.ack_floor_cseq = 0;
        self.ack_floor_sseq = at - 1;
        self.last_ack_ns = 0;
        self.recount(ov, last_seq)?;
        Ok(at)
    }

    /// Checks a create-or-update request against this consumer.
    pub fn update(&mut self, config: ConsumerConfig) -> Result<(), ApiError> {
        self.config
            .check_update(&config)
            .map_err(|e| ApiError::new(500, 10012, e))?;
        self.config = config;
        Ok(())
    }
}

fn digits(n: u64) -> u64 {
    n.checked_ilog10().map_or(1, |d| u64::from(d) + 1)
}

/// Bytes of a message's subject, headers and payload (a pull request's
/// `max_bytes` also counts the ack subject).
pub fn message_size(m: &StoredMessage) -> u64 {
    (m.subject.len() + m.headers.as_ref().map_or(0, |h| h.len()) + m.payload.len()) as u64
}

/// A deterministic ephemeral name (8 characters of `[A-Za-z0-9]`) from the
/// stream's state at apply, the same on every replica.
pub fn ephemeral_name(seed: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = String::with_capacity(jetraft_types::consumer::EPHEMERAL_NAME_LEN);
    for _ in 0..jetraft_types::consumer::EPHEMERAL_NAME_LEN {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push(ALPHABET[(z % ALPHABET.len() as u64) as usize] as char);
    }
    out
}
