"""Installs a Python environment from its hashed lock, or adopts an existing interpreter, and
describes it. Stdlib only; run by the python_env repository rule (so an environment is
installed only when a target that needs it is built), by `./bazelw env` and by the worker
image recipe (third_party/Dockerfile).

    python3 install.py --name torch2_13 --lock torch2_13.lock --root DIR [--info env_info.json]
    python3 install.py --name local --interpreter /path/to/python [--info env_info.json]

A locked environment lives in DIR/<name>-<first 16 hex of the lock's sha256>: its path is a
function of the lock alone, the same on every machine that uses the same root. `uv pip sync`
(uv pinned with its hash by uv.txt) makes it exactly the lock, every file's hash checked, from
uv's cache beside the environments (hard links: a changed pin installs only what changed), with
every module compiled to bytecode: tests import from a read-only sandbox, where Python cannot
write the .pyc files it would otherwise compile on every import (a module that another
environment compiled from the same cached file shares its .pyc: compile_bytecode). The directory
is complete when its stamp file holds the lock's digest and the recipe (COMPLETE). Prints one
JSON line: {"id": ..., "python": <interpreter path>}.
"""

import argparse
import configparser
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STAMP = ".dsd-lock-sha256"
COMPLETE = "{digest} compiled"  # what the stamp holds: an environment installed before bytecode is synced again


def env_id(name, lock_path):
    with open(lock_path, "rb") as f:
        return f"{name}-{hashlib.sha256(f.read()).hexdigest()[:16]}"


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
    if _complete(path) and os.path.exists(python):
        return eid, python  # complete: nothing to write (the root may be read-only, e.g. in a sandbox)
    os.makedirs(root, exist_ok=True)
    with _exclusive(os.path.join(root, f".{eid}.lock")):
        if _complete(path) and os.path.exists(python):
            return eid, python
        if not os.path.exists(python):
            shutil.rmtree(path, ignore_errors=True)
            _log(f"{eid}: creating a venv with {base_python}")
            subprocess.run([base_python, "-m", "venv", "--without-pip", path], check=True)
        _log(f"{eid}: uv pip sync --require-hashes {os.path.basename(lock_path)}")
        sync(uv_binary(os.path.dirname(root.rstrip(os.sep)), base_python), python, lock_path, root)
        with open(os.path.join(path, STAMP), "w") as f:
            f.write(_stamp(eid))
    return eid, python


def _stamp(eid):
    """What a complete environment's stamp file holds: its lock's digest and this recipe."""
    return COMPLETE.format(digest=eid.rsplit("-", 1)[-1])


def _complete(path):
    """Whether the environment at `path` (<root>/<id>) was installed and compiled by this recipe."""
    return _read(os.path.join(path, STAMP)) == _stamp(os.path.basename(path))


def sync(uv, python, lock_path, root):
    """The environment becomes exactly the lock (installs, upgrades and removes), every file's
    hash checked, every module compiled; uv's cache (hard-linked into environments) lives beside them."""
    env = uv_env(root)
    cmd = [uv, "pip", "sync", "--python", python, "--require-hashes", "--quiet", *pip_sources(), lock_path]
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode:  # uv's reason on the one line a repository rule's failure shows
        reason = " ".join(line.strip() for line in proc.stderr.splitlines() if line.strip())
        raise SystemExit(f"uv pip sync {os.path.basename(lock_path)} failed ({proc.returncode}): {reason}")
    compile_bytecode(python, root)


def uv_env(root):
    """uv's environment: its cache beside the environments under `root`, hard-linked into them."""
    return dict(os.environ, UV_CACHE_DIR=os.path.join(root, ".uv-cache"))


