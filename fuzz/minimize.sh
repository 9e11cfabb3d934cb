#!/usr/bin/env bash
# Minimises fuzz/corpus/TARGET in place (libFuzzer -set_cover_merge=1: a
# small set of inputs that together cover what the whole corpus covers).
# The hand-written seeds (seed-*, see seeds.py) are always kept.
#
#   fuzz/minimize.sh TARGET
set -euo pipefail
cd "$(dirname "$0")"
[[ $# -eq 1 ]] || { echo "usage: $0 TARGET" >&2; exit 2; }
target=$1
bin=$(./build.sh "$target")
[[ -d corpus/$target ]] || { echo "no corpus/$target" >&2; exit 2; }
case $target in
  parser) max_len=8192 ;;
  *) max_len=4096 ;;
esac
tmp=$(mktemp -d "corpus/.merge-$target.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
nice -n 10 "$bin" -set_cover_merge=1 -max_len="$max_len" -timeout=10 "$tmp" "corpus/$target" >&2
cp corpus/"$target"/seed-* "$tmp"/ 2>/dev/null || true
rm -rf "corpus/$target"
chmod 755 "$tmp"
mv "$tmp" "corpus/$target"
trap - EXIT
echo "corpus/$target: $(ls "corpus/$target" | wc -l) files, $(cat "corpus/$target"/* | wc -c) bytes"
