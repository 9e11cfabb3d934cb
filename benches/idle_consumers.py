"""Idle cost of many consumers: CPU of the three jetraft nodes over a quiet
window, before and after creating N durable pull consumers on one R3 stream
(a tenth of them with a message delivered and not acknowledged).

Start a cluster first (`target/release/jetraft dev`, clients on 4222), then
`python3 benches/idle_consumers.py 10000`. Needs nats-py."""
import asyncio, json, os, subprocess, sys, time
import nats

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
WINDOW = 20.0

def node_pids():
    out = subprocess.run(["pgrep", "-f", "jetraft server"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]

def cpu_ticks(pids):
    t = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        t += int(parts[11]) + int(parts[12])
    return t

def rss_mb(pids):
    total = 0
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    total += int(l.split()[1])
    return total / 1024

def idle_cpu(pids):
    hz = os.sysconf("SC_CLK_TCK")
    a = cpu_ticks(pids); time.sleep(WINDOW); b = cpu_ticks(pids)
    return 100.0 * (b - a) / hz / WINDOW

async def main():
    nc = await nats.connect("nats://127.0.0.1:4222", connect_timeout=5)
    js = nc.jetstream(timeout=30)
    await js.add_stream(name="IDLE", subjects=["idle.>"], num_replicas=3)
    for i in range(10):
        await js.publish(f"idle.{i}", b"x")
    pids = node_pids()
    await asyncio.sleep(3)
    base = idle_cpu(pids)
    print(f"no consumers: idle CPU {base:.1f}% of one core (3 nodes), RSS {rss_mb(pids):.0f} MB", flush=True)
    got = []
    async def took(m):
        got.append(m)
    await nc.subscribe("replies.idle", cb=took)
    t0 = time.time()
    sem = asyncio.Semaphore(64)
    async def make(i):
        async with sem:
            body = json.dumps({"stream_name": "IDLE", "config": {"durable_name": f"c{i}", "ack_policy": "explicit", "ack_wait": 3600_000_000_000}})
            r = await nc.request(f"$JS.API.CONSUMER.CREATE.IDLE.c{i}", body.encode(), timeout=30)
            assert b'"error"' not in r.data, r.data
            if i % 10 == 0:
                # (nats-py's request() cannot take a delivery: it arrives
                # under the message's own subject, as from nats-server.)
                await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.IDLE.c{i}", b'{"batch":1,"no_wait":true}', reply="replies.idle")
    await asyncio.gather(*(make(i) for i in range(N)))
    print(f"created {N} consumers in {time.time() - t0:.1f} s", flush=True)
    await asyncio.sleep(3)
    print(f"deliveries taken and left unacknowledged: {len(got)}", flush=True)
    await asyncio.sleep(5)
    after = idle_cpu(pids)
    print(f"{N} consumers: idle CPU {after:.1f}% of one core (3 nodes), RSS {rss_mb(pids):.0f} MB", flush=True)
    info = json.loads((await nc.request("$JS.API.STREAM.INFO.IDLE", b"", timeout=10)).data)
    print("stream consumers:", info["state"]["consumer_count"])
    await nc.close()

asyncio.run(main())
