//! Consumer leaders at run time: what is not replicated because a leader
//! change may lose it without breaking a promise (decision 41) — the
//! waiting pull requests, which pending messages are due again, `+WPI`
//! and `-NAK` delays — and the one timer structure of the node that
//! drives ack-wait redelivery, pull request expiry and heartbeats. A
//! consumer nobody pulls from and with nothing pending costs no task, no
//! timer and no memory here.
//!
//! Deliveries are decided by the stream machine at apply
//! ([`jetraft_stream::consumer`]); this module proposes them, and sends
//! what the applied command chose to the pull request's inbox.

mod pace;
mod priority;
mod pull;
mod push;
mod status;

pub(crate) use pull::{ack, flow_control, pull};
pub(crate) use push::FC_PREFIX;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use jetraft_raft::GroupId;
use jetraft_stream::consumer::Delivered;
use jetraft_stream::{StreamCommand, StreamReply};
use jetraft_types::ApiError;
use jetraft_types::consumer::{
    AckPolicy, AckSubject, ConsumerConfig, PriorityPolicy, ReplayPolicy,
};
use tokio::sync::Notify;

use crate::batcher::{Answer, Reply};
use crate::cluster::Cluster;
use status::Out;

/// Where pull requests go (`+NXT` acks become one).
pub(crate) const CONSUMER_NEXT: &str = "$JS.API.CONSUMER.MSG.NEXT.";

/// How often a node that holds waiting pull requests checks that it still
/// leads their streams (a deposed leader tells its waiters, 409).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

type Key = (GroupId, String);

/// The node's consumer runtime.
#[derive(Default)]
pub struct Consumers {
    state: Mutex<State>,
    wake: Notify,
    cluster: OnceLock<Weak<Cluster>>,
}

#[derive(Default)]
struct State {
    led: BTreeMap<Key, Led>,
    /// Deadline (Unix ns), a tie-breaker, what to do.
    timers: BTreeSet<(i64, u64, Timer)>,
    next_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A pull request's `expires`.
    Expire { key: Key, id: u64 },
    /// A pull request's `idle_heartbeat`.
    Heartbeat { key: Key, id: u64 },
    /// The ack wait of a delivery ran out.
    Redeliver {
        key: Key,
        sseq: u64,
        deliveries: u64,
    },
    /// A `-NAK` delay ran out.
    Nak { key: Key, sseq: u64 },
    /// A push consumer's idle heartbeat.
    PushHeartbeat { key: Key },
    /// A consumer's pause ran out.
    Resume { key: Key },
    /// A pinned client's `priority_timeout` may have run out.
    Unpin { key: Key },
    /// A consumer's pause ends: its `PAUSE` advisory.
    PauseEnd {
        key: Key,
        account: String,
        stream: String,
        until: i64,
    },
    /// Held deliveries (replay original, rate limit) are due.
    Release { key: Key },
    /// Once a second: leaderships gained and lost, push consumers that got
    /// a listener, consumers inactive past their threshold.
    Sweep,
}

/// A consumer this node leads, while it has something to do.
struct Led {
    account: String,
    stream: String,
    /// The consumer's name.
    name: String,
    config: ConsumerConfig,
    /// The leader term it was loaded in: a new term loads it again.
    term: u64,
    waiting: VecDeque<Waiting>,
    /// Pending messages whose ack wait ran out (or were nak'd).
    due: BTreeSet<u64>,
    /// A delivery is being proposed.
    busy: bool,
    /// Something became due, or messages were stored, while a delivery
    /// was being proposed: go again when it returns, whatever it
    /// delivered (it may have been decided before the change).
    changed_meanwhile: bool,
    /// `+WPI`: not due before this time.
    progress: BTreeMap<u64, i64>,
    /// Push consumers: where deliveries go, flow control.
    push: Option<push::Push>,
    /// Last delivery, pull request or listener seen (`inactive_threshold`).
    last_active_ns: i64,
    /// Delivered consumer and stream sequence (for heartbeats).
    last: (u64, u64),
    /// A `pinned_client` consumer's pin.
    pin: Option<priority::Pin>,
    /// When deliveries go out (replay original, rate limit).
    pace: pace::Pace,
    /// Deliveries held back until their time, in order.
    held: VecDeque<(i64, Out)>,
}

