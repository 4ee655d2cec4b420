#!/usr/bin/env bash
# Prints the raw and gzip -9 sizes of the built wasm (goal: ≤ 120 KB gzipped)
# and of the JS glue. Run scripts/build.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
WASM=pkg/dist/web/waymark_bg.wasm
[ -f "$WASM" ] || { echo "[size] $WASM is missing: run scripts/build.sh first" >&2; exit 1; }
LIMIT_KB=${WAYMARK_WASM_GZ_LIMIT_KB:-120}
row() { printf '%-34s %9d bytes raw %9d bytes gzip -9\n' "$1" "$(wc -c <"$1")" "$(gzip -9c "$1" | wc -c)"; }
row "$WASM"
row pkg/dist/web/waymark.js
row pkg/dist/node/waymark.js
gz=$(gzip -9c "$WASM" | wc -c)
printf 'wasm gzipped: %.1f KB (goal <= %d KB)\n' "$(echo "$gz / 1024" | bc -l)" "$LIMIT_KB"
if [ "${SIZE_STRICT:-0}" = 1 ] && [ "$gz" -gt $((LIMIT_KB * 1024)) ]; then
  echo "[size] over budget" >&2
  exit 1
fi
