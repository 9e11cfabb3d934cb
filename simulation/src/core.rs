//! Core NATS across nodes: publishers and subscribers pinned to different
//! nodes while the nemesis works. A publisher numbers its messages; each
//! subscriber connection records what it got, so the checker can tell a
//! duplicate, a reordering, a message nobody sent, or a queue group's
//! message delivered twice. After the final heal every subscriber must hear
//! every publisher (interest is neither lost nor stale after the faults).

use std::time::Duration;

use tokio::sync::mpsc;

use crate::client::{self, Client, Msg};
use crate::history::{CoreMsg, CorePub, SharedHistory, now};
use crate::net::CLIENT_PORT;

/// Plain subscribers listen on `core.>`; publisher `i` publishes to
/// `core.p.<i>` and to the queue group's `core.q.<i>`.
pub const PLAIN_FILTER: &str = "core.p.*";
pub const QUEUE_FILTER: &str = "core.q.*";
pub const QUEUE_GROUP: &str = "g";
/// Subscribers also listen on `final.*`; after the final heal every
/// publisher sends this many messages there once interest had time to
/// spread, and every subscriber must hear them all.
pub const FINAL_FILTER: &str = "final.*";
pub const FINAL_MSGS: u64 = 10;
/// From the final heal until the final publishes (nodes restart, routes
/// reconnect within their backoff of a second and resend their tables),
/// and until the subscribers stop listening.
pub const FINAL_PUBLISH_AFTER: Duration = Duration::from_secs(8);
pub const FINAL_LISTEN_UNTIL: Duration = Duration::from_secs(14);
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// A client connection to `node`, or None within 2 s.
pub(crate) async fn connect(node: &str, name: &str) -> Option<Client> {
    let addr = format!("{node}:{CLIENT_PORT}");
    tokio::time::timeout(Duration::from_secs(2), async {
        let io = turmoil::net::TcpStream::connect(addr).await?;
        client::connect(io, name).await
    })
    .await
    .ok()?
    .ok()
}

/// Parses `<publisher>:<seq>`.
fn parse(payload: &[u8]) -> Option<(usize, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (p, s) = text.split_once(':')?;
    Some((p.parse().ok()?, s.parse().ok()?))
}

/// Publishes numbered messages through `node` until `until`, reconnecting
/// (to the same node) when its connection fails; then, after the final
/// heal, the final messages.
pub async fn run_publisher(
    idx: usize,
    node: String,
    until: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    let mut seq = 0u64;
    let mut client = None;
    let mut connects = 0;
    while now() < until {
        if client.as_ref().is_none_or(Client::is_closed) {
            connects += 1;
            client = connect(&node, &format!("cpub{idx}x{connects}")).await;
        }
        if let Some(c) = &client {
            seq += 1;
            let body = format!("{idx}:{seq}");
            let plain = c.publish(&format!("core.p.{idx}"), body.as_bytes());
            let queue = c.publish(&format!("core.q.{idx}"), body.as_bytes());
            if plain.is_ok() || queue.is_ok() {
                hist.borrow_mut().core_pubs.push(CorePub {
                    publisher: idx,
                    seq,
                    at: now(),
                });
            }
        }
        tokio::time::sleep(PUBLISH_EVERY).await;
    }
    Ok(())
}

/// After the final heal at `healed_at`: publishes the final messages
/// through `node` once interest had time to spread.
pub async fn run_final_publisher(
    idx: usize,
    node: String,
    healed_at: Duration,
    hist: SharedHistory,
) -> turmoil::Result {
    tokio::time::sleep((healed_at + FINAL_PUBLISH_AFTER).saturating_sub(now())).await;
    let Some(c) = connect(&node, &format!("cfin{idx}")).await else {
        hist.borrow_mut().event(
            now(),
            format!("core: final publisher {idx} could not connect to {node}"),
        );
        return Ok(());
    };
    for seq in 1..=FINAL_MSGS {
        let _ = c.publish(&format!("final.{idx}"), format!("{idx}:{seq}").as_bytes());
    }
    hist.borrow_mut().core_final_pubs.push(idx);
    // Stay connected until the messages are out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// The subscriber on node `idx`'s name prefix (each connection adds `x<n>`).
pub fn subscriber(idx: usize) -> String {
    format!("csub{idx}")
}

/// Whether the final messages had their time to arrive.
pub(crate) fn finished(hist: &SharedHistory) -> bool {
    hist.borrow()
        .healed_at
        .is_some_and(|h| now() >= h + FINAL_LISTEN_UNTIL)
}

/// One subscriber pinned to `node` from the start until after the final
/// messages: a plain subscription, a queue group membership and the final
/// filter, made once per connection (so the ones that outlive the faults
/// are what the final messages test), each connection's deliveries
/// recorded under its own name.
pub async fn run_subscriber(idx: usize, node: String, hist: SharedHistory) -> turmoil::Result {
    let mut connects = 0u64;
    while !finished(&hist) {
        connects += 1;
        let name = format!("{}x{connects}", subscriber(idx));
        let Some(c) = connect(&node, &name).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (Ok(plain), Ok(queue), Ok(last)) = (
            c.subscribe(PLAIN_FILTER, None),
            c.subscribe(QUEUE_FILTER, Some(QUEUE_GROUP)),
            c.subscribe(FINAL_FILTER, None),
        ) else {
            continue;
        };
        listen(&c, [plain, queue, last], &name, &hist).await;
    }
    Ok(())
}

async fn listen(
    c: &Client,
    [mut plain, mut queue, mut last]: [mpsc::UnboundedReceiver<Msg>; 3],
    conn: &str,
    hist: &SharedHistory,
) {
    loop {
        let (msg, queued) = tokio::select! {
            m = plain.recv() => (m, false),
            m = queue.recv() => (m, true),
            m = last.recv() => (m, false),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if finished(hist) || c.is_closed() {
                    return;
                }
                continue;
            }
        };
        let Some(msg) = msg else { return };
        record(hist, conn, &msg, queued);
    }
}

fn record(hist: &SharedHistory, conn: &str, msg: &Msg, queue: bool) {
    let parsed = parse(&msg.payload);
    hist.borrow_mut().core_msgs.push(CoreMsg {
        conn: conn.to_string(),
        subject: msg.subject.clone(),
        queue,
        sent: parsed,
        at: now(),
    });
}
