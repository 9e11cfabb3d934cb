#!/usr/bin/env bash
# nats-py's own JetStream tests (nats/tests/test_js.py) against nats-server
# and against one jetraft node, in private network namespaces (the tests use
# the fixed ports 4222/8222). Not part of CI: it needs a nats.py checkout.
#
#   benches/client-suites/nats-py.sh /path/to/nats.py [jetraft-binary]
#
# Needs: python3 with pytest, pytest-asyncio, pytest-timeout, aiofiles;
# nats-server 2.15.1 on PATH; root (unshare -n). Prints both summary lines.
set -euo pipefail
src=${1:?a nats.py checkout (the monorepo, or its nats/ directory)}
jetraft=$(realpath "${2:-target/release/jetraft}")
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$src/nats/tests" ] && src="$src/nats"
work=$(mktemp -d)
cp -r "$src" "$work/nats"
# jetraft has no /varz yet: the harness's readiness probe asks /healthz
# (which nats-server answers too).
python3 - "$work/nats/tests/utils.py" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
old = 'httpclient.request("GET", "/varz")'
assert old in s, "utils.py changed: update the readiness probe"
open(p, "w").write(s.replace(old, 'httpclient.request("GET", "/healthz")', 1))
PY
# The harness runs ./nats-server first: one directory per side.
for side in nats jetraft; do
  mkdir -p "$work/run-$side"
  ln -s "$work/nats/README.md" "$work/nats/pyproject.toml" "$work/run-$side/"
done
ln -s "$(realpath "$(command -v nats-server)")" "$work/run-nats/nats-server"
cp "$here/nats-server-as-jetraft.py" "$work/run-jetraft/nats-server"
for side in nats jetraft; do
  (cd "$work/run-$side" && JETRAFT="$jetraft" unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
    env PYTHONPATH="$work/nats/src:$work/nats" python3 -m pytest "$work/nats/tests/test_js.py" \
      -p no:cacheprovider -p unittest.mock --timeout 60 -q -rf > "$work/$side.log" 2>&1 || true)
  echo "$side: $(tail -1 "$work/$side.log")"
done
echo "logs: $work/nats.log $work/jetraft.log"
