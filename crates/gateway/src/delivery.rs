//! Local fan-out: from a published message to every interested client's
//! outbox, honouring queue groups, echo, headers support and auto-unsubscribe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::Gateway;
use crate::outbox::Outbox;
use crate::proto::writer;
use crate::sublist::{InvalidSubject, Match};

/// A subscription's identity: (client id, sid).
pub(crate) type SubKey = (u64, String);

/// What other tasks may read about a client while delivering to it.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) id: u64,
    pub(crate) outbox: Outbox,
    /// The client asked for headers in CONNECT: it gets HMSG, else MSG
    /// with the header block stripped (as nats-server does).
    pub(crate) headers: AtomicBool,
    pub(crate) echo: AtomicBool,
}

impl Client {
    pub(crate) fn new(id: u64, max_pending_bytes: usize) -> Self {
        Self {
            id,
            outbox: Outbox::new(max_pending_bytes),
            headers: AtomicBool::new(false),
            echo: AtomicBool::new(true),
        }
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

impl Gateway {
    pub(crate) fn register_client(&self) -> Arc<Client> {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        self.clients.fetch_add(1, Ordering::Relaxed);
        Arc::new(Client::new(id, self.config.max_pending_bytes))
    }

    pub(crate) fn unregister_client(&self) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn add_sub(&self, sub: &Arc<Subscription>) -> Result<(), InvalidSubject> {
        self.write_subs()
            .insert(&sub.subject, sub.queue.as_deref(), sub.key(), sub.clone())
    }

    /// Removes exactly this subscription (not a newer one with the same sid).
    pub(crate) fn remove_sub(&self, sub: &Arc<Subscription>) {
        sub.closed.store(true, Ordering::Release);
        self.write_subs()
            .remove_if(&sub.subject, sub.queue.as_deref(), &sub.key(), |v| {
                Arc::ptr_eq(v, sub)
            });
    }

    /// Delivers to every plain match and one member per queue group;
    /// returns the number of deliveries. `origin` is the publishing client,
    /// which does not get its own messages when it turned echo off.
    pub(crate) fn deliver(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
        origin: Option<&Client>,
    ) -> usize {
        let found: Match<Arc<Subscription>> = self.read_subs().matches(subject);
        let mut n = 0;
        for sub in &found.plain {
            n += usize::from(self.deliver_one(sub, subject, reply, headers, payload, origin));
        }
        for group in found.queues.values() {
            // Start at the round-robin position; a member that cannot take
            // it (no echo, at max, closed) passes it to the next one.
            let start = self.queue_rr.fetch_add(1, Ordering::Relaxed);
            for i in 0..group.len() as u64 {
                let Some(sub) = Match::pick(group, start.wrapping_add(i)) else {
                    break;
                };
                if self.deliver_one(sub, subject, reply, headers, payload, origin) {
                    n += 1;
                    break;
                }
            }
        }
        n
    }

    fn deliver_one(
        &self,
        sub: &Arc<Subscription>,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
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
        let headers = headers.filter(|_| sub.client.headers.load(Ordering::Relaxed));
        let ok = sub
            .client
            .outbox
            .push_with(|buf| writer::put_msg(buf, subject, &sub.sid, reply, headers, payload));
        if max > 0 && count == max {
            self.remove_sub(sub);
        }
        ok
    }
}
