#!/usr/bin/env bash
# Starts the gateway on the example bundles in bundles/ (loopback, port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
export ABSTRACTGATEWAY_FLOWS_DIR="${ABSTRACTGATEWAY_FLOWS_DIR:-$PWD/bundles}"
export ABSTRACTGATEWAY_DATA_DIR="${ABSTRACTGATEWAY_DATA_DIR:-$PWD/runtime}"
if [ -z "${ABSTRACTGATEWAY_AUTH_TOKEN:-}" ] && [ -z "${ABSTRACTGATEWAY_AUTH_TOKENS:-}" ]; then
  export ABSTRACTGATEWAY_AUTH_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "generated token: $ABSTRACTGATEWAY_AUTH_TOKEN" >&2
fi
# `code` nodes run in the Python component: build it (skipped when up to date) and put it in the plugins dir.
export ABSTRACTGATEWAY_PLUGINS_DIR="${ABSTRACTGATEWAY_PLUGINS_DIR:-$ABSTRACTGATEWAY_DATA_DIR/plugins}"
./scripts/build-python-plugin.sh >&2
mkdir -p "$ABSTRACTGATEWAY_PLUGINS_DIR"
for f in python_code.wasm python_code.grants.json; do
  cmp -s "target/plugins/$f" "$ABSTRACTGATEWAY_PLUGINS_DIR/$f" || cp "target/plugins/$f" "$ABSTRACTGATEWAY_PLUGINS_DIR/$f"
done
exec cargo run --release --bin abstractgateway -- serve --host 127.0.0.1 --port "${PORT:-8080}" "$@"
