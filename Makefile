# Waymark — the two commands people need are `make demo` and `make test`.
# Everything else is a building block of those two.

SHELL := /bin/bash
.DEFAULT_GOAL := help
export CARGO_TERM_COLOR ?= never

.PHONY: help tools test test-rust test-wasm-build test-wasm-node test-js test-browser test-playwright test-workerd test-size inspect demo build size bench clean

help:
	@echo "make demo    run the sample agent workflow: killed part-way, resumed without repeating work"
	@echo "make test    install what is missing, then run every test"
	@echo "make build   build the npm package into pkg/dist"
	@echo "make size    print raw and gzipped wasm sizes (goal and ceilings)"
	@echo "make bench   run the criterion benchmarks (results: BENCHMARKS.md)"

tools:
	scripts/ensure-tools.sh

# Native unit, property, integration and conformance tests of the Rust core.
test-rust:
	cargo test --workspace

# The core must keep compiling for wasm32-unknown-unknown.
test-wasm-build: tools
	cargo build --lib --target wasm32-unknown-unknown

# The bindings' wasm-bindgen tests in Node (conformance suite on JS adapters).
test-wasm-node: tools
	scripts/test-wasm.sh

# The built package, as users import it: node's test runner and tsc --strict.
test-js: build
	scripts/test-js.sh
	scripts/test-types.sh

# The wasm of each runtime must stay under its ceiling (scripts/size.sh).
test-size: build
	scripts/size.sh --check

# IndexedDB in real headless Chromium: window, dedicated worker, service worker.
test-browser: tools
	scripts/test-browser.sh

# The built package in real Chromium via Playwright: reloads, two pages
# writing at once, pages killed mid-write (IndexedDB).
test-playwright: build
	scripts/test-playwright.sh

# Workers KV and Durable Object storage in real workerd (npm miniflare).
test-workerd: tools
	scripts/test-workerd.sh

test: tools test-rust test-wasm-build test-wasm-node test-js test-size test-browser test-playwright test-workerd
	@echo "make test: all stages passed"

build: tools
	scripts/build.sh

size: build
	scripts/size.sh

demo: build
	node demo/main.mjs

# The browser inspector (www/): serves www/ and pkg/dist/web on 127.0.0.1.
inspect: build
	node www/serve.mjs

bench:
	cargo bench --bench core

clean:
	cargo clean
	rm -rf pkg/dist node_modules
