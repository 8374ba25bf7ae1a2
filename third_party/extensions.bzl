"""Module extensions (Bazel 6+ with bzlmod, MODULE.bazel): the same repositories WORKSPACE
declares, from the same functions."""

load(":host_tools.bzl", "host_tools_repositories")
load("//platforms:worker_image.bzl", "worker_image_repository")
load("//third_party/envs:envs.bzl", "python_env_repositories")

def _python_envs_impl(mctx):
    python_env_repositories()

def _host_tools_impl(mctx):
    host_tools_repositories()

def _worker_image_impl(mctx):
    worker_image_repository()

python_envs = module_extension(implementation = _python_envs_impl)

host_tools = module_extension(implementation = _host_tools_impl)

worker_image = module_extension(implementation = _worker_image_impl)
