//! Local fan-out: from a published message to every interested client's
//! outbox, honouring accounts, queue groups, echo, headers support and
//! auto-unsubscribe. Every subscription change is told to the [`Router`](crate::Router).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crate::outbox::Outbox;
use crate::proto::writer;
use crate::sublist::{InvalidSubject, Match};
use crate::{Gateway, Outgoing};

/// A subscription's identity: (client id, sid).
pub(crate) type SubKey = (u64, String);

/// What other tasks may read about a client while delivering to it.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) id: u64,
    pub(crate) account: String,
    /// The client's address as INFO tells it back.
    pub(crate) ip: String,
    pub(crate) outbox: Outbox,
    /// The client asked for headers in CONNECT: it gets HMSG, else MSG
    /// with the header block stripped (as nats-server does).
    pub(crate) headers: AtomicBool,
    pub(crate) echo: AtomicBool,
    /// CONNECT's `protocol`, once it arrived (async INFO needs 1).
    pub(crate) protocol: AtomicU8,
    pub(crate) connected: AtomicBool,
    /// Subscriptions it holds now.
    pub(crate) subs: AtomicUsize,
}

impl Client {
    pub(crate) fn new(id: u64, ip: String, max_pending_bytes: usize) -> Self {
        Self {
            id,
            account: crate::DEFAULT_ACCOUNT.to_string(),
            ip,
            outbox: Outbox::new(max_pending_bytes),
            headers: AtomicBool::new(false),
            echo: AtomicBool::new(true),
            protocol: AtomicU8::new(0),
            connected: AtomicBool::new(false),
            subs: AtomicUsize::new(0),
        }
    }

    pub(crate) fn wants_async_info(&self) -> bool {
        self.connected.load(Ordering::Acquire) && self.protocol.load(Ordering::Relaxed) >= 1
    }
}

#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) client: Arc<Client>,
    pub(crate) sid: String,
    pub(crate) subject: String,
    pub(crate) queue: Option<String>,
    pub(crate) delivered: AtomicU64,
    /// Auto-unsubscribe after this many deliveries; 0 = no limit.
    pub(crate) max: AtomicU64,
    pub(crate) closed: AtomicBool,
}

impl Subscription {
    pub(crate) fn new(
        client: Arc<Client>,
        sid: String,
        subject: String,
        queue: Option<String>,
    ) -> Self {
        Self {
            client,
            sid,
            subject,
            queue,
            delivered: AtomicU64::new(0),
            max: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    fn key(&self) -> SubKey {
        (self.client.id, self.sid.clone())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Where a delivery may go.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The publishing client: it does not hear itself with echo off.
    pub(crate) origin: Option<&'a Client>,
    pub(crate) plain: bool,
    /// Only these queue groups (a routed message); None: all of them.
    pub(crate) queues: Option<&'a [String]>,
}

impl Gateway {
    pub(crate) fn register_client(&self, ip: String) -> Arc<Client> {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let client = Arc::new(Client::new(id, ip, self.config.max_pending_bytes));
        self.lock_clients().insert(id, client.clone());
        client
    }

    pub(crate) fn unregister_client(&self, client: &Client) {
        self.lock_clients().remove(&client.id);
    }

    pub(crate) fn add_sub(&self, sub: &Arc<Subscription>) -> Result<(), InvalidSubject> {
        let account = &sub.client.account;
        self.write_subs()
            .entry(account.clone())
            .or_default()
            .insert(&sub.subject, sub.queue.as_deref(), sub.key(), sub.clone())?;
        sub.client.subs.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = self.router.get() {
            r.interest_changed(account, &sub.subject, sub.queue.as_deref(), true);
        }
        self.interest_added.notify_one();
        Ok(())
    }

    /// Removes exactly this subscription (not a newer one with the same sid).
    pub(crate) fn remove_sub(&self, sub: &Arc<Subscription>) {
        sub.closed.store(true, Ordering::Release);
        let account = &sub.client.account;
        let removed = {
            let mut subs = self.write_subs();
            let removed = subs.get_mut(account).and_then(|s| {
                s.remove_if(&sub.subject, sub.queue.as_deref(), &sub.key(), |v| {
                    Arc::ptr_eq(v, sub)
                })
            });
            if subs.get(account).is_some_and(|s| s.is_empty()) {
                subs.remove(account);
            }
            removed
        };
        if removed.is_some() {
            sub.client.subs.fetch_sub(1, Ordering::Relaxed);
            if let Some(r) = self.router.get() {
                r.interest_changed(account, &sub.subject, sub.queue.as_deref(), false);
            }
        }
    }

    /// Delivers to every local plain match and one member per queue group;
    /// returns the number of deliveries and the queue groups a member here
    /// took (no other node gets the message for them). `origin` is the
    /// publishing client, which does not get its own messages when it
    /// turned echo off.
    pub(crate) fn deliver(
        &self,
        msg: &Outgoing<'_>,
        origin: Option<&Client>,
    ) -> (usize, Vec<String>) {
        let all = Scope {
            origin,
            plain: true,
            queues: None,
        };
        self.deliver_matching(msg, all)
    }

    pub(crate) fn deliver_matching(
        &self,
        msg: &Outgoing<'_>,
        scope: Scope<'_>,
    ) -> (usize, Vec<String>) {
        let found: Match<Arc<Subscription>> = match self.read_subs().get(msg.account) {
            Some(subs) => subs.matches(msg.subject),
            None => return (0, Vec::new()),
        };
        let origin = scope.origin;
        let mut n = 0;
        if scope.plain {
            for sub in &found.plain {
                n += usize::from(self.deliver_one(sub, msg, origin));
            }
        }
        let mut taken = Vec::new();
        for (name, group) in &found.queues {
            if scope.queues.is_some_and(|only| !only.contains(name)) {
                continue;
            }
            // Start at the round-robin position; a member that cannot take
            // it (no echo, at max, closed) passes it to the next one.
            let start = self.queue_rr.fetch_add(1, Ordering::Relaxed);
            for i in 0..group.len() as u64 {
                let Some(sub) = Match::pick(group, start.wrapping_add(i)) else {
                    break;
                };
                if self.deliver_one(sub, msg, origin) {
                    n += 1;
                    taken.push(name.clone());
                    break;
                }
            }
        }
        (n, taken)
    }

    fn deliver_one(
        &self,
        sub: &Arc<Subscription>,
        msg: &Outgoing<'_>,
        origin: Option<&Client>,
    ) -> bool {
        if sub.is_closed() {
            return false;
        }
        if let Some(o) = origin
            && o.id == sub.client.id
            && !o.echo.load(Ordering::Relaxed)
        {
            return false;
        }
        let max = sub.max.load(Ordering::Acquire);
        let count = sub.delivered.fetch_add(1, Ordering::AcqRel) + 1;
        if max > 0 && count > max {
            return false;
        }
        let headers = msg
            .headers
            .filter(|_| sub.client.headers.load(Ordering::Relaxed));
        let subject = msg.delivered_as.unwrap_or(msg.subject);
        let ok = sub.client.outbox.push_with(|buf| {
            writer::put_msg(buf, subject, &sub.sid, msg.reply, headers, msg.payload)
        });
        if max > 0 && count == max {
            self.remove_sub(sub);
        }
        ok
    }
}
