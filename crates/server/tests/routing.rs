//! Core NATS across a three-node cluster of real processes, with async-nats
//! clients pinned to different nodes: the cluster behaves as one server.
//! Interest crosses nodes asynchronously (as in nats-server), so each
//! scenario first waits until the publisher's node has heard it
//! (`/routez`), then counts what crossed.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, NodeProc};
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(20);

async fn connect(node: &NodeProc) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(5)))
        .connect(node.url())
        .await
        .unwrap()
}

/// Until `pred` holds for `from`'s route to `peer`.
async fn await_route(
    from: &NodeProc,
    peer: &str,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(r) = from.route_to(peer).await
            && pred(&r)
        {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} -> {peer}: {what} not within {WAIT:?}: {:?}",
            from.name,
            from.route_to(peer).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn await_subs(from: &NodeProc, peer: &str, n: u64) {
    await_route(from, peer, &format!("{n} announced filters"), |r| {
        r["subscriptions"].as_u64() == Some(n)
    })
    .await;
}

async fn out_msgs(from: &NodeProc, peer: &str) -> u64 {
    from.route_to(peer).await.unwrap()["out_msgs"]
        .as_u64()
        .unwrap()
}

/// Until a request to `subject` from `client` gets `n` answers (the
/// responders' interest reached the requester's node; a count of what a
/// peer announced can be met early by filters still being withdrawn).
async fn await_responders(client: &async_nats::Client, subject: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let inbox = client.new_inbox();
        let mut answers = client.subscribe(inbox.clone()).await.unwrap();
        client
            .publish_with_reply(subject.to_string(), inbox, "probe".into())
            .await
            .unwrap();
        let mut got = 0;
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(300), answers.next()).await
        {
            got += 1;
        }
        if got == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{subject}: {got} of {n} responders answer"
        );
    }
}

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message within the wait")
        .expect("subscription open")
}

async fn nothing_more(sub: &mut async_nats::Subscriber) {
    let extra = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(extra.is_err(), "unexpected message: {extra:?}");
}

