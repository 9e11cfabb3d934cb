//! Differential test: the same raw JetStream API requests, byte for byte,
//! against nats-server 2.15.1 (single node, the reference) and a 3-node
//! jetraft cluster, comparing every reply's JSON shape and its
//! deterministic values. Skipped (with a visible message) when
//! `nats-server` 2.15.1 is not installed; under `CI=true` that fails.
//!
//! Raw `client.request` is used on purpose: the typed JetStream API would
//! hide differences in what the servers actually send.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;
#[path = "differential/compare.rs"]
mod compare;
#[path = "differential/diff.rs"]
mod diff;
#[path = "differential/nats.rs"]
mod nats;

use common::Cluster;
use std::time::Duration;

use compare::ignore;
use diff::Diff;

const CREATE: &str = "$JS.API.STREAM.CREATE.";
const UPDATE: &str = "$JS.API.STREAM.UPDATE.";
const INFO: &str = "$JS.API.STREAM.INFO.";
const DELETE: &str = "$JS.API.STREAM.DELETE.";
const PURGE: &str = "$JS.API.STREAM.PURGE.";
const MSG_GET: &str = "$JS.API.STREAM.MSG.GET.";
const MSG_DELETE: &str = "$JS.API.STREAM.MSG.DELETE.";
const DIRECT: &str = "$JS.API.DIRECT.GET.";

