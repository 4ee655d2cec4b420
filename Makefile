# Waymark — the two commands people need are `make demo` and `make test`.
# Everything else is a building block of those two.

SHELL := /bin/bash
.DEFAULT_GOAL := help
export CARGO_TERM_COLOR ?= never

.PHONY: help tools test test-rust test-wasm-build demo build size bench clean

help:
	@echo "make demo    run the sample agent workflow: killed part-way, resumed without repeating work"
	@echo "make test    install what is missing, then run every test"
	@echo "make build   build the npm package into pkg/dist"
	@echo "make size    print raw and gzipped wasm sizes"
	@echo "make bench   run the criterion benchmarks (results: BENCHMARKS.md)"

tools:
	scripts/ensure-tools.sh

# Native unit, property, integration and conformance tests of the Rust core.
test-rust:
	cargo test --all-targets

# The core must keep compiling for wasm32-unknown-unknown.
test-wasm-build: tools
	cargo build --lib --target wasm32-unknown-unknown

test: tools test-rust test-wasm-build
	@echo "make test: all stages passed"

build: tools
	scripts/build.sh

size: build
	scripts/size.sh

demo:
	cargo run --quiet --example demo

bench:
	cargo bench --bench core

clean:
	cargo clean
	rm -rf pkg/dist node_modules