impl Led {
    /// The no-wait requests can have nothing now: they hear `404`.
    fn end_no_wait(&mut self, sends: &mut Vec<Out>) {
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].no_wait {
                sends.push(Out::status(
                    self,
                    &self.waiting[i].reply,
                    status::NO_MESSAGES,
                ));
                self.waiting.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// The pending message `sseq` is to be delivered again.
    fn make_due(&mut self, sseq: u64) {
        self.due.insert(sseq);
        self.changed_meanwhile |= self.busy;
    }

    /// Whether the runtime must keep it loaded while nothing happens: a
    /// push consumer delivers when messages come, an ephemeral one goes
    /// when inactive.
    fn keep(&self) -> bool {
        !self.waiting.is_empty()
            || !self.due.is_empty()
            || self.busy
            || self.push.is_some()
            || self.pin.is_some()
            || !self.held.is_empty()
            || self.config.inactive_threshold > 0
    }
}

/// A pull request waiting for messages.
struct Waiting {
    id: u64,
    reply: String,
    left: u64,
    /// `max_bytes` budget left, if the request set one.
    bytes_left: Option<u64>,
    delivered: u64,
    no_wait: bool,
    /// `no_wait` with an expiry: it waits for a first message, then ends
    /// (`404`) as soon as nothing more is there.
    one_shot: bool,
    heartbeat_ns: i64,
    /// The priority fields of a JSON request.
    prio: Option<priority::Prio>,
}

impl Consumers {
    /// Starts the node's timer task.
    pub(crate) fn start(cluster: &Arc<Cluster>) -> tokio::task::JoinHandle<()> {
        let me = cluster.consumers_arc();
        let _ = me.cluster.set(Arc::downgrade(cluster));
        push_timer(
            &mut me.lock(),
            cluster.now_ns() + SWEEP_INTERVAL.as_nanos() as i64,
            Timer::Sweep,
        );
        tokio::spawn(me.run())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cluster(&self) -> Option<Arc<Cluster>> {
        self.cluster.get().and_then(Weak::upgrade)
    }

    /// Pull requests waiting on the consumer (for `CONSUMER.INFO`).
    pub(crate) fn num_waiting(&self, group: GroupId, name: &str) -> u64 {
        self.lock()
            .led
            .get(&(group, name.to_string()))
            .map_or(0, |l| l.waiting.len() as u64)
    }

    /// The pinned client of a `pinned_client` consumer: its id and since
    /// when (for `CONSUMER.INFO`).
    pub(crate) fn pin(&self, group: GroupId, name: &str) -> Option<(String, i64)> {
        self.lock()
            .led
            .get(&(group, name.to_string()))
            .and_then(|l| l.pin.as_ref())
            .map(|p| (p.id.clone(), p.since_ns))
    }

    /// `CONSUMER.UNPIN`: drops the pin (the `UNPINNED` advisory, reason
    /// `admin`); the next request without an id gets a new one.
    pub(crate) fn unpin(&self, group: GroupId, name: &str) {
        let key: Key = (group, name.to_string());
        let Some(now) = self.cluster().map(|c| c.now_ns()) else {
            return;
        };
        let sends: Vec<Out> = {
            let mut st = self.lock();
            st.led
                .get_mut(&key)
                .and_then(|led| priority::unpin(led, "admin", now))
                .into_iter()
                .collect()
        };
        self.send(sends);
        self.pump(&key);
    }

    /// Whether a push consumer had a listener at the last look.
    pub(crate) fn push_bound(&self, group: GroupId, name: &str) -> bool {
        self.lock()
            .led
            .get(&(group, name.to_string()))
            .and_then(|l| l.push.as_ref())
            .is_some_and(|p| p.bound)
    }

    /// The consumer was created or updated: its config is read again, and
    /// a push consumer starts delivering.
    pub(crate) fn changed(&self, group: GroupId, account: &str, stream: &str, name: &str) {
        let key: Key = (group, name.to_string());
        {
            let mut st = self.lock();
            if let Some(led) = st.led.get_mut(&key) {
                led.term = u64::MAX;
            }
            if let Err(e) = self.ensure_led(&mut st, &key, account, stream) {
                tracing::debug!(error = %e, "consumer not loaded");
            }
        }
        self.pump(&key);
    }

    /// The consumer came (`created`) or went: its `CREATED` / `DELETED`
    /// advisory.
    pub(crate) fn announce(&self, account: &str, stream: &str, name: &str, created: bool) {
        let Some(now) = self.cluster().map(|c| c.now_ns()) else {
            return;
        };
        self.send(vec![status::action(account, stream, name, created, now)]);
    }

    /// This node handed over the group's leadership: its consumers' waiters
    /// hear `409 Leadership Change` now rather than at the next sweep.
    pub(crate) fn stepped_down(&self, group: GroupId) {
        let sends = {
            let mut st = self.lock();
            let keys: Vec<Key> = st
                .led
                .range((group, String::new())..)
                .take_while(|(k, _)| k.0 == group)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter()
                .filter_map(|k| st.led.remove(k))
                .flat_map(|led| status::to_all(&led, status::LEADERSHIP_CHANGE))
                .collect()
        };
        self.send(sends);
    }

    /// The consumer's `pause_until` changed (`PAUSE`, or a create or update
    /// with one): the `PAUSE` advisory now, and another when it ends.
    pub(crate) fn pause_changed(&self, at: (GroupId, &str, &str, &str), until: Option<i64>) {
        let (group, account, stream, name) = at;
        let Some(now) = self.cluster().map(|c| c.now_ns()) else {
            return;
        };
        self.send(vec![status::pause(account, stream, name, until, now)]);
        if let Some(t) = until.filter(|t| *t > now) {
            let timer = Timer::PauseEnd {
                key: (group, name.to_string()),
                account: account.to_string(),
                stream: stream.to_string(),
                until: t,
            };
            push_timer(&mut self.lock(), t, timer);
            self.wake.notify_one();
        }
    }

    /// The consumer is gone: its waiters hear so (409 Consumer Deleted).
    pub(crate) fn deleted(&self, group: GroupId, name: &str) {
        let sends = {
            let mut st = self.lock();
            match st.led.remove(&(group, name.to_string())) {
                Some(led) => status::to_all(&led, status::CONSUMER_DELETED),
                None => Vec::new(),
            }
        };
        self.send(sends);
    }

    /// New messages were stored in the group: waiting pulls may be served.
    pub(crate) fn stored(&self, group: GroupId) {
        let keys: Vec<Key> = {
            let mut st = self.lock();
            st.led
                .range_mut((group, String::new())..)
                .take_while(|(k, _)| k.0 == group)
                .filter(|(_, l)| !l.waiting.is_empty() || l.push.is_some())
                .filter_map(|(k, l)| {
                    l.changed_meanwhile |= l.busy;
                    (!l.busy).then(|| k.clone())
                })
                .collect()
        };
        for k in keys {
            self.pump(&k);
        }
    }

    /// Loads the consumer for this leadership if not loaded yet: every
    /// pending message gets its ack-wait deadline from the time it was
    /// delivered (by whichever leader delivered it).
    fn ensure_led(
        &self,
        st: &mut State,
        key: &Key,
        account: &str,
        stream: &str,
    ) -> Result<(), ApiError> {
        let cluster = self.cluster().ok_or_else(ApiError::cluster_not_avail)?;
        let g = cluster
            .host()
            .group(key.0)
            .ok_or_else(ApiError::cluster_not_avail)?;
        let term = g.metrics().vote.leader_id().term;
        if st.led.get(key).is_some_and(|l| l.term == term) {
            return Ok(());
        }
        let c =
            g.sm.consumer(&key.1)
                .ok_or_else(ApiError::consumer_not_found)?;
        let waiting = st.led.remove(key).map(|l| l.waiting).unwrap_or_default();
        let push = push::Push::of(&c.config);
        // Only a replay needs the stream's end (a view copies its config).
        let last_seq = match c.config.replay_policy {
            ReplayPolicy::Original => g.sm.stream_view().map_or(0, |v| v.state().last_seq),
            ReplayPolicy::Instant => 0,
        };
        let pace = pace::Pace::new(&c.config, last_seq);
        let last = (c.delivered_cseq, c.delivered_sseq());
        let now = cluster.now_ns();
        let mut due = BTreeSet::new();
        let inherit = !jetraft_types::bugs::enabled(jetraft_types::bugs::Bug::SkipRedelivery);
        if c.config.ack_policy != AckPolicy::None && inherit {
            for (sseq, p) in &c.pending {
                let at = p.ts_ns.saturating_add(ack_wait(&c.config, p.deliveries));
                if at <= now {
                    due.insert(*sseq);
                    continue;
                }
                push_timer(
                    st,
                    at,
                    Timer::Redeliver {
                        key: key.clone(),
                        sseq: *sseq,
                        deliveries: p.deliveries,
                    },
                );
            }
        }
        st.led.insert(
            key.clone(),
            Led {
                account: account.to_string(),
                stream: stream.to_string(),
                name: key.1.clone(),
                config: c.config,
                push,
                term,
                waiting,
                due,
                busy: false,
                changed_meanwhile: false,
                progress: BTreeMap::new(),
                last_active_ns: now,
                last,
                pin: None,
                pace,
                held: VecDeque::new(),
            },
        );
        if let Some(p) = st.led.get(key).and_then(|l| l.push.as_ref())
            && p.heartbeat_ns > 0
        {
            let at = now + p.heartbeat_ns;
            push_timer(st, at, Timer::PushHeartbeat { key: key.clone() });
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Proposes a delivery for the first waiting request (or, for a push
    /// consumer, for its listeners), unless one is in flight.
    fn pump(&self, key: &Key) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        let is_push = self
            .lock()
            .led
            .get(key)
            .is_some_and(|l| l.push.is_some() && !l.busy);
        if is_push && !self.push_ready(&cluster, key) {
            return;
        }
        if self.paused(&cluster, key) {
            return;
        }
        let Some(g) = cluster.host().group(key.0) else {
            self.lost(key, status::LEADERSHIP_CHANGE);
            return;
        };
        let now = cluster.now_ns();
        let mut sends = Vec::new();
        let chosen = {
            let mut st = self.lock();
            let Some(led) = st.led.get_mut(key) else {
                return;
            };
            if led.busy || !led.held.is_empty() {
                return;
            }
            let limits = match &led.push {
                // The window filled since the check above: nothing more
                // until flow control is answered.
                Some(p) if !p.may_send() => None,
                Some(p) => {
                    let (batch, bytes) = p.limits();
                    Some((batch, bytes, 0, false))
                }
                None => self.choose(&g, led, now, &mut sends),
            };
            match limits {
                None => None,
                Some((batch, max_bytes, id, pinned)) => {
                    let redeliver: Vec<u64> =
                        led.due.iter().copied().take(batch as usize).collect();
                    led.busy = true;
                    let cmd = StreamCommand::Deliver {
                        consumer: key.1.clone(),
                        batch,
                        max_bytes,
                        redeliver,
                    };
                    let unpin_at = led.pin.as_ref().map(|p| p.deadline_ns).filter(|_| pinned);
                    if let Some(at) = unpin_at {
                        push_timer(&mut st, at, Timer::Unpin { key: key.clone() });
                        self.wake.notify_one();
                    }
                    Some((cmd, id))
                }
            }
        };
        self.send(sends);
        let Some((cmd, id)) = chosen else {
            return;
        };
        let me = cluster.consumers_arc();
        let k = key.clone();
        cluster.propose_stream_then(&g, cmd, Answer::new(move |r| me.delivered(&k, id, r)));
    }

    /// The waiting request a pull consumer's next delivery serves (batch,
    /// max bytes, request id, whether a pin was just given).
    fn choose(
        &self,
        g: &jetraft_raft::Group,
        led: &mut Led,
        now: i64,
        sends: &mut Vec<Out>,
    ) -> Option<(u32, u64, u64, bool)> {
        let counts = if led.config.priority_policy == PriorityPolicy::None {
            priority::Counts::default()
        } else {
            g.sm.consumer_with(&led.name, |c| priority::Counts {
                num_pending: c.num_pending,
                ack_pending: c.pending.len() as u64,
            })
            .unwrap_or_default()
        };
        let has_work = counts.num_pending > 0 || !led.due.is_empty();
        let c = priority::choose(led, counts, has_work, now, sends)?;
        let w = led.waiting.iter().find(|w| w.id == c.id)?;
        let left = c.cap.map_or(w.left, |cap| w.left.min(cap.max(1)));
        Some((
            left.min(u64::from(u32::MAX)) as u32,
            w.bytes_left.unwrap_or(0),
            w.id,
            c.pinned,
        ))
    }

    /// While the consumer is paused nothing is delivered: a no-wait pull
    /// hears `404` at once, the others wait (and expire with `408`); it
    /// is tried again when the pause ends.
    fn paused(&self, cluster: &Cluster, key: &Key) -> bool {
        let now = cluster.now_ns();
        let mut sends = Vec::new();
        let paused = {
            let mut st = self.lock();
            let Some(led) = st.led.get_mut(key) else {
                return false;
            };
            let Some(until) = led.config.pause_until.filter(|t| *t > now) else {
                return false;
            };
            led.end_no_wait(&mut sends);
            push_timer(&mut st, until, Timer::Resume { key: key.clone() });
            true
        };
        self.wake.notify_one();
        self.send(sends);
        paused
    }

    /// What a delivery proposal came back with.
    fn delivered(&self, key: &Key, id: u64, result: Reply) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        let now = cluster.now_ns();
        let mut sends = Vec::new();
        let again = {
            let mut st = self.lock();
            let Some(led) = st.led.get_mut(key) else {
                return;
            };
            led.busy = false;
            let changed_meanwhile = std::mem::take(&mut led.changed_meanwhile);
            match result {
                Ok(StreamReply::Delivered(d)) => {
                    let timers = self.hand_out(led, key, id, &d, now, &mut sends);
                    if !timers.is_empty() {
                        self.wake.notify_one();
                    }
                    for (at, t) in timers {
                        push_timer(&mut st, at, t);
                    }
                    st.led
                        .get(key)
                        .is_some_and(|l| !l.waiting.is_empty() || l.push.is_some())
                        && (!d.deliveries.is_empty()
                            || d.more
                            || d.too_large.is_some()
                            || changed_meanwhile)
                }
                Ok(StreamReply::Error(e))
                    if e.err_code == ApiError::consumer_not_found().err_code =>
                {
                    if let Some(led) = st.led.remove(key) {
                        sends.extend(status::to_all(&led, status::CONSUMER_DELETED));
                    }
                    false
                }
                Ok(other) => {
                    tracing::warn!(?other, "unexpected reply to a delivery");
                    false
                }
                Err(e) => {
                    tracing::debug!(error = %e, "delivery not proposed");
                    if let Some(led) = st.led.remove(key) {
                        sends.extend(status::to_all(&led, status::LEADERSHIP_CHANGE));
                    }
                    false
                }
            }
        };
        self.send(sends);
        if again {
            self.pump(key);
        }
    }

    /// Sends what a delivery chose to the waiting request, and returns the
    /// ack-wait timers to set.
    fn hand_out(
        &self,
        led: &mut Led,
        key: &Key,
        id: u64,
        d: &Delivered,
        now: i64,
        sends: &mut Vec<Out>,
    ) -> Vec<(i64, Timer)> {
        let mut timers = Vec::new();
        for (sseq, deliveries) in &d.exhausted {
            led.due.remove(sseq);
            sends.push(status::max_deliveries(led, *sseq, *deliveries, now));
        }
        // The request the delivery was for, or (if it expired meanwhile)
        // the next one: a message delivered is never sent nowhere. A push
        // consumer sends to its deliver subject.
        let pos = led
            .waiting
            .iter()
            .position(|w| w.id == id)
            .or((!led.waiting.is_empty()).then_some(0));
        let to = match &led.push {
            Some(p) => Some(p.subject.clone()),
            None => pos
                .and_then(|p| led.waiting.get(p))
                .map(|w| w.reply.clone()),
        };
        let acks = led.config.ack_policy != AckPolicy::None;
        let pin = led
            .pin
            .as_ref()
            .filter(|_| led.push.is_none())
            .map(|p| p.id.clone());
        let mut bytes = 0u64;
        let was_holding = !led.held.is_empty();
        for x in &d.deliveries {
            led.due.remove(&x.msg.seq);
            led.progress.remove(&x.msg.seq);
            led.last = (x.cseq.max(led.last.0), x.msg.seq.max(led.last.1));
            led.last_active_ns = now;
            let Some(to) = &to else {
                if acks {
                    timers.push(redeliver_timer(led, key, x, now));
                }
                continue;
            };
            let ack = AckSubject {
                stream: led.stream.clone(),
                consumer: key.1.clone(),
                delivered: x.deliveries,
                stream_seq: x.msg.seq,
                consumer_seq: x.cseq,
                ts_ns: x.msg.time_ns,
                pending: x.pending,
            }
            .render();
            let size = jetraft_stream::consumer::message_size(&x.msg) + ack.len() as u64;
            bytes += size;
            let out = Out::message(led, to, &x.msg, ack, pin.as_deref());
            let at = if led.pace.immediate(&led.config) && led.held.is_empty() {
                now
            } else {
                led.pace
                    .send_at(&led.config, x.msg.seq, x.msg.time_ns, size, now)
            };
            if acks {
                timers.push(redeliver_timer(led, key, x, at));
            }
            if at > now || !led.held.is_empty() {
                led.held.push_back((at, out));
            } else {
                sends.push(out);
            }
            if led.push.is_some() {
                continue;
            }
            let Some(w) = pos.and_then(|p| led.waiting.get_mut(p)) else {
                continue;
            };
            w.left = w.left.saturating_sub(1);
            w.delivered += 1;
            if let Some(b) = &mut w.bytes_left {
                *b = b.saturating_sub(size);
            }
        }
        if let (false, Some((at, _))) = (was_holding, led.held.front()) {
            timers.push((*at, Timer::Release { key: key.clone() }));
        }
        if led.push.is_some() {
            let stream = &led.stream;
            let oversize = d.deliveries.is_empty() && d.too_large.is_some();
            let reply = led
                .push
                .as_mut()
                .and_then(|p| p.sent(stream, &key.1, bytes, oversize));
            if let Some(reply) = reply {
                let fc = push::flow_control_request(led, reply);
                // After the deliveries it follows.
                match led.held.back().map(|(at, _)| *at) {
                    Some(at) => led.held.push_back((at, fc)),
                    None => sends.push(fc),
                }
            }
            return timers;
        }
        let Some(p) = pos else {
            return timers;
        };
        let Some(w) = led.waiting.get(p) else {
            return timers;
        };
        let finished = if d.too_large.is_some() {
            sends.push(Out::with_pending(led, w, status::MSG_SIZE_EXCEEDS));
            true
        } else if w.left == 0 || w.bytes_left == Some(0) {
            true
        } else if !d.more && (w.no_wait || (w.one_shot && w.delivered > 0)) {
            sends.push(Out::status(led, &w.reply, status::NO_MESSAGES));
            true
        } else {
            false
        };
        if finished {
            led.waiting.remove(p);
        }
        timers
    }

    /// This node no longer leads the consumer: its waiters hear `why`.
    fn lost(&self, key: &Key, why: &'static str) {
        let sends = match self.lock().led.remove(key) {
            Some(led) => status::to_all(&led, why),
            None => Vec::new(),
        };
        self.send(sends);
    }

    fn send(&self, sends: Vec<Out>) {
        let Some(gw) = self.cluster().and_then(|c| c.gateway()) else {
            return;
        };
        for s in sends {
            s.deliver(&gw);
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            let Some(cluster) = self.cluster() else {
                return;
            };
            let now = cluster.now_ns();
            let next = self.lock().timers.first().map(|t| t.0);
            let gw = cluster.gateway();
            drop(cluster);
            let interest = async {
                match &gw {
                    Some(gw) => gw.interest_added().notified().await,
                    None => std::future::pending().await,
                }
            };
            match next {
                Some(at) if at <= now => self.fire(now),
                Some(at) => {
                    let wait = Duration::from_nanos((at - now) as u64);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.wake.notified() => {}
                        _ = interest => self.listeners_came(),
                    }
                }
                None => tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = interest => self.listeners_came(),
                },
            }
        }
    }

