#!/usr/bin/env python3
"""Writes the hand-written seed inputs (corpus/<target>/seed-*): what NATS
clients really send. Run from anywhere; existing seeds are overwritten, the
rest of the corpus is left alone."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f'seed-{name}'), 'wb') as f:
        f.write(data)


def pub(subj, payload, reply=None):
    r = f' {reply}' if reply else ''
    return f'PUB {subj}{r} {len(payload)}\r\n'.encode() + payload + b'\r\n'


def hpub(subj, hdr, payload, reply=None):
    r = f' {reply}' if reply else ''
    return f'HPUB {subj}{r} {len(hdr)} {len(hdr) + len(payload)}\r\n'.encode() + hdr + payload + b'\r\n'


def setup(headers, follow_connect, payload_idx, control_idx, chunk_seed):
    """The parser target's two leading bytes (see fuzz_targets/parser.rs)."""
    return bytes([int(headers) | int(follow_connect) << 1 | payload_idx << 2 | control_idx << 5, chunk_seed])


CREATE = json.dumps({
    "name": "ORDERS", "subjects": ["orders.*"], "retention": "limits", "max_consumers": -1,
    "max_msgs": -1, "max_bytes": -1, "discard": "old", "max_age": 0, "max_msgs_per_subject": -1,
    "max_msg_size": -1, "storage": "file", "num_replicas": 1, "duplicate_window": 120000000000,
    "sealed": False, "deny_delete": False, "deny_purge": False, "allow_rollup_hdrs": False,
    "allow_direct": False, "mirror_direct": False, "consumer_limits": {}, "compression": "none",
}, separators=(',', ':')).encode()
ASYNC_CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"lang":"rust","version":"0.51.0","protocol":1,"echo":true,"headers":true,"no_responders":true,"tls_required":false,"user":null,"pass":null}\r\n'
GO_CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"tls_required":false,"name":"","lang":"go","version":"1.37.0","protocol":1,"echo":true,"headers":true,"no_responders":true}\r\n'

# ---- parser: setup bytes, then what a client sends ----
# async-nats JetStream: create a stream, publish with a msg id (headers
# switched on by the CONNECT), max payload 1 MiB, max control line 4096.
put('parser', 'async-nats-js', setup(False, True, 7, 7, 5) + ASYNC_CONNECT + b'PING\r\nSUB _INBOX.Hk2Lq.* 1\r\n'
    + pub('$JS.API.STREAM.CREATE.ORDERS', CREATE, '_INBOX.Hk2Lq.1')
    + hpub('orders.new', b'NATS/1.0\r\nNats-Msg-Id: 7f3a\r\nNats-Expected-Last-Sequence: 0\r\n\r\n', b'{"id":1,"qty":2}', '_INBOX.Hk2Lq.2')
    + b'UNSUB 1\r\nPONG\r\n')
# nats.go core NATS: subscriptions, a queue group, auto-unsubscribe.
put('parser', 'nats-go-core', setup(False, True, 6, 7, 3) + GO_CONNECT + b'PING\r\nSUB foo 1\r\nSUB foo.* workers 2\r\nUNSUB 2 10\r\n'
    + pub('foo', b'hello') + pub('foo.bar', b'', '_INBOX.abc') + hpub('foo', b'NATS/1.0\r\nA: b\r\n\r\n', b'') + b'PING\r\n')
EVERY_OP = (b'CONNECT {"verbose":false}\r\nPUB foo 5\r\nhello\r\npub foo.bar  _INBOX.1 0\r\n\r\n'
            b'HPUB h r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nSUB foo 1\r\nsub foo q 2\r\nUNSUB 1\r\nunsub 2 10\r\n'
            b'PING\r\nping\r\nPONG\r\nINFO {}\r\n+OK\r\nSUB\ta\t3\r\n')
put('parser', 'every-op', setup(True, False, 6, 7, 0) + EVERY_OP)
put('parser', 'every-op-bytewise', setup(True, False, 6, 7, 8) + EVERY_OP)
put('parser', 'small-limits', setup(True, False, 2, 3, 2) + b'PUB a 2\r\nhi\r\nHPUB a 12 12\r\nNATS/1.0\r\n\r\n\r\nSUB abcdefgh 1\r\n')
put('parser', 'bare-newlines', setup(False, False, 6, 7, 1) + b"PING\nPONG\nPINGx\r\nPING x\r\n-ERR 'oops'\r\n")
put('parser', 'bad-args', setup(True, False, 6, 7, 4) + b'PUB foo 1234567890\r\nHPUB foo 20 14\r\n')
put('parser', 'payload-trailer', setup(False, False, 6, 7, 6) + b'PUB foo 2\r\nhix\r\n')