/// Fan-out, queue groups, request/reply and no-responders, each across
/// nodes, on one cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_behaves_as_one_server() {
    let c = Cluster::start(3, &[]).await;
    let (n1, n2, n3) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let clients = [connect(n1).await, connect(n2).await, connect(n3).await];

    // ---- interest leaves with its client: nothing crosses afterwards.
    let leaving = connect(n2).await;
    let gone = leaving.subscribe("gone.x").await.unwrap();
    leaving.flush().await.unwrap();
    await_subs(n1, "n2", 1).await;
    let crossed = out_msgs(n1, "n2").await;
    clients[0].publish("gone.x", "1".into()).await.unwrap();
    clients[0].flush().await.unwrap();
    await_route(n1, "n2", "the message crossed", |r| {
        r["out_msgs"].as_u64() == Some(crossed + 1)
    })
    .await;
    drop(gone);
    drop(leaving);
    await_subs(n1, "n2", 0).await;
    let crossed = out_msgs(n1, "n2").await;
    for _ in 0..100 {
        clients[0].publish("gone.x", "2".into()).await.unwrap();
    }
    clients[0].flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        out_msgs(n1, "n2").await,
        crossed,
        "no message crossed to a node without interest"
    );
    // And a request to it now finds nobody.
    let err = clients[0].request("gone.x", "?".into()).await.unwrap_err();
    assert_eq!(
        err.kind(),
        async_nats::client::RequestErrorKind::NoResponders
    );

    // ---- fan-out: every subscriber once, in publish order; one copy per node.
    let mut subs = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        subs.push((i, client.subscribe("fan.data").await.unwrap()));
    }
    // A second subscriber on n2: still one copy crosses to n2.
    subs.push((1, clients[1].subscribe("fan.*").await.unwrap()));
    for cl in &clients {
        cl.flush().await.unwrap();
    }
    await_subs(n1, "n2", 2).await;
    await_subs(n1, "n3", 1).await;
    let before = (out_msgs(n1, "n2").await, out_msgs(n1, "n3").await);
    const N: usize = 500;
    for i in 0..N {
        clients[0]
            .publish("fan.data", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    clients[0].flush().await.unwrap();
    for (node, sub) in &mut subs {
        for i in 0..N {
            let m = next(sub).await;
            assert_eq!(m.payload, i.to_string(), "subscriber on n{}", *node + 1);
        }
        nothing_more(sub).await;
    }
    let after = (out_msgs(n1, "n2").await, out_msgs(n1, "n3").await);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (N as u64, N as u64),
        "exactly one copy of each message per node"
    );
    drop(subs);

    // ---- queue group spanning n2 and n3, publisher on n1 (no member there).
    let mut members = Vec::new();
    for (node, client) in [(2, &clients[1]), (2, &clients[1]), (3, &clients[2])] {
        members.push((
            node,
            client.queue_subscribe("work", "q".into()).await.unwrap(),
        ));
    }
    await_route(n1, "n2", "queue weight 2", |r| r["subscriptions"] == 1).await;
    await_route(n1, "n3", "queue member", |r| r["subscriptions"] == 1).await;
    // Let the weight-2 update land too (it follows the first member).
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..300 {
        clients[0]
            .publish("work", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    clients[0].flush().await.unwrap();
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_node: BTreeMap<u32, usize> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 300 && tokio::time::Instant::now() < deadline {
        for (node, sub) in &mut members {
            while let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(20), sub.next()).await
            {
                *got.entry(String::from_utf8_lossy(&m.payload).into_owned())
                    .or_default() += 1;
                *per_node.entry(*node).or_default() += 1;
            }
        }
    }
    assert_eq!(got.len(), 300, "every message reached the group");
    assert!(got.values().all(|n| *n == 1), "none twice: {got:?}");
    assert!(
        per_node.get(&2).copied().unwrap_or(0) > 0 && per_node.get(&3).copied().unwrap_or(0) > 0,
        "shared across nodes: {per_node:?}"
    );

    // A member on the publisher's node is preferred, as in nats-server.
    let mut local = clients[0]
        .queue_subscribe("work", "q".into())
        .await
        .unwrap();
    clients[0].flush().await.unwrap();
    let before = out_msgs(n1, "n2").await + out_msgs(n1, "n3").await;
    for i in 0..50 {
        clients[0]
            .publish("work", Bytes::from(format!("l{i}")))
            .await
            .unwrap();
    }
    for i in 0..50 {
        assert_eq!(next(&mut local).await.payload, format!("l{i}"));
    }
    for (_, sub) in &mut members {
        nothing_more(sub).await;
    }
    assert_eq!(
        out_msgs(n1, "n2").await + out_msgs(n1, "n3").await,
        before,
        "nothing crossed for a group with a local member"
    );
    drop(local);
    drop(members);

    // ---- request/reply: requester on n3, responder on n2.
    let mut service = clients[1].subscribe("svc.echo").await.unwrap();
    let responder = clients[1].clone();
    tokio::spawn(async move {
        while let Some(m) = service.next().await {
            if let Some(reply) = m.reply {
                let mut body = b"echo:".to_vec();
                body.extend_from_slice(&m.payload);
                responder.publish(reply, body.into()).await.unwrap();
            }
        }
    });
    clients[1].flush().await.unwrap();
    await_responders(&clients[2], "svc.echo", 1).await;
    for i in 0..20 {
        let r = clients[2]
            .request("svc.echo", Bytes::from(i.to_string()))
            .await
            .unwrap();
        assert_eq!(r.payload, format!("echo:{i}"));
    }

    // Several responders on different nodes: each answers one request.
    let mut second = clients[0].subscribe("svc.echo").await.unwrap();
    let other = clients[0].clone();
    tokio::spawn(async move {
        while let Some(m) = second.next().await {
            if let Some(reply) = m.reply {
                other.publish(reply, "from-n1".into()).await.unwrap();
            }
        }
    });
    clients[0].flush().await.unwrap();
    await_responders(&clients[2], "svc.echo", 2).await;
    let inbox = clients[2].new_inbox();
    let mut answers = clients[2].subscribe(inbox.clone()).await.unwrap();
    clients[2]
        .publish_with_reply("svc.echo", inbox, "x".into())
        .await
        .unwrap();
    let mut bodies = vec![
        String::from_utf8_lossy(&next(&mut answers).await.payload).into_owned(),
        String::from_utf8_lossy(&next(&mut answers).await.payload).into_owned(),
    ];
    bodies.sort();
    assert_eq!(bodies, ["echo:x", "from-n1"]);

    // ---- no responders anywhere in the cluster: a 503 at once.
    for client in &clients {
        let err = client.request("nobody.home", "?".into()).await.unwrap_err();
        assert_eq!(
            err.kind(),
            async_nats::client::RequestErrorKind::NoResponders,
            "{err}"
        );
    }

    // ---- the JetStream API answers from every node.
    for node in &c.nodes {
        let js = common::js(&node.url()).await;
        js.query_account().await.unwrap();
    }
}

/// Reads a raw connection until an INFO lists exactly `want` (sorted).
async fn await_info_urls(conn: &mut tokio::net::TcpStream, seen: &mut String, want: &[String]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut found = None;
        for line in seen.lines() {
            if let Some(json) = line.strip_prefix("INFO ") {
                let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
                let mut urls: Vec<String> = v["connect_urls"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_str().unwrap().to_string())
                    .collect();
                urls.sort();
                found = Some(urls);
            }
        }
        if found.as_deref() == Some(want) {
            seen.clear();
            return;
        }
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let n = tokio::time::timeout(left, tokio::io::AsyncReadExt::read(conn, &mut buf))
            .await
            .unwrap_or_else(|_| panic!("no INFO with {want:?}; last: {found:?}"))
            .unwrap();
        assert!(n > 0, "connection closed");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// A raw protocol-1 client on n2 watching INFO, once it lists every node.
struct InfoWatch {
    watcher: tokio::net::TcpStream,
    seen: String,
    /// Every node's client URL, sorted; and the same without n1's.
    all: Vec<String>,
    without_n1: Vec<String>,
}

async fn watch_info(c: &Cluster) -> InfoWatch {
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.client_port).collect();
    let mut all: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    all.sort();
    let mut without_n1 = all.clone();
    without_n1.retain(|u| !u.ends_with(&format!(":{}", ports[0])));
    let mut watcher = tokio::net::TcpStream::connect(("127.0.0.1", ports[1]))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut watcher,
        b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n",
    )
    .await
    .unwrap();
    let mut seen = String::new();
    await_info_urls(&mut watcher, &mut seen, &all).await;
    InfoWatch {
        watcher,
        seen,
        all,
        without_n1,
    }
}