    /// A subscription appeared somewhere: push consumers that had no
    /// listener try again now rather than at the next sweep.
    fn listeners_came(&self) {
        let waiting: Vec<Key> = self
            .lock()
            .led
            .iter()
            .filter(|(_, l)| l.push.as_ref().is_some_and(|p| !p.bound) && !l.busy)
            .map(|(k, _)| k.clone())
            .collect();
        for k in waiting {
            self.pump(&k);
        }
    }

    /// Runs every timer due at `now`.
    fn fire(&self, now: i64) {
        let due: Vec<Timer> = {
            let mut st = self.lock();
            let mut out = Vec::new();
            while let Some(first) = st.timers.first() {
                if first.0 > now {
                    break;
                }
                if let Some((_, _, t)) = st.timers.pop_first() {
                    out.push(t);
                }
            }
            out
        };
        let mut pumps = BTreeSet::new();
        let mut sends = Vec::new();
        for t in due {
            self.fire_one(t, now, &mut pumps, &mut sends);
        }
        self.send(sends);
        for k in pumps {
            self.pump(&k);
        }
    }

    fn fire_one(&self, t: Timer, now: i64, pumps: &mut BTreeSet<Key>, sends: &mut Vec<Out>) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        match t {
            Timer::Expire { key, id } => {
                let mut st = self.lock();
                if let Some(led) = st.led.get_mut(&key)
                    && let Some(p) = led.waiting.iter().position(|w| w.id == id)
                {
                    if let Some(w) = led.waiting.get(p) {
                        sends.push(Out::timeout(led, w));
                    }
                    led.waiting.remove(p);
                    pumps.insert(key);
                }
            }
            Timer::Heartbeat { key, id } => {
                let mut st = self.lock();
                let hb = st.led.get(&key).and_then(|led| {
                    let w = led.waiting.iter().find(|w| w.id == id)?;
                    sends.push(Out::status(led, &w.reply, status::IDLE_HEARTBEAT));
                    Some(w.heartbeat_ns)
                });
                if let Some(hb) = hb {
                    push_timer(&mut st, now + hb, Timer::Heartbeat { key, id });
                }
            }
            Timer::Redeliver {
                key,
                sseq,
                deliveries,
            } => {
                let still = cluster
                    .host()
                    .group(key.0)
                    .and_then(|g| g.sm.consumer_pending(&key.1, sseq))
                    .is_some_and(|p| p.deliveries == deliveries);
                if !still {
                    return;
                }
                let mut st = self.lock();
                let Some(led) = st.led.get_mut(&key) else {
                    return;
                };
                if let Some(until) = led.progress.get(&sseq).copied()
                    && until > now
                {
                    push_timer(
                        &mut st,
                        until,
                        Timer::Redeliver {
                            key,
                            sseq,
                            deliveries,
                        },
                    );
                    return;
                }
                led.make_due(sseq);
                pumps.insert(key);
            }
            Timer::Nak { key, sseq } => {
                if let Some(led) = self.lock().led.get_mut(&key) {
                    led.make_due(sseq);
                    pumps.insert(key);
                }
            }
            Timer::PushHeartbeat { key } => self.push_heartbeat(key, now, sends),
            Timer::Resume { key } => {
                pumps.insert(key);
            }
            Timer::PauseEnd {
                key,
                account,
                stream,
                until,
            } => {
                let same = cluster.host().group(key.0).and_then(|g| {
                    g.sm.consumer_with(&key.1, |c| c.config.pause_until == Some(until))
                });
                if same == Some(true) {
                    sends.push(status::pause(&account, &stream, &key.1, Some(until), now));
                }
            }
            Timer::Release { key } => {
                let mut st = self.lock();
                let Some(led) = st.led.get_mut(&key) else {
                    return;
                };
                while led.held.front().is_some_and(|(at, _)| *at <= now) {
                    if let Some((_, out)) = led.held.pop_front() {
                        sends.push(out);
                    }
                }
                match led.held.front().map(|(at, _)| *at) {
                    Some(at) => push_timer(&mut st, at, Timer::Release { key }),
                    None => {
                        pumps.insert(key);
                    }
                }
            }
            Timer::Unpin { key } => {
                let mut st = self.lock();
                let Some(led) = st.led.get_mut(&key) else {
                    return;
                };
                match led.pin.as_ref().map(|p| p.deadline_ns) {
                    Some(at) if at <= now => {
                        sends.extend(priority::unpin(led, "timeout", now));
                        pumps.insert(key);
                    }
                    Some(at) => push_timer(&mut st, at, Timer::Unpin { key }),
                    None => {}
                }
            }
            Timer::Sweep => {
                let rebind = self.sweep(&cluster, now, sends);
                pumps.extend(rebind);
            }
        }
    }

