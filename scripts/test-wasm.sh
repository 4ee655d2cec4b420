#!/usr/bin/env bash
# wasm-bindgen tests of the bindings (tests/wasm_node.rs) in Node. The same
# suite runs in Chromium with WASM_BINDGEN_USE_BROWSER=1 (or
# _DEDICATED_WORKER / _SERVICE_WORKER) and CHROMEDRIVER=/usr/bin/chromedriver.
# Do not pass -q: the runner rejects --quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
exec cargo test --target wasm32-unknown-unknown --features conformance --test wasm_node "$@"
