#!/usr/bin/env bash
# Builds fuzz targets with libFuzzer's coverage instrumentation on the
# stable toolchain and prints the path of the (last) binary built.
#
#   fuzz/build.sh [TARGET...]      (no TARGET: all of them)
#
# The flags are what cargo-fuzz passes, minus the nightly-only ones
# (-Zsanitizer): SanitizerCoverage through LLVM's sancov pass, which rustc
# exposes with the stable -C passes / -C llvm-args, and --cfg fuzzing.
# --target keeps the flags off build scripts and proc macros (serde_derive
# must not link against libFuzzer's hooks). See README.md.
set -euo pipefail
cd "$(dirname "$0")"
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth \
-Cforce-frame-pointers=yes \
--cfg fuzzing"
bins=()
for t in "$@"; do bins+=(--bin "$t"); done
[[ ${#bins[@]} -gt 0 ]] || bins=(--bins)
nice -n 10 cargo build --release --locked --target "$host" "${bins[@]}" >&2
if [[ $# -gt 0 ]]; then
  echo "$PWD/target/$host/release/${!#}"
else
  echo "$PWD/target/$host/release"
fi
