//! Stream limits, purge, message get/delete, direct get and the stream
//! management requests on R3 streams, with the state nats-server would
//! report after each step.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Env, api, counts, error_of, publish, publish_ok, r3, state};

fn with(mut config: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_msgs_discard_old_and_new() {
    let env = Env::start().await;
    let c = env.client(0).await;
    env.create_stream(
        &c,
        with(
            r3("OLD", &["old"]),
            json!({"max_msgs": 3, "discard": "old"}),
        ),
    )
    .await;
    env.create_stream(
        &c,
        with(
            r3("NEW", &["new"]),
            json!({"max_msgs": 3, "discard": "new"}),
        ),
    )
    .await;
    for i in 1..=5 {
        assert_eq!(publish_ok(&c, "old", &format!("m{i}")).await, i);
    }
    assert_eq!(counts(&c, "OLD").await, (3, 3, 5));

    for i in 1..=3 {
        assert_eq!(publish_ok(&c, "new", &format!("m{i}")).await, i);
    }
    let r = publish(&c, "new", &[], "m4").await;
    assert_eq!(
        error_of(&r),
        (503, 10077, "maximum messages exceeded".into())
    );
    assert_eq!(counts(&c, "NEW").await, (3, 1, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_msgs_per_subject_and_max_bytes() {
    let env = Env::start().await;
    let c = env.client(1).await;
    env.create_stream(
        &c,
        with(r3("PER", &["per.*"]), json!({"max_msgs_per_subject": 2})),
    )
    .await;
    for subject in ["per.a", "per.a", "per.a", "per.b"] {
        publish_ok(&c, subject, "x").await;
    }
    assert_eq!(counts(&c, "PER").await, (3, 2, 4));
    let info = api(
        &c,
        "$JS.API.STREAM.INFO.PER",
        json!({"subjects_filter": ">"}),
    )
    .await;
    assert_eq!(info["state"]["subjects"], json!({"per.a": 2, "per.b": 1}));
    assert_eq!(info["state"]["num_subjects"], 2);

    // File storage: 22 + subject + payload + 8 bytes a message = 100 here.
    let payload = "p".repeat(100 - 30 - "mb.a".len());
    env.create_stream(&c, with(r3("MB", &["mb.*"]), json!({"max_bytes": 250})))
        .await;
    env.create_stream(
        &c,
        with(
            r3("MBN", &["mbn.*"]),
            json!({"max_bytes": 250, "discard": "new"}),
        ),
    )
    .await;
    for _ in 0..3 {
        publish_ok(&c, "mb.a", &payload).await;
    }
    let s = state(&c, "MB").await;
    assert_eq!(
        (
            s["messages"].as_u64(),
            s["bytes"].as_u64(),
            s["first_seq"].as_u64()
        ),
        (Some(2), Some(200), Some(2))
    );

    let payload = "p".repeat(100 - 30 - "mbn.a".len());
    publish_ok(&c, "mbn.a", &payload).await;
    publish_ok(&c, "mbn.a", &payload).await;
    let r = publish(&c, "mbn.a", &[], &payload).await;
    assert_eq!(error_of(&r), (503, 10077, "maximum bytes exceeded".into()));
    let s = state(&c, "MBN").await;
    assert_eq!(
        (s["messages"].as_u64(), s["bytes"].as_u64()),
        (Some(2), Some(200))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_expires_messages() {
    let env = Env::start().await;
    let c = env.client(2).await;
    let max_age = Duration::from_secs(1);
    env.create_stream(
        &c,
        with(
            r3("AGE", &["age"]),
            json!({"max_age": max_age.as_nanos() as u64}),
        ),
    )
    .await;
    for i in 1..=3 {
        publish_ok(&c, "age", &format!("m{i}")).await;
    }
    let started = tokio::time::Instant::now();
    assert_eq!(counts(&c, "AGE").await.0, 3, "expired too early");
    let deadline = started + Duration::from_secs(10);
    loop {
        let now = counts(&c, "AGE").await;
        if now.0 == 0 {
            assert_eq!(now, (0, 4, 3));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not expired within 10s: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // New messages continue the sequence and are kept until they age too.
    assert_eq!(publish_ok(&c, "age", "m4").await, 4);
    assert_eq!(counts(&c, "AGE").await, (1, 4, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_whole_filter_keep_and_seq() {
    let env = Env::start().await;
    let c = env.client(0).await;
    env.create_stream(&c, r3("PURGE", &["p.*"])).await;
    // p.a gets the odd sequences 1..9, p.b the even ones 2..10.
    for i in 1..=10u64 {
        let subject = if i % 2 == 1 { "p.a" } else { "p.b" };
        assert_eq!(publish_ok(&c, subject, "x").await, i);
    }
    let purge = |body: Value| {
        let c = c.clone();
        async move { api(&c, "$JS.API.STREAM.PURGE.PURGE", body).await }
    };
    assert_eq!(
        purge(json!({"filter": "p.a"})).await,
        json!({"type": "io.nats.jetstream.api.v1.stream_purge_response", "success": true, "purged": 5})
    );
    assert_eq!(counts(&c, "PURGE").await, (5, 2, 10));

    assert_eq!(
        purge(json!({"filter": "p.b", "keep": 2})).await["purged"],
        3
    );
    assert_eq!(counts(&c, "PURGE").await, (2, 8, 10));

    for i in 11..=14u64 {
        assert_eq!(publish_ok(&c, "p.a", "x").await, i);
    }
    // Everything below 12: 8, 10 and 11.
    assert_eq!(purge(json!({"seq": 12})).await["purged"], 3);
    assert_eq!(counts(&c, "PURGE").await, (3, 12, 14));

    assert_eq!(purge(json!({"keep": 1})).await["purged"], 2);
    assert_eq!(counts(&c, "PURGE").await, (1, 14, 14));

    assert_eq!(purge(Value::Null).await["purged"], 1);
    assert_eq!(counts(&c, "PURGE").await, (0, 15, 14));
    assert_eq!(publish_ok(&c, "p.b", "x").await, 15);
    assert_eq!(counts(&c, "PURGE").await, (1, 15, 15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msg_delete_and_msg_get() {
    let env = Env::start().await;
    let c = env.client(1).await;
    env.create_stream(&c, r3("GET", &["g.*"])).await;
    for (i, subject) in ["g.a", "g.b", "g.a", "g.b", "g.c"].iter().enumerate() {
        publish_ok(&c, subject, &format!("m{}", i + 1)).await;
    }
    let get = |body: Value| {
        let c = c.clone();
        async move { api(&c, "$JS.API.STREAM.MSG.GET.GET", body).await }
    };
    let m = get(json!({"seq": 2})).await;
    assert_eq!(
        m["type"],
        "io.nats.jetstream.api.v1.stream_msg_get_response"
    );
    assert_eq!(
        (
            m["message"]["subject"].as_str(),
            m["message"]["seq"].as_u64()
        ),
        (Some("g.b"), Some(2))
    );
    assert_eq!(m["message"]["data"], "bTI="); // base64("m2")
    let m = get(json!({"last_by_subj": "g.a"})).await;
    assert_eq!(m["message"]["seq"], 3);
    let m = get(json!({"next_by_subj": "g.b", "seq": 3})).await;
    assert_eq!(m["message"]["seq"], 4);
    let m = get(json!({"next_by_subj": "g.*", "seq": 5})).await;
    assert_eq!(m["message"]["subject"], "g.c");
    assert_eq!(
        error_of(&get(json!({"seq": 99})).await),
        (404, 10037, "no message found".into())
    );
    assert_eq!(
        error_of(&get(json!({"last_by_subj": "g.z"})).await),
        (404, 10037, "no message found".into())
    );

    let del = |seq: u64| {
        let c = c.clone();
        async move { api(&c, "$JS.API.STREAM.MSG.DELETE.GET", json!({"seq": seq})).await }
    };
    assert_eq!(
        del(2).await,
        json!({"type": "io.nats.jetstream.api.v1.stream_msg_delete_response", "success": true})
    );
    let s = state(&c, "GET").await;
    assert_eq!(
        (
            s["messages"].as_u64(),
            s["first_seq"].as_u64(),
            s["num_deleted"].as_u64()
        ),
        (Some(4), Some(1), Some(1))
    );
    assert_eq!(
        error_of(&get(json!({"seq": 2})).await),
        (404, 10037, "no message found".into())
    );
    // next_by_subj skips the deleted message.
    assert_eq!(
        get(json!({"next_by_subj": "g.b", "seq": 1})).await["message"]["seq"],
        4
    );
    assert_eq!(
        error_of(&del(2).await),
        (400, 10043, "sequence 2 not found".into())
    );
    assert_eq!(
        error_of(&del(99).await),
        (500, 10057, "stream store EOF".into())
    );
    assert_eq!(
        error_of(&del(0).await),
        (500, 10057, "no message found".into())
    );
    // Deleting the first message moves first_seq past the earlier gap.
    assert_eq!(del(1).await["success"], true);
    assert_eq!(counts(&c, "GET").await, (3, 3, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_get_by_seq_and_subject_token() {
    let env = Env::start().await;
    let c = env.client(2).await;
    env.create_stream(&c, with(r3("DG", &["d.>"]), json!({"allow_direct": true})))
        .await;
    publish_ok(&c, "d.a", "first").await;
    publish_ok(&c, "d.b.c", "second").await;
    publish_ok(&c, "d.a", "third").await;

    // Every replica answers from its own store; ask through each node. A
    // replica may answer before it has applied the newest entries (as with
    // nats-server, direct gets are not read-after-write), so first wait
    // until each one has seq 3.
    for i in 0..3 {
        let c = env.client(i).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while c
            .request("$JS.API.DIRECT.GET.DG", r#"{"seq":3}"#.into())
            .await
            .unwrap()
            .status
            .is_some()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {i} never applied seq 3"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let m = c
            .request("$JS.API.DIRECT.GET.DG", r#"{"seq":2}"#.into())
            .await
            .unwrap();
        let h = m.headers.clone().unwrap();
        assert_eq!(
            m.payload.as_ref(),
            b"second",
            "node {i}: {:?} {:?} {:?}",
            m.status,
            m.description,
            m.headers
        );
        assert_eq!(h.get("Nats-Stream").unwrap().as_str(), "DG");
        assert_eq!(h.get("Nats-Subject").unwrap().as_str(), "d.b.c");
        assert_eq!(h.get("Nats-Sequence").unwrap().as_str(), "2");
        assert!(h.get("Nats-Time-Stamp").is_some());

        let m = c
            .request("$JS.API.DIRECT.GET.DG.d.a", "".into())
            .await
            .unwrap();
        assert_eq!(m.payload.as_ref(), b"third");
        assert_eq!(
            m.headers.unwrap().get("Nats-Sequence").unwrap().as_str(),
            "3"
        );
        let m = c
            .request("$JS.API.DIRECT.GET.DG.d.b.c", "".into())
            .await
            .unwrap();
        assert_eq!(m.payload.as_ref(), b"second");

        let m = c
            .request("$JS.API.DIRECT.GET.DG", r#"{"last_by_subj":"d.a"}"#.into())
            .await
            .unwrap();
        assert_eq!(m.payload.as_ref(), b"third");

        let m = c
            .request("$JS.API.DIRECT.GET.DG", r#"{"seq":9}"#.into())
            .await
            .unwrap();
        assert_eq!(m.status.map(|s| s.as_u16()), Some(404));
        assert!(m.payload.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_list_update_delete() {
    let env = Env::start().await;
    let c = env.client(0).await;
    for name in ["S1", "S2", "S3"] {
        env.create_stream(
            &c,
            with(
                r3(name, &[&format!("{}.x", name.to_lowercase())]),
                json!({"max_msgs": 2}),
            ),
        )
        .await;
    }
    let names = api(&c, "$JS.API.STREAM.NAMES", Value::Null).await;
    assert_eq!(
        (
            names["total"].as_u64(),
            names["offset"].as_u64(),
            names["limit"].as_u64()
        ),
        (Some(3), Some(0), Some(1024))
    );
    let mut all: Vec<String> = serde_json::from_value(names["streams"].clone()).unwrap();
    all.sort();
    assert_eq!(all, ["S1", "S2", "S3"]);
    let page = api(&c, "$JS.API.STREAM.NAMES", json!({"offset": 2})).await;
    assert_eq!(
        (page["total"].as_u64(), page["offset"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(page["streams"].as_array().unwrap().len(), 1);
    let by_subject = api(&c, "$JS.API.STREAM.NAMES", json!({"subject": "s2.x"})).await;
    assert_eq!(by_subject["streams"], json!(["S2"]));
    assert_eq!(by_subject["total"], 1);

    let list = api(&c, "$JS.API.STREAM.LIST", json!({"offset": 1})).await;
    assert_eq!(
        (
            list["total"].as_u64(),
            list["offset"].as_u64(),
            list["limit"].as_u64()
        ),
        (Some(3), Some(1), Some(256))
    );
    let listed = list["streams"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|s| s["config"]["max_msgs"] == 2 && s["state"]["messages"] == 0),
        "{list}"
    );

    // UPDATE raises max_msgs; the limit applies from then on.
    for _ in 0..4 {
        publish_ok(&c, "s1.x", "x").await;
    }
    assert_eq!(counts(&c, "S1").await, (2, 3, 4));
    let update = with(r3("S1", &["s1.x"]), json!({"max_msgs": 5}));
    let r = api(&c, "$JS.API.STREAM.UPDATE.S1", update).await;
    assert_eq!(
        r["type"], "io.nats.jetstream.api.v1.stream_update_response",
        "{r}"
    );
    assert_eq!(r["config"]["max_msgs"], 5, "{r}");
    assert_eq!(r["state"]["messages"], 2, "{r}");
    for _ in 0..4 {
        publish_ok(&c, "s1.x", "x").await;
    }
    assert_eq!(counts(&c, "S1").await, (5, 4, 8));

    // DELETE: gone for INFO, NAMES and publishers.
    let r = api(&c, "$JS.API.STREAM.DELETE.S1", Value::Null).await;
    assert_eq!(
        r,
        json!({"type": "io.nats.jetstream.api.v1.stream_delete_response", "success": true})
    );
    let r = api(&c, "$JS.API.STREAM.INFO.S1", Value::Null).await;
    assert_eq!(error_of(&r), (404, 10059, "stream not found".into()));
    let names = api(&c, "$JS.API.STREAM.NAMES", Value::Null).await;
    assert_eq!(names["total"], 2);
    let err = c.request("s1.x", "x".into()).await.unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
}
