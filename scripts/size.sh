#!/usr/bin/env bash
# Prints the raw and gzip -9 sizes of each runtime's wasm (scripts/build.sh
# builds one per runtime) and JS glue, against two numbers per wasm:
#
#   goal     120 KB gzipped (issue 4; WAYMARK_WASM_GZ_GOAL_KB overrides).
#            Not met today, and not reachable without a product decision:
#            BENCHMARKS.md "Size: what 120 KB would take".
#   ceiling  the most each wasm may weigh: its size when the ceiling was
#            last set plus ~2 KB for toolchain noise. `--check` (run by
#            `make test`) fails when a wasm is over it, so that size only
#            grows by a decision made in a commit that raises the number
#            below. Lower it when a change makes the wasm smaller.
#
# Run scripts/build.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."

# runtime:ceiling in bytes of gzip -9 (set in session 7 at node 203,752,
# web 234,246, workerd 229,304 bytes).
CEILINGS=(node:205824 web:236544 workerd:231424)

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/size.sh [--check]" >&2; exit 2 ;;
esac
GOAL_KB=${WAYMARK_WASM_GZ_GOAL_KB:-120}
kb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }
gz() { gzip -9c "$1" | wc -c; }
for c in "${CEILINGS[@]}"; do
  f=pkg/dist/${c%%:*}/waymark_bg.wasm
  [ -f "$f" ] || { echo "[size] $f is missing: run scripts/build.sh first" >&2; exit 1; }
done
row() {
  local raw z
  raw=$(wc -c <"$1") z=$(gz "$1")
  printf '%-32s %9d bytes raw (%6s KB) %9d bytes gzip -9 (%6s KB)\n' "$1" "$raw" "$(kb "$raw")" "$z" "$(kb "$z")"
}
for c in "${CEILINGS[@]}"; do row "pkg/dist/${c%%:*}/waymark_bg.wasm"; done
for c in "${CEILINGS[@]}"; do row "pkg/dist/${c%%:*}/waymark.js"; done
over=0
for c in "${CEILINGS[@]}"; do
  b=${c%%:*} ceiling=${c##*:}
  z=$(gz "pkg/dist/$b/waymark_bg.wasm")
  goal="goal <= $GOAL_KB KB: met"
  if [ "$z" -gt $((GOAL_KB * 1024)) ]; then goal="goal <= $GOAL_KB KB: over by $(kb $((z - GOAL_KB * 1024))) KB"; fi
  if [ "$z" -gt "$ceiling" ]; then
    status="OVER the ceiling of $ceiling bytes by $((z - ceiling))"
    over=1
  else
    status="under the ceiling of $ceiling bytes by $((ceiling - z))"
  fi
  printf 'wasm gzipped, %-8s %7d bytes (%s KB); %s; %s\n' "$b:" "$z" "$(kb "$z")" "$goal" "$status"
done
if [ "$check" = 1 ] && [ "$over" = 1 ]; then
  echo "[size] a wasm is over its ceiling: make it smaller, or raise the ceiling in scripts/size.sh in a commit that says why" >&2
  exit 1
fi
