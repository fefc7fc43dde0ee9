#!/usr/bin/env python3
"""Side-by-side benchmark of two gateways speaking the AbstractGateway 0.2.1 API (python3 stdlib only).

Starts each server on a fresh data dir with the same bundles, drives it with the same client, and prints one
markdown table:

    python3 bench/compare.py --ours target/release/abstractgateway \
        --seed ../shared/peer/seed-gateway.sh --bundles bundles [--runs 500 --concurrency 8 --subscribers 1000]

Either side can be skipped (--ours '' or --seed ''). Metrics: startup to first healthy, idle RSS, start->completed
latency of echo-upper (sequential), 500 runs at concurrency 8, command-apply latency (resume of ask-user until
completed), one event to N SSE subscribers (p99), plus an fsync on the data dir's disk measured in the same session.
"""

import argparse
import http.client
import json
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

TOKEN = "bench-side-by-side-token-0123456789"


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def req(self, method, path, body=None, headers=None):
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                h = {"Authorization": "Bearer " + TOKEN}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    h["Content-Type"] = "application/json"
                h.update(headers or {})
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.05)

    def start(self, bundle, input_data=None):
        st, v = self.req("POST", "/api/gateway/runs/start", {"bundle_id": bundle, "input_data": input_data or {}})
        if st != 200:
            raise RuntimeError("start failed: %s %s" % (st, v))
        return v["run_id"]

    def wait(self, run_id, statuses, poll=0.005, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, v = self.req("GET", "/api/gateway/runs/" + run_id)
            if st == 200 and v["status"] in statuses:
                return v
            time.sleep(poll)
        raise RuntimeError("run %s did not reach %s" % (run_id, statuses))

    def command(self, run_id, ty, payload):
        return self.req("POST", "/api/gateway/commands",
                        {"command_id": uuid.uuid4().hex, "run_id": run_id, "type": ty, "payload": payload})


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def healthy(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/api/health")
        return c.getresponse().status == 200
    except OSError:
        return False


def rss_mb(pid):
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(x) for x in out]
    except OSError:
        pass
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


def fsync_ms(directory, n=100):
    path = os.path.join(directory, "fsync-probe.bin")
    xs = []
    with open(path, "wb") as f:
        for _ in range(n):
            f.write(os.urandom(4096))
            f.flush()
            t = time.perf_counter()
            os.fsync(f.fileno())
            xs.append((time.perf_counter() - t) * 1000)
    os.unlink(path)
    return statistics.median(xs), pct(xs, 99)


def start_server(kind, exe, flows, data, port, extra_env):
    env = dict(os.environ)
    env.update(extra_env)
    t0 = time.perf_counter()
    if kind == "ours":
        env.update({"ABSTRACTGATEWAY_FLOWS_DIR": flows, "ABSTRACTGATEWAY_DATA_DIR": data, "ABSTRACTGATEWAY_AUTH_TOKEN": TOKEN})
        log = open(os.path.join(os.path.dirname(data), "ours.log"), "wb")
        p = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log)
        pid = p.pid
    else:
        env["SEED_TOKEN"] = TOKEN
        kv = ["%s=%s" % (k, v) for k, v in extra_env.items()]
        out = subprocess.run([exe, "serve", flows, data, str(port)] + kv, env=env, capture_output=True, text=True, check=True)
        pid = int(out.stdout.strip().split()[-1])
    while not healthy(port):
        if time.perf_counter() - t0 > 120:
            raise RuntimeError("%s did not come up" % kind)
        time.sleep(0.01)
    return pid, time.perf_counter() - t0


def latency(port, n):
    c = Client(port)
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        rid = c.start("echo-upper", {"name": "Alice"})
        c.wait(rid, ("completed",))
        xs.append((time.perf_counter() - t) * 1000)
    return xs


def throughput(port, runs, conc):
    ids = []
    lock = threading.Lock()
    counter = [0]

    def worker():
        c = Client(port)
        while True:
            with lock:
                if counter[0] >= runs:
                    return
                counter[0] += 1
            rid = c.start("echo-upper", {"name": "x"})
            with lock:
                ids.append(rid)

    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    c = Client(port)
    for rid in ids:
        c.wait(rid, ("completed",), poll=0.01)
    return runs / (time.perf_counter() - t)


def cmd_latency(port, n):
    c = Client(port)
    xs = []
    for _ in range(n):
        rid = c.start("ask-user", {"name": "Bob"})
        c.wait(rid, ("waiting",))
        t = time.perf_counter()
        c.command(rid, "resume", {"payload": {"response": "blue"}})
        c.wait(rid, ("completed",))
        xs.append((time.perf_counter() - t) * 1000)
    return xs


