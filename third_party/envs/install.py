"""Installs a Python environment from its hashed lock, or adopts an existing interpreter, and
describes it. Stdlib only; run by the python_env repository rule (so an environment is
installed only when a target that needs it is built), by `./bazelw env` and by the worker
image recipe (third_party/Dockerfile).

    python3 install.py --name torch2_13 --lock torch2_13.lock --root DIR [--info env_info.json]
    python3 install.py --name local --interpreter /path/to/python [--info env_info.json]

A locked environment lives in DIR/<name>-<first 16 hex of the lock's sha256>: its path is a
function of the lock alone, the same on every machine that uses the same root. The directory
is complete when its stamp file holds the lock's digest; a new lock starts from a hard-linked
copy of an installed sibling, so pip installs only what changed. Prints one JSON line:
{"id": ..., "python": <interpreter path>}.
"""

import argparse
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STAMP = ".dsd-lock-sha256"


def env_id(name, lock_path):
    with open(lock_path, "rb") as f:
        return f"{name}-{hashlib.sha256(f.read()).hexdigest()[:16]}"


def pinned(lock_path):
    """{normalised name: version} of a lock."""
    pins = {}
    with open(lock_path) as f:
        for line in f:
            if "==" in line and not line.startswith((" ", "#")):
                name, version = line.split("==", 1)
                pins[_norm(name)] = version.split()[0].rstrip("\\").strip()
    return pins


def _norm(name):
    return name.strip().lower().replace("_", "-").replace(".", "-")


@contextlib.contextmanager
def _exclusive(path):
    """Serialises installs of one environment (two Bazel servers may fetch it at once)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _log(message):
    print(f"install: {message}", file=sys.stderr, flush=True)


def install(name, lock_path, root, base_python):
    eid = env_id(name, lock_path)
    path = os.path.join(root, eid)
    python = os.path.join(path, "bin", "python3")
    digest = eid.rsplit("-", 1)[1]
    if _read(os.path.join(path, STAMP)) == digest and os.path.exists(python):
        return eid, python  # complete: nothing to write (the root may be read-only, e.g. in a sandbox)
    os.makedirs(root, exist_ok=True)
    with _exclusive(os.path.join(root, f".{eid}.lock")):
        if _read(os.path.join(path, STAMP)) == digest and os.path.exists(python):
            return eid, python
        siblings = sorted((p for p in glob.glob(os.path.join(root, f"{name}-*"))
                           if p != path and os.path.exists(os.path.join(p, STAMP))), key=os.path.getmtime)
        if not os.path.exists(python):
            shutil.rmtree(path, ignore_errors=True)
            if siblings:
                _log(f"{eid}: starting from a hard-linked copy of {os.path.basename(siblings[-1])}")
                subprocess.run(["cp", "-al", siblings[-1], path], check=True)
                os.remove(os.path.join(path, STAMP))
            else:
                _log(f"{eid}: creating a venv with {base_python}")
                subprocess.run([base_python, "-m", "venv", path], check=True)
        _log(f"{eid}: pip install --require-hashes -r {os.path.basename(lock_path)}")
        pip = [python, "-m", "pip", "--disable-pip-version-check"]
        subprocess.run(pip + ["install", "-q", "--require-hashes", "--no-deps", "-r", lock_path],
                       check=True, stdout=sys.stderr)
        wanted = set(pinned(lock_path)) | {"pip", "setuptools", "wheel"}
        extra = [d for d in _installed(python) if d not in wanted]
        if extra:
            subprocess.run(pip + ["uninstall", "-q", "-y", *extra], check=True, stdout=sys.stderr)
        with open(os.path.join(path, STAMP), "w") as f:
            f.write(digest)
    return eid, python


def _installed(python):
    out = subprocess.run([python, "-c", "import importlib.metadata as m, json; "
                          "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"],
                         check=True, capture_output=True, text=True).stdout
    return sorted({_norm(n) for n in json.loads(out)})


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def describe(python, info_path):
    """Writes the environment's description (probe.py, run by its own interpreter)."""
    out = subprocess.run([python, os.path.join(HERE, "probe.py")], check=True, capture_output=True, text=True).stdout
    with open(info_path, "w") as f:
        f.write(out)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--lock", help="the hashed lock of a pinned environment")
    p.add_argument("--root", help="where pinned environments live")
    p.add_argument("--interpreter", help="an existing interpreter to adopt, unpinned")
    p.add_argument("--base_python", default=sys.executable, help="creates new venvs")
    p.add_argument("--info", help="write the environment's description here")
    args = p.parse_args(argv)
    if args.lock:
        eid, python = install(args.name, args.lock, args.root, args.base_python)
    else:
        python = args.interpreter
        if not python or not os.access(python, os.X_OK):
            raise SystemExit(f"environment {args.name}: interpreter {python!r} is not executable")
        eid = args.name
    if args.info:
        describe(python, args.info)
        if not args.lock:  # an adopted interpreter is identified by what it holds
            with open(args.info, "rb") as f:
                eid = f"{args.name}-{hashlib.sha256(f.read()).hexdigest()[:16]}"
    print(json.dumps({"id": eid, "python": python}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
