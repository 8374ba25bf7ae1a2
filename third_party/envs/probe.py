"""What a Python environment is, without saying where it lives: the cache key's view of it.

    <env python> probe.py                       prints the description (JSON)
    <env python> probe.py --check env_info.json exits 1 with one line if this interpreter's
                                                environment differs from the recorded one

The description has the Python version, every installed distribution and its version, torch's
version, git version and CUDA/HIP versions (parsed from torch/version.py: importing torch costs
seconds), and a sha256 of torch's distributed checkpointing sources (DCP, DSD, FSDP, DTensor),
which tells an editable or source build's edits apart. No paths, user or host names.
The python_env repository rule records it as env_info.json, an input of every test of the
environment; the launcher checks it at run time, so a hand-edited environment fails loudly
instead of serving results under a key that no longer describes it.
"""

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys

SOURCES = ("distributed/checkpoint", "distributed/fsdp", "distributed/tensor", "distributed/_state_dict_utils.py")


def _torch_dir():
    spec = importlib.util.find_spec("torch")
    return list(spec.submodule_search_locations)[0] if spec and spec.submodule_search_locations else None


def torch_build(torch_dir):
    """torch's __version__, git_version, cuda and hip, read from torch/version.py without importing torch."""
    info = {}
    namespace = {}
    try:
        with open(os.path.join(torch_dir, "version.py")) as f:
            exec(compile(f.read(), "version.py", "exec"), namespace)  # plain assignments
    except (OSError, TypeError):
        return {}
    for key, name in (("version", "__version__"), ("git_version", "git_version"), ("cuda", "cuda"), ("hip", "hip")):
        info[key] = namespace.get(name)
    return info


def sources_digest(torch_dir):
    digest = hashlib.sha256()
    for rel in SOURCES:
        path = os.path.join(torch_dir, rel)
        files = [path] if path.endswith(".py") else sorted(
            os.path.join(d, f) for d, _, names in os.walk(path) for f in names if f.endswith(".py"))
        for file in files:
            digest.update(os.path.relpath(file, torch_dir).encode() + b"\0")
            with open(file, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def describe():
    torch_dir = _torch_dir()
    packages = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-").replace(".", "-")
        if name:
            packages[name] = dist.version
    return {
        "python": ".".join(platform.python_version_tuple()[:2]),  # the ABI the locks are built for
        "implementation": sys.implementation.name,
        "machine": platform.machine(),
        "packages": dict(sorted(packages.items())),
        "torch": torch_build(torch_dir) if torch_dir else {},
        "torch_sources_sha256": sources_digest(torch_dir) if torch_dir else None,
    }


def differences(recorded, actual):
    """Human-readable differences between two descriptions, most telling first."""
    out = []
    for key in ("python", "implementation", "machine", "torch", "torch_sources_sha256"):
        if recorded.get(key) != actual.get(key):
            out.append(f"{key}: recorded {recorded.get(key)!r}, found {actual.get(key)!r}")
    rp, ap = recorded.get("packages", {}), actual.get("packages", {})
    for name in sorted(set(rp) | set(ap)):
        if rp.get(name) != ap.get(name):
            out.append(f"{name}: recorded {rp.get(name) or 'absent'}, installed {ap.get(name) or 'absent'}")
    return out


def main(argv):
    if argv[:1] == ["--check"]:
        with open(argv[1]) as f:
            recorded = json.load(f)
        diff = differences(recorded, describe())
        if diff:
            print(f"this environment is not the one its cache key describes ({len(diff)} difference(s): "
                  f"{'; '.join(diff[:3])}): run ./bazelw env to reinstall or re-record it")
            return 1
        return 0
    print(json.dumps(describe(), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
