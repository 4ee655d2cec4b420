#!/usr/bin/env bash
# The IndexedDB adapter and the store on it, in real headless Chromium
# (Debian's chromium + chromedriver): tests/wasm_idb.rs — the storage
# conformance suite, group commit, aborts, lost and upgraded connections,
# change notices, reopen, racing stores and step claims — run unchanged in a
# browser window, a dedicated worker and a service worker. The adapter is
# behind the cargo feature `idb` (Cargo.toml [features]).
#
# wasm-bindgen-test-runner adds --headless --no-sandbox --disable-dev-shm-usage
# itself; scripts/webdriver.json adds the rest of the Chromium flags.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-tools.sh browser

export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/scripts/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"

for where in BROWSER DEDICATED_WORKER SERVICE_WORKER; do
  echo "== tests/wasm_idb.rs in Chromium: WASM_BINDGEN_USE_${where}=1"
  env "WASM_BINDGEN_USE_${where}=1" cargo test --target wasm32-unknown-unknown --features idb --test wasm_idb
done