    /// Once a second: tells the waiters of consumers this node no longer
    /// leads; loads the push and ephemeral consumers of groups it now
    /// leads; drops idle consumers it need not keep; deletes consumers
    /// inactive past their `inactive_threshold`. Returns the push
    /// consumers to try again (a listener may have come).
    fn sweep(&self, cluster: &Cluster, now: i64, sends: &mut Vec<Out>) -> Vec<Key> {
        let me = cluster.host().me();
        let leads = |group: GroupId| {
            cluster
                .host()
                .group(group)
                .is_some_and(|g| g.leader() == Some(me))
        };
        let mut st = self.lock();
        let gone: Vec<Key> = st.led.keys().filter(|k| !leads(k.0)).cloned().collect();
        for k in gone {
            if let Some(led) = st.led.remove(&k) {
                sends.extend(status::to_all(&led, status::LEADERSHIP_CHANGE));
            }
        }
        // Consumers of groups led here that must run without a request.
        for a in cluster.catalog().streams() {
            if !leads(a.group) {
                continue;
            }
            let Some(g) = cluster.host().group(a.group) else {
                continue;
            };
            for (name, needs_runtime) in g.sm.consumer_briefs() {
                let key: Key = (a.group, name);
                if needs_runtime && !st.led.contains_key(&key) {
                    let _ = self.ensure_led(&mut st, &key, &a.account, &a.config.name);
                }
            }
        }
        st.led.retain(|_, l| l.keep());
        let mut retry = Vec::new();
        let mut expired = Vec::new();
        for (k, l) in &mut st.led {
            let active = !l.waiting.is_empty() || l.push.as_ref().is_some_and(|p| p.bound);
            if active {
                l.last_active_ns = now;
            }
            if l.push.as_ref().is_some_and(|p| !p.bound) && !l.busy {
                retry.push(k.clone());
            }
            let limit = l.config.inactive_threshold;
            if limit > 0 && !active && now - l.last_active_ns > limit {
                expired.push(k.clone());
            }
        }
        push_timer(
            &mut st,
            now + SWEEP_INTERVAL.as_nanos() as i64,
            Timer::Sweep,
        );
        drop(st);
        for k in expired {
            self.delete_inactive(cluster, k);
        }
        retry
    }

