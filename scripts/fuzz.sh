#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz on nightly), each for a bounded time over its checked-in corpus
# (fuzz/corpus/<target>) and the crashes it once found (fuzz/regressions/<target>).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 10 s, every target)
#
# New inputs go to a scratch corpus under fuzz/target, never into the checked-in one; a crash fails the script
# and leaves its input in fuzz/artifacts/<target>/. Extra libFuzzer flags: FUZZ_ARGS="-max_len=65536 ...".
# The same target bodies run on stable, over the same inputs, in the crate's tests (`abstractgateway::fuzzing`).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-10}"
if [ $# -gt 0 ]; then shift; fi

# The targets build the host crate only: its built-in plugin components (a wasm build) are not needed.
export AG_NO_BUILTIN_PLUGINS=1
# No sanitizer: the code under test is safe Rust (a bug panics without one), and it halves both the build and
# the time per input. One build serves every target: `cargo fuzz build` builds them in one cargo invocation.
build_flags=(--sanitizer none)

rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked

cd fuzz
# Always its own target dir: the instrumented nightly build must not share (and thrash) the stable one, even
# when the caller points CARGO_TARGET_DIR elsewhere.
export CARGO_TARGET_DIR="$PWD/target"
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build "${build_flags[@]}"

scratch="target/scratch-corpus"
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "regressions/$t"
  log="target/fuzz-$t.log"
  echo "fuzz $t: ${secs}s" >&2
  # shellcheck disable=SC2086
  if ! cargo +nightly fuzz run "${build_flags[@]}" "$t" "$scratch/$t" "corpus/$t" "regressions/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz $t: FAILED (full log fuzz/$log, input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done )' "$log" >&2 || true
done
