//! What the clients did and saw, and what the nemesis did: the input of the
//! checker and, rendered in order, the run's trace.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// How a publish with a `Nats-Msg-Id` ended for its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubOutcome {
    /// A PubAck: the message is at `seq` (`duplicate`: a retry found it).
    Acked { seq: u64, duplicate: bool },
    /// A definite refusal (an API error other than "try again").
    Refused { err_code: u64 },
    /// Never answered: it may or may not be stored, but at most once.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct PubOp {
    pub client: usize,
    /// The `Nats-Msg-Id`, also the payload.
    pub id: String,
    pub subject: String,
    pub attempts: u32,
    pub outcome: PubOutcome,
    /// With `Nats-Rollup: sub`.
    pub rollup: bool,
    /// When the first attempt was sent and when the outcome was known.
    pub sent_at: Duration,
    pub done_at: Duration,
}

/// How a `STREAM.MSG.DELETE` or `STREAM.PURGE` ended (never retried: a
/// timeout leaves it unknown, and it may still apply later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// `purged`: how many a purge removed (1 for a delete).
    Acked {
        purged: u64,
    },
    Refused {
        err_code: u64,
    },
    Unknown,
}

/// `STREAM.MSG.DELETE` of one sequence.
#[derive(Debug, Clone)]
pub struct DeleteOp {
    pub client: usize,
    pub seq: u64,
    pub outcome: RemoveOutcome,
    pub sent_at: Duration,
    pub done_at: Duration,
}

/// `STREAM.PURGE` with a subject filter, keeping the newest `keep` (0:
/// none) of the matching messages.
#[derive(Debug, Clone)]
pub struct PurgeOp {
    pub client: usize,
    pub filter: String,
    pub keep: u64,
    pub outcome: RemoveOutcome,
    pub sent_at: Duration,
    pub done_at: Duration,
}

/// How a compare-and-set publish (`Nats-Expected-Last-Subject-Sequence`)
/// ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    Acked {
        seq: u64,
    },
    /// 400/10071: the expected sequence was not the last one.
    Rejected,
    Unknown,
}

#[derive(Debug, Clone)]
pub struct CasOp {
    pub client: usize,
    pub id: String,
    /// What its `STREAM.MSG.GET` (last by subject, from the stream leader)
    /// saw as the subject's last sequence (0: no message), and when that
    /// read was sent.
    pub expected: u64,
    pub read_sent_at: Duration,
    pub outcome: CasOutcome,
    /// When the publish's outcome was known.
    pub done_at: Duration,
}

/// A `STREAM.MSG.GET` of the CAS subject's last message by a reader pinned
/// to one node (it never moves to another: a node cut off from the others
/// keeps being asked).
#[derive(Debug, Clone)]
pub struct ReadOp {
    pub node: String,
    /// The last sequence it saw (0: no message).
    pub seen: u64,
    pub sent_at: Duration,
}

/// A liveness probe after the final heal: when a publish through `node`
/// was first acknowledged, if it was.
#[derive(Debug, Clone)]
pub struct Probe {
    pub node: String,
    pub acked_after_heal: Option<Duration>,
}

/// A core NATS message a publisher sent (to `core.p.<publisher>` and to
/// the queue group's `core.q.<publisher>`).
#[derive(Debug, Clone)]
pub struct CorePub {
    pub publisher: usize,
    pub seq: u64,
    pub at: Duration,
}

/// A core NATS message a subscriber connection received.
#[derive(Debug, Clone)]
pub struct CoreMsg {
    /// The subscriber connection (each reconnect is another).
    pub conn: String,
    pub subject: String,
    /// Delivered to its queue group membership.
    pub queue: bool,
    /// The (publisher, seq) its payload names, if it parses.
    pub sent: Option<(usize, u64)>,
    pub at: Duration,
}

/// A job a worker received (from its ack subject).
#[derive(Debug, Clone)]
pub struct JobDelivery {
    /// The worker connection.
    pub worker: String,
    pub seq: u64,
    /// The delivery count the server stamped.
    pub delivered: u64,
    pub at: Duration,
}

/// A worker's ack the server confirmed (answered the double ack).
#[derive(Debug, Clone)]
pub struct JobAck {
    pub seq: u64,
    pub delivered: u64,
    pub at: Duration,
}

#[derive(Debug, Default)]
pub struct History {
    /// Jobs the work queue acknowledged: (stream sequence, when).
    pub job_pubs: Vec<(u64, Duration)>,
    pub job_deliveries: Vec<JobDelivery>,
    pub job_acks: Vec<JobAck>,
    pub core_pubs: Vec<CorePub>,
    pub core_msgs: Vec<CoreMsg>,
    /// Publishers that sent the final messages.
    pub core_final_pubs: Vec<usize>,
    /// When the final heal was done.
    pub healed_at: Option<Duration>,
    pub pubs: Vec<PubOp>,
    pub cas: Vec<CasOp>,
    pub reads: Vec<ReadOp>,
    pub deletes: Vec<DeleteOp>,
    pub purges: Vec<PurgeOp>,
    pub probes: Vec<Probe>,
    /// Each time a node's process died (crash, power cut, fatal stop),
    /// in order: what it held in memory was gone from then on.
    pub crashes: Vec<(String, Duration)>,
    /// Nodes that stopped on a fatal storage error nobody injected.
    pub unexpected_fatal: Vec<String>,
    /// Every event in simulated order: (simulated ms, text).
    pub events: Vec<(u128, String)>,
}

pub type SharedHistory = Rc<RefCell<History>>;

impl History {
    pub fn event(&mut self, at: Duration, text: String) {
        self.events.push((at.as_millis(), text));
    }

    /// SHA-256 over the rendered trace and every core NATS delivery.
    pub fn trace_hash(&self) -> String {
        let mut h = Sha256::new();
        for (at, text) in &self.events {
            h.update(at.to_le_bytes());
            h.update(text.as_bytes());
            h.update(b"\n");
        }
        for m in &self.core_msgs {
            h.update(m.at.as_micros().to_le_bytes());
            h.update(m.conn.as_bytes());
            h.update(m.subject.as_bytes());
            h.update(format!("{:?}", m.sent).as_bytes());
        }
        hex::encode(h.finalize())
    }

    pub fn render_trace(&self) -> String {
        let mut out = String::new();
        for (at, text) in &self.events {
            out.push_str(&format!("{:>7}.{:03}s {text}\n", at / 1000, at % 1000));
        }
        out
    }
}

/// The simulated time, inside or outside a host.
pub fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}
