//! Differential test for the consumer API: the same raw `CONSUMER.*`
//! requests against nats-server 2.15.1 (single node, the reference) and a
//! 3-node jetraft cluster, every reply compared by JSON shape and value
//! (times, generated names and topology excluded). Skipped visibly without
//! nats-server 2.15.1; under `CI=true` that fails.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;
#[path = "differential/compare.rs"]
mod compare;
#[path = "differential/diff.rs"]
mod diff;
#[path = "differential/nats.rs"]
mod nats;

use common::Cluster;
use compare::{Exclusion, ignore_value};
use diff::Diff;

const CREATE: &str = "$JS.API.CONSUMER.CREATE.";

/// An ephemeral consumer's generated name differs by construction.
const EPHEMERAL: &[Exclusion] = &[ignore_value("name", "generated ephemeral name (random)")];

fn create(stream: &str, name: &str, config: &str) -> (String, String) {
    (
        format!("{CREATE}{stream}.{name}"),
        format!(r#"{{"stream_name":"{stream}","config":{config}}}"#),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_replies_match_nats_server() {
    let Some(reference) = diff::reference().await else {
        return;
    };
    let cluster = Cluster::start(3, &[]).await;
    let mut d = Diff::new(&reference, &cluster.nodes[0].url()).await;

    d.ok(
        "stream for consumers",
        "$JS.API.STREAM.CREATE.CS",
        r#"{"name":"CS","subjects":["cs.>"]}"#,
    )
    .await;
    for subj in ["cs.a", "cs.b", "cs.a", "cs.c"] {
        d.publish("publish", subj, &[], "x").await;
    }
    creates(&mut d).await;
    refusals(&mut d).await;
    work_queue(&mut d).await;
    reads(&mut d).await;
    d.finish();
}

async fn creates(d: &mut Diff) {
    let (subj, body) = create(
        "CS",
        "D1",
        r#"{"durable_name":"D1","ack_policy":"explicit"}"#,
    );
    d.ok("durable pull consumer", &subj, &body).await;
    d.ok("the same create again", &subj, &body).await;
    let (subj, body) = create(
        "CS",
        "D1",
        r#"{"durable_name":"D1","ack_policy":"explicit","ack_wait":5000000000}"#,
    );
    d.ok("update: ack_wait may change", &subj, &body).await;
    let body2 = r#"{"stream_name":"CS","action":"create","config":{"durable_name":"D1","ack_policy":"explicit"}}"#;
    d.err("action create, different config", &subj, body2, 10148)
        .await;
    let body3 = r#"{"stream_name":"CS","action":"update","config":{"durable_name":"D9"}}"#;
    d.err(
        "action update, no such consumer",
        &format!("{CREATE}CS.D9"),
        body3,
        10149,
    )
    .await;
    let (subj, body) = create(
        "CS",
        "D1",
        r#"{"durable_name":"D1","ack_policy":"explicit","deliver_policy":"new"}"#,
    );
    d.err("update: deliver policy may not change", &subj, &body, 10012)
        .await;
    d.run(
        "ephemeral pull consumer",
        &format!("{CREATE}CS"),
        None,
        r#"{"stream_name":"CS","config":{}}"#,
        EPHEMERAL,
    )
    .await;
    let (subj, body) = create(
        "CS",
        "F1.cs.a",
        r#"{"durable_name":"F1","filter_subject":"cs.a","ack_policy":"explicit"}"#,
    );
    d.ok("filtered create subject", &subj, &body).await;
    let (subj, body) = create(
        "CS",
        "W1.cs.>",
        r#"{"durable_name":"W1","filter_subject":"cs.>","ack_policy":"explicit"}"#,
    );
    d.ok("wildcard filter in the create subject", &subj, &body)
        .await;
    let (subj, body) = create(
        "CS",
        "P1",
        r#"{"durable_name":"P1","deliver_subject":"push.p1","deliver_policy":"last_per_subject","filter_subject":"cs.>"}"#,
    );
    d.ok("push consumer, last per subject", &subj, &body).await;
    let (subj, body) = create(
        "CS",
        "B1",
        r#"{"durable_name":"B1","ack_policy":"explicit","backoff":[1000000000,2000000000],"max_deliver":4,"max_ack_pending":-5,"max_waiting":-1}"#,
    );
    d.ok("backoff sets ack_wait; negatives normalised", &subj, &body)
        .await;
    let (subj, body) = create(
        "CS",
        "PR",
        r#"{"durable_name":"PR","ack_policy":"explicit","priority_groups":["g1"],"priority_policy":"pinned_client"}"#,
    );
    d.ok("priority groups set the required API level", &subj, &body)
        .await;
    d.ok(
        "legacy durable create",
        "$JS.API.CONSUMER.DURABLE.CREATE.CS.L1",
        r#"{"stream_name":"CS","config":{"durable_name":"L1","ack_policy":"explicit"}}"#,
    )
    .await;
}

async fn refusals(d: &mut Diff) {
    let cases: &[(&str, &str, &str, u64)] = &[
        (
            "filter in subject differs",
            "F2.cs.a",
            r#"{"durable_name":"F2","filter_subject":"cs.b"}"#,
            10131,
        ),
        (
            "durable differs from the subject",
            "D3",
            r#"{"durable_name":"X"}"#,
            10017,
        ),
        (
            "start sequence missing",
            "E1",
            r#"{"deliver_policy":"by_start_sequence"}"#,
            10094,
        ),
        (
            "start sequence with deliver all",
            "E2",
            r#"{"opt_start_seq":3}"#,
            10094,
        ),
        (
            "both filter forms",
            "E3",
            r#"{"filter_subject":"cs.a","filter_subjects":["cs.b"]}"#,
            10136,
        ),
        (
            "overlapping filters",
            "E4",
            r#"{"filter_subjects":["cs.>","cs.a"]}"#,
            10138,
        ),
        (
            "push with max_waiting",
            "E5",
            r#"{"deliver_subject":"x.y","max_waiting":5}"#,
            10080,
        ),
        (
            "pull with heartbeat",
            "E6",
            r#"{"idle_heartbeat":1000000000}"#,
            10088,
        ),
        (
            "pull with flow control",
            "E7",
            r#"{"flow_control":true}"#,
            10089,
        ),
        (
            "push flow control without heartbeat",
            "E8",
            r#"{"deliver_subject":"x.z","flow_control":true}"#,
            10108,
        ),
        (
            "more backoffs than deliveries",
            "E9",
            r#"{"ack_policy":"explicit","backoff":[1,2,3],"max_deliver":2}"#,
            10116,
        ),
        (
            "deliver subject in the stream",
            "E10",
            r#"{"deliver_subject":"cs.loop"}"#,
            10081,
        ),
        (
            "priority policy without groups",
            "E11",
            r#"{"priority_policy":"overflow"}"#,
            10159,
        ),
        (
            "groups without a policy",
            "E12",
            r#"{"priority_groups":["g"]}"#,
            10196,
        ),
        (
            "bad group name",
            "E13",
            r#"{"priority_policy":"overflow","priority_groups":["bad name!"]}"#,
            10162,
        ),
        ("bad enum", "E14", r#"{"ack_policy":"maybe"}"#, 10025),
        ("unknown field", "E15", r#"{"bogus_field":1}"#, 10025),
        ("negative ack wait", "E16", r#"{"ack_wait":-1}"#, 10183),
        (
            "pull with rate limit",
            "E17",
            r#"{"rate_limit_bps":100}"#,
            10086,
        ),
        (
            "max_expires below 1ms",
            "E18",
            r#"{"max_expires":10}"#,
            10115,
        ),
        (
            "bad sample frequency",
            "E19",
            r#"{"sample_freq":"abc"}"#,
            10095,
        ),
    ];
    for (label, name, config, code) in cases {
        let (subj, body) = create("CS", name, config);
        d.err(label, &subj, &body, *code).await;
    }
    d.err(
        "ephemeral create with a durable name",
        &format!("{CREATE}CS"),
        r#"{"stream_name":"CS","config":{"durable_name":"X"}}"#,
        10020,
    )
    .await;
    d.err(
        "legacy durable without a durable name",
        "$JS.API.CONSUMER.DURABLE.CREATE.CS.L2",
        r#"{"stream_name":"CS","config":{}}"#,
        10018,
    )
    .await;
    d.err(
        "stream name differs from the subject",
        &format!("{CREATE}CS.S1"),
        r#"{"stream_name":"OTHER","config":{}}"#,
        10056,
    )
    .await;
    d.err("empty body", &format!("{CREATE}CS.S2"), "{}", 10056)
        .await;
    d.err(
        "no such stream",
        &format!("{CREATE}NOPE.X"),
        r#"{"stream_name":"NOPE","config":{}}"#,
        10059,
    )
    .await;
}

async fn work_queue(d: &mut Diff) {
    d.ok(
        "work-queue stream",
        "$JS.API.STREAM.CREATE.WQ",
        r#"{"name":"WQ","subjects":["wq.>"],"retention":"workqueue"}"#,
    )
    .await;
    let (subj, body) = create("WQ", "A", r#"{"durable_name":"A","ack_policy":"explicit"}"#);
    d.ok("first unfiltered consumer", &subj, &body).await;
    let (subj, body) = create("WQ", "B", r#"{"durable_name":"B","ack_policy":"explicit"}"#);
    d.err("second unfiltered consumer", &subj, &body, 10099)
        .await;
    let (subj, body) = create("WQ", "C", r#"{"durable_name":"C"}"#);
    d.err("pull without acks on a work queue", &subj, &body, 10084)
        .await;
    let (subj, body) = create(
        "WQ",
        "D",
        r#"{"durable_name":"D","ack_policy":"explicit","deliver_policy":"new","filter_subject":"wq.x"}"#,
    );
    d.err("not deliver all on a work queue", &subj, &body, 10101)
        .await;
}

async fn reads(d: &mut Diff) {
    d.ok("consumer info", "$JS.API.CONSUMER.INFO.CS.D1", "")
        .await;
    d.ok("consumer info, push", "$JS.API.CONSUMER.INFO.CS.P1", "")
        .await;
    d.err(
        "info of no such consumer",
        "$JS.API.CONSUMER.INFO.CS.NOPE",
        "",
        10014,
    )
    .await;
    d.run(
        "consumer names",
        "$JS.API.CONSUMER.NAMES.CS",
        None,
        "",
        &[ignore_value(
            "consumers[]",
            "includes an ephemeral's random name",
        )],
    )
    .await;
    d.ok("stream info counts consumers", "$JS.API.STREAM.INFO.CS", "")
        .await;
    d.err("unpin: no body", "$JS.API.CONSUMER.UNPIN.CS.PR", "", 10025)
        .await;
    d.err(
        "unpin: no group",
        "$JS.API.CONSUMER.UNPIN.CS.PR",
        "{}",
        10025,
    )
    .await;
    d.err(
        "unpin: not its group",
        "$JS.API.CONSUMER.UNPIN.CS.PR",
        r#"{"group":"x"}"#,
        10160,
    )
    .await;
    d.ok("unpin", "$JS.API.CONSUMER.UNPIN.CS.PR", r#"{"group":"g1"}"#)
        .await;
    d.err(
        "unpin: no such consumer",
        "$JS.API.CONSUMER.UNPIN.CS.NOPE",
        r#"{"group":"g1"}"#,
        10014,
    )
    .await;
    d.ok("delete", "$JS.API.CONSUMER.DELETE.CS.L1", "").await;
    d.err("delete again", "$JS.API.CONSUMER.DELETE.CS.L1", "", 10014)
        .await;
    d.ok("account info counts consumers", "$JS.API.INFO", "")
        .await;
}
