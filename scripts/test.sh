#!/usr/bin/env bash
# Runs every test in the release profile (one compilation of the dependency tree).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo test --release --workspace -- --test-threads=2
