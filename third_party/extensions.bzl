"""Module extension (Bazel 6+, MODULE.bazel) creating the same @pypi as WORKSPACE does."""

load(":host_tools.bzl", "host_tools_repositories")
load(":python_env.bzl", "python_env")

def _python_env_ext_impl(mctx):
    python_env(name = "pypi")

python_env_ext = module_extension(implementation = _python_env_ext_impl)

def _host_tools_ext_impl(mctx):
    host_tools_repositories()

host_tools_ext = module_extension(implementation = _host_tools_ext_impl)
