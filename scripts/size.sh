#!/usr/bin/env bash
# Prints the raw and gzip -9 sizes of each runtime's wasm (goal: each
# <= 120 KB gzipped; scripts/build.sh builds one per runtime) and JS glue.
# Run scripts/build.sh first. SIZE_STRICT=1 fails when a wasm is over budget
# (WAYMARK_WASM_GZ_LIMIT_KB, default 120).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILDS=(node web workerd)
for b in "${BUILDS[@]}"; do
  f=pkg/dist/$b/waymark_bg.wasm
  [ -f "$f" ] || { echo "[size] $f is missing: run scripts/build.sh first" >&2; exit 1; }
done
LIMIT_KB=${WAYMARK_WASM_GZ_LIMIT_KB:-120}
kb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }
row() {
  local raw gz
  raw=$(wc -c <"$1") gz=$(gzip -9c "$1" | wc -c)
  printf '%-32s %9d bytes raw (%6s KB) %9d bytes gzip -9 (%6s KB)\n' "$1" "$raw" "$(kb "$raw")" "$gz" "$(kb "$gz")"
}
for b in "${BUILDS[@]}"; do row "pkg/dist/$b/waymark_bg.wasm"; done
for b in "${BUILDS[@]}"; do row "pkg/dist/$b/waymark.js"; done
over=0
for b in "${BUILDS[@]}"; do
  gz=$(gzip -9c "pkg/dist/$b/waymark_bg.wasm" | wc -c)
  status=ok
  if [ "$gz" -gt $((LIMIT_KB * 1024)) ]; then status="OVER by $(kb $((gz - LIMIT_KB * 1024))) KB"; over=1; fi
  printf 'wasm gzipped, %-8s %6s KB (goal <= %d KB): %s\n' "$b:" "$(kb "$gz")" "$LIMIT_KB" "$status"
done
if [ "${SIZE_STRICT:-0}" = 1 ] && [ "$over" = 1 ]; then
  echo "[size] over budget" >&2
  exit 1
fi
