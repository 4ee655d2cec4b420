#!/usr/bin/env bash
# The Cloudflare adapters (Workers KV, Durable Objects) tested in real workerd
# through npm `miniflare`: the storage conformance suite and the store-level
# checks of src/storage/edge_tests.rs, driven by tests/workerd/*.test.mjs.
#
#   scripts/test-workerd.sh          build the test wasm, then run the tests
#   scripts/test-workerd.sh bench    build it, then run the KV benchmark
#                                    (BENCHMARKS.md, "Cloudflare Workers KV")
#
# Needs what scripts/ensure-tools.sh installs (wasm32 target, wasm-bindgen,
# npm packages including miniflare); `make test` runs that first.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
out="$target_dir/workerd-test"

if [ ! -d node_modules/miniflare ]; then
  scripts/ensure-tools.sh
fi

# 1. The crate with its test entry points, as a wasm module for the `web` target.
cargo build --lib --target wasm32-unknown-unknown --profile edge-test --features conformance,edge
rm -rf "$out"
mkdir -p "$out"
wasm-bindgen --target web --out-dir "$out" --out-name waymark \
  "$target_dir/wasm32-unknown-unknown/edge-test/waymark.wasm"
# The package's JS fast paths, as scripts/build.sh appends them.
cat src/bindings/js/*.js >>"$out/waymark.js"
cp tests/workerd/worker.mjs "$out/worker.mjs"

export WAYMARK_WORKERD_DIR="$(cd "$out" && pwd)"
if [ "${1:-}" = "bench" ]; then
  node tests/workerd/bench.mjs
  exit
fi

# 2. The tests: each starts Miniflare (workerd) on that Worker. The example
# Worker's test imports the built package (pkg/, `make build`) through its
# `workerd` export.
node --test --test-concurrency=1 tests/workerd/*.test.mjs
