#!/usr/bin/env bash
# Runs every test in the release profile (one compilation of the dependency tree).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
# The Python code-node component: the conformance and code-node tests need it (skipped when up to date).
./scripts/build-python-plugin.sh >/dev/null
cargo test --release --workspace -- --test-threads=2
