//! A connection's bounded outbound buffer and the task that drains it.
//!
//! Publishers append frames without ever waiting: a client that reads too
//! slowly (or not at all) grows its own buffer until `max_pending_bytes`,
//! then it is cut off as a slow consumer, like nats-server's `MaxPending`.
//! Nobody else is slowed down by it.

use std::sync::Mutex;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side.
    ClientClosed,
    ReadError,
    WriteError,
    /// A protocol error or refused CONNECT (an `-ERR` may precede it).
    Protocol,
    /// Outbound buffer over `max_pending_bytes`, or a write past the deadline.
    SlowConsumer,
    /// Unanswered pings.
    Stale,
    /// The node already had `max_connections` clients.
    MaxConnections,
    ServerShutdown,
}

#[derive(Debug)]
struct State {
    buf: BytesMut,
    reason: Option<CloseReason>,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    wake: Notify,
    closed: CancellationToken,
    max_pending_bytes: usize,
}

/// Above this, a drained write buffer is dropped instead of reused.
const KEEP_CAPACITY: usize = 1 << 20;

impl Outbox {
    pub(crate) fn new(max_pending_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                buf: BytesMut::with_capacity(4096),
                reason: None,
            }),
            wake: Notify::new(),
            closed: CancellationToken::new(),
            max_pending_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves only bytes behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one frame. False if the connection is closed or just became
    /// a slow consumer.
    pub(crate) fn push_with(&self, write: impl FnOnce(&mut BytesMut)) -> bool {
        let mut st = self.lock();
        if st.reason.is_some() {
            return false;
        }
        write(&mut st.buf);
        if st.buf.len() > self.max_pending_bytes {
            st.buf.clear();
            st.reason = Some(CloseReason::SlowConsumer);
            drop(st);
            tracing::debug!(
                max = self.max_pending_bytes,
                "slow consumer: pending bytes exceeded"
            );
            self.closed.cancel();
            return false;
        }
        drop(st);
        self.wake.notify_one();
        true
    }

    pub(crate) fn push(&self, bytes: &[u8]) -> bool {
        self.push_with(|b| b.extend_from_slice(bytes))
    }

    /// Ends the connection. With `flush`, what is queued (e.g. a final
    /// `-ERR`) is still written; the first reason given wins.
    pub(crate) fn close(&self, reason: CloseReason, flush: bool) {
        let mut st = self.lock();
        if st.reason.is_none() {
            st.reason = Some(reason);
        }
        if !flush {
            st.buf.clear();
        }
        drop(st);
        self.closed.cancel();
        self.wake.notify_one();
    }

    pub(crate) fn reason(&self) -> Option<CloseReason> {
        self.lock().reason
    }

    pub(crate) fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Writes queued bytes until the outbox is closed and drained. A write
    /// that does not finish within `write_deadline` marks a slow consumer.
    pub(crate) async fn drain_into<W: AsyncWrite + Unpin>(
        &self,
        mut w: W,
        write_deadline: Duration,
    ) {
        let mut spare = BytesMut::with_capacity(4096);
        loop {
            let done = {
                let mut st = self.lock();
                std::mem::swap(&mut st.buf, &mut spare);
                spare.is_empty() && st.reason.is_some()
            };
            if done {
                break;
            }
            if spare.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = self.closed.cancelled() => {}
                }
                // Let the other ready tasks (replies finishing in the same
                // batch) queue their frames too: one write for all of them.
                tokio::task::yield_now().await;
                continue;
            }
            match tokio::time::timeout(write_deadline, w.write_all(&spare)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "write failed");
                    self.close(CloseReason::WriteError, false);
                    break;
                }
                Err(_) => {
                    tracing::debug!(?write_deadline, "slow consumer: write deadline exceeded");
                    self.close(CloseReason::SlowConsumer, false);
                    break;
                }
            }
            if spare.capacity() > KEEP_CAPACITY {
                spare = BytesMut::with_capacity(4096);
            } else {
                spare.clear();
            }
        }
        let _ = tokio::time::timeout(write_deadline, w.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_consumer_cuts_off_and_refuses_more() {
        let o = Outbox::new(10);
        assert!(o.push(b"12345"));
        assert!(o.push(b"67890"));
        assert!(!o.push(b"x"), "11 bytes pending > 10");
        assert_eq!(o.reason(), Some(CloseReason::SlowConsumer));
        assert!(o.closed().is_cancelled());
        assert!(!o.push(b"y"));
    }

    #[test]
    fn first_close_reason_wins() {
        let o = Outbox::new(100);
        o.close(CloseReason::Protocol, true);
        o.close(CloseReason::ClientClosed, false);
        assert_eq!(o.reason(), Some(CloseReason::Protocol));
    }

    #[tokio::test]
    async fn graceful_close_flushes_queued_bytes() {
        let o = Outbox::new(100);
        assert!(o.push(b"-ERR 'x'\r\n"));
        o.close(CloseReason::Protocol, true);
        let mut out = Vec::new();
        o.drain_into(&mut out, Duration::from_secs(1)).await;
        assert_eq!(out, b"-ERR 'x'\r\n");
    }

    #[tokio::test]
    async fn hard_close_discards_queued_bytes() {
        let o = Outbox::new(100);
        assert!(o.push(b"data"));
        o.close(CloseReason::ServerShutdown, false);
        let mut out = Vec::new();
        o.drain_into(&mut out, Duration::from_secs(1)).await;
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn stuck_writer_hits_deadline() {
        // A duplex whose reader never reads: the second write blocks.
        let (w, _r) = tokio::io::duplex(8);
        let o = Outbox::new(1000);
        assert!(o.push(&[0u8; 64]));
        tokio::time::pause();
        o.drain_into(w, Duration::from_millis(50)).await;
        assert_eq!(o.reason(), Some(CloseReason::SlowConsumer));
    }
}
