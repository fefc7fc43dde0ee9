#!/usr/bin/env python3
"""Side-by-side benchmark of two gateways speaking the AbstractGateway 0.2.1 API (python3 stdlib only).

Starts each server on a fresh data dir with the same bundles, drives it with the same client, and prints one
markdown table:

    python3 bench/compare.py --ours target/release/abstractgateway \
        --seed ../shared/peer/seed-gateway.sh --bundles bundles [--runs 500 --concurrency 8 --subscribers 1000]

Either side can be skipped (--ours '' or --seed ''). Metrics: startup to first healthy, idle RSS, start->completed
latency of echo-upper (sequential), 500 runs at concurrency 8, command-apply latency (resume of ask-user until
completed), one event to N SSE subscribers (p99), plus an fsync on the data dir's disk measured in the same session.

LLM mode (--llm) measures what each gateway adds to a model call whose own time is ~0: both sides are pointed at
the deterministic fake OpenAI-compatible server (--fake-llm, answers at once) as provider lmstudio / model
fake-model, with the two seed LLM bundles of --llm-bundles, and the table gives start->completed p50/p90 of
basic-llm-test and basic-agent (input {"prompt": "Say hi"}, sequential, after warm-up runs), the chat and
/v1/models requests the fake saw per run (from its request log), and the time per chat request:

    python3 bench/compare.py --llm --ours target/release/abstractgateway \
        --seed ../shared/peer/seed-gateway.sh --fake-llm ../shared/fixtures/fake_llm_server.py [--llm-runs 30]
"""

import argparse
import contextlib
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
        # The first polls come quickly and the gap doubles up to `poll`: a fixed 5 ms sleep rounded every
        # latency up to the next multiple of 5 ms, and a tight loop would load the server being measured.
        deadline = time.time() + timeout
        gap = min(0.0002, poll)
        while time.time() < deadline:
            st, v = self.req("GET", "/api/gateway/runs/" + run_id)
            if st == 200 and v["status"] in statuses:
                return v
            time.sleep(gap)
            gap = min(gap * 2, poll)
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


def fsync_ms(directory, n=100, idle=0.0, sync=os.fsync):
    """Median and p99 (ms) of `sync` after appending 4 KiB, each after `idle` seconds of quiet."""
    path = os.path.join(directory, "fsync-probe.bin")
    xs = []
    with open(path, "wb") as f:
        for _ in range(n):
            time.sleep(idle)
            f.write(os.urandom(4096))
            f.flush()
            t = time.perf_counter()
            sync(f.fileno())
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


@contextlib.contextmanager
def fresh_server(kind, exe, bundles, extra_env):
    """One server of `kind` on a fresh data dir with the `.flow` files of `bundles`: yields (port, pid, startup
    seconds, data dir), then stops it and removes the dir."""
    root = tempfile.mkdtemp(prefix="gwbench-%s-" % kind)
    flows, data = os.path.join(root, "flows"), os.path.join(root, "data")
    os.makedirs(flows)
    for f in os.listdir(bundles):
        if f.endswith(".flow"):
            shutil.copy(os.path.join(bundles, f), flows)
    port = free_port()
    pid, startup = start_server(kind, exe, flows, data, port, extra_env)
    try:
        yield port, pid, startup, data
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)


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
    with fresh_server(kind, exe, bundles, extra_env) as (port, pid, startup, data):
        res = {"startup_s": startup}
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
    return res


LLM_BUNDLES = ("basic-llm-test", "basic-agent")


