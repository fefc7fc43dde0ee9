#!/usr/bin/env bash
# Builds the Python `code`/`function` node component (plugins/python/app.py, WIT world python-runtime) with
# componentize-py into target/plugins/python_code.wasm, next to its grants. CPython is compiled into the
# component, so user code never runs in the gateway's process. Skips the build when app.py, the grants, the
# WIT and the build helper (which pins the componentize-py version) are unchanged since the last one (a second
# run takes well under a second). scripts/componentize.py does the build; `abstractgateway plugin build`
# runs the same helper for authors' Python plugins.
# Usage: scripts/build-python-plugin.sh [--force]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/plugins/python"
out="$root/target/plugins"
work="$root/target/python-plugin"
venv="$work/venv"
mkdir -p "$out" "$work"

stamp="$(cat "$root/scripts/componentize.py" "$src/app.py" "$src/python_code.grants.json" "$root"/wit/*.wit \
    | sha256sum | cut -d' ' -f1)"
if [ "${1:-}" != "--force" ] && [ -f "$out/python_code.wasm" ] && [ -f "$out/python_code.grants.json" ] \
    && [ "$(cat "$work/inputs.sha256" 2>/dev/null)" = "$stamp" ]; then
    echo "python_code.wasm is up to date"
    exit 0
fi

# Installs componentize-py into the venv when needed, builds, checks the component header, then moves it in place.
python3 "$root/scripts/componentize.py" --venv "$venv" componentize --wit "$root/wit" --world python-runtime \
    --app-dir "$src" --out "$out/python_code.wasm"
cp "$src/python_code.grants.json" "$out/python_code.grants.json"
echo "$stamp" > "$work/inputs.sha256"
echo "built $out/python_code.wasm ($(du -h "$out/python_code.wasm" | cut -f1))"
