#!/usr/bin/env bash
# Builds the npm package into pkg/dist (pkg/package.json is hand-owned):
#   cargo build --release (wasm32) → wasm-bindgen --target nodejs|web
#   → wasm-opt -Oz from the npm package `binaryen` (never Debian's binaryen:
#     v108 silently breaks the externref table, TOOLCHAIN.md)
#   → small hand-written entry files per runtime.
# Needs scripts/ensure-tools.sh (rust target, wasm-bindgen CLI, npm ci) first.
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[build] %s\n' "$*"; }
WASM_OPT=node_modules/.bin/wasm-opt
if [ ! -x "$WASM_OPT" ]; then
  echo "[build] $WASM_OPT is missing: run scripts/ensure-tools.sh (npm ci) first" >&2
  exit 1
fi

log "cargo build --release --lib --target wasm32-unknown-unknown"
cargo build --release --lib --target wasm32-unknown-unknown
WASM="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/waymark.wasm"

# The features rustc enables for wasm32-unknown-unknown (1.82+); wasm-opt must
# neither drop them nor add others that engines may lack.
FEATURES=(--enable-bulk-memory --enable-bulk-memory-opt --enable-mutable-globals
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-reference-types
  --enable-multivalue --enable-call-indirect-overlong)

rm -rf pkg/dist
cp README.md pkg/README.md  # the package ships the README (pkg/package.json "files")
for pair in nodejs:node web:web; do
  target=${pair%%:*} dir=pkg/dist/${pair#*:}
  log "wasm-bindgen --target $target → $dir"
  wasm-bindgen --target "$target" --out-dir "$dir" --out-name waymark "$WASM"
  rm -f "$dir/waymark_bg.wasm.d.ts"
done

log "wasm-opt -Oz --strip-debug --strip-producers"
"$WASM_OPT" -Oz "${FEATURES[@]}" --strip-debug --strip-producers \
  pkg/dist/web/waymark_bg.wasm -o pkg/dist/web/waymark_bg.wasm
# Both targets get the same module bytes from wasm-bindgen; optimise once.
cp pkg/dist/web/waymark_bg.wasm pkg/dist/node/waymark_bg.wasm

# The nodejs target is CommonJS while the package is "type": "module".
printf '{ "type": "commonjs" }\n' > pkg/dist/node/package.json

# Browsers, Deno and bundlers: instantiate on import (top-level await) with
# the wasm file next to this one (`new URL(..., import.meta.url)`, which
# Vite, webpack 5 and Parcel follow). Browser-extension service workers, where
# top-level await is not allowed, import "waymark/web" and call init themselves.
cat > pkg/dist/web/index.js <<'JS'
import init from "./waymark.js";
await init({ module_or_path: new URL("./waymark_bg.wasm", import.meta.url) });
export * from "./waymark.js";
JS

# Cloudflare Workers: importing a .wasm file yields a WebAssembly.Module
# (compiling bytes at run time is forbidden there); initSync only
# instantiates it, so nothing else runs at module load (PLATFORMS.md).
cat > pkg/dist/web/workerd.js <<'JS'
import module from "./waymark_bg.wasm";
import { initSync } from "./waymark.js";
initSync({ module });
export * from "./waymark.js";
JS

log "done: $(ls pkg/dist/*/ | tr '\n' ' ')"
