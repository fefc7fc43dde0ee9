#!/usr/bin/env python3
"""Capacity, open loop: `wrk -t2 -c32` starts echo-upper runs (bench/start_run.lua) for D seconds as fast as the
server accepts them, then the client waits until no run is active any more. Capacity = runs started (HTTP 200) /
(load + drain time). Ours and the seed, one after the other, each on a fresh data dir with bundles/, K trials per
side on the same server (medians). Needs `wrk` (Debian package).

    python3 bench/capacity.py --ours target/release/abstractgateway --seed ../shared/peer/seed-gateway.sh [--trials 3]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import TOKEN, Client, fresh_server  # noqa: E402


def active(c):
    for status in ("running", "waiting"):
        st, v = c.req("GET", "/api/gateway/runs?status=%s&limit=1" % status)
        if st != 200:
            raise RuntimeError("listing runs failed: %s %s" % (st, v))
        if v.get("items"):
            return True
    return False


def trial(port, seconds, threads, conns, script):
    env = dict(os.environ, AG_TOKEN=TOKEN, AG_BUNDLE="echo-upper")
    t0 = time.perf_counter()
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--timeout", "10s", "-s", script,
                          "http://127.0.0.1:%d" % port], env=env, capture_output=True, text=True, check=True)
    loaded = time.perf_counter()
    m = re.search(r"AG_RESULT requests=(\d+) errors_status=(\d+) errors_timeout=(\d+) errors_other=(\d+)", out.stdout)
    if not m:
        raise RuntimeError("wrk said: %s %s" % (out.stdout, out.stderr))
    requests, bad_status, timeouts, other = (int(x) for x in m.groups())
    c = Client(port)
    deadline = time.time() + 600
    while active(c):
        if time.time() > deadline:
            raise RuntimeError("runs still active after 600 s")
        time.sleep(0.01)
    drained = time.perf_counter()
    started = requests - bad_status - timeouts
    return {"started": started, "refused": bad_status, "timeouts": timeouts, "socket_errors": other,
            "load_s": loaded - t0, "drain_s": drained - loaded, "runs_per_s": started / (drained - t0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", default="target/release/abstractgateway")
    ap.add_argument("--seed", default="../shared/peer/seed-gateway.sh")
    ap.add_argument("--bundles", default="bundles")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "start_run.lua")
    results = {}
    for kind, exe in (("ours", args.ours), ("seed", args.seed)):
        if not exe:
            continue
        with fresh_server(kind, exe, args.bundles, {}) as (port, _, _, _):
            time.sleep(1)
            trials = []
            for _ in range(args.trials):
                r = trial(port, args.seconds, args.threads, args.connections, script)
                print("%s: %s" % (kind, r), file=sys.stderr)
                trials.append(r)
            results[kind] = trials
    kinds = list(results)
    print("| wrk -t%d -c%d for %d s, then drain (median of %d) | %s |" % (
        args.threads, args.connections, args.seconds, args.trials, " | ".join(kinds)))
    print("|---|" + "---|" * len(kinds))
    for label, key, fmt in (("runs started", "started", "%d"), ("refused (non-200)", "refused", "%d"),
                            ("load (s)", "load_s", "%.1f"), ("drain (s)", "drain_s", "%.1f"),
                            ("capacity (runs/s)", "runs_per_s", "%.1f")):
        print("| %s | %s |" % (label, " | ".join(fmt % statistics.median(t[key] for t in results[k]) for k in kinds)))
    if "ours" in results and "seed" in results:
        ratio = statistics.median(t["runs_per_s"] for t in results["ours"]) / \
            statistics.median(t["runs_per_s"] for t in results["seed"])
        print("\ncapacity ratio ours / seed: %.0f×" % ratio)


if __name__ == "__main__":
    main()
