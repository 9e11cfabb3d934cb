//! One client connection: INFO, then a read loop applying client operations,
//! with a separate task writing the outbox.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use jetraft_types::subject;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::delivery::{Client, Subscription};
use crate::outbox::CloseReason;
use crate::proto::{ClientOp, ConnectOptions, Parser, ServerInfo, writer};
use crate::{Gateway, Inbound, ReplyTo};

/// Serves one accepted connection until it closes.
pub async fn serve_connection<S>(io: S, gw: Arc<Gateway>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_connection_from(io, gw, None).await;
}

/// Like [`serve_connection`], telling the client its address in INFO.
/// Returns why the connection ended.
pub async fn serve_connection_from<S>(
    io: S,
    gw: Arc<Gateway>,
    peer: Option<SocketAddr>,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client = gw.register_client(peer.map(|p| p.ip().to_string()).unwrap_or_default());
    let (rd, wr) = tokio::io::split(io);
    client
        .outbox
        .push(&writer::info(&server_info(&gw, &client)));
    let writer_task = {
        let client = client.clone();
        let deadline = gw.config.write_deadline;
        tokio::spawn(async move { client.outbox.drain_into(wr, deadline).await })
    };
    let max = gw.config.max_connections;
    let reason = if max > 0 && gw.num_clients() > max {
        // As nats-server: INFO, then the error, then the close.
        client
            .outbox
            .push(&writer::err("maximum connections exceeded"));
        CloseReason::MaxConnections
    } else {
        let mut conn = Conn::new(gw.clone(), client.clone());
        let reason = conn.run(rd).await;
        conn.unsubscribe_all();
        reason
    };
    client.outbox.close(reason, true);
    let _ = writer_task.await;
    gw.unregister_client(&client);
    let reason = client.outbox.reason().unwrap_or(reason);
    tracing::debug!(client = client.id, ?reason, "connection closed");
    reason
}