def compile_bytecode(python, root):
    """Every module of the environment compiled to timestamp-checked bytecode, as uv's
    --compile-bytecode writes it. A source that is the same file (one hard link from uv's cache) as
    in a complete sibling environment takes that environment's .pyc as a hard link, valid since the
    .pyc records the source's mtime and size: the framework environments do not compile again the
    torch their torch environment compiled (about 20 core-seconds each)."""
    out = subprocess.run([python, "-c", "import sys, sysconfig; print(sys.implementation.cache_tag); "
                          "print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True, text=True)
    tag, site = out.stdout.split()
    linked = link_sibling_bytecode(site, tag, root)
    _log(f"{linked} modules' bytecode linked from sibling environments; compiling the rest")
    # compileall exits 1 when a file does not compile (a package's Python 2 example), which uv's
    # step also passes over; any other status is a failed install.
    rc = subprocess.run([python, "-m", "compileall", "-qq", "-j", "0", "--invalidation-mode", "timestamp", site],
                        stdout=sys.stderr).returncode
    if rc not in (0, 1):
        raise SystemExit(f"compiling {site} to bytecode failed ({rc})")


def link_sibling_bytecode(site, tag, root):
    """Hard-links into `site` the .pyc of each source it shares (same inode) with a complete sibling
    environment under `root`; returns how many."""
    env_dir = os.path.dirname(os.path.dirname(os.path.dirname(site)))  # <env>/lib/pythonX.Y/site-packages
    siblings = [os.path.join(s, os.path.relpath(site, env_dir)) for s in _complete_siblings(root, env_dir)]
    linked = 0
    for dirpath, dirnames, names in os.walk(site):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in (n for n in names if n.endswith(".py")):
            source = os.path.join(dirpath, name)
            pyc = _shared_pyc(source, os.path.relpath(source, site), siblings, tag)
            if pyc:
                cache = os.path.join(dirpath, "__pycache__")
                os.makedirs(cache, exist_ok=True)
                with contextlib.suppress(FileExistsError):
                    os.link(pyc, os.path.join(cache, os.path.basename(pyc)))
                    linked += 1
    return linked


def _complete_siblings(root, env_dir):
    paths = (os.path.join(root, name) for name in sorted(os.listdir(root)))
    return [path for path in paths if path != env_dir and _complete(path)]


def _shared_pyc(source, rel, sibling_sites, tag):
    """The .pyc of `source` in a sibling whose source at `rel` is the same file, or None."""
    st = os.stat(source)
    for site in sibling_sites:
        other = os.path.join(site, rel)
        with contextlib.suppress(OSError):
            if os.path.samestat(st, os.stat(other)):
                pyc = os.path.join(os.path.dirname(other), "__pycache__", f"{os.path.basename(rel)[:-3]}.{tag}.pyc")
                if os.path.exists(pyc):
                    return pyc
    return None


def pip_sources():
    """pip's own package sources and certificate bundle on this machine (PIP_* variables, then pip's
    configuration files), as uv flags: uv reads neither, and an offline machine's pip knows where its packages lie."""
    config, values = _pip_config(), {}
    for key in ("index-url", "extra-index-url", "find-links"):
        value = os.environ.get("PIP_" + key.upper().replace("-", "_")) or config.get(key, "")
        if value:
            values[key] = value.split()
    flags = [f"--{key}={v}" for key, vs in values.items() for v in vs]
    cert = os.environ.get("PIP_CERT") or config.get("cert", "")  # the TLS roots pip trusts, for the index it asks
    return (flags + (["--index-strategy=unsafe-best-match"] if len(values) > 1 or len(values.get("extra-index-url", [])) else [])
            + ([f"--cert={cert}"] if cert else []))


def _pip_config():
    """The [global] section of pip's configuration files, read once, as pip reads them (global, user,
    site, then PIP_CONFIG_FILE; configparser, not `pip config`: the environments uv installs have no pip)."""
    parser = configparser.RawConfigParser()
    parser.read(_pip_config_files())
    return {key: value.strip() for key, value in parser.items("global")} if parser.has_section("global") else {}


def _pip_config_files():
    xdg = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    home = os.path.expanduser("~")
    user_dir = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files = [os.path.join(d, "pip", "pip.conf") for d in reversed(xdg)] + ["/etc/pip.conf",
             os.path.join(home, ".pip", "pip.conf"), os.path.join(user_dir, "pip", "pip.conf"),
             os.path.join(sys.prefix, "pip.conf")]
    return files + ([os.environ["PIP_CONFIG_FILE"]] if os.environ.get("PIP_CONFIG_FILE") else [])


def uv_binary(cache, base_python):
    """uv, pinned with its hash by uv.txt, installed once into <cache>/uv-<version>."""
    with open(os.path.join(HERE, "uv.txt")) as f:
        version = next(line.split("==")[1].split()[0] for line in f if line.startswith("uv=="))
    venv = os.path.join(cache, f"uv-{version}")
    binary = os.path.join(venv, "bin", "uv")
    if not os.path.exists(binary):
        os.makedirs(cache, exist_ok=True)
        with _exclusive(venv + ".lock"):
            if not os.path.exists(binary):
                _log(f"installing uv {version} into {venv}")
                subprocess.run([base_python, "-m", "venv", venv], check=True)
                subprocess.run([os.path.join(venv, "bin", "python3"), "-m", "pip", "install", "-q",
                                "--disable-pip-version-check", "--require-hashes", "-r", os.path.join(HERE, "uv.txt")],
                               check=True, stdout=sys.stderr)
    return binary


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