def sse_fanout(port, n):
    c = Client(port)
    rid = c.start("ask-user", {"name": "Fan"})
    c.wait(rid, ("waiting",))
    st, page = c.req("GET", "/api/gateway/runs/%s/ledger?limit=2000" % rid)
    after = page["next_after"]
    sel = selectors.DefaultSelector()
    socks = []
    req = ("GET /api/gateway/runs/%s/ledger/stream?after=%d&heartbeat_s=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n" % (rid, after, TOKEN)).encode()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, {"buf": b"", "ok": False, "t": None})
        socks.append(s)
    # Wait until every stream answered 200 (headers received).
    deadline = time.time() + 60
    ready = 0
    while ready < n and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            d = key.data
            chunk = key.fileobj.recv(65536)
            d["buf"] += chunk
            if not d["ok"] and b"\r\n\r\n" in d["buf"]:
                if not d["buf"].startswith(b"HTTP/1.1 200"):
                    raise RuntimeError("stream refused: %r" % d["buf"][:120])
                d["ok"] = True
                d["buf"] = d["buf"].split(b"\r\n\r\n", 1)[1]
                ready += 1
    if ready < n:
        raise RuntimeError("only %d/%d streams connected" % (ready, n))
    time.sleep(0.5)
    for key in list(sel.get_map().values()):
        key.data["buf"] = b""
    t0 = time.perf_counter()
    c.command(rid, "resume", {"payload": {"response": "go"}})
    got = 0
    xs = []
    deadline = time.time() + 60
    while got < n and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            d = key.data
            d["buf"] += key.fileobj.recv(65536)
            if d["t"] is None and b"event: step" in d["buf"]:
                d["t"] = (time.perf_counter() - t0) * 1000
                xs.append(d["t"])
                got += 1
    for s in socks:
        s.close()
    return xs, got


def bench(kind, exe, bundles, args, extra_env):
    root = tempfile.mkdtemp(prefix="gwbench-%s-" % kind)
    flows = os.path.join(root, "flows")
    data = os.path.join(root, "data")
    os.makedirs(flows)
    for f in os.listdir(bundles):
        if f.endswith(".flow"):
            shutil.copy(os.path.join(bundles, f), flows)
    port = free_port()
    pid, startup = start_server(kind, exe, flows, data, port, extra_env)
    res = {"startup_s": startup}
    try:
        time.sleep(2)
        res["idle_rss_mb"] = rss_mb(pid)
        c = Client(port)
        c.wait(c.start("echo-upper"), ("completed",))
        lat = latency(port, args.latency_runs)
        res["lat_p50"], res["lat_p99"] = pct(lat, 50), pct(lat, 99)
        res["throughput"] = throughput(port, args.runs, args.concurrency)
        cl = cmd_latency(port, args.cmd_runs)
        res["cmd_p50"], res["cmd_p99"] = pct(cl, 50), pct(cl, 99)
        xs, got = sse_fanout(port, args.subscribers)
        res["sse_p50"], res["sse_p99"], res["sse_got"] = pct(xs, 50), pct(xs, 99), got
        res["fsync_p50"], res["fsync_p99"] = fsync_ms(data)
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", default="target/release/abstractgateway")
    ap.add_argument("--seed", default="../shared/peer/seed-gateway.sh")
    ap.add_argument("--bundles", default="bundles")
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency-runs", type=int, default=50)
    ap.add_argument("--cmd-runs", type=int, default=30)
    ap.add_argument("--subscribers", type=int, default=1000)
    args = ap.parse_args()
    # Both sides need room for the fan-out streams; everything else stays at its default.
    env = {"ABSTRACTGATEWAY_MAX_SSE": str(args.subscribers + 10), "ABSTRACTGATEWAY_MAX_CONCURRENCY": str(args.subscribers + 64)}
    results = {}
    for kind, exe in (("ours", args.ours), ("seed", args.seed)):
        if exe:
            print("benchmarking %s ..." % kind, file=sys.stderr)
            results[kind] = bench(kind, exe, args.bundles, args, env)
            print(json.dumps(results[kind]), file=sys.stderr)
    rows = [
        ("Startup to first healthy (s)", "startup_s", "%.2f"),
        ("Idle RSS (MB)", "idle_rss_mb", "%.1f"),
        ("echo-upper start→completed p50 (ms)", "lat_p50", "%.1f"),
        ("echo-upper start→completed p99 (ms)", "lat_p99", "%.1f"),
        ("%d runs at concurrency %d (runs/s)" % (args.runs, args.concurrency), "throughput", "%.1f"),
        ("Command apply (resume→completed) p50 (ms)", "cmd_p50", "%.1f"),
        ("Command apply (resume→completed) p99 (ms)", "cmd_p99", "%.1f"),
        ("One event to %d SSE subscribers p50 (ms)" % args.subscribers, "sse_p50", "%.1f"),
        ("One event to %d SSE subscribers p99 (ms)" % args.subscribers, "sse_p99", "%.1f"),
        ("fsync of 4 KiB on the data disk p50 / p99 (ms)", None, None),
    ]
    kinds = list(results)
    print("| Metric | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for label, key, fmt in rows:
        if key is None:
            cells = ["%.2f / %.2f" % (results[k]["fsync_p50"], results[k]["fsync_p99"]) for k in kinds]
        else:
            cells = [fmt % results[k][key] for k in kinds]
        print("| %s | %s |" % (label, " | ".join(cells)))


if __name__ == "__main__":
    main()