/// A client that knows only n1's URL fails over to the nodes INFO listed,
/// resubscribes there, and hears messages published on a third node; the
/// restarted n1 holds no interest from before. Clients that speak protocol
/// 1 get an async INFO whenever a node leaves or joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_fail_over_through_connect_urls() {
    let mut c = Cluster::start(3, &[]).await;
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.client_port).collect();
    let InfoWatch {
        mut watcher,
        mut seen,
        all,
        without_n1: survivors,
    } = watch_info(&c).await;

    let client = async_nats::ConnectOptions::new()
        .connect(c.nodes[0].url())
        .await
        .unwrap();
    let mut listed = client.server_info().connect_urls;
    listed.sort();
    assert_eq!(listed, all, "INFO lists every node");
    let mut sub = client.subscribe("fo.x").await.unwrap();
    client.flush().await.unwrap();

    c.nodes[0].kill();
    await_info_urls(&mut watcher, &mut seen, &survivors).await;
    let publisher = connect(&c.nodes[2]).await;
    // The client reconnects to n2 or n3 on its own and subscribes again:
    // publish until it hears one.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        publisher.publish("fo.x", "ping".into()).await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            assert_eq!(m.payload, "ping");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client did not fail over"
        );
    }
    let port = client.server_info().port;
    assert!(port == ports[1] || port == ports[2], "now on {port}");
    while tokio::time::timeout(Duration::from_millis(100), sub.next())
        .await
        .is_ok()
    {}

    // n1 comes back with no clients: the others list it again, and route
    // nothing to it.
    c.nodes[0].start();
    c.wait_healthy(Duration::from_secs(60)).await;
    await_info_urls(&mut watcher, &mut seen, &all).await;
    let n3 = &c.nodes[2];
    await_route(n3, "n1", "route to the restarted n1", |r| {
        r["connected"] == true
    })
    .await;
    assert_eq!(
        n3.route_to("n1").await.unwrap()["subscriptions"],
        0,
        "no stale interest"
    );
    let before = out_msgs(n3, "n1").await;
    for _ in 0..50 {
        publisher.publish("fo.x", "after".into()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    for _ in 0..50 {
        assert_eq!(next(&mut sub).await.payload, "after");
    }
    assert_eq!(out_msgs(n3, "n1").await, before, "nothing crossed to n1");
}

/// A subscriber on n2 that never reads is cut off as a slow consumer; a
/// fast one on the same node and one on n3 get every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_consumer_on_another_node_is_cut_off_alone() {
    let c = Cluster::start(3, &["--max-pending", "1048576"]).await;
    let (n1, n2, n3) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    // The slow one: a raw connection that subscribes and never reads.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", n2.client_port))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut slow,
        b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n",
    )
    .await
    .unwrap();
    let fast2 = connect(n2).await;
    let fast3 = connect(n3).await;
    let mut f2 = fast2.subscribe("flood").await.unwrap();
    let mut f3 = fast3.subscribe("flood").await.unwrap();
    fast2.flush().await.unwrap();
    fast3.flush().await.unwrap();
    await_subs(n1, "n2", 1).await;
    await_subs(n1, "n3", 1).await;
    let publisher = connect(n1).await;
    const N: usize = 20_000;
    let body = Bytes::from(vec![b'x'; 512]);
    // In batches the fast ones keep up with; the slow one falls behind.
    for batch in 0..N / 1000 {
        for _ in 0..1000 {
            publisher.publish("flood", body.clone()).await.unwrap();
        }
        publisher.flush().await.unwrap();
        for i in 0..1000 {
            let a = next(&mut f2).await;
            let b = next(&mut f3).await;
            assert_eq!(
                (a.payload.len(), b.payload.len()),
                (512, 512),
                "{batch}/{i}"
            );
        }
    }
    // 20,000 x 512 bytes is ten times the slow client's max_pending: it
    // was cut off, and the route to n2 was not.
    let r = n1.route_to("n2").await.unwrap();
    assert_eq!(r["slow_cuts"], 0, "{r}");
    assert_eq!(r["dropped_msgs"], 0, "{r}");
    let mut buf = vec![0u8; 1 << 20];
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut slow, &mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the slow consumer was not closed"),
        }
    }
    assert!(
        seen.len() < N * 512,
        "the slow consumer got {} bytes: it was not cut off",
        seen.len()
    );
}

/// A node that goes silent without closing its connections (SIGSTOP: as
/// a host that lost power sends no reset) leaves the others' INFO within
/// seconds, and is listed again once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_node_leaves_connect_urls() {
    let c = Cluster::start(3, &[]).await;
    let InfoWatch {
        mut watcher,
        mut seen,
        all,
        without_n1,
    } = watch_info(&c).await;
    c.nodes[0].pause();
    await_info_urls(&mut watcher, &mut seen, &without_n1).await;
    await_route(&c.nodes[1], "n1", "the silent node's stream dropped", |r| {
        r["inbound_connected"] == false && r["subscriptions"] == 0
    })
    .await;
    c.nodes[0].resume();
    await_info_urls(&mut watcher, &mut seen, &all).await;
}
