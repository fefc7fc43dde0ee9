#!/usr/bin/env bash
# Runs every test in the release profile (one compilation of the dependency tree).
set -euo pipefail
cd "$(dirname "$0")/.."
# One full, non-incremental build: incremental state of ~50 release test binaries runs to tens of GB, and a disk
# that fills mid-build fails in the linker with an unhelpful bus error. Say up front how much room there is.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_gb=$(df -Pk "$target_dir" | awk 'NR==2 {print int($4 / 1048576)}')
echo "test.sh: ${free_gb} GB free for $target_dir" >&2
if [ "$free_gb" -lt 12 ]; then
  echo "test.sh: warning: a build from empty needs about 12 GB (release tests, plugins, fuzz); this may run out" >&2
fi
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
# The voice tests run the local speech engines, the run viewer's test a headless browser through WebDriver; install
# them once when apt is available.
pkgs="espeak-ng pocketsphinx pocketsphinx-en-us chromium chromium-driver"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  echo "installing:$missing" >&2
  # shellcheck disable=SC2086
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The cluster tests run nats-server 2.15.1 (Debian's 2.9 breaks fencing); installed once, without root.
ABSTRACTGATEWAY_TEST_NATS="$(./scripts/install-nats.sh)"
export ABSTRACTGATEWAY_TEST_NATS
# The guest components the tests load (hostile, http_steps, ...) and the Python code-node component.
./scripts/build-plugins.sh >/dev/null
# The Python code-node component: the conformance and code-node tests need it (skipped when up to date).
./scripts/build-python-plugin.sh >/dev/null
# Formatting of both workspaces first: it takes a second and needs no build.
cargo fmt --all --check
(cd plugins && cargo fmt --all --check)
# The crates' dependencies follow the layering rules of docs/ARCHITECTURE.md.
python3 scripts/check-layers.py
# The guest workspace natively: its lints and unit tests (the agent loop, voice, memory, files, hostile...).
(cd plugins && cargo clippy --workspace --all-targets -- -D warnings && cargo test --workspace)
# With the in-process model compiled in, so its end-to-end tests run too (they fetch the model once).
cargo test --release --workspace --features abstractgateway/local-model -- --test-threads=2
# Lints of every host target, and benches that still compile (they are run by hand, see docs/benchmarks.md).
cargo clippy --release --workspace --all-targets --features abstractgateway/local-model -- -D warnings
cargo bench --workspace --features abstractgateway/local-model --no-run
# Every fuzz target for a few seconds over its checked-in corpus (nightly + cargo-fuzz, installed when missing;
# about 11 minutes from an empty fuzz/target on 2 cores, nearly all of it the instrumented build). The same
# inputs also replay on stable in the tests above (`fuzzing::tests`). AG_SKIP_FUZZ=1 skips this part.
if [ -z "${AG_SKIP_FUZZ:-}" ]; then
  ./scripts/fuzz.sh 5
fi
