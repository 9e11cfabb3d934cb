//! `Nats-Msg-Id` deduplication on an R3 stream, seen by a real client:
//! inside `duplicate_window` a repeated id is acked as a duplicate of the
//! original sequence and not stored, whichever node the retry goes through;
//! once the window has passed the same id is a new message.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;
mod support;

use std::time::Duration;

use serde_json::json;
use support::{Env, api, counts, publish, r3};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_inside_window_is_acked_with_original_seq() {
    let env = Env::start().await;
    let a = env.client(0).await;
    let b = env.client(1).await;
    env.create_stream(&a, r3("DEDUP", &["dedup.>"])).await;

    let first = publish(&a, "dedup.x", &[("Nats-Msg-Id", "id-1")], "one").await;
    assert_eq!(first, json!({"stream": "DEDUP", "seq": 1}));
    // Another id in between: the duplicate must point back, not at the last.
    let other = publish(&a, "dedup.y", &[("Nats-Msg-Id", "id-2")], "two").await;
    assert_eq!(other, json!({"stream": "DEDUP", "seq": 2}));

    // Same id through another node, with a different payload and subject.
    let dup = publish(&b, "dedup.z", &[("Nats-Msg-Id", "id-1")], "changed").await;
    assert_eq!(dup, json!({"stream": "DEDUP", "seq": 1, "duplicate": true}));
    let dup2 = publish(&a, "dedup.y", &[("Nats-Msg-Id", "id-2")], "two").await;
    assert_eq!(
        dup2,
        json!({"stream": "DEDUP", "seq": 2, "duplicate": true})
    );

    assert_eq!(counts(&a, "DEDUP").await, (2, 1, 2));
    // The original is what is stored.
    let got = api(&b, "$JS.API.STREAM.MSG.GET.DEDUP", json!({"seq": 1})).await;
    assert_eq!(got["message"]["subject"], "dedup.x");
    assert_eq!(got["message"]["data"], "b25l"); // base64("one")

    // A publish without an id is never a duplicate.
    let plain = publish(&a, "dedup.x", &[], "one").await;
    assert_eq!(plain, json!({"stream": "DEDUP", "seq": 3}));
    assert_eq!(counts(&b, "DEDUP").await, (3, 1, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_after_window_is_stored_again() {
    let env = Env::start().await;
    let a = env.client(0).await;
    let window = Duration::from_secs(1);
    let mut config = r3("WIN", &["win.>"]);
    config["duplicate_window"] = json!(window.as_nanos() as u64);
    let created = env.create_stream(&a, config).await;
    assert_eq!(
        created["config"]["duplicate_window"],
        json!(window.as_nanos() as u64)
    );

    let first = publish(&a, "win.a", &[("Nats-Msg-Id", "again")], "1").await;
    assert_eq!(first, json!({"stream": "WIN", "seq": 1}));
    let dup = publish(&a, "win.a", &[("Nats-Msg-Id", "again")], "1").await;
    assert_eq!(dup, json!({"stream": "WIN", "seq": 1, "duplicate": true}));

    tokio::time::sleep(window + Duration::from_millis(1500)).await;

    let c = env.client(2).await;
    let again = publish(&c, "win.a", &[("Nats-Msg-Id", "again")], "1").await;
    assert_eq!(again, json!({"stream": "WIN", "seq": 2}));
    // And the new one is deduplicated in its own window.
    let dup = publish(&a, "win.a", &[("Nats-Msg-Id", "again")], "1").await;
    assert_eq!(dup, json!({"stream": "WIN", "seq": 2, "duplicate": true}));
    assert_eq!(counts(&a, "WIN").await, (2, 1, 2));
}

/// Twelve publishers through all three nodes race with one id: one message
/// is stored. nats-server answers the losers 409/10158 while the first is
/// still being proposed, jetraft with a duplicate ack; either is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_same_id_is_stored_once() {
    let env = Env::start().await;
    let clients = [
        env.client(0).await,
        env.client(1).await,
        env.client(2).await,
    ];
    env.create_stream(&clients[0], r3("RACE", &["race"])).await;
    let publishes = (0..12).map(|i| {
        let c = clients[i % 3].clone();
        async move { publish(&c, "race", &[("Nats-Msg-Id", "same")], &format!("p{i}")).await }
    });
    let replies = futures::future::join_all(publishes).await;
    let stored: Vec<_> = replies
        .iter()
        .filter(|r| **r == json!({"stream": "RACE", "seq": 1}))
        .collect();
    assert_eq!(stored.len(), 1, "{replies:?}");
    for r in &replies {
        let ok = *r == json!({"stream": "RACE", "seq": 1})
            || *r == json!({"stream": "RACE", "seq": 1, "duplicate": true})
            || support::error_of_opt(r)
                == Some((409, 10158, "duplicate message id is in process".into()));
        assert!(ok, "{r}");
    }
    assert_eq!(counts(&clients[1], "RACE").await, (1, 1, 1));
}
