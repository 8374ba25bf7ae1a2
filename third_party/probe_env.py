"""Reports the Python environment @pypi is built on, and checks it against the pins.

Run by the @pypi repository rule (third_party/python_env.bzl) with the project's
interpreter: `python probe_env.py requirements.txt`. Prints a JSON object on stdout; on a
missing or mismatched package prints one actionable line on stderr and exits 1.
It does not import torch (that costs seconds); torch/version.py is parsed instead.
"""

import ast
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import sys

FIX = "run ./bazelw env (or: {python} -m pip install -r third_party/requirements.txt)"


def read_pins(path):
    pins = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
            if not m:
                raise SystemExit(f"@pypi: {path}: only exact pins (name==version) are allowed, got {line!r}")
            pins[m.group(1).lower()] = m.group(2)
    return pins


def torch_build_info():
    """torch's __version__, git_version and cuda, read from torch/version.py."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    info = {}
    with open(path) as f:
        for node in ast.parse(f.read()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in ("__version__", "git_version", "cuda", "hip"):
                        info[target.id] = node.value.value
    return info


def main(argv):
    requirements = argv[1]
    fingerprint = argv[2] if len(argv) > 2 else ""
    python = sys.executable
    report = {
        "python": python,
        "python_version": platform.python_version(),
        "env_fingerprint": fingerprint,
        "packages": {},
    }
    for name, pinned in sorted(read_pins(requirements).items()):
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            print(f"@pypi: {name}=={pinned} is not installed for {python}: " + FIX.format(python=python), file=sys.stderr)
            return 1
        # A local version label (2.13.0+cpu, 2.13.0+cu128) satisfies the pin 2.13.0.
        if installed.split("+", 1)[0] != pinned.split("+", 1)[0]:
            print(f"@pypi: {name} {installed} is installed for {python} but third_party/requirements.txt pins "
                  f"{name}=={pinned}: " + FIX.format(python=python), file=sys.stderr)
            return 1
        report["packages"][name] = installed
    torch = torch_build_info()
    report["torch"] = {
        "version": torch.get("__version__"),
        "git_version": torch.get("git_version"),
        "cuda": torch.get("cuda"),
        "hip": torch.get("hip"),
    }
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
