#!/usr/bin/env bash
# TypeScript checks of the generated typings (run scripts/build.sh first):
#   1. tests/types/*.mts use every non-workflow API.md method: `tsc --strict`
#      must pass, under nodenext and bundler module resolution; the
#      `@ts-expect-error` lines in expect-errors.mts must each be an error.
#   2. tests/types/negative/bad.mts must FAIL to compile, with the expected error.
set -euo pipefail
cd "$(dirname "$0")/.."
TSC=node_modules/.bin/tsc
[ -x "$TSC" ] || { echo "[test-types] $TSC is missing: run scripts/ensure-tools.sh (npm ci) first" >&2; exit 1; }
[ -f pkg/dist/node/waymark.d.ts ] || { echo "[test-types] pkg/dist is missing: run scripts/build.sh first" >&2; exit 1; }
pass=0 fail=0
for cfg in tests/types/tsconfig.json tests/types/tsconfig.bundler.json; do
  if "$TSC" -p "$cfg"; then
    echo "ok - tsc --strict -p $cfg"; pass=$((pass + 1))
  else
    echo "not ok - tsc --strict -p $cfg"; fail=$((fail + 1))
  fi
done
out=$(mktemp)
if "$TSC" -p tests/types/negative/tsconfig.json >"$out" 2>&1; then
  echo "not ok - tests/types/negative/bad.mts compiled, but it must not"; fail=$((fail + 1))
elif grep -q "TS2322.*not assignable to type 'Json'" "$out"; then
  echo "ok - tests/types/negative/bad.mts fails to compile (a function is not Json)"; pass=$((pass + 1))
else
  echo "not ok - tests/types/negative/bad.mts failed for another reason:"; cat "$out"; fail=$((fail + 1))
fi
rm -f "$out"
echo "types: $pass passed, $fail failed"
[ "$fail" = 0 ]
