#!/usr/bin/env bash
# indexedDbStorage over the BUILT package (pkg/dist/web) in Debian's headless
# Chromium, driven by npm playwright-core (never a downloaded browser):
# reload survival, two pages × 1,000 transactions into one scope, and 30
# pages killed (closed or crashed) mid write loop — tests/browser/*.test.mjs.
# Builds nothing: run scripts/build.sh first (or point WAYMARK_DIST at
# another build with the same layout). The benchmark of the same setup is
# `node tests/browser/bench.mjs` (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's chromium and the npm packages (playwright-core): installed when missing.
scripts/ensure-tools.sh browser
dist="${WAYMARK_DIST:-pkg/dist}"
if [ ! -f "$dist/web/index.js" ] || [ ! -f "$dist/web/waymark_bg.wasm" ]; then
  echo "[test-playwright] $dist/web is missing: run scripts/build.sh first" >&2
  exit 1
fi
if ! grep -q "__waymarkClaimIdb" "$dist/web/waymark.js"; then  # every build has a placeholder `class IndexedDbStorage`
  echo "[test-playwright] $dist/web was built without the IndexedDB adapter (cargo feature \`idb\`)" >&2
  exit 1
fi
if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "[test-playwright] node_modules/playwright-core is missing: run scripts/ensure-tools.sh (npm ci) first" >&2
  exit 1
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "[test-playwright] ${CHROMIUM:-/usr/bin/chromium} is missing: run scripts/ensure-tools.sh browser" >&2
  exit 1
fi
exec node --test tests/browser/*.test.mjs