fn s(prefix: &str, name: &str) -> String {
    format!("{prefix}{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_replies_as_nats_server() {
    let Some(reference) = diff::reference().await else {
        return;
    };
    let cluster = Cluster::start(3, &[]).await;
    let mut d = Diff::new(&reference, &cluster.nodes[0].url()).await;

    account_and_create(&mut d).await;
    publishes(&mut d).await;
    reads_and_deletes(&mut d).await;
    purges(&mut d).await;
    listing_and_updates(&mut d).await;
    direct_gets(&mut d).await;
    deletes(&mut d).await;
    d.finish();
}

async fn account_and_create(d: &mut Diff) {
    d.ok("account info, empty account", "$JS.API.INFO", "")
        .await;

    // Valid configs.
    d.ok(
        "create minimal (subjects default to the name)",
        &s(CREATE, "MIN"),
        r#"{"name":"MIN"}"#,
    )
    .await;
    let orders = r#"{"name":"ORDERS","subjects":["orders.*"],"storage":"file","num_replicas":1}"#;
    d.ok("create with subjects", &s(CREATE, "ORDERS"), orders)
        .await;
    d.ok(
        "create with limits",
        &s(CREATE, "LIM"),
        r#"{"name":"LIM","description":"limited","subjects":["lim.>"],"max_msgs":100,"max_bytes":1048576,
            "max_age":3600000000000,"max_msgs_per_subject":10,"max_msg_size":64,"max_consumers":5,
            "discard":"new","duplicate_window":60000000000,"metadata":{"owner":"team-a"}}"#,
    )
    .await;
    d.ok(
        "create with every flag",
        &s(CREATE, "FLAGS"),
        r#"{"name":"FLAGS","subjects":["flags.*"],"storage":"memory","allow_direct":true,"allow_rollup_hdrs":true,
            "deny_delete":true,"compression":"s2",
            "first_seq":10,"consumer_limits":{"inactive_threshold":5000000000,"max_ack_pending":100},
            "retention":"limits"}"#,
    )
    .await;
    d.ok(
        "create with discard-new-per-subject, deny purge, no ack",
        &s(CREATE, "DNPS"),
        r#"{"name":"DNPS","subjects":["dnps.*"],"discard":"new","discard_new_per_subject":true,
            "max_msgs_per_subject":2,"deny_purge":true,"retention":"workqueue"}"#,
    )
    .await;
    d.ok(
        "create no_ack",
        &s(CREATE, "NOACK"),
        r#"{"name":"NOACK","subjects":["noack.*"],"no_ack":true}"#,
    )
    .await;
    // nats-server 2.15 decodes API bodies strictly: 400/10025
    // `json: unknown field "..."`; `pedantic` belongs to the request.
    d.err(
        "create with an unknown field",
        &s(CREATE, "UNK"),
        r#"{"name":"UNK","no_such_field":1}"#,
        10025,
    )
    .await;
    d.err(
        "create with a field older servers had (template_owner)",
        &s(CREATE, "UNK"),
        r#"{"name":"UNK","template_owner":""}"#,
        10025,
    )
    .await;
    d.ok(
        "create pedantic",
        &s(CREATE, "PED"),
        r#"{"name":"PED","subjects":["ped.*"],"pedantic":true}"#,
    )
    .await;
    // What jetraft does not act on yet it refuses (500/10052 naming the
    // setting) rather than storing a setting that does nothing; nats-server
    // takes each of these.
    for (name, body, what) in [
        (
            "TTL",
            r#"{"name":"TTL","subjects":["ttl.*"],"allow_msg_ttl":true}"#,
            "allow_msg_ttl",
        ),
        (
            "MARK",
            r#"{"name":"MARK","subjects":["mark.*"],"subject_delete_marker_ttl":2000000000}"#,
            "subject_delete_marker_ttl",
        ),
        (
            "COUNT",
            r#"{"name":"COUNT","subjects":["count.*"],"allow_msg_counter":true}"#,
            "allow_msg_counter",
        ),
        (
            "REPUB",
            r#"{"name":"REPUB","subjects":["repub.*"],"republish":{"src":">","dest":"out.>"}}"#,
            "republish",
        ),
        (
            "SRC",
            r#"{"name":"SRC","subjects":["src.*"],"sources":[{"name":"ORDERS"}]}"#,
            "sources",
        ),
    ] {
        d.refused(&format!("create {name}"), &s(CREATE, name), body, what)
            .await;
    }

    // Idempotent and conflicting re-creates.
    // Standalone nats-server always says `did_create` (jetstream_api.go
    // jsStreamCreateRequest); a nats-server cluster answers an equal
    // re-create without it (jetstream_cluster.go), as jetraft does.
    let standalone = [ignore(
        "did_create",
        "standalone nats-server sets it on idempotent creates; clustered does not",
    )];
    d.run(
        "create the same config again",
        &s(CREATE, "ORDERS"),
        None,
        orders,
        &standalone,
    )
    .await;
    d.err(
        "create the same name with another config",
        &s(CREATE, "ORDERS"),
        r#"{"name":"ORDERS","subjects":["orders.*"],"max_msgs":5}"#,
        10058,
    )
    .await;
    d.err(
        "overlapping subjects with another stream",
        &s(CREATE, "OVER"),
        r#"{"name":"OVER","subjects":["orders.new"]}"#,
        10065,
    )
    .await;

    // Invalid configs.
    let invalid: &[(&str, &str, &str)] = &[
        ("bad name: wildcard", "BAD*", r#"{"name":"BAD*"}"#),
        ("bad name: path separator", "A\\B", r#"{"name":"A\\B"}"#),
        (
            "bad subject: empty token",
            "BADSUBJ",
            r#"{"name":"BADSUBJ","subjects":["a..b"]}"#,
        ),
        (
            "bad subjects: overlap each other",
            "BADSUBJ",
            r#"{"name":"BADSUBJ","subjects":["x.*","x.y"]}"#,
        ),
        (
            "bad subjects: duplicates",
            "BADSUBJ",
            r#"{"name":"BADSUBJ","subjects":["x.y","x.y"]}"#,
        ),
        (
            "bad subjects: > without no_ack",
            "BADSUBJ",
            r#"{"name":"BADSUBJ","subjects":[">"]}"#,
        ),
        (
            "bad subjects: JS API",
            "BADSUBJ",
            r#"{"name":"BADSUBJ","subjects":["$JS.API.>"]}"#,
        ),
        ("replicas 7", "R7", r#"{"name":"R7","num_replicas":7}"#),
        (
            "replicas -1",
            "RNEG",
            r#"{"name":"RNEG","num_replicas":-1}"#,
        ),
        (
            "dup window > max age",
            "DW",
            r#"{"name":"DW","max_age":1000000000,"duplicate_window":2000000000}"#,
        ),
        (
            "max age < 100ms",
            "AGE",
            r#"{"name":"AGE","max_age":50000000}"#,
        ),
        ("negative max age", "AGE", r#"{"name":"AGE","max_age":-5}"#),
        (
            "sealed on create",
            "SEAL",
            r#"{"name":"SEAL","sealed":true}"#,
        ),
        (
            "rollup with deny purge",
            "RP",
            r#"{"name":"RP","deny_purge":true,"allow_rollup_hdrs":true}"#,
        ),
        (
            "dnps without discard new",
            "DN",
            r#"{"name":"DN","discard_new_per_subject":true}"#,
        ),
        ("name mismatch", "ONE", r#"{"name":"TWO"}"#),
        ("invalid JSON", "BADJSON", r#"{"name":"#),
        ("not JSON at all", "BADJSON", "hello"),
        ("empty body", "EMPTY", ""),
        (
            "bad enum value",
            "ENUM",
            r#"{"name":"ENUM","retention":"bogus"}"#,
        ),
    ];
    for (label, name, body) in invalid {
        let (theirs, _) = d
            .req(&format!("create invalid: {label}"), &s(CREATE, name), body)
            .await;
        assert!(
            theirs.get("error").is_some() || theirs.get("$outcome").is_some(),
            "{label}: nats accepted it: {theirs}"
        );
    }
    d.ok("account info with streams", "$JS.API.INFO", "").await;
}

async fn publishes(d: &mut Diff) {
    for (i, subj) in ["orders.a", "orders.b", "orders.a", "orders.c", "orders.b"]
        .iter()
        .enumerate()
    {
        d.publish(
            &format!("publish #{i} to {subj}"),
            subj,
            &[],
            &format!("order-{i}"),
        )
        .await;
    }
    d.publish(
        "publish with headers",
        "orders.h",
        &[("X-Trace", "abc")],
        "with-headers",
    )
    .await;
    d.publish(
        "publish with msg id",
        "orders.a",
        &[("Nats-Msg-Id", "id-1")],
        "dedup",
    )
    .await;
    d.publish(
        "publish duplicate msg id",
        "orders.a",
        &[("Nats-Msg-Id", "id-1")],
        "dedup",
    )
    .await;
    d.publish(
        "expected stream: wrong",
        "orders.a",
        &[("Nats-Expected-Stream", "OTHER")],
        "x",
    )
    .await;
    d.publish(
        "expected stream: right",
        "orders.a",
        &[("Nats-Expected-Stream", "ORDERS")],
        "x",
    )
    .await;
    d.publish(
        "expected last seq: wrong",
        "orders.a",
        &[("Nats-Expected-Last-Sequence", "1")],
        "x",
    )
    .await;
    d.publish(
        "expected last seq: right",
        "orders.a",
        &[("Nats-Expected-Last-Sequence", "9")],
        "x",
    )
    .await;
    d.publish(
        "expected last msg id: wrong",
        "orders.a",
        &[("Nats-Expected-Last-Msg-Id", "nope")],
        "x",
    )
    .await;
    d.publish(
        "expected last subject seq: wrong",
        "orders.b",
        &[("Nats-Expected-Last-Subject-Sequence", "1")],
        "x",
    )
    .await;
    d.publish(
        "expected last subject seq: right",
        "orders.b",
        &[("Nats-Expected-Last-Subject-Sequence", "5")],
        "x",
    )
    .await;
    d.publish("max_msg_size exceeded", "lim.big", &[], &"x".repeat(100))
        .await;
    d.publish("max_msg_size fits", "lim.small", &[], "small")
        .await;
    d.publish("to a subject no stream has", "nowhere.at.all", &[], "x")
        .await;
    d.publish("discard new per subject 1", "dnps.a", &[], "1")
        .await;
    d.publish("discard new per subject 2", "dnps.a", &[], "2")
        .await;
    d.publish("discard new per subject: full", "dnps.a", &[], "3")
        .await;
    let short = Duration::from_millis(1500);
    d.run_timed(
        "publish to no_ack stream: no reply",
        "noack.a",
        None,
        "x",
        &[],
        short,
    )
    .await;
    d.ok("no_ack stream stored it", &s(INFO, "NOACK"), "").await;
    for i in 0..3 {
        d.publish(
            &format!("flags publish {i}"),
            &format!("flags.{}", ["a", "b", "a"][i]),
            &[],
            "f",
        )
        .await;
    }
    d.ok("info after publishes", &s(INFO, "ORDERS"), "").await;
}

async fn reads_and_deletes(d: &mut Diff) {
    let get = s(MSG_GET, "ORDERS");
    d.ok("msg get by seq", &get, r#"{"seq":1}"#).await;
    d.ok("msg get with headers", &get, r#"{"seq":6}"#).await;
    d.ok(
        "msg get last by subject",
        &get,
        r#"{"last_by_subj":"orders.a"}"#,
    )
    .await;
    d.ok(
        "msg get last by wildcard subject",
        &get,
        r#"{"last_by_subj":"orders.*"}"#,
    )
    .await;
    d.ok(
        "msg get next by subject",
        &get,
        r#"{"next_by_subj":"orders.b","seq":3}"#,
    )
    .await;
    d.err("msg get missing seq", &get, r#"{"seq":999}"#, 10037)
        .await;
    d.err(
        "msg get missing subject",
        &get,
        r#"{"last_by_subj":"orders.zzz"}"#,
        10037,
    )
    .await;
    d.err(
        "msg get seq and last_by_subj",
        &get,
        r#"{"seq":1,"last_by_subj":"orders.a"}"#,
        10003,
    )
    .await;
    d.req("msg get empty body", &get, "").await;
    d.req("msg get invalid JSON", &get, "{").await;
    d.err(
        "msg get unknown stream",
        &s(MSG_GET, "NOPE"),
        r#"{"seq":1}"#,
        10059,
    )
    .await;

    let del = s(MSG_DELETE, "ORDERS");
    d.ok("msg delete", &del, r#"{"seq":2}"#).await;
    d.req("msg delete again", &del, r#"{"seq":2}"#).await;
    d.req("msg delete past the end", &del, r#"{"seq":999}"#)
        .await;
    d.ok("msg delete no_erase", &del, r#"{"seq":3,"no_erase":true}"#)
        .await;
    d.req(
        "msg delete on deny_delete stream",
        &s(MSG_DELETE, "FLAGS"),
        r#"{"seq":10}"#,
    )
    .await;
    d.err(
        "msg delete unknown stream",
        &s(MSG_DELETE, "NOPE"),
        r#"{"seq":1}"#,
        10059,
    )
    .await;
    d.req("msg delete empty body", &del, "").await;

    let info = s(INFO, "ORDERS");
    d.ok("info existing", &info, "").await;
    d.ok("info deleted_details", &info, r#"{"deleted_details":true}"#)
        .await;
    d.ok(
        "info subjects_filter wildcard",
        &info,
        r#"{"subjects_filter":"orders.*"}"#,
    )
    .await;
    d.ok(
        "info subjects_filter >",
        &info,
        r#"{"subjects_filter":">"}"#,
    )
    .await;
    d.ok(
        "info subjects_filter literal",
        &info,
        r#"{"subjects_filter":"orders.b"}"#,
    )
    .await;
    d.ok(
        "info subjects_filter no match",
        &info,
        r#"{"subjects_filter":"zzz"}"#,
    )
    .await;
    d.err("info unknown stream", &s(INFO, "NOPE"), "", 10059)
        .await;
    d.req("info invalid JSON", &info, "{").await;
}

async fn purges(d: &mut Diff) {
    for i in 0..6 {
        d.publish(
            &format!("refill {i}"),
            &format!("orders.{}", ["p", "q"][i % 2]),
            &[],
            "r",
        )
        .await;
    }
    let purge = s(PURGE, "ORDERS");
    d.ok("purge by filter", &purge, r#"{"filter":"orders.b"}"#)
        .await;
    d.ok(
        "purge by filter with keep",
        &purge,
        r#"{"filter":"orders.p","keep":1}"#,
    )
    .await;
    d.ok(
        "info after filtered purges",
        &s(INFO, "ORDERS"),
        r#"{"subjects_filter":">"}"#,
    )
    .await;
    d.ok("purge up to seq", &purge, r#"{"seq":8}"#).await;
    d.ok("purge keep", &purge, r#"{"keep":2}"#).await;
    d.err("purge keep and seq", &purge, r#"{"keep":1,"seq":3}"#, 10003)
        .await;
    d.ok("info after purges", &s(INFO, "ORDERS"), "").await;
    d.req("purge deny_purge stream", &s(PURGE, "DNPS"), "")
        .await;
    d.err("purge unknown stream", &s(PURGE, "NOPE"), "", 10059)
        .await;
    d.req("purge invalid JSON", &purge, "{").await;
    d.ok("purge everything", &purge, "").await;
    d.ok("info after purge all", &s(INFO, "ORDERS"), "").await;
}

async fn listing_and_updates(d: &mut Diff) {
    d.ok("names", "$JS.API.STREAM.NAMES", "").await;
    d.ok(
        "names by subject",
        "$JS.API.STREAM.NAMES",
        r#"{"subject":"orders.*"}"#,
    )
    .await;
    d.ok(
        "names by subject, none",
        "$JS.API.STREAM.NAMES",
        r#"{"subject":"zzz"}"#,
    )
    .await;
    d.ok(
        "names with offset",
        "$JS.API.STREAM.NAMES",
        r#"{"offset":2}"#,
    )
    .await;
    d.ok("list", "$JS.API.STREAM.LIST", "").await;
    d.ok(
        "list by subject",
        "$JS.API.STREAM.LIST",
        r#"{"subject":"lim.x"}"#,
    )
    .await;
    d.ok(
        "list by subject, none",
        "$JS.API.STREAM.LIST",
        r#"{"subject":"zzz"}"#,
    )
    .await;

    let up = s(UPDATE, "ORDERS");
    d.ok(
        "update max_msgs",
        &up,
        r#"{"name":"ORDERS","subjects":["orders.*","more.*"],"max_msgs":1000}"#,
    )
    .await;
    d.req(
        "update storage type",
        &up,
        r#"{"name":"ORDERS","subjects":["orders.*"],"storage":"memory"}"#,
    )
    .await;
    d.req(
        "update cancel deny_delete",
        &s(UPDATE, "FLAGS"),
        r#"{"name":"FLAGS","subjects":["flags.*"]}"#,
    )
    .await;
    d.req(
        "update name mismatch",
        &up,
        r#"{"name":"OTHER","subjects":["orders.*"]}"#,
    )
    .await;
    d.err(
        "update unknown stream",
        &s(UPDATE, "NOPE"),
        r#"{"name":"NOPE"}"#,
        10059,
    )
    .await;
    d.req("update invalid JSON", &up, "{").await;
    d.req("update empty body", &up, "").await;
    d.req(
        "update overlapping another stream",
        &up,
        r#"{"name":"ORDERS","subjects":["orders.*","lim.x"]}"#,
    )
    .await;
    d.ok(
        "update seal",
        &s(UPDATE, "LIM"),
        r#"{"name":"LIM","subjects":["lim.>"],"sealed":true,"max_msg_size":64}"#,
    )
    .await;
    d.publish("publish to sealed stream", "lim.x", &[], "x")
        .await;
    d.req("purge sealed stream", &s(PURGE, "LIM"), "").await;
    d.ok("info after update", &s(INFO, "ORDERS"), "").await;
}

async fn direct_gets(d: &mut Diff) {
    let direct = s(DIRECT, "FLAGS");
    d.ok("direct get by seq", &direct, r#"{"seq":10}"#).await;
    d.ok(
        "direct get last by subject (body)",
        &direct,
        r#"{"last_by_subj":"flags.a"}"#,
    )
    .await;
    d.ok(
        "direct get next by subject",
        &direct,
        r#"{"next_by_subj":"flags.a","seq":11}"#,
    )
    .await;
    d.ok(
        "direct get last by subject (subject form)",
        &s(DIRECT, "FLAGS.flags.b"),
        "",
    )
    .await;
    d.req("direct get missing", &direct, r#"{"seq":999}"#).await;
    d.req(
        "direct get missing subject",
        &s(DIRECT, "FLAGS.flags.zzz"),
        "",
    )
    .await;
    d.req(
        "direct get bad request",
        &direct,
        r#"{"seq":1,"last_by_subj":"flags.a"}"#,
    )
    .await;
    d.req("direct get empty body", &direct, "").await;
    d.req("direct get invalid JSON", &direct, "{").await;
    d.req(
        "direct get without allow_direct",
        &s(DIRECT, "ORDERS"),
        r#"{"seq":1}"#,
    )
    .await;
    d.req(
        "direct get unknown stream",
        &s(DIRECT, "NOPE"),
        r#"{"seq":1}"#,
    )
    .await;
}

async fn deletes(d: &mut Diff) {
    d.ok("delete", &s(DELETE, "ORDERS"), "").await;
    d.err("delete again", &s(DELETE, "ORDERS"), "", 10059).await;
    d.err("info of deleted stream", &s(INFO, "ORDERS"), "", 10059)
        .await;
    d.req("publish to deleted stream's subject", "orders.a", "x")
        .await;
    d.ok("names after delete", "$JS.API.STREAM.NAMES", "").await;
    d.ok("account info at the end", "$JS.API.INFO", "").await;
}
