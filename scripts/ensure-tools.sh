#!/usr/bin/env bash
# Installs what the build and the tests need, idempotently: a fresh machine
# and CI start with none of it (see ../shared/TOOLCHAIN.md for timings).
#   scripts/ensure-tools.sh            rust target, wasm-bindgen CLI, npm packages
#   scripts/ensure-tools.sh browser    the above plus Debian's chromium + chromedriver
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[ensure-tools] %s\n' "$*"; }

# 1. The wasm target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 2. The wasm-bindgen CLI, exactly the version pinned in Cargo.toml.
want=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  log "installing wasm-bindgen-cli $want (found '${have:-none}'); takes ~8 min"
  # --locked fails for this crate (TOOLCHAIN.md); the version pin is exact.
  cargo install wasm-bindgen-cli --version "$want"
fi

# 3. npm tooling (binaryen's wasm-opt, typescript, miniflare, playwright-core …).
if [ -f package-lock.json ]; then
  stamp=node_modules/.package-lock.json
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
    log "npm ci"
    npm ci --no-audit --no-fund
  fi
fi

# 4. A real browser, for the IndexedDB tests.
if [ "${1:-}" = "browser" ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing Debian chromium + chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q chromium chromium-driver
  fi
fi
log "ok"
