#!/usr/bin/env bash
# Starts the gateway on the example bundles in bundles/ (loopback, port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
export ABSTRACTGATEWAY_DATA_DIR="${ABSTRACTGATEWAY_DATA_DIR:-$PWD/runtime}"
if [ -z "${ABSTRACTGATEWAY_FLOWS_DIR:-}" ]; then
  # The example bundles: the no-LLM ones of bundles/ and the seed's LLM ones of bundles/llm/.
  export ABSTRACTGATEWAY_FLOWS_DIR="$ABSTRACTGATEWAY_DATA_DIR/flows"
  mkdir -p "$ABSTRACTGATEWAY_FLOWS_DIR"
  for f in bundles/*.flow bundles/llm/*.flow; do
    cmp -s "$f" "$ABSTRACTGATEWAY_FLOWS_DIR/$(basename "$f")" || cp "$f" "$ABSTRACTGATEWAY_FLOWS_DIR/"
  done
fi
if [ -z "${ABSTRACTGATEWAY_AUTH_TOKEN:-}" ] && [ -z "${ABSTRACTGATEWAY_AUTH_TOKENS:-}" ]; then
  export ABSTRACTGATEWAY_AUTH_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "generated token: $ABSTRACTGATEWAY_AUTH_TOKEN" >&2
fi
# `code` nodes run in the Python component, which the binary embeds: build it first (skipped when up to date).
./scripts/build-python-plugin.sh >&2
# LLM nodes answer out of the box: with no provider configured, SmolLM2-135M runs in-process (fetched once,
# ~100 MB), also standing in for the providers the example bundles pin (lmstudio, openai) unless those are set.
features=""
if [ -z "${ABSTRACTGATEWAY_PROVIDER:-}" ] && [ "${AG_NO_LOCAL_MODEL:-}" != 1 ]; then
  features="--features local-model"
  export ABSTRACTGATEWAY_LOCAL_MODEL="${ABSTRACTGATEWAY_LOCAL_MODEL:-$(./scripts/fetch-model.sh)}"
  if [ -z "${ABSTRACTGATEWAY_EMBEDDED_PROVIDERS+x}" ]; then
    aliases=""
    [ -z "${LMSTUDIO_BASE_URL:-}" ] && aliases="lmstudio"
    [ -z "${OPENAI_API_KEY:-}" ] && [ -z "${OPENAI_BASE_URL:-}" ] && aliases="${aliases:+$aliases,}openai"
    export ABSTRACTGATEWAY_EMBEDDED_PROVIDERS="$aliases"
  fi
  echo "LLM: in-process SmolLM2-135M (also answering for: ${ABSTRACTGATEWAY_EMBEDDED_PROVIDERS:-none})" >&2
fi
# shellcheck disable=SC2086
exec cargo run --release --bin abstractgateway $features -- serve --host 127.0.0.1 --port "${PORT:-8080}" "$@"
