#!/usr/bin/env python3
"""The layering rules of docs/ARCHITECTURE.md, checked against what the Cargo.toml files declare.

Each workspace crate may depend on the workspace crates listed for it and on no others, and the pure crates
must not pull in the libraries of IO (async runtime, HTTP, storage, wasmtime). Exits non-zero naming every
dependency that breaks a rule. Usage: scripts/check-layers.py (from anywhere in the checkout).
"""
import json
import subprocess
import sys
from pathlib import Path

# Workspace crate -> the workspace crates it may depend on (normal and build dependencies).
ALLOWED = {
    "abstractgateway-model": set(),
    "abstractgateway-pycompat": set(),
    "abstractgateway-llm-local": set(),
    # Test helpers: a dev-dependency only (dev-dependencies are not layering edges).
    "abstractgateway-testkit": set(),
    "abstractgateway-bundle": {"abstractgateway-model", "abstractgateway-pycompat"},
    "abstractgateway-engine": {"abstractgateway-model", "abstractgateway-pycompat", "abstractgateway-bundle"},
    "abstractgateway-store": {"abstractgateway-model"},
    # Cluster mode's replicated log on NATS JetStream: it moves the store's entries, it does not read them.
    "abstractgateway-store-nats": {"abstractgateway-model", "abstractgateway-store"},
    # Knowledge-graph memory: a triple store kept in the store, and the seed's KG effects over it.
    "abstractgateway-kg": {"abstractgateway-store"},
    "abstractgateway-providers": {"abstractgateway-model", "abstractgateway-store", "abstractgateway-llm-local"},
    "abstractgateway-runner": {
        "abstractgateway-model", "abstractgateway-bundle", "abstractgateway-engine", "abstractgateway-store",
    },
    "abstractgateway-sandbox": {
        "abstractgateway-model", "abstractgateway-bundle", "abstractgateway-engine", "abstractgateway-store",
        "abstractgateway-providers", "abstractgateway-runner", "abstractgateway-kg",
    },
    "abstractgateway-server": {
        "abstractgateway-model", "abstractgateway-pycompat", "abstractgateway-bundle", "abstractgateway-engine",
        "abstractgateway-store", "abstractgateway-runner", "abstractgateway-sandbox",
        # The API's own LLM and voice helpers (run summary, chat, tts, transcribe) call the providers directly.
        "abstractgateway-providers",
        # POST /kg/query reads the knowledge-graph memory.
        "abstractgateway-kg",
    },
}
# The binary may use every layer.
ALLOWED["abstractgateway"] = set(ALLOWED) - {"abstractgateway"}

IO_LIBS = {"tokio", "reqwest", "axum", "hyper", "fjall", "wasmtime", "wasmtime-wasi"}
# Crates that must stay pure: no IO library among their dependencies.
PURE = {"abstractgateway-model", "abstractgateway-pycompat", "abstractgateway-engine"}


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"], cwd=root))
    members = {p["name"]: p for p in meta["packages"]}
    problems = []
    for name, pkg in sorted(members.items()):
        if name not in ALLOWED:
            problems.append(f"{name}: not in the layering rules (add it to scripts/check-layers.py and "
                            "docs/ARCHITECTURE.md)")
            continue
        for dep in pkg["dependencies"]:
            if dep.get("kind") == "dev":
                continue
            d = dep["name"]
            if d in members and d not in ALLOWED[name]:
                problems.append(f"{name} must not depend on {d}")
            if name in PURE and d in IO_LIBS:
                problems.append(f"{name} is pure and must not depend on {d}")
    for p in problems:
        print(f"layering: {p}", file=sys.stderr)
    if not problems:
        print(f"layering: {len(members)} crates follow the rules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
