#!/usr/bin/env bash
# Builds the npm package into pkg/dist (pkg/package.json is hand-owned).
# One wasm per runtime, each with only the storage adapters that runtime has
# (Cargo.toml [features]; size budget: STYLE.md habit 12, `make size`):
#
#   pkg/dist/node      no feature       wasm-bindgen --target nodejs
#   pkg/dist/web       --features idb   wasm-bindgen --target web   (browsers, Deno, bundlers)
#   pkg/dist/workerd   --features edge  wasm-bindgen --target web   (Cloudflare Workers)
#
# Each: cargo build --release (wasm32) → wasm-bindgen → wasm-opt -Oz from the
# npm package `binaryen` (never Debian's binaryen: v108 silently breaks the
# externref table, TOOLCHAIN.md) → small hand-written entry files.
#
# Typings: every build exports every factory (a missing adapter's factory
# throws INVALID_INPUT "not available in the … build", src/bindings/unavailable.rs),
# so one .d.ts is true of all three. It is generated from a quick unoptimised
# build with all features and replaces each build's own .d.ts.
#
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

target_dir="${CARGO_TARGET_DIR:-target}"
work="$target_dir/waymark-pkg"
rm -rf "$work"
mkdir -p "$work"

# name:features:wasm-bindgen target
BUILDS=(node::nodejs web:idb:web workerd:edge:web)

for b in "${BUILDS[@]}"; do
  IFS=: read -r name features _ <<<"$b"
  log "cargo build --release --lib --target wasm32-unknown-unknown ${features:+--features $features}  ($name)"
  cargo build --release --lib --target wasm32-unknown-unknown ${features:+--features "$features"}
  cp "$target_dir/wasm32-unknown-unknown/release/waymark.wasm" "$work/$name.wasm"
done

log "cargo build --lib --target wasm32-unknown-unknown --features idb,edge  (typings only)"
cargo build --lib --target wasm32-unknown-unknown --features idb,edge
for t in nodejs web; do
  wasm-bindgen --target "$t" --out-dir "$work/types-$t" --out-name waymark \
    "$target_dir/wasm32-unknown-unknown/debug/waymark.wasm"
done

# The features rustc enables for wasm32-unknown-unknown (1.82+); wasm-opt must
# neither drop them nor add others that engines may lack.
FEATURES=(--enable-bulk-memory --enable-bulk-memory-opt --enable-mutable-globals
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-reference-types
  --enable-multivalue --enable-call-indirect-overlong)
# -Oz until nothing shrinks (--converge). --low-memory-unused: rustc lays the
# stack out first (data starts at 1 MiB), so the lowest 1 KiB is never a
# valid address and wasm-opt may fold constant offsets into loads and stores.
# Measured (BENCHMARKS.md "Size"): together ~2 KB gzipped off each build.
# --strip-target-features: the features are passed above; engines ignore the
# section (~0.1 KB).
OPT=(-Oz --converge --low-memory-unused "${FEATURES[@]}" --strip-debug --strip-producers --strip-target-features)
# Functions wasm-opt must not inline (globs on the names of the name section,
# which wasm-bindgen keeps; passes run in order, so these go before -Oz).
# -Oz inlines every function that has one caller: fewer raw bytes, but the
# inlined bodies (locals renumbered into their caller's) gzip worse than the
# separate functions. Kept out of inlining: code that runs once per API call
# or per storage request — export bodies and their argument parsing, the
# store's async machinery, the storage adapters that do I/O. Not the
# read/write fast paths (`bindings::fast`, the export shims), `core`, `alloc`,
# the codec or trait impls: with those kept apart too, the A/B of the node
# package measured 2–7% slower (`alloc` alone: transactions 3–5%; BENCHMARKS.md
# "Size", third round). This list: ~1.5–4 KB gzipped off each build.
NOINLINE=()
for p in 'waymark::store::*' \
  'waymark::bindings::'{run,registry,scope,convert,store,view,memory,storage,adapter,idb,kv,durable_object}'::*' \
  {,'<'}'waymark::storage::'{idb,kv,durable_object,cloudflare}'::*'; do
  NOINLINE+=("--no-inline=$p")
done

rm -rf pkg/dist
cp README.md pkg/README.md  # the package ships the README (pkg/package.json "files")
for b in "${BUILDS[@]}"; do
  IFS=: read -r name _ target <<<"$b"
  dir=pkg/dist/$name
  log "wasm-bindgen --target $target → $dir; wasm-opt ${OPT[*]:0:3}"
  wasm-bindgen --target "$target" --out-dir "$dir" --out-name waymark "$work/$name.wasm"
  rm -f "$dir/waymark_bg.wasm.d.ts"
  # The JS fast paths (value cache, …) patch the generated classes, whose
  # names are in scope at the end of the glue in both targets.
  cat src/bindings/js/*.js >>"$dir/waymark.js"
  cp "$work/types-$target/waymark.d.ts" "$dir/waymark.d.ts"
  "$WASM_OPT" "${NOINLINE[@]}" "${OPT[@]}" "$dir/waymark_bg.wasm" -o "$dir/waymark_bg.wasm"
done

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
cat > pkg/dist/workerd/index.js <<'JS'
import module from "./waymark_bg.wasm";
import { initSync } from "./waymark.js";
initSync({ module });
export * from "./waymark.js";
JS

log "done: $(cd pkg/dist && ls -d */ | tr '\n' ' ')"
