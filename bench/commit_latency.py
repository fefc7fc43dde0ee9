#!/usr/bin/env python3
"""Latency of the durable paths against the disk's own fsync, measured in one run (python3 stdlib only).

Issue #17 asks that a lone run go from start to durably completed within two raw fsyncs plus 0.5 ms. `compare.py`
drives both gateways with `http.client`, which spends about a millisecond of its own per request (it parses
headers with the `email` package); that is fair side by side but hides sub-millisecond costs. This client speaks
HTTP/1.1 on one raw keep-alive socket with TCP_NODELAY and polls without sleeping, so what it times is the
gateway's work, the two fsyncs and the loopback hops.

    python3 bench/commit_latency.py --ours target/release/abstractgateway [--runs 100 --idle-ms 10]

Each sample is taken after `--idle-ms` of quiet, because that is how a lone run arrives; an idle VM is slower to
wake and to fsync than a busy one, so the fsync probe takes the same pause before each of its syncs. Printed, as
medians: a raw 4 KiB `fdatasync` on the data dir's disk, echo-upper start→completed (a self-contained flow: one
commit), the resume of an ask-user run (`POST /commands` answered) and resume→completed (the command's commit,
then the round that applies it and steps the run to its end).
"""

import argparse
import json
import os
import re
import socket
import statistics
import time
import uuid

from compare import TOKEN, fresh_server, fsync_ms

LENGTH = re.compile(rb"content-length: *(\d+)", re.I)


class Raw:
    """One keep-alive connection; each request is one `sendall`, each answer read to its Content-Length."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n" % (method, path, TOKEN)
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        self.sock.sendall(head.encode() + b"\r\n" + data)
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                continue
            m = LENGTH.search(head)
            n = int(m.group(1)) if m else 0
            if len(rest) >= n:
                status = int(head.split(b" ", 2)[1])
                if status != 200:
                    raise RuntimeError("%s %s: %d %s" % (method, path, status, rest[:n]))
                return json.loads(rest[:n]) if n else None

    def status(self, run_id):
        return self.req("GET", "/api/gateway/runs/" + run_id)["status"]

    def until(self, run_id, status):
        deadline = time.time() + 30
        while self.status(run_id) != status:
            if time.time() > deadline:
                raise RuntimeError("run %s never reached %s" % (run_id, status))


def measure(port, data, runs, idle):
    c = Raw(port)
    start, post, resumed = [], [], []
    for _ in range(runs):
        time.sleep(idle)
        t = time.perf_counter()
        rid = c.req("POST", "/api/gateway/runs/start", {"bundle_id": "echo-upper", "input_data": {}})["run_id"]
        c.until(rid, "completed")
        start.append((time.perf_counter() - t) * 1000)

        rid = c.req("POST", "/api/gateway/runs/start", {"bundle_id": "ask-user", "input_data": {"name": "Bob"}})["run_id"]
        c.until(rid, "waiting")
        time.sleep(idle)
        t = time.perf_counter()
        c.req("POST", "/api/gateway/commands", {"command_id": uuid.uuid4().hex, "run_id": rid, "type": "resume",
                                                "payload": {"payload": {"response": "blue"}}})
        post.append((time.perf_counter() - t) * 1000)
        c.until(rid, "completed")
        resumed.append((time.perf_counter() - t) * 1000)
    fsync, _ = fsync_ms(os.path.dirname(data), runs, idle, os.fdatasync)
    return fsync, statistics.median(start), statistics.median(post), statistics.median(resumed)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", default="target/release/abstractgateway")
    ap.add_argument("--bundles", default="bundles")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--idle-ms", type=float, default=10.0)
    args = ap.parse_args()
    with fresh_server("ours", args.ours, args.bundles, {}) as (port, _pid, _startup, data):
        fsync, start, post, resumed = measure(port, data, args.runs, args.idle_ms / 1000)
    print("| median of %d (ms), after %.0f ms idle | value | budget |" % (args.runs, args.idle_ms))
    print("|---|---:|---:|")
    print("| raw 4 KiB fdatasync | %.2f | |" % fsync)
    print("| echo-upper start→completed (one commit) | %.2f | %.2f (1 fsync + 0.5) |" % (start, fsync + 0.5))
    print("| resume answered (`POST /commands`) | %.2f | %.2f (1 fsync + 0.5) |" % (post, fsync + 0.5))
    print("| resume→completed (two commits) | %.2f | %.2f (2 fsyncs + 0.5) |" % (resumed, 2 * fsync + 0.5))


if __name__ == "__main__":
    main()
