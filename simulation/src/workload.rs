//! Clients speaking the NATS protocol to the nodes' gateways: publishes with
//! `Nats-Msg-Id` (retried with the same id on timeout), compare-and-set
//! publishes with `Nats-Expected-Last-Subject-Sequence`, and the commands
//! that remove messages: `STREAM.MSG.DELETE`, `STREAM.PURGE` with a filter
//! and `keep`, rollups (`Nats-Rollup: sub`), and a second stream with
//! limits (`max_msgs` with discard new, `max_msgs_per_subject`, `max_age`),
//! so the scrubber and catch-up run while messages go away.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::client::{self, Client, Msg, RequestError};
use crate::history::{
    CasOp, CasOutcome, DeleteOp, Probe, PubOp, PubOutcome, PurgeOp, ReadOp, RemoveOutcome,
    SharedHistory, now,
};
use crate::net::CLIENT_PORT;

/// The stream every client writes to.
pub const STREAM: &str = "S";
/// The subject compare-and-set publishes contend on.
pub const CAS_SUBJECT: &str = "cas.k";
/// What `STREAM.PURGE` requests purge (with some `keep`).
pub const PURGE_FILTER: &str = "p.>";
/// The stream with limits.
pub const LIMITS_STREAM: &str = "L";
/// Its limits (discard new: a full stream refuses publishes).
pub const LIMIT_MAX_MSGS: u64 = 40;
pub const LIMIT_PER_SUBJECT: u64 = 6;
pub const LIMIT_MAX_AGE: Duration = Duration::from_secs(20);
/// The stream kept in memory (`storage: "memory"`): replicated like the
/// others, forgotten by a replica that restarts, gone when all did.
pub const MEMORY_STREAM: &str = "M";
/// Subjects `l.0` … of the stream with limits.
const LIMIT_SUBJECTS: u64 = 8;
/// Subjects `r.0` … rolled up now and then.
const ROLLUP_SUBJECTS: u64 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A publish to the stream with limits is retried at most this long, well
/// inside its duplicate window (= `max_age`), so a retry is never stored
/// twice.
const LIMITS_RETRY: Duration = Duration::from_secs(12);
/// A publish to the stream kept in memory is retried at most this long: a
/// memory stream can wait long for the replicas that kept it (decision
/// 35), and its client must go on with the rest of the workload.
const MEMORY_RETRY: Duration = Duration::from_secs(2);

/// The stream's configuration as the clients create it.
pub fn stream_config(replicas: usize) -> String {
    serde_json::json!({
        "name": STREAM,
        "subjects": ["s.>", "cas.>", "d.>", "p.>", "r.>"],
        "num_replicas": replicas,
        "storage": "file",
        "duplicate_window": 120_000_000_000u64,
        "allow_rollup_hdrs": true,
    })
    .to_string()
}

/// The configuration of the stream kept in memory.
pub fn memory_config(replicas: usize) -> String {
    serde_json::json!({
        "name": MEMORY_STREAM,
        "subjects": ["m.>"],
        "num_replicas": replicas,
        "storage": "memory",
        "duplicate_window": 120_000_000_000u64,
    })
    .to_string()
}

/// The configuration of the stream with limits.
pub fn limits_config(replicas: usize) -> String {
    let age_ns = LIMIT_MAX_AGE.as_nanos() as u64;
    serde_json::json!({
        "name": LIMITS_STREAM,
        "subjects": ["l.>"],
        "num_replicas": replicas,
        "storage": "file",
        "max_msgs": LIMIT_MAX_MSGS,
        "max_msgs_per_subject": LIMIT_PER_SUBJECT,
        "max_age": age_ns,
        "duplicate_window": age_ns,
        "discard": "new",
    })
    .to_string()
}

/// One client's connection, moving to the next node when its node fails.
pub struct Conn {
    name: String,
    nodes: Vec<String>,
    at: usize,
    client: Option<Client>,
    connects: u64,
}

