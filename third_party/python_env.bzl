"""@pypi: the project's pinned Python environment as a Bazel repository.

The repository points the build at the interpreter of the venv that ./bazelw installs
(passed as --repo_env=DSD_PYTHON by .bazelrc.env), checks the pins of
third_party/requirements.txt at fetch time, and generates:

  @pypi//:torch, :numpy, :pytest, :absl_py   py_library targets BUILD files depend on
  @pypi//:env_info.json                       interpreter + installed versions (torch git
                                              version, CUDA); every test depends on it, so a
                                              changed environment invalidates cached results
  @pypi//:toolchain                           the Python toolchain using that interpreter

DSD_PYTHON_ENV_FINGERPRINT (also written by ./bazelw) changes whenever a package in the venv
is installed, removed or upgraded, which makes Bazel refetch this repository.
"""

_PACKAGES = ["torch", "numpy", "pytest", "absl_py"]

_BUILD = """\
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

package(default_visibility = ["//visibility:public"])

exports_files(["env_info.json"])

filegroup(
    name = "env_info",
    srcs = ["env_info.json"],
)

{libraries}

py_runtime(
    name = "py3_runtime",
    interpreter_path = "{python}",
    python_version = "PY3",
    stub_shebang = "#!{python}",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":py3_runtime",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

_LIBRARY = """\
py_library(
    name = "{name}",
    data = [":env_info"],
)
"""

def _python_env_impl(rctx):
    python = rctx.os.environ.get("DSD_PYTHON", "")
    if not python:
        fail("@pypi: no project interpreter configured (DSD_PYTHON is unset): run ./bazelw env once")
    if not rctx.path(python).exists:
        fail("@pypi: interpreter %s does not exist: run ./bazelw env" % python)
    result = rctx.execute([
        python,
        rctx.path(rctx.attr._probe),
        rctx.path(rctx.attr.requirements),
        rctx.os.environ.get("DSD_PYTHON_ENV_FINGERPRINT", ""),
    ])
    if result.return_code != 0:
        fail((result.stderr.strip() or result.stdout.strip()).splitlines()[-1])
    rctx.file("env_info.json", result.stdout)
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", _BUILD.format(
        python = python,
        libraries = "\n".join([_LIBRARY.format(name = name) for name in _PACKAGES]),
    ))

python_env = repository_rule(
    implementation = _python_env_impl,
    attrs = {
        "requirements": attr.label(default = "//third_party:requirements.txt", allow_single_file = True),
        "_probe": attr.label(default = "//third_party:probe_env.py", allow_single_file = True),
    },
    environ = ["DSD_PYTHON", "DSD_PYTHON_ENV_FINGERPRINT"],
    local = True,
)