# The fake writes a response's headers and body in two sends; with Nagle on, a client that keeps its connection
# alive and delays its ACK waits ~40 ms for the body of every back-to-back call. That stall is the fake's, not the
# gateway's (many model servers set TCP_NODELAY), so the fake gets TCP_NODELAY unless --fake-llm-nagle is given.
NODELAY_LAUNCHER = ("import runpy, socketserver, sys; socketserver.StreamRequestHandler.disable_nagle_algorithm = True; "
                    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def start_fake_llm(script, log_path, nagle):
    cmd = [sys.executable, script] if nagle else [sys.executable, "-c", NODELAY_LAUNCHER, script]
    p = subprocess.Popen(cmd + ["--port", "0", "--log", log_path],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "LISTENING":
        p.kill()
        raise RuntimeError("fake LLM server did not start: %r" % line)
    return p, int(line[1])


def fake_requests(log_path):
    """(chat completions, model listings) the fake LLM has logged so far."""
    chat = models = 0
    try:
        with open(log_path, encoding="utf-8") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                path = e.get("path", "")
                if e.get("method") == "POST" and path.endswith("/chat/completions"):
                    chat += 1
                elif e.get("method") == "GET" and path.endswith("/models"):
                    models += 1
    except FileNotFoundError:
        pass
    return chat, models


def llm_run(c, bundle):
    t = time.perf_counter()
    rid = c.start(bundle, {"prompt": "Say hi"})
    v = c.wait(rid, ("completed", "failed", "cancelled"))
    ms = (time.perf_counter() - t) * 1000
    if v["status"] != "completed":
        raise RuntimeError("%s run %s ended %s: %s" % (bundle, rid, v["status"], v.get("error")))
    return ms


def bench_llm(kind, exe, args):
    root = tempfile.mkdtemp(prefix="gwbench-llm-%s-" % kind)
    flows = os.path.join(root, "flows")
    data = os.path.join(root, "data")
    os.makedirs(flows)
    for f in os.listdir(args.llm_bundles):
        if f.endswith(".flow"):
            shutil.copy(os.path.join(args.llm_bundles, f), flows)
    log_path = os.path.join(root, "fake-llm.jsonl")
    fake, fake_port = start_fake_llm(args.fake_llm, log_path, args.fake_llm_nagle)
    env = {"LMSTUDIO_BASE_URL": "http://127.0.0.1:%d/v1" % fake_port,
           "ABSTRACTGATEWAY_PROVIDER": "lmstudio", "ABSTRACTGATEWAY_MODEL": "fake-model"}
    port = free_port()
    pid = None
    res = {"load_before": os.getloadavg()[0]}
    try:
        pid, res["startup_s"] = start_server(kind, exe, flows, data, port, env)
        c = Client(port)
        for bundle in LLM_BUNDLES:
            for _ in range(args.llm_warmup):
                llm_run(c, bundle)
            chat0, models0 = fake_requests(log_path)
            xs = [llm_run(c, bundle) for _ in range(args.llm_runs)]
            chat1, models1 = fake_requests(log_path)
            res[bundle] = {"p50": pct(xs, 50), "p90": pct(xs, 90), "chat_per_run": (chat1 - chat0) / len(xs),
                           "models_per_run": (models1 - models0) / len(xs)}
        res["load_after"] = os.getloadavg()[0]
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        fake.terminate()
        fake.wait(timeout=10)
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)
    return res


def main_llm(args):
    results = {}
    for kind, exe in (("ours", args.ours), ("seed", args.seed)):
        if exe:
            print("benchmarking %s (LLM bundles) ..." % kind, file=sys.stderr)
            results[kind] = bench_llm(kind, exe, args)
            print(json.dumps(results[kind]), file=sys.stderr)
    kinds = list(results)
    rows = []
    for bundle in LLM_BUNDLES:
        rows += [
            ("%s start→completed p50 (ms)" % bundle, lambda r, b=bundle: "%.1f" % r[b]["p50"]),
            ("%s start→completed p90 (ms)" % bundle, lambda r, b=bundle: "%.1f" % r[b]["p90"]),
            ("%s chat requests / `GET /v1/models` per run" % bundle,
             lambda r, b=bundle: "%.2f / %.2f" % (r[b]["chat_per_run"], r[b]["models_per_run"])),
            ("%s p50 per chat request (ms)" % bundle,
             lambda r, b=bundle: "%.1f" % (r[b]["p50"] / r[b]["chat_per_run"]) if r[b]["chat_per_run"] else "n/a"),
        ]
    rows.append(("Load average (1 min) before / after", lambda r: "%.2f / %.2f" % (r["load_before"], r["load_after"])))
    print("| Metric (%d runs each after %d warm-up, fake LLM) | %s |" % (args.llm_runs, args.llm_warmup, " | ".join(kinds)))
    print("|---|" + "---|" * len(kinds))
    for label, cell in rows:
        print("| %s | %s |" % (label, " | ".join(cell(results[k]) for k in kinds)))
    if "ours" in results and "seed" in results:
        print()
        for bundle in LLM_BUNDLES:
            print("- %s p50, seed / ours: %.0f×" % (bundle, results["seed"][bundle]["p50"] / results["ours"][bundle]["p50"]))


def main_sse(args):
    """The fan-out alone, `args.sse_only` times per side on one server each: per trial the p50 and p99 over the
    subscribers, then the median of each across trials. `first` is the earliest subscriber: the command's own
    cost (HTTP, durable commit, runner), which every subscriber pays before the fan-out proper."""
    env = {"ABSTRACTGATEWAY_MAX_SSE": str(args.subscribers + 10), "ABSTRACTGATEWAY_MAX_CONCURRENCY": str(args.subscribers + 64)}
    rows = {}
    for kind, exe in (("ours", args.ours), ("seed", args.seed)):
        if not exe:
            continue
        trials = []
        with fresh_server(kind, exe, args.bundles, env) as (port, _, _, _):
            time.sleep(1)
            if args.sse_client:
                out = subprocess.run([args.sse_client, "--url", "http://127.0.0.1:%d" % port, "--token", TOKEN,
                                      "--subscribers", str(args.subscribers), "--trials", str(args.sse_only)],
                                     capture_output=True, text=True)
                sys.stderr.write(out.stderr)
                if out.returncode != 0:
                    raise RuntimeError("%s: the SSE client failed (exit %d)" % (kind, out.returncode))
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows[kind] = [r["first_ms"], r["p50_ms"], r["p99_ms"]]
            else:
                for _ in range(args.sse_only):
                    xs, got = sse_fanout(port, args.subscribers)
                    if got < args.subscribers:
                        raise RuntimeError("%s: only %d/%d subscribers got the event" % (kind, got, args.subscribers))
                    trials.append((min(xs), pct(xs, 50), pct(xs, 99)))
                    print("%s trial: first %.1f p50 %.1f p99 %.1f ms" % ((kind,) + trials[-1]), file=sys.stderr)
        if trials:
            rows[kind] = [statistics.median(t[i] for t in trials) for i in range(3)]
    kinds = list(rows)
    print("| One event to %d SSE subscribers, median of %d trials (ms) | %s |" % (args.subscribers, args.sse_only, " | ".join(kinds)))
    print("|---|" + "---|" * len(kinds))
    for i, label in enumerate(("first subscriber", "p50", "p99")):
        print("| %s | %s |" % (label, " | ".join("%.1f" % rows[k][i] for k in kinds)))


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
    ap.add_argument("--sse-only", type=int, metavar="K", default=0,
                    help="measure only the SSE fan-out, K times on each side (one server per side)")
    ap.add_argument("--sse-client", metavar="BIN",
                    help="with --sse-only: the Rust client (host/benches/sse_fanout.rs) instead of this script's")
    ap.add_argument("--llm", action="store_true", help="measure the LLM bundles against a fake model instead")
    ap.add_argument("--llm-bundles", default="bundles/llm")
    ap.add_argument("--fake-llm", default="../shared/fixtures/fake_llm_server.py")
    ap.add_argument("--fake-llm-nagle", action="store_true", help="leave Nagle on in the fake LLM (see NODELAY_LAUNCHER)")
    ap.add_argument("--llm-runs", type=int, default=30)
    ap.add_argument("--llm-warmup", type=int, default=3)
    args = ap.parse_args()
    if args.llm:
        main_llm(args)
        return
    if args.sse_only:
        main_sse(args)
        return
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