/// A failed request: the connection (or node) is to blame, or the request
/// was not answered in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    NoResponders,
    Connection,
}

impl Conn {
    pub fn new(name: String, nodes: Vec<String>, first: usize) -> Self {
        Self {
            name,
            nodes,
            at: first,
            client: None,
            connects: 0,
        }
    }

    pub fn node(&self) -> &str {
        &self.nodes[self.at % self.nodes.len()]
    }

    /// Moves to the next node.
    pub fn rotate(&mut self) {
        self.client = None;
        self.at = (self.at + 1) % self.nodes.len();
    }

    async fn client(&mut self) -> Option<&Client> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            self.connects += 1;
            let addr = format!("{}:{CLIENT_PORT}", self.node());
            let name = format!("{}x{}", self.name, self.connects);
            let attempt = tokio::time::timeout(Duration::from_secs(2), async {
                let io = turmoil::net::TcpStream::connect(addr).await?;
                client::connect(io, &name).await
            })
            .await;
            match attempt {
                Ok(Ok(c)) => self.client = Some(c),
                _ => {
                    self.rotate();
                    return None;
                }
            }
        }
        self.client.as_ref()
    }

    pub async fn request(
        &mut self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) -> Result<Msg, Failure> {
        let Some(c) = self.client().await else {
            return Err(Failure::Connection);
        };
        match c.request(subject, headers, payload, REQUEST_TIMEOUT).await {
            Ok(m) => Ok(m),
            Err(RequestError::Timeout) => Err(Failure::Timeout),
            Err(RequestError::NoResponders) => Err(Failure::NoResponders),
            Err(_) => {
                self.rotate();
                Err(Failure::Connection)
            }
        }
    }
}

/// An API reply's error, if it is one: (code, err_code).
fn api_error(v: &Value) -> Option<(u64, u64)> {
    let e = v.get("error")?;
    Some((
        e.get("code").and_then(Value::as_u64).unwrap_or(0),
        e.get("err_code").and_then(Value::as_u64).unwrap_or(0),
    ))
}

/// Errors that mean "not now": no leader, no quorum, still electing. A
/// full stream with discard new (503/10077) is a definite refusal.
fn retryable(code: u64, err_code: u64) -> bool {
    err_code != 10077
        && (code == 503 || code == 504 || matches!(err_code, 10008 | 10009 | 10023 | 10059))
}