    /// Deletes a consumer nobody used for its `inactive_threshold`.
    fn delete_inactive(&self, cluster: &Cluster, key: Key) {
        let Some(g) = cluster.host().group(key.0) else {
            return;
        };
        tracing::debug!(consumer = %key.1, "deleting a consumer inactive past its threshold");
        let cmd = StreamCommand::DeleteConsumer {
            name: key.1.clone(),
        };
        let me = cluster.consumers_arc();
        cluster.propose_stream_then(
            &g,
            cmd,
            Answer::new(move |r| {
                if matches!(r, Ok(StreamReply::ConsumerDeleted)) {
                    let names = me
                        .lock()
                        .led
                        .get(&key)
                        .map(|l| (l.account.clone(), l.stream.clone()));
                    me.deleted(key.0, &key.1);
                    if let Some((account, stream)) = names {
                        me.announce(&account, &stream, &key.1, false);
                    }
                }
            }),
        );
    }
}

fn push_timer(st: &mut State, at: i64, t: Timer) {
    st.next_id += 1;
    let id = st.next_id;
    st.timers.insert((at, id, t));
}

/// The ack-wait timer of a delivery sent at `at`.
fn redeliver_timer(
    led: &Led,
    key: &Key,
    x: &jetraft_stream::consumer::Delivery,
    at: i64,
) -> (i64, Timer) {
    (
        at.saturating_add(ack_wait(&led.config, x.deliveries)),
        Timer::Redeliver {
            key: key.clone(),
            sseq: x.msg.seq,
            deliveries: x.deliveries,
        },
    )
}

/// How long a delivery made `deliveries` times may stay unacknowledged.
fn ack_wait(cfg: &ConsumerConfig, deliveries: u64) -> i64 {
    match cfg.backoff.len() {
        0 => cfg.ack_wait,
        n => {
            let i = (deliveries.saturating_sub(1) as usize).min(n - 1);
            cfg.backoff[i]
        }
    }
}
