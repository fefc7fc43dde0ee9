"""Builds a Python WebAssembly component (or its typed bindings) with a pinned componentize-py.

The one implementation behind `scripts/build-python-plugin.sh` (the built-in `code` node) and
`abstractgateway plugin build|bindings` (authors' Python node plugins; the binary embeds this file and runs it
with `python3 -c`). It installs componentize-py into a virtualenv once (reused while its version matches),
runs it with nothing of the build machine's Python environment on the path, and checks that what it wrote is
a WebAssembly component before putting it in place.

Usage:
  componentize.py [--venv DIR | --componentize-py EXE] componentize --wit DIR --world WORLD --app-dir DIR
                  [--module app] --out FILE
  componentize.py [--venv DIR | --componentize-py EXE] bindings --wit DIR --world WORLD --out DIR

Exit status 0 on success; 1 with `error: ...` on stderr otherwise.
"""

import argparse
import os
import subprocess
import sys
import tempfile

# The componentize-py every Python component of abstractgateway is built with.
VERSION = "0.25.1"

# The first bytes of a WebAssembly component (a core module has 01 00 00 00 after the magic).
COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"

# Variables that would let the build machine's Python environment into the build.
SCRUBBED_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")


class BuildError(Exception):
    """A failure with a message for the person building."""


def default_venv():
    """`$XDG_CACHE_HOME/abstractgateway/componentize-py` (`~/.cache/...`; `%LOCALAPPDATA%` on Windows)."""
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "abstractgateway", "componentize-py")


def venv_bin(venv, name):
    if os.name == "nt":
        return os.path.join(venv, "Scripts", name + ".exe")
    return os.path.join(venv, "bin", name)


def version_of(exe):
    """What `exe --version` prints, or None when it does not run."""
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0][:200] if lines else ""


def expected_version():
    return f"componentize-py {VERSION}"


def locked(path):
    """An exclusive lock on `path` (a no-op where fcntl is missing): one install into a venv at a time."""

    class Lock:
        def __enter__(self):
            self.file = open(path, "a")
            try:
                import fcntl

                fcntl.flock(self.file, fcntl.LOCK_EX)
            except ImportError:
                pass
            return self

        def __exit__(self, *exc):
            self.file.close()

    return Lock()


def ensure_componentize_py(venv):
    """componentize-py VERSION in `venv`, installed there first when missing or another version."""
    exe = venv_bin(venv, "componentize-py")
    if version_of(exe) == expected_version():
        return exe
    parent = os.path.dirname(os.path.abspath(venv))
    os.makedirs(parent, exist_ok=True)
    with locked(os.path.abspath(venv) + ".lock"):
        if version_of(exe) == expected_version():
            return exe
        print(f"installing componentize-py {VERSION} into {venv} (once)", file=sys.stderr)
        steps = [
            [sys.executable, "-m", "venv", venv],
            [venv_bin(venv, "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"componentize-py=={VERSION}"],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True)
            except OSError as e:
                raise BuildError(f"cannot run {step[0]}: {e}")
            if done.returncode != 0:
                raise BuildError(
                    f"could not install componentize-py {VERSION} into {venv} "
                    f"(`{' '.join(step)}` failed: {(done.stderr or done.stdout).strip()}); "
                    "check the network and that python3 has the venv module, or install componentize-py "
                    f"{VERSION} yourself and pass its path"
                )
    found = version_of(exe)
    if found != expected_version():
        raise BuildError(f"{exe} reports {found!r} after installing componentize-py {VERSION}")
    return exe


def checked_componentize_py(exe):
    """A componentize-py the caller named: it must be VERSION (bindings and runtime differ between versions)."""
    found = version_of(exe)
    if found is None:
        raise BuildError(f"componentize-py not found or not runnable: {exe}")
    if found != expected_version():
        raise BuildError(f"{exe} is {found!r}; abstractgateway builds with componentize-py {VERSION}")
    return exe


def run_componentize_py(exe, args):
    """Runs componentize-py in an empty scratch directory with a scrubbed environment; raises on failure."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # componentize-py is Rust: without these its errors carry a stack backtrace of its own internals.
    env["RUST_BACKTRACE"] = "0"
    env["RUST_LIB_BACKTRACE"] = "0"
    with tempfile.TemporaryDirectory(prefix="componentize-") as scratch:
        try:
            done = subprocess.run([exe, "--quiet", *args], cwd=scratch, env=env, capture_output=True, text=True)
        except OSError as e:
            raise BuildError(f"cannot run {exe}: {e}")
    if done.returncode != 0:
        detail = "\n".join(s for s in (done.stdout.strip(), done.stderr.strip()) if s)
        raise BuildError(f"componentize-py failed:\n{detail}")


def componentize(exe, wit, world, app_dir, module, out):
    """Builds `module` of `app_dir` into the component `out` (written whole or not at all)."""
    out_dir = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out) + ".", suffix=".tmp", dir=out_dir)
    os.close(fd)
    try:
        # Only the app's directory is on the path: nothing of the build machine's site-packages goes in.
        run_componentize_py(exe, ["-d", wit, "-w", world, "componentize", module, "-p", app_dir, "-o", tmp])
        with open(tmp, "rb") as f:
            header = f.read(len(COMPONENT_HEADER))
        if header != COMPONENT_HEADER:
            raise BuildError(f"componentize-py did not write a WebAssembly component (header {header.hex()})")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def bindings(exe, wit, world, out):
    run_componentize_py(exe, ["-d", wit, "-w", world, "bindings", out])


def main(argv):
    parser = argparse.ArgumentParser(prog="componentize.py", description=__doc__.splitlines()[0])
    tool = parser.add_mutually_exclusive_group()
    tool.add_argument("--venv", help="virtualenv holding componentize-py (created when missing)")
    tool.add_argument("--componentize-py", dest="exe", help=f"a componentize-py {VERSION} to use as it is")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("componentize", help="build a component")
    gen = sub.add_parser("bindings", help="write the typed Python bindings of a world")
    for p in (build, gen):
        p.add_argument("--wit", required=True, help="the WIT package directory")
        p.add_argument("--world", required=True, help="the world (`node-plugin` or `pkg:name/world@version`)")
    build.add_argument("--app-dir", required=True, help="the directory of the app module")
    build.add_argument("--module", default="app", help="the module exporting the world (default: app)")
    build.add_argument("--out", required=True, help="the component file to write")
    gen.add_argument("--out", required=True, help="the directory to write the bindings into")
    args = parser.parse_args(argv)
    # componentize-py runs in a scratch directory: every path is made absolute first.
    wit, out = os.path.abspath(args.wit), os.path.abspath(args.out)
    try:
        if args.exe:
            # A bare name is looked up on PATH; a path is made absolute like the others.
            exe = checked_componentize_py(os.path.abspath(args.exe) if os.path.dirname(args.exe) else args.exe)
        else:
            exe = ensure_componentize_py(os.path.abspath(args.venv or default_venv()))
        if args.command == "componentize":
            componentize(exe, wit, args.world, os.path.abspath(args.app_dir), args.module, out)
        else:
            bindings(exe, wit, args.world, out)
    except (BuildError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