/// Creates the stream `name` with `body`, retrying until it exists.
pub async fn create_stream(
    conn: &mut Conn,
    name: &str,
    body: &str,
    give_up_at: Duration,
    hist: &SharedHistory,
) {
    while now() < give_up_at {
        match api_request(conn, &format!("$JS.API.STREAM.CREATE.{name}"), body).await {
            Ok(_) => {
                hist.borrow_mut()
                    .event(now(), format!("stream {name} created via {}", conn.node()));
                return;
            }
            Err(Refused::Api(code, err)) => hist
                .borrow_mut()
                .event(now(), format!("stream {name} create: {code}/{err}")),
            Err(Refused::Transport(f)) => {
                if f == Failure::Timeout {
                    conn.rotate();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A memory stream founded with replicas that restarted since may wait
    // for an operator (decision 35); the client goes on without it.
    hist.borrow_mut()
        .event(now(), format!("stream {name} not created: giving up"));
}

/// Why a stream request did not take effect (as far as the client knows).
enum Refused {
    Api(u64, u64),
    Transport(Failure),
}

/// `$JS.API.STREAM.<verb>.<STREAM>` with the stream's config at `replicas`.
async fn stream_request(conn: &mut Conn, verb: &str, replicas: usize) -> Result<(), Refused> {
    let subject = format!("$JS.API.STREAM.{verb}.{STREAM}");
    api_request(conn, &subject, &stream_config(replicas))
        .await
        .map(|_| ())
}

/// One JetStream API request: its reply, or why it did not take effect.
async fn api_request(conn: &mut Conn, subject: &str, body: &str) -> Result<Value, Refused> {
    let m = conn
        .request(subject, &[], body.as_bytes())
        .await
        .map_err(Refused::Transport)?;
    let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
    match api_error(&v) {
        None => Ok(v),
        Some((code, err)) => Err(Refused::Api(code, err)),
    }
}

/// The outcome of a delete or purge request, which is never retried.
fn removal(reply: Result<Value, Refused>) -> RemoveOutcome {
    match reply {
        Ok(v) => RemoveOutcome::Acked {
            purged: v.get("purged").and_then(Value::as_u64).unwrap_or(1),
        },
        Err(Refused::Api(code, err_code)) if !retryable(code, err_code) => {
            RemoveOutcome::Refused { err_code }
        }
        // "Not now" may still have been proposed; a timeout may still apply.
        Err(_) => RemoveOutcome::Unknown,
    }
}

/// Deletes `seq` from the stream (`no_erase`, as the `nats` CLI does).
async fn delete_msg(conn: &mut Conn, client: usize, seq: u64) -> DeleteOp {
    let sent_at = now();
    let body = serde_json::json!({ "seq": seq, "no_erase": true }).to_string();
    let reply = api_request(conn, &format!("$JS.API.STREAM.MSG.DELETE.{STREAM}"), &body).await;
    DeleteOp {
        client,
        seq,
        outcome: removal(reply),
        sent_at,
        done_at: now(),
    }
}

/// Purges [`PURGE_FILTER`] from the stream, keeping the newest `keep`.
async fn purge(conn: &mut Conn, client: usize, keep: u64) -> PurgeOp {
    let sent_at = now();
    let body = if keep > 0 {
        serde_json::json!({ "filter": PURGE_FILTER, "keep": keep })
    } else {
        serde_json::json!({ "filter": PURGE_FILTER })
    }
    .to_string();
    let reply = api_request(conn, &format!("$JS.API.STREAM.PURGE.{STREAM}"), &body).await;
    PurgeOp {
        client,
        filter: PURGE_FILTER.to_string(),
        keep,
        outcome: removal(reply),
        sent_at,
        done_at: now(),
    }
}

/// Publishes `id` (as `Nats-Msg-Id` and payload) until it is acknowledged,
/// refused, or `give_up_at` passes; retries keep the id.
/// With `rollup`, the message carries `Nats-Rollup: sub`.
pub async fn publish(
    conn: &mut Conn,
    client: usize,
    subject: &str,
    id: &str,
    rollup: bool,
    give_up_at: Duration,
) -> PubOp {
    let sent_at = now();
    let mut headers = vec![("Nats-Msg-Id", id)];
    if rollup {
        headers.push(("Nats-Rollup", "sub"));
    }
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        match conn.request(subject, &headers, id.as_bytes()).await {
            Ok(m) => {
                // An error reply carries `"seq":0` too: look at the error first.
                let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                match (api_error(&v), v.get("seq").and_then(Value::as_u64)) {
                    (Some((code, err)), _) if !retryable(code, err) => {
                        break PubOutcome::Refused { err_code: err };
                    }
                    (None, Some(seq)) => {
                        let duplicate = v.get("duplicate").and_then(Value::as_bool) == Some(true);
                        break PubOutcome::Acked { seq, duplicate };
                    }
                    _ => {}
                }
            }
            // A timeout may mean the node is cut off: try another.
            Err(Failure::Timeout) => conn.rotate(),
            Err(_) => {}
        }
        if now() >= give_up_at {
            break PubOutcome::Unknown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    PubOp {
        client,
        id: id.to_string(),
        subject: subject.to_string(),
        attempts,
        outcome,
        rollup,
        sent_at,
        done_at: now(),
    }
}

/// The last sequence of [`CAS_SUBJECT`] as the stream leader answers it
/// (0 if none), or `None` when the request failed.
async fn read_last_cas(conn: &mut Conn) -> Option<u64> {
    let get = format!("$JS.API.STREAM.MSG.GET.{STREAM}");
    let body = serde_json::json!({ "last_by_subj": CAS_SUBJECT }).to_string();
    let m = conn.request(&get, &[], body.as_bytes()).await.ok()?;
    let v: Value = serde_json::from_slice(&m.payload).ok()?;
    match api_error(&v) {
        None => v.pointer("/message/seq").and_then(Value::as_u64),
        Some((404, 10037)) => Some(0),
        Some(_) => None,
    }
}

/// A reader pinned to `node`: until `stop_at`, every 50–250 ms, reads the
/// CAS subject's last sequence through that node and records what it saw
/// ([`crate::check`]: a read sent after an ack sees it).
pub async fn run_reader(
    node: String,
    seed: u64,
    stop_at: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x7265_6164_6572);
    let mut conn = Conn::new(format!("r-{node}"), vec![node.clone()], 0);
    while now() < stop_at {
        let sent_at = now();
        if let Some(seen) = read_last_cas(&mut conn).await {
            hist.borrow_mut().reads.push(ReadOp {
                node: node.clone(),
                seen,
                sent_at,
            });
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..250))).await;
    }
    Ok(())
}

/// Reads the last sequence of [`CAS_SUBJECT`] (0 if none), then publishes
/// with that as the expected last subject sequence. Not retried: a retry
/// of an applied CAS would be refused, which proves nothing.
async fn compare_and_set(conn: &mut Conn, client: usize, id: &str) -> Option<CasOp> {
    let read_sent_at = now();
    let expected = read_last_cas(conn).await?;
    let exp = expected.to_string();
    let payload = format!("exp={expected};id={id}");
    let outcome = match conn
        .request(
            CAS_SUBJECT,
            &[("Nats-Expected-Last-Subject-Sequence", &exp)],
            payload.as_bytes(),
        )
        .await
    {
        Ok(m) => {
            let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            match (api_error(&v), v.get("seq").and_then(Value::as_u64)) {
                (None, Some(seq)) => CasOutcome::Acked { seq },
                (Some((_, 10071)), _) => CasOutcome::Rejected,
                _ => CasOutcome::Unknown,
            }
        }
        Err(_) => CasOutcome::Unknown,
    };
    Some(CasOp {
        client,
        id: id.to_string(),
        expected,
        read_sent_at,
        outcome,
        done_at: now(),
    })
}

/// One workload client: until `stop_at`, publishes (45%: 38% to `s.cN`,
/// 7% to the stream kept in memory), compare-and-sets
/// (20%), and removes messages: publishes to `d.cN` and deletes some of
/// them again, publishes to `p.cN` and purges `p.>` keeping a few,
/// publishes to `r.K` with a rollup now and then, and publishes to the
/// stream with limits. Every outcome is recorded.
pub async fn run_client(
    idx: usize,
    nodes: Vec<String>,
    seed: u64,
    replicas: usize,
    stop_at: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    let mut rng = SmallRng::seed_from_u64(seed ^ (idx as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    let first = idx % nodes.len();
    let mut conn = Conn::new(format!("c{idx}"), nodes, first);
    let give_up_at = stop_at + Duration::from_secs(5);
    if idx == 0 {
        for (name, config) in [
            (STREAM, stream_config(replicas)),
            (LIMITS_STREAM, limits_config(replicas)),
        ] {
            create_stream(&mut conn, name, &config, give_up_at, &hist).await;
        }
    }
    // This client's acked `d.cN` messages not yet deleted.
    let mut deletable: Vec<u64> = Vec::new();
    let mut n = 0u64;
    while now() < stop_at {
        n += 1;
        let pick = rng.random_range(0..100);
        match pick {
            0..45 => {
                // Most to the stream nothing removes, some to the one in memory.
                let (subject, id, until) = if pick < 38 {
                    (format!("s.c{idx}"), format!("c{idx}-{n}"), give_up_at)
                } else {
                    let until = give_up_at.min(now() + MEMORY_RETRY);
                    (format!("m.c{idx}"), format!("c{idx}-m{n}"), until)
                };
                let op = publish(&mut conn, idx, &subject, &id, false, until).await;
                record_pub(&hist, op);
            }
            45..65 => {
                let id = format!("c{idx}-cas{n}");
                if let Some(op) = compare_and_set(&mut conn, idx, &id).await {
                    hist.borrow_mut().event(
                        now(),
                        format!("c{idx} cas {id} exp={} {:?}", op.expected, op.outcome),
                    );
                    hist.borrow_mut().cas.push(op);
                }
            }
            65..72 => {
                let op = publish(
                    &mut conn,
                    idx,
                    &format!("d.c{idx}"),
                    &format!("c{idx}-d{n}"),
                    false,
                    give_up_at,
                )
                .await;
                if let PubOutcome::Acked { seq, .. } = op.outcome {
                    deletable.push(seq);
                }
                record_pub(&hist, op);
            }
            72..76 if !deletable.is_empty() => {
                let at = rng.random_range(0..deletable.len());
                let seq = deletable.swap_remove(at);
                let op = delete_msg(&mut conn, idx, seq).await;
                hist.borrow_mut()
                    .event(now(), format!("c{idx} delete seq {seq} {:?}", op.outcome));
                hist.borrow_mut().deletes.push(op);
            }
            76..83 => {
                let op = publish(
                    &mut conn,
                    idx,
                    &format!("p.c{idx}"),
                    &format!("c{idx}-p{n}"),
                    false,
                    give_up_at,
                )
                .await;
                record_pub(&hist, op);
            }
            83..86 => {
                let keep = rng.random_range(0..6);
                let op = purge(&mut conn, idx, keep).await;
                hist.borrow_mut().event(
                    now(),
                    format!("c{idx} purge {} keep {keep} {:?}", op.filter, op.outcome),
                );
                hist.borrow_mut().purges.push(op);
            }
            86..93 => {
                let subject = format!("r.{}", rng.random_range(0..ROLLUP_SUBJECTS));
                let rollup = rng.random_bool(0.4);
                let op = publish(
                    &mut conn,
                    idx,
                    &subject,
                    &format!("c{idx}-r{n}"),
                    rollup,
                    give_up_at,
                )
                .await;
                record_pub(&hist, op);
            }
            93..100 => {
                let subject = format!("l.{}", rng.random_range(0..LIMIT_SUBJECTS));
                let until = give_up_at.min(now() + LIMITS_RETRY);
                let op = publish(
                    &mut conn,
                    idx,
                    &subject,
                    &format!("c{idx}-l{n}"),
                    false,
                    until,
                )
                .await;
                record_pub(&hist, op);
            }
            _ => {}
        }
        let pause = rng.random_range(0..50);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Ok(())
}

/// Creates the stream kept in memory, beside the workload clients: its
/// group may wait long for replicas that restarted while it was being
/// founded (decision 35), and the workload must not wait with it.
pub async fn create_memory_stream(
    nodes: Vec<String>,
    replicas: usize,
    stop_at: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    let mut conn = Conn::new("mk".to_string(), nodes, 0);
    let give_up_at = stop_at + Duration::from_secs(5);
    let config = memory_config(replicas);
    create_stream(&mut conn, MEMORY_STREAM, &config, give_up_at, &hist).await;
    Ok(())
}

fn record_pub(hist: &SharedHistory, op: PubOp) {
    let rollup = if op.rollup { " rollup" } else { "" };
    hist.borrow_mut().event(
        now(),
        format!(
            "c{} pub {} {}{rollup} {:?} tries={}",
            op.client, op.id, op.subject, op.outcome, op.attempts
        ),
    );
    hist.borrow_mut().pubs.push(op);
}

/// The operator of [`Fault::Rescale`](crate::nemesis::Fault::Rescale):
/// every few seconds until `stop_at` it moves the stream between
/// `replicas` and `replicas - 1` replicas with `STREAM.UPDATE`, and it
/// leaves the stream at `replicas` (retrying past `stop_at` if it must).
pub async fn run_operator(
    nodes: Vec<String>,
    seed: u64,
    replicas: usize,
    stop_at: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x6F70_6572_6174_6F72);
    let first = rng.random_range(0..nodes.len());
    let mut conn = Conn::new("op".to_string(), nodes, first);
    let low = replicas.saturating_sub(1).max(1);
    let mut current = replicas;
    loop {
        let pause = rng.random_range(2_000..6_000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if now() >= stop_at {
            break;
        }
        let want = if current == replicas { low } else { replicas };
        if set_replicas(&mut conn, want, &hist).await {
            current = want;
        }
    }
    // A request that timed out may still have been applied: end with one
    // that is known to have been, whatever `current` believes.
    let give_up = stop_at + Duration::from_secs(60);
    while now() < give_up && !set_replicas(&mut conn, replicas, &hist).await {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// The operator of [`Fault::StepDown`](crate::nemesis::Fault::StepDown):
/// every few seconds asks the leader of the stream, of the job stream or
/// of its consumer to hand over, and records what it was told. Every
/// promise the checkers hold must survive the handovers.
pub async fn run_stepper(
    nodes: Vec<String>,
    seed: u64,
    stop_at: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x7374_6570_646F_776E);
    let first = rng.random_range(0..nodes.len());
    let mut conn = Conn::new("stepper".to_string(), nodes, first);
    loop {
        let pause = rng.random_range(1_500..4_000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if now() >= stop_at {
            return Ok(());
        }
        let jobs = crate::consumer::JOBS_STREAM;
        let subject = match rng.random_range(0..3) {
            0 => format!("$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}"),
            1 => format!("$JS.API.STREAM.LEADER.STEPDOWN.{jobs}"),
            _ => format!(
                "$JS.API.CONSUMER.LEADER.STEPDOWN.{jobs}.{}",
                crate::consumer::CONSUMER
            ),
        };
        let text = match api_request(&mut conn, &subject, "").await {
            Ok(_) => "handed over".to_string(),
            Err(Refused::Api(code, err)) => format!("refused {code}/{err}"),
            Err(Refused::Transport(f)) => {
                conn.rotate();
                format!("{f:?}")
            }
        };
        hist.borrow_mut()
            .event(now(), format!("op: {subject} via {}: {text}", conn.node()));
    }
}

/// One `STREAM.UPDATE` to `replicas`; true when the catalog took it.
async fn set_replicas(conn: &mut Conn, replicas: usize, hist: &SharedHistory) -> bool {
    let text = match stream_request(conn, "UPDATE", replicas).await {
        Ok(()) => {
            hist.borrow_mut().event(
                now(),
                format!("op: stream now R{replicas} via {}", conn.node()),
            );
            return true;
        }
        Err(Refused::Api(code, err)) => format!("{code}/{err}"),
        Err(Refused::Transport(f)) => {
            conn.rotate();
            format!("{f:?}")
        }
    };
    hist.borrow_mut()
        .event(now(), format!("op: R{replicas} failed: {text}"));
    false
}

/// After the final heal: publishes through `node` until acknowledged and
/// records how long that took from `healed_at`.
pub async fn probe(
    node_idx: usize,
    nodes: Vec<String>,
    healed_at: Duration,
    give_up_at: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    let node = nodes[node_idx].clone();
    let mut conn = Conn::new(format!("probe{node_idx}"), vec![node.clone()], 0);
    let id = format!("probe-{node}");
    let op = publish(&mut conn, usize::MAX, "s.probe", &id, false, give_up_at).await;
    let acked_after_heal = match op.outcome {
        PubOutcome::Acked { .. } => Some(now().saturating_sub(healed_at)),
        _ => None,
    };
    let mut h = hist.borrow_mut();
    h.event(now(), format!("probe {node} {:?}", op.outcome));
    h.probes.push(Probe {
        node,
        acked_after_heal,
    });
    h.pubs.push(op);
    Ok(())
}
