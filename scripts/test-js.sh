#!/usr/bin/env bash
# JS tests (node's built-in runner) over the BUILT package, imported as users
# do: "waymark" resolves through pkg/package.json's exports via the
# node_modules/waymark link that `npm ci` creates. Run scripts/build.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f pkg/dist/node/waymark_bg.wasm ]; then
  echo "[test-js] pkg/dist is missing: run scripts/build.sh first" >&2
  exit 1
fi
if [ ! -e node_modules/waymark ]; then
  echo "[test-js] node_modules/waymark is missing: run scripts/ensure-tools.sh (npm ci) first" >&2
  exit 1
fi
exec node --test tests/js/*.test.mjs
