#!/usr/bin/env python3
"""Cluster mode against the embedded store, measured in one run (python3 stdlib only).

    python3 bench/cluster.py --ours target/release/abstractgateway --nats "$(scripts/install-nats.sh)" \
        --bundles bundles [--seed ../shared/peer/seed-gateway.sh] [--runs 1000 --concurrency 16 --kills 3]

For each setup it starts fresh processes on fresh directories and measures, with the client of bench/compare.py:
- start->completed of echo-upper, sequential (p50, p99);
- capacity: `--concurrency` clients start `--runs` echo-upper runs as fast as the API accepts them, then every run is
  awaited; runs completed per second of the whole;
Setups: the embedded store (one `serve`); a 3-server nats-server cluster (JetStream R3, fsync on every write) with
one API node (`serve --no-runner`) and one runner; the same with two runners. With --seed, the seed's figures come
first, for the ratio. Runs are spread over the cluster's shards (4 by default); with two runners each steps half
of them, and the measures start once they do. Then `--kills` times: SIGKILL one runner of the two-runner setup and
time until the other one reports it steps every shard (the takeover; default lease 10 s), then start it again and
wait until the shards are shared again.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def nats_cluster(nats, root):
    """Three nats-servers in cluster mode on loopback; returns (processes, url)."""
    ports = [(compare.free_port(), compare.free_port(), compare.free_port()) for _ in range(3)]
    routes = ", ".join("nats-route://127.0.0.1:%d" % p[1] for p in ports)
    procs = []
    for i, (client, cluster, http) in enumerate(ports):
        d = os.path.join(root, "nats%d" % i)
        os.makedirs(d)
        conf = os.path.join(d, "n.conf")
        with open(conf, "w") as f:
            f.write(
                "server_name: n%d\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\nmax_payload: 8MB\n"
                "jetstream { store_dir: \"%s\", sync_interval: always }\n"
                "cluster { name: bench, listen: 127.0.0.1:%d, routes: [%s] }\n"
                % (i, client, http, os.path.join(d, "js"), cluster, routes)
            )
        log = open(os.path.join(d, "log"), "wb")
        procs.append(subprocess.Popen([nats, "-c", conf], stdout=log, stderr=log))
    url = "nats://" + ",".join("127.0.0.1:%d" % p[0] for p in ports)
    deadline = time.time() + 30
    for _, _, http in ports:
        # Healthy with JetStream, and the cluster has elected its JetStream meta leader.
        while not (get(http, "/healthz?js-enabled-only=true") is not None
                   and (get(http, "/jsz") or {}).get("meta_cluster", {}).get("leader")):
            if time.time() > deadline:
                raise RuntimeError("nats-server did not come up")
            time.sleep(0.05)
    return procs, url


def get(port, path):
    import http.client as hc
    import json
    try:
        c = hc.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", path)
        r = c.getresponse()
        return json.loads(r.read() or b"{}") if r.status == 200 else None
    except (OSError, ValueError):
        return None


def gateway(exe, root, name, bundles, args, env):
    d = os.path.join(root, name)
    flows = os.path.join(d, "flows")
    shutil.copytree(bundles, flows)
    port = compare.free_port()
    e = dict(os.environ)
    e.update(env)
    e.update({"ABSTRACTGATEWAY_FLOWS_DIR": flows, "ABSTRACTGATEWAY_DATA_DIR": os.path.join(d, "data"),
              "ABSTRACTGATEWAY_AUTH_TOKEN": compare.TOKEN, "ABSTRACTGATEWAY_NODE_ID": name})
    log_path = os.path.join(d, "log")
    log = open(log_path, "wb")
    p = subprocess.Popen([exe] + args + ["--host", "127.0.0.1", "--port", str(port)], env=e, stdout=log, stderr=log)
    t0 = time.time()
    while not compare.healthy(port):
        if time.time() - t0 > 60 or p.poll() is not None:
            raise RuntimeError("%s did not come up; see %s" % (name, log_path))
        time.sleep(0.02)
    return p, port, log_path


def measure(port, args):
    compare.latency(port, 20)  # warm-up
    lat = compare.latency(port, args.latency_runs)
    cap = compare.throughput(port, args.runs, args.concurrency)
    return statistics.median(lat), compare.pct(lat, 99), cap


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()


SHARDS = int(os.environ.get("ABSTRACTGATEWAY_CLUSTER_SHARDS", "4"))


def held(log_path):
    """The shards a runner steps now, from its log."""
    shards = set()
    try:
        with open(log_path, "r", errors="replace") as f:
            for line in f:
                for prefix, add in (("abstractgateway runner active on shard ", True),
                                    ("abstractgateway runner handed shard ", False)):
                    if line.startswith(prefix):
                        n = int(line[len(prefix):].split()[0])
                        (shards.add if add else shards.discard)(n)
    except OSError:
        pass
    return shards


def wait_shards(logs, pred, timeout=90):
    t0 = time.time()
    while not pred([held(l) for l in logs]):
        if time.time() - t0 > timeout:
            raise RuntimeError("shards did not settle: %s" % [sorted(held(l)) for l in logs])
        time.sleep(0.01)


def balanced(logs):
    share = -(-SHARDS // len(logs))
    wait_shards(logs, lambda hs: len(set().union(*hs)) == SHARDS and all(len(h) == share for h in hs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--nats", required=True)
    ap.add_argument("--bundles", default="bundles")
    ap.add_argument("--seed", default="")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency-runs", type=int, default=100)
    ap.add_argument("--kills", type=int, default=3)
    args = ap.parse_args()
    rows = []
    if args.seed:
        root = tempfile.mkdtemp()
        flows = os.path.join(root, "flows")
        shutil.copytree(args.bundles, flows)
        port = compare.free_port()
        pid, _ = compare.start_server("seed", args.seed, flows, os.path.join(root, "data"), port, {})
        try:
            rows.append(("seed 0.2.1",) + measure(port, args))
        finally:
            subprocess.run([args.seed, "stop", str(pid)], capture_output=True)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    # Embedded.
    root = tempfile.mkdtemp()
    p, port, _ = gateway(args.ours, root, "embedded", args.bundles, ["serve"], {})
    try:
        rows.append(("embedded (fjall)",) + measure(port, args))
    finally:
        stop([p])
    # Cluster with one and two runners.
    takeovers = []
    for runners in (1, 2):
        root = tempfile.mkdtemp()
        nats, url = nats_cluster(args.nats, root)
        procs = []
        try:
            env = {"ABSTRACTGATEWAY_STORE": url}
            api, port, _ = gateway(args.ours, root, "api", args.bundles, ["serve", "--no-runner"], env)
            procs.append(api)
            logs = []
            for i in range(runners):
                r, _, log = gateway(args.ours, root, "run%d" % i, args.bundles, ["runner"], env)
                procs.append(r)
                logs.append(log)
            balanced(logs)
            rows.append(("cluster, %d runner%s" % (runners, "s" if runners > 1 else ""),) + measure(port, args))
            if runners == 2:
                runner_procs = procs[1:]
                for k in range(args.kills):
                    owner = k % 2
                    other = 1 - owner
                    t = time.time()
                    runner_procs[owner].send_signal(signal.SIGKILL)
                    runner_procs[owner].wait()
                    wait_shards([logs[other]], lambda hs: len(hs[0]) == SHARDS)
                    takeovers.append(time.time() - t)
                    # The killed one comes back and takes its share again (its log is truncated by the restart).
                    r, _, log = gateway_restart(args.ours, root, "run%d" % owner, env)
                    runner_procs[owner] = r
                    logs[owner] = log
                    procs.append(r)
                    balanced(logs)
        finally:
            stop(procs)
            stop(nats)
    print("| setup | start→completed p50 (ms) | p99 (ms) | capacity (runs/s) |")
    print("|---|---|---|---|")
    for name, p50, p99, cap in rows:
        print("| %s | %.1f | %.1f | %.0f |" % (name, p50, p99, cap))
    if takeovers:
        print()
        print("takeover after SIGKILL of a runner (its shards on the other one) (s): %s; median %.2f" % (
            ", ".join("%.2f" % t for t in takeovers), statistics.median(takeovers)))


def gateway_restart(exe, root, name, env):
    d = os.path.join(root, name)
    port = compare.free_port()
    e = dict(os.environ)
    e.update(env)
    e.update({"ABSTRACTGATEWAY_FLOWS_DIR": os.path.join(d, "flows"), "ABSTRACTGATEWAY_DATA_DIR": os.path.join(d, "data"),
              "ABSTRACTGATEWAY_AUTH_TOKEN": compare.TOKEN, "ABSTRACTGATEWAY_NODE_ID": name})
    log_path = os.path.join(d, "log")
    log = open(log_path, "wb")
    p = subprocess.Popen([exe, "runner", "--host", "127.0.0.1", "--port", str(port)], env=e, stdout=log, stderr=log)
    t0 = time.time()
    while not compare.healthy(port):
        if time.time() - t0 > 60 or p.poll() is not None:
            raise RuntimeError("%s did not come back" % name)
        time.sleep(0.02)
    return p, port, log_path


if __name__ == "__main__":
    main()
