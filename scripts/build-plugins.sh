#!/usr/bin/env bash
# Builds the guest plugins (the `plugins/` workspace) as WebAssembly components and copies each
# one to target/plugins/<crate_name>.wasm. Cargo builds in $CARGO_TARGET_DIR (default
# plugins/target); a second run with nothing changed takes about a second.
# Usage: scripts/build-plugins.sh [extra cargo build args, e.g. -p hostile]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/plugins"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
mkdir -p "$out"

# The JSON messages name the exact artifacts of this build, so stale files of removed crates are never copied.
artifacts="$(cd "$root/plugins" && cargo build --release --target wasm32-wasip2 --message-format=json-render-diagnostics "$@" \
    | grep -o '"filenames":\[[^]]*\]' | grep -o '[^"]*\.wasm' | sort -u)"

count=0
for wasm in $artifacts; do
    magic="$(head -c 8 "$wasm" | od -An -tx1 | tr -d ' \n')"
    if [ "$magic" != "0061736d0d000100" ]; then
        echo "error: $wasm is not a WebAssembly component (header $magic)" >&2
        exit 1
    fi
    dest="$out/$(basename "$wasm")"
    cmp -s "$wasm" "$dest" 2>/dev/null || cp "$wasm" "$dest"
    count=$((count + 1))
done
echo "$count plugin component(s) in $out"
