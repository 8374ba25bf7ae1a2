"""The project's Python environments: one Bazel repository each (@py_<name>, python_env.bzl),
one test variant each (testing/defs.bzl), selected with --config=all-envs / --config=local-torch.

DEFAULT runs everywhere and needs no flag; the others are enabled by their bool flag
(//third_party/envs:<name>, see BUILD.bazel), so `./bazelw test //dsd/...` stays fast and never
installs them unasked.
"""

load("//third_party:python_env.bzl", _python_env = "python_env")

DEFAULT = "torch2_13"

# role: "scenarios" (dist_py_test makes a variant of every module for it), "frameworks" (a pinned
# torch plus training frameworks: only modules that name it, dist_py_test(envs = [...]), get a
# variant), or "tools" (the repository tools' libraries; env_py_test(python_env = ...) only).
# always: enabled without a flag. cuda: whether its targets may run on GPUs (a CPU build's
# targets always use CPU ranks).
ENVIRONMENTS = {
    # name: pinned by a lock, or an existing interpreter named by an environment variable.
    "torch2_13": struct(lock = "torch2_13.lock", interpreter_env = None, cuda = False, role = "scenarios", always = True),
    "torch2_14": struct(lock = "torch2_14.lock", interpreter_env = None, cuda = True, role = "scenarios", always = False),
    # Your own torch (a nightly, a source build, a conda env): DSD_LOCAL_PYTHON=/path/to/python.
    "local": struct(lock = None, interpreter_env = "DSD_LOCAL_PYTHON", cuda = True, role = "scenarios", always = False),
    # torch2_13 / torch2_14 plus torchtitan and accelerate (frameworks.in): the framework families
    # (dsd/frameworks), written for CPU ranks (gloo), so cuda = False even for the CUDA build.
    "frameworks2_13": struct(lock = "frameworks2_13.lock", interpreter_env = None, cuda = False, role = "frameworks", always = False),
    "frameworks2_14": struct(lock = "frameworks2_14.lock", interpreter_env = None, cuda = False, role = "frameworks", always = False),
    "tools": struct(lock = "tools.lock", interpreter_env = None, cuda = False, role = "tools", always = True),
}

# The environments every scenario module gets a variant for (unless its dist_py_test names others).
SCENARIO_ENVS = [name for name, env in ENVIRONMENTS.items() if env.role == "scenarios"]

PINNED = [name for name, env in ENVIRONMENTS.items() if env.lock]

def repository(env):
    return "py_" + env

def env_files(env):
    """What a test of `env` runs with: its locator, its description and (pinned) its lock."""
    files = [python(env), env_info(env)]
    if ENVIRONMENTS[env].lock:
        files.append(Label("//third_party/envs:%s" % ENVIRONMENTS[env].lock))
    return files

def python(env):
    return Label("@%s//:python3" % repository(env))

def env_info(env):
    return Label("@%s//:env_info.json" % repository(env))

def enabled_setting(envs):
    """The config_setting under which all of `envs` are enabled (None: always)."""
    extra = sorted([e for e in envs if not ENVIRONMENTS[e].always])
    if not extra:
        return None
    return Label("//third_party/envs:%s_enabled" % "_and_".join(extra))

def python_env_repositories():
    """Declares @py_<name> for every environment (WORKSPACE and the module extension call it)."""
    for name, env in ENVIRONMENTS.items():
        _python_env(
            name = repository(name),
            env = name,
            lock = Label("//third_party/envs:" + env.lock) if env.lock else None,
            interpreter_env = env.interpreter_env or "",
        )