/// The INFO this node sends `client` (on connect, and again when the
/// cluster's client URLs change).
pub(crate) fn server_info(gw: &Gateway, client: &Client) -> ServerInfo {
    let c = &gw.config;
    ServerInfo {
        server_id: c.server_id.clone(),
        server_name: c.server_name.clone(),
        version: c.version.clone(),
        proto: 1,
        go: "jetraft".into(),
        host: c.host.clone(),
        port: c.port,
        headers: true,
        max_payload: c.max_payload_bytes,
        jetstream: c.jetstream,
        client_id: client.id,
        client_ip: client.ip.clone(),
        cluster: c.cluster.clone(),
        connect_urls: gw.connect_urls(),
        api_lvl: c.api_level,
        jetraft: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Ends the read loop; the `-ERR` text, if any, is sent first.
struct Close(CloseReason, Option<&'static str>);

struct Conn {
    gw: Arc<Gateway>,
    client: Arc<Client>,
    opts: ConnectOptions,
    subs: BTreeMap<String, Arc<Subscription>>,
    parser: Parser,
    pings_out: u32,
    /// Bytes arrived since the last ping tick: no need to ping.
    active: bool,
    /// Size of `subs` at which auto-unsubscribed entries are swept out;
    /// clients doing SUB + `UNSUB sid 1` per request never UNSUB again.
    sweep_at: usize,
}

const MIN_SWEEP_AT: usize = 64;

impl Conn {
    fn new(gw: Arc<Gateway>, client: Arc<Client>) -> Self {
        let parser = Parser::new(gw.config.max_payload_bytes)
            .with_max_control_line(gw.config.max_control_line_bytes);
        Self {
            gw,
            client,
            opts: ConnectOptions::default(),
            subs: BTreeMap::new(),
            parser,
            pings_out: 0,
            active: false,
            sweep_at: MIN_SWEEP_AT,
        }
    }

    async fn run<R: AsyncRead + Unpin>(&mut self, mut rd: R) -> CloseReason {
        // A zero interval turns server pings off.
        let period = match self.gw.config.ping_interval {
            Duration::ZERO => Duration::from_secs(365 * 24 * 3600),
            p => p,
        };
        let mut ping = tokio::time::interval(period);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await; // the first tick is immediate
        let closed = self.client.outbox.closed().clone();
        let shutdown = self.gw.shutdown.clone();
        loop {
            let buf = self.parser.buffer_mut();
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(32 * 1024);
            }
            let result = tokio::select! {
                _ = closed.cancelled() => return self.client.outbox.reason().unwrap_or(CloseReason::ClientClosed),
                _ = shutdown.cancelled() => return CloseReason::ServerShutdown,
                _ = ping.tick() => self.on_ping_tick(),
                r = rd.read_buf(self.parser.buffer_mut()) => match r {
                    Ok(0) => return CloseReason::ClientClosed,
                    Err(_) => return CloseReason::ReadError,
                    Ok(_) => {
                        self.active = true;
                        self.process()
                    }
                },
            };
            if let Err(Close(reason, err)) = result {
                if let Some(text) = err {
                    self.client.outbox.push(&writer::err(text));
                }
                return reason;
            }
        }
    }

    fn on_ping_tick(&mut self) -> Result<(), Close> {
        if std::mem::take(&mut self.active) {
            return Ok(());
        }
        if self.pings_out >= self.gw.config.max_pings_out {
            return Err(Close(CloseReason::Stale, Some("Stale Connection")));
        }
        self.pings_out += 1;
        self.client.outbox.push(writer::PING);
        Ok(())
    }

    fn process(&mut self) -> Result<(), Close> {
        loop {
            match self.parser.next_op() {
                Ok(Some(op)) => self.apply(op)?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::debug!(client = self.client.id, error = %e, "protocol error");
                    return Err(Close(CloseReason::Protocol, e.err_text()));
                }
            }
        }
    }

    fn apply(&mut self, op: ClientOp) -> Result<(), Close> {
        match op {
            ClientOp::Connect(json) => self.on_connect(&json)?,
            ClientOp::Pub {
                subject,
                reply,
                headers,
                payload,
            } => self.on_pub(subject, reply, headers, payload),
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => self.on_sub(subject, queue, sid),
            ClientOp::Unsub { sid, max } => self.on_unsub(&sid, max),
            ClientOp::Ping => {
                self.client.outbox.push(writer::PONG);
            }
            ClientOp::Pong => self.pings_out = 0,
            ClientOp::Ignored => {}
            ClientOp::Err(text) => {
                tracing::debug!(client = self.client.id, %text, "client sent -ERR");
                return Err(Close(CloseReason::Protocol, None));
            }
        }
        Ok(())
    }

    fn ok(&self) {
        if self.opts.verbose {
            self.client.outbox.push(writer::OK);
        }
    }

    fn on_connect(&mut self, json: &[u8]) -> Result<(), Close> {
        let opts = ConnectOptions::parse(json).map_err(|e| {
            tracing::debug!(client = self.client.id, error = %e, "CONNECT refused");
            Close(CloseReason::Protocol, e.err_text())
        })?;
        self.client.headers.store(opts.headers, Ordering::Relaxed);
        self.client.echo.store(opts.echo, Ordering::Relaxed);
        self.client
            .protocol
            .store(u8::try_from(opts.protocol).unwrap_or(0), Ordering::Relaxed);
        self.client.connected.store(true, Ordering::Release);
        self.parser.set_headers(opts.headers);
        self.opts = opts;
        self.ok();
        Ok(())
    }

    fn on_pub(
        &mut self,
        subject: String,
        reply: Option<String>,
        headers: Option<Bytes>,
        payload: Bytes,
    ) {
        let valid = subject::is_valid_subject(&subject);
        if !valid && self.opts.pedantic {
            // nats-server reports it and still routes the message.
            self.client
                .outbox
                .push(&writer::err("Invalid Publish Subject"));
        }
        self.ok();
        let account = &self.client.account;
        let out = crate::Outgoing {
            account,
            subject: &subject,
            delivered_as: None,
            reply: reply.as_deref(),
            headers: headers.as_deref(),
            payload: &payload,
            taken_queues: &[],
        };
        let (local, taken) = self.gw.deliver(&out, Some(&self.client));
        let routed = self.gw.route(&crate::Outgoing {
            taken_queues: &taken,
            ..out
        });
        // Never hand a wildcard or malformed subject to the streams; a
        // JetStream API request may name a filter in its subject
        // (`CONSUMER.CREATE.<stream>.<name>.<filter>`), so it goes to the
        // backend as nats-server's API subscriptions take it.
        let api_with_filter = subject.starts_with("$JS.API.") && subject::is_valid_filter(&subject);
        let mut taken = false;
        let (subject, reply) = if valid || api_with_filter {
            let msg = Inbound {
                account: account.clone(),
                subject,
                reply,
                headers,
                payload,
            };
            let reply_to = ReplyTo {
                gw: self.gw.clone(),
                account: account.clone(),
                subject: msg.reply.clone(),
            };
            taken = self.gw.backend.take(&msg, &reply_to);
            (msg.subject, msg.reply)
        } else {
            (subject, reply)
        };
        if !taken {
            self.no_responders_check(local + routed, &subject, reply.as_deref());
        }
    }

    /// A request nobody in the cluster received gets a 503 status on the requester's own
    /// reply subscription, as nats-server does for `no_responders` clients.
    fn no_responders_check(&self, delivered: usize, subject: &str, reply: Option<&str>) {
        let Some(reply) = reply else { return };
        if delivered > 0 || !self.opts.no_responders {
            return;
        }
        let own = self
            .subs
            .values()
            .find(|s| s.queue.is_none() && !s.is_closed() && subject::matches(&s.subject, reply));
        if let Some(sub) = own {
            let hdr = format!("NATS/1.0 503\r\nNats-Subject: {subject}\r\n\r\n");
            self.client.outbox.push_with(|buf| {
                writer::put_msg(buf, reply, &sub.sid, None, Some(hdr.as_bytes()), b"")
            });
        }
    }

    fn on_sub(&mut self, subject: String, queue: Option<String>, sid: String) {
        if self.subs.get(&sid).is_some_and(|s| !s.is_closed()) {
            // nats-server keeps the existing subscription for a reused sid.
            self.ok();
            return;
        }
        let max = self.gw.config.max_subscriptions;
        if max > 0 && self.client.subs.load(Ordering::Relaxed) >= max {
            // nats-server refuses the SUB and keeps the connection.
            self.client
                .outbox
                .push(&writer::err("maximum subscriptions exceeded"));
            return;
        }
        let sub = Arc::new(Subscription::new(
            self.client.clone(),
            sid.clone(),
            subject,
            queue,
        ));
        match self.gw.add_sub(&sub) {
            Ok(()) => {
                self.subs.insert(sid, sub);
                if self.subs.len() >= self.sweep_at {
                    self.subs.retain(|_, s| !s.is_closed());
                    self.sweep_at = (2 * self.subs.len()).max(MIN_SWEEP_AT);
                }
                self.ok();
            }
            Err(_) => {
                self.client.outbox.push(&writer::err("Invalid Subject"));
            }
        }
    }

    fn on_unsub(&mut self, sid: &str, max: Option<u64>) {
        if let Some(sub) = self.subs.get(sid) {
            let delivered = sub.delivered.load(Ordering::Acquire);
            match max {
                Some(m) if m > 0 && m > delivered => sub.max.store(m, Ordering::Release),
                _ => {
                    self.gw.remove_sub(sub);
                    self.subs.remove(sid);
                }
            }
        }
        self.ok();
    }

    fn unsubscribe_all(&mut self) {
        for sub in std::mem::take(&mut self.subs).values() {
            self.gw.remove_sub(sub);
        }
    }
}
