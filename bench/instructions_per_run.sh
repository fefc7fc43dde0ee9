#!/usr/bin/env bash
# Instructions per started run, all threads of the server (callgrind; this VM has no hardware counters).
# The server starts on a fresh data dir with bundles/ (started once natively first, so the built-in components are
# compiled), runs under callgrind with instrumentation off until healthy, then `wrk -t1 -c8` starts echo-upper runs
# for 20 s; after 3 s of drain the profile is dumped. Prints total instructions / runs started.
#
#     bench/instructions_per_run.sh target/release/abstractgateway [seconds]
set -euo pipefail
bin=$(realpath "$1")
secs=${2:-20}
root="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/flows" "$work/data"
cp "$root"/bundles/*.flow "$work/flows/"
export ABSTRACTGATEWAY_FLOWS_DIR="$work/flows" ABSTRACTGATEWAY_DATA_DIR="$work/data"
export ABSTRACTGATEWAY_AUTH_TOKEN=bench-instructions-token-0123456789
port=$((20000 + RANDOM % 20000))
healthy() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && return 0
    sleep 0.2
  done
  echo "the server did not become healthy" >&2
  exit 1
}
"$bin" serve --host 127.0.0.1 --port "$port" >"$work/native.log" 2>&1 &
pid=$!
healthy
kill "$pid"
wait "$pid" || true
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
  "$bin" serve --host 127.0.0.1 --port "$port" >"$work/server.log" 2>&1 &
pid=$!
healthy
sleep 2
callgrind_control -i on "$pid" >/dev/null
out=$(AG_TOKEN="$ABSTRACTGATEWAY_AUTH_TOKEN" AG_BUNDLE=echo-upper wrk -t1 -c8 -d"${secs}s" --timeout 10s \
  -s "$root/bench/start_run.lua" "http://127.0.0.1:$port")
sleep 3
callgrind_control -i off "$pid" >/dev/null
callgrind_control -d "$pid" >/dev/null
kill "$pid"
wait "$pid" || true
runs=$(grep -o 'requests=[0-9]*' <<<"$out" | cut -d= -f2)
total=$(callgrind_annotate "$work"/cg.out.1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
cp "$work"/cg.out.1 "${AG_CALLGRIND_OUT:-/dev/null}" 2>/dev/null || true
echo "runs started: $runs; instructions: $total; per run: $((total / runs))"
