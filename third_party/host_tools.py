"""Finds the host programs that the proofs and the report's browser test need (and this machine's
pip package sources, which a test cannot read: its HOME and environment are Bazel's), and installs them
when asked (`./bazelw setup`, the visible machine set-up step; as root on Debian).

The repository rules (@proof_servers, @report_browser, @host_bazel: third_party/host_tools.bzl)
only find: a missing program is a one-line reason in the JSON, and the test that needs it fails
with that line. Writes {tool: {"path": ..., "version": ...}} or {tool: {"missing": "..."}}.
Stdlib only.

    python3 host_tools.py --out tools.json --tools nginx,postgresql,buildgrid,chromium [--install]
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

APT = {"nginx": ["nginx-light"], "postgresql": ["postgresql"], "chromium": ["chromium", "chromium-driver"]}
WHY = {
    "nginx": "needs nginx for the HTTP cache proof: run ./bazelw setup (as root on Debian), or apt-get install nginx-light",
    "postgresql": "needs PostgreSQL's server binaries (BuildGrid, the history store's test): run ./bazelw setup "
                  "(as root on Debian), or apt-get install postgresql",
    "buildgrid": "needs BuildGrid in its own venv: run ./bazelw setup, or python3 -m venv "
                 "$DSD_CACHE_DIR/remote-proof-venv && pip install -r third_party/requirements-remote-proof.txt",
    "chromium": "needs Chromium and its driver for the report's browser test: run ./bazelw setup (as root on "
                "Debian), or apt-get install chromium chromium-driver",
    "bazel": "needs a Bazel binary for nested runs: install bazelisk, or run ./bazelw (as root on Debian it installs Bazel)",
}


def _version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else None


def find(tool, cache_dir):
    if tool == "nginx":
        path = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
        return path and {"path": path, "version": _version([path, "-v"])}
    if tool == "postgresql":
        initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        return initdb and {"path": os.path.dirname(initdb[-1]), "version": _version([initdb[-1], "--version"])}
    if tool == "buildgrid":
        python = os.path.join(cache_dir, "remote-proof-venv", "bin", "python3")
        bgd = os.path.join(os.path.dirname(python), "bgd")
        if os.path.exists(python) and os.path.exists(bgd):
            version = _version([python, "-c", "import importlib.metadata as m; print(m.version('buildgrid'))"])
            return {"path": python, "version": version}
        return None
    if tool == "chromium":
        browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
        return browser and driver and {"path": browser, "driver": driver, "version": _version([browser, "--version"])}
    if tool == "pip_sources":  # this machine's package sources as uv flags, for a test that installs (a proof)
        return {"flags": _env_installer().pip_sources()}
    if tool == "bazel":
        path = os.environ.get("DSD_BAZEL")
        return path and os.access(path, os.X_OK) and {"path": path, "version": _version([path, "--version"])}
    raise ValueError(f"unknown tool {tool}")


def install(tool, cache_dir, requirements):
    """Installs `tool` if that is possible here; errors go to stderr, the caller re-checks."""
    if tool in APT and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", *APT[tool]]
        if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, stdout=sys.stderr)
            subprocess.run(cmd, env=env, stdout=sys.stderr)
    elif tool == "buildgrid" and requirements:
        # With the environments' pinned uv and package sources (pip took 29 s of a fresh CI's set-up on
        # one core, uv about 4 s), compiled to bytecode as pip would.
        installer = _env_installer()
        venv = os.path.join(cache_dir, "remote-proof-venv")
        base = os.environ.get("DSD_BASE_PYTHON") or sys.executable
        if subprocess.run([base, "-m", "venv", "--without-pip", venv], stdout=sys.stderr).returncode == 0:
            env = installer.uv_env(os.environ.get("DSD_ENV_ROOT") or os.path.join(cache_dir, "envs"))
            subprocess.run([installer.uv_binary(cache_dir, base), "pip", "install", "--python",
                            os.path.join(venv, "bin", "python3"), "--compile-bytecode", "--quiet",
                            *installer.pip_sources(), "-r", requirements], stdout=sys.stderr, env=env)


def _env_installer():
    """third_party/envs/install.py, beside this script: the environments' uv and package sources."""
    envs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "envs")
    if envs not in sys.path:
        sys.path.insert(0, envs)
    import install  # noqa: E402
    return install


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--tools", required=True)
    p.add_argument("--install", action="store_true")
    p.add_argument("--buildgrid_requirements", default="")
    args = p.parse_args(argv)
    cache_dir = os.environ.get("DSD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dsd-bazel")
    report = {}
    for tool in args.tools.split(","):
        found = find(tool, cache_dir)
        if not found and args.install:
            print(f"host_tools: installing {tool}", file=sys.stderr)
            install(tool, cache_dir, args.buildgrid_requirements)
            found = find(tool, cache_dir)
        report[tool] = found or {"missing": WHY[tool]}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