# ---- connect: the CONNECT JSON ----
for name, body in [
    ('async-nats', ASYNC_CONNECT[8:-2]),
    ('nats-go', GO_CONNECT[8:-2]),
    ('nats-js', b'{"lang":"nats.js","version":"2.28.2","protocol":1,"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"name":"app","echo":false}'),
    ('defaults', b'{}'),
    ('bad-protocol', b'{"protocol":5}'),
    ('no-resp', b'{"no_responders":true}'),
]:
    put('connect', name, body)

# ---- stream_config: JetStream API request bodies ----
for name, body in {
    'nats-go-create': CREATE,
    'async-nats-create': b'{"name":"events","subjects":["events.>"],"max_bytes":-1,"max_msgs":-1,"max_msgs_per_subject":-1,"max_age":0,"max_msg_size":-1,"storage":"memory","num_replicas":3,"retention":"workqueue","max_consumers":-1,"discard":"new","duplicate_window":60000000000,"allow_rollup_hdrs":false,"sealed":false,"deny_delete":true,"deny_purge":false,"allow_direct":true,"mirror_direct":false,"compression":"s2","consumer_limits":null,"metadata":{"owner":"team-a"},"placement":null,"description":"order events"}',
    'minimal': b'{"name":"S","subjects":["s.>"]}',
    'kv-like': b'{"name":"KV_cfg","subjects":["$KV.cfg.>"],"max_msgs_per_subject":5,"discard":"new","discard_new_per_subject":true,"allow_rollup_hdrs":true,"deny_delete":true,"allow_direct":true,"max_age":3600000000000,"duplicate_window":120000000000,"num_replicas":1}',
    'features': b'{"name":"T","subjects":["t.*.x","u"],"allow_msg_ttl":true,"subject_delete_marker_ttl":2000000000,"allow_msg_counter":false,"persist_mode":"async","first_seq":10,"sources":[],"pedantic":true,"no_ack":true,"max_age":500000000}',
    'mirror': b'{"name":"M","mirror":{"name":"O","opt_start_seq":1},"mirror_direct":true,"placement":{"cluster":"c1","tags":[]}}',
    'purge': b'{"filter":"orders.*","keep":2}',
    'purge-seq': b'{"seq":100}',
    'msg-get': b'{"last_by_subj":"orders.1"}',
    'msg-get-next': b'{"next_by_subj":"i.*","seq":3}',
    'info-req': b'{"subjects_filter":">","offset":10,"deleted_details":true}',
    'names': b'{"offset":0,"subject":"orders.>"}',
    'msg-delete': b'{"seq":3,"no_erase":true}',
    'stream-info': b'{"config":{"name":"S","subjects":["s.\\u003e"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"file","num_replicas":1,"duplicate_window":120000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"consumer_limits":{},"allow_msg_ttl":false,"metadata":{"_nats.level":"5"}},"created":"2026-11-25T01:21:39.389474637Z","state":{"messages":4,"bytes":302,"first_seq":2,"first_ts":"2026-11-25T01:21:39.392938343Z","last_seq":5,"last_ts":"2026-11-25T01:21:39.393745614Z","num_subjects":3,"consumer_count":0},"cluster":{"leader":"N1","replicas":[{"name":"N2","current":true,"active":1200,"lag":3,"peer":"x"}]},"ts":"0001-01-01T00:00:00Z"}',
    'empty': b'',
    'null': b'null',
}.items():
    put('stream_config', name, body)

# ---- headers: header blocks ----
for name, block in [
    ('msg-id', b'NATS/1.0\r\nNats-Msg-Id: abc\r\nX: 1\r\nX:  2\r\nEmpty:\r\n\r\n'),
    ('status', b'NATS/1.0 404 Message Not Found\r\n\r\n'),
    ('status-only', b'NATS/1.0 503\r\n\r\n'),
    ('heartbeat', b'NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\nNats-Last-Stream: 9\r\n\r\n'),
    ('folded', b'NATS/1.0\r\nA: one\r\n two\r\nB: x\r\n\r\n'),
    ('expected', b'NATS/1.0\r\nNats-Expected-Stream: ORDERS\r\nNats-Expected-Last-Sequence: 41\r\nNats-Expected-Last-Subject-Sequence: 4\r\nNats-Expected-Last-Subject-Sequence-Subject: a.b\r\nNats-Expected-Last-Msg-Id: m1\r\nNats-Rollup: sub\r\nNats-TTL: 5s\r\n\r\n'),
    ('tricky', b'NATS/1.0\r\nA: Nats-Expected-Stream: no\r\nNats-Expected-Stream: yes\r\n\r\n'),
]:
    put('headers', name, block)
