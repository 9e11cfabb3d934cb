#!/usr/bin/env python3
"""Prints the side-by-side table of benches/compare.sh: for each durability
and mode, the median over rounds of each figure for jetraft and nats-server,
and the ratio jetraft/nats-server; with a baseline build (BASELINE_BIN) also
its median and the ratio jetraft/baseline."""
import glob
import json
import os
import statistics
import sys

work = sys.argv[1]
runs = {}
for path in glob.glob(os.path.join(work, "result-*.json")):
    r = json.load(open(path))
    _, rest = os.path.basename(path).split("-", 1)
    system = r["label"]
    rest = rest[len(system) + 1:]  # "<dur>-<mode>-<round>.json"
    dur, mode, _round = rest[:-5].split("-")
    cpu = os.path.join(work, f"cpu-{system}-{dur}-{mode}-{_round}.txt")
    if os.path.exists(cpu):
        r["cpu_us_per_msg"] = float(open(cpu).read())
    runs.setdefault((dur, mode), {}).setdefault(system, []).append(r)

# "cpu µs": the three servers' CPU time per publish (compare.sh reads it
# from /proc around each run).
FIGURES = {
    "sync": [("p50 µs", "p50"), ("p90 µs", "p90"), ("p99 µs", "p99"), ("msgs/s", "rate"), ("cpu µs", "cpu")],
    "async": [("p50 µs", "p50"), ("p99 µs", "p99"), ("msgs/s", "rate"), ("cpu µs", "cpu")],
    "multi": [("p50 µs", "p50"), ("p99 µs", "p99"), ("msgs/s", "rate")],
    "consume": [("msgs/s", "rate")],
    # Pull consumption with explicit acks by 1 or 4 workers (spread over
    # the nodes); a double ack's round trip.
    "pull1": [("msgs/s", "rate"), ("cpu µs", "cpu")],
    "pull4": [("msgs/s", "rate"), ("cpu µs", "cpu")],
    "ack": [("p50 µs", "p50"), ("p90 µs", "p90"), ("p99 µs", "p99"), ("cpu µs", "cpu")],
    # Core NATS between nodes (no stream): the slower subscriber's rate,
    # and request/reply latency.
    "corepub": [("msgs/s", "rate"), ("MB/s", "mbps"), ("cpu µs", "cpu")],
    "corereq": [("p50 µs", "p50"), ("p90 µs", "p90"), ("p99 µs", "p99"), ("max µs", "max"), ("cpu µs", "cpu")],
}


def figure(r, key):
    if key == "cpu":
        return r.get("cpu_us_per_msg")
    if key == "mbps":
        return r["bytes_per_sec"] / 1e6
    return r["msgs_per_sec"] if key == "rate" else r["latency_us"][key]


SYSTEMS = ["jetraft", "nats-server"]
base = any("jetraft-base" in by for by in runs.values())
if base:
    SYSTEMS.append("jetraft-base")
head = f"{'durability':<10} {'mode':<7} {'figure':<8} {'jetraft':>12} {'nats-server':>12} {'ratio':>7}"
if base:
    head += f" {'baseline':>12} {'vs base':>7}"
print(head + "  rounds")


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"



for (dur, mode), by in sorted(runs.items()):
    for name, key in FIGURES.get(mode, []):
        med = {}
        for system in SYSTEMS:
            values = [v for r in by.get(system, []) if (v := figure(r, key)) is not None]
            med[system] = statistics.median(values) if values else None
        j, n = med["jetraft"], med["nats-server"]
        # A core NATS message costs the servers a few µs of CPU.
        digits = 1 if key == "mbps" or (key == "cpu" and mode == "corepub") else 0
        fmt = lambda v: "-" if v is None else f"{v:,.{digits}f}"
        rounds = min(len(by.get(s, [])) for s in SYSTEMS)
        line = f"{dur:<10} {mode:<7} {name:<8} {fmt(j):>12} {fmt(n):>12} {ratio(j, n):>7}"
        if base:
            b = med["jetraft-base"]
            line += f" {fmt(b):>12} {ratio(j, b):>7}"
        print(f"{line}  {rounds}")
