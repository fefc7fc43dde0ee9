#!/usr/bin/env bash
# Builds the Python `code`/`function` node component (plugins/python/app.py, WIT world node-plugin) with
# componentize-py into target/plugins/python_code.wasm, next to its grants. CPython is compiled into the
# component, so user code never runs in the gateway's process. Skips the build when app.py, the grants, the
# WIT and the componentize-py version are unchanged since the last one (a second run takes well under a second).
# Usage: scripts/build-python-plugin.sh [--force]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/plugins/python"
out="$root/target/plugins"
work="$root/target/python-plugin"
venv="$work/venv"
version="0.25.1"
mkdir -p "$out" "$work"

stamp="$( (echo "componentize-py $version"; cat "$src/app.py" "$src/python_code.grants.json" "$root"/wit/*.wit) \
    | sha256sum | cut -d' ' -f1)"
if [ "${1:-}" != "--force" ] && [ -f "$out/python_code.wasm" ] && [ -f "$out/python_code.grants.json" ] \
    && [ "$(cat "$work/inputs.sha256" 2>/dev/null)" = "$stamp" ]; then
    echo "python_code.wasm is up to date"
    exit 0
fi

if [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $version" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$version"
fi

# Only the app's directory is on the path: nothing of the build machine's site-packages goes in.
(cd "$work" && env -u VIRTUAL_ENV "$venv/bin/componentize-py" --quiet -d "$root/wit" -w python-runtime \
    componentize app -p "$src" -o "$work/python_code.wasm.new")
magic="$(head -c 8 "$work/python_code.wasm.new" | od -An -tx1 | tr -d ' \n')"
if [ "$magic" != "0061736d0d000100" ]; then
    echo "error: componentize-py did not write a WebAssembly component (header $magic)" >&2
    exit 1
fi
mv "$work/python_code.wasm.new" "$out/python_code.wasm"
cp "$src/python_code.grants.json" "$out/python_code.grants.json"
echo "$stamp" > "$work/inputs.sha256"
echo "built $out/python_code.wasm ($(du -h "$out/python_code.wasm" | cut -f1))"
