//! Every limit of node-to-node routing, with its unit in its name.

use std::time::Duration;

/// Bytes of entries queued for one peer before its stream is cut as too
/// slow (and started again with the whole interest table): nats-server's
/// default `max_pending` for a route.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// A frame carries queued entries up to about this many bytes.
pub const FRAME_TARGET_BYTES: usize = 1024 * 1024;
/// The largest frame either side accepts: a target-sized batch plus one
/// message of the largest payload a client may publish.
pub const MAX_FRAME_BYTES: usize = 128 * 1024 * 1024;
/// Pause before opening a stream again after one ended; doubles up to
/// [`RECONNECT_MAX`], and starts over once a stream lasted
/// [`SESSION_STABLE`].
pub const RECONNECT_MIN: Duration = Duration::from_millis(50);
pub const RECONNECT_MAX: Duration = Duration::from_secs(1);
pub const SESSION_STABLE: Duration = Duration::from_secs(2);
