#!/usr/bin/env python3
"""Startup to first healthy answer of `abstractgateway serve`, five fresh starts on the example bundles.

    python3 bench/startup.py [path/to/abstractgateway]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "abstractgateway")
PORT = 18099

tmp = tempfile.mkdtemp()
shutil.copytree(os.path.join(ROOT, "bundles"), os.path.join(tmp, "flows"))
env = dict(os.environ, ABSTRACTGATEWAY_FLOWS_DIR=os.path.join(tmp, "flows"),
           ABSTRACTGATEWAY_DATA_DIR=os.path.join(tmp, "data"),
           ABSTRACTGATEWAY_AUTH_TOKEN="startup-token-0123456789")
times = []
for _ in range(5):
    t = time.time()
    p = subprocess.Popen([BIN, "serve", "--port", str(PORT)], env=env, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/health", timeout=0.5).read()
            break
        except Exception:
            time.sleep(0.002)
    times.append((time.time() - t) * 1000)
    p.terminate()
    p.wait()
shutil.rmtree(tmp)
times.sort()
print("startup to healthy (ms):", ", ".join(f"{x:.1f}" for x in times), f"(median {times[len(times) // 2]:.1f})")
