#!/usr/bin/env bash
# Builds the fuzz targets with coverage instrumentation on the pinned
# stable toolchain and runs one of them (libFuzzer, single job, niced).
#
#   fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#
# TARGET: parser | connect | stream_config | headers. The corpus is
# fuzz/corpus/TARGET/ (new inputs are added to it; run fuzz/minimize.sh
# TARGET before committing it), crashes go to fuzz/artifacts/TARGET/.
# Reproduce a crash: fuzz/run.sh TARGET 0 fuzz/artifacts/TARGET/crash-...
# (with a file argument libFuzzer runs just that input).
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  echo "usage: $0 TARGET SECONDS [libFuzzer options or input files...]" >&2
  echo "targets: $(targets | tr '\n' ' ')" >&2
  exit 2
}
targets() { sed -n 's/^name = "\([a-z_]*\)"$/\1/p' Cargo.toml | grep -v '^jetraft-fuzz$'; }

[[ $# -ge 2 ]] || usage
target=$1
seconds=$2
shift 2
targets | grep -qx "$target" || usage
[[ $seconds =~ ^[0-9]+$ ]] || usage

bin=$(./build.sh "$target")

mkdir -p "corpus/$target" "artifacts/$target"
case $target in
  parser) max_len=8192 ;;
  *) max_len=4096 ;;
esac
opts=(
  -max_total_time="$seconds"
  -artifact_prefix="artifacts/$target/"
  -max_len="$max_len"
  -timeout=10
  -rss_limit_mb=2048
  -print_final_stats=1
)
[[ -f dict/$target.dict ]] && opts+=(-dict="dict/$target.dict")

# A file argument means: run those inputs once (reproduce), no corpus.
for a in "$@"; do
  if [[ -f $a ]]; then
    exec nice -n 10 "$bin" "${opts[@]}" "$@"
  fi
done
exec nice -n 10 "$bin" "${opts[@]}" "$@" "corpus/$target"
