"""python_env: one Python environment as a Bazel repository (@py_<name>).

A pinned environment is installed from its hashed lock (third_party/envs/<name>.lock) the first
time a target that needs it is built; an unpinned one ("your own torch") adopts the interpreter
named by an environment variable. The repository holds:

  python3          the locator: a script that finds the environment's interpreter and runs it.
                   Its text names the environment only by its id (<name>-<lock digest>), the
                   same on every machine. It looks beside its own real path (the file
                   `interpreter`, written here when the repository was fetched on this machine),
                   else under $DSD_ENV_ROOT/<id> or /opt/dsd-envs/<id> (a remote worker's image).
  env_info.json    what the environment is (third_party/envs/probe.py): Python version, every
                   distribution's version, torch's version, git version, CUDA/HIP, a digest of
                   its checkpointing sources. No paths.
  interpreter      this machine's path of the interpreter: read by the locator, never an input
                   of an action, so it is not in any cache key.

python3 and env_info.json (plus the lock) are the data every test of the environment runs
with: its cache key covers what the environment is, not where it lives.
"""

_LOCATOR = """#!/bin/sh
# The interpreter of Python environment {id} (third_party/python_env.bzl).
here=$(dirname "$(readlink -f "$0")")
if [ -r "$here/interpreter" ]; then
  python=$(cat "$here/interpreter")
else
  python="${{DSD_ENV_ROOT:-/opt/dsd-envs}}/{id}/bin/python3"
fi
if [ ! -x "$python" ]; then
  echo "Python environment {id} not found at $python: run ./bazelw env {name} (on remote workers: install it under \\$DSD_ENV_ROOT, see third_party/Dockerfile)" >&2
  exit 97
fi
exec "$python" "$@"
"""

_BUILD = """package(default_visibility = ["//visibility:public"])

exports_files(["python3", "env_info.json"])

# What a test of this environment runs with (its cache key's view of the environment).
filegroup(
    name = "env",
    srcs = ["python3", "env_info.json"],
)
"""

def _python_env_impl(rctx):
    env = rctx.os.environ
    base = env.get("DSD_BASE_PYTHON") or rctx.which("python3")
    if not base:
        fail("%s: no python3 on PATH to create environments with (set DSD_BASE_PYTHON)" % rctx.name)
    rctx.path(rctx.attr._probe)  # the installer runs it: refetch when it changes
    args = [base, rctx.path(rctx.attr._install), "--name", rctx.attr.env, "--base_python", base, "--info", "env_info.json"]
    if rctx.attr.lock:
        home = env.get("HOME", "/tmp")
        root = env.get("DSD_ENV_ROOT") or (env.get("DSD_CACHE_DIR") or env.get("XDG_CACHE_HOME", home + "/.cache") + "/dsd-bazel") + "/envs"
        args += ["--lock", rctx.path(rctx.attr.lock), "--root", root]
    else:
        interpreter = env.get(rctx.attr.interpreter_env, "")
        if not interpreter:
            rctx.file("env_info.json", '{"unconfigured": "set %s to your interpreter"}\n' % rctx.attr.interpreter_env)
            rctx.file("python3", "#!/bin/sh\necho 'Python environment %s: set %s to your interpreter (see README)' >&2\nexit 97\n" %
                                 (rctx.attr.env, rctx.attr.interpreter_env), executable = True)
            rctx.file("BUILD.bazel", _BUILD)
            return
        args += ["--interpreter", interpreter]
    result = rctx.execute(args, timeout = 3600, quiet = False)
    if result.return_code != 0:
        fail("%s: %s" % (rctx.name, (result.stderr.strip() or result.stdout.strip()).splitlines()[-1]))
    info = json.decode(result.stdout.strip().splitlines()[-1])
    rctx.file("interpreter", info["python"] + "\n")
    rctx.file("python3", _LOCATOR.format(id = info["id"], name = rctx.attr.env), executable = True)
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", _BUILD)

python_env = repository_rule(
    implementation = _python_env_impl,
    attrs = {
        "env": attr.string(mandatory = True, doc = "the environment's name, e.g. torch2_13"),
        "lock": attr.label(allow_single_file = True, doc = "its hashed lock (pinned environments)"),
        "interpreter_env": attr.string(doc = "the variable naming an existing interpreter (unpinned)"),
        "_install": attr.label(default = "//third_party/envs:install.py", allow_single_file = True),
        "_probe": attr.label(default = "//third_party/envs:probe.py", allow_single_file = True),
    },
    environ = ["DSD_BASE_PYTHON", "DSD_CACHE_DIR", "DSD_ENV_ROOT", "DSD_LOCAL_PYTHON", "DSD_LOCAL_FINGERPRINT", "HOME",
               "XDG_CACHE_HOME"],
    local = True,
)
