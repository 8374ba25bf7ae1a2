"""Host programs as repositories: @host_bazel (the Bazel binary for nested runs), @proof_servers
(nginx, PostgreSQL, BuildGrid for the remote proofs), @report_browser (Chromium and its driver,
PostgreSQL, for the history store's and report's tests).

Each is a tools.json written by third_party/host_tools.py: paths and versions, or a one-line
reason per missing program. These rules only find programs; installing them is `./bazelw setup`,
a visible step. ./bazelw passes DSD_HOST_TOOLS_FINGERPRINT, which changes when a program appears
or goes, so the repositories (and the cache keys of the tests reading them) follow the host. The
targets that read these files run only locally (tag no-remote): paths of this host are in their key.
"""

def _host_tools_impl(rctx):
    python = rctx.which("python3")
    if not python:
        fail("%s: no python3 on PATH" % rctx.name)
    rctx.path(rctx.attr._install)  # host_tools.py imports it (pip_sources): a change refetches
    args = [python, rctx.path(rctx.attr._script), "--out", "tools.json", "--tools", ",".join(rctx.attr.tools)]
    result = rctx.execute(args, timeout = 1800, quiet = False)
    if result.return_code != 0:
        fail("%s: %s" % (rctx.name, (result.stderr.strip() or result.stdout.strip()).splitlines()[-1]))
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", 'package(default_visibility = ["//visibility:public"])\n\nexports_files(["tools.json"])\n')

host_tools = repository_rule(
    implementation = _host_tools_impl,
    attrs = {
        "tools": attr.string_list(mandatory = True, doc = "host_tools.py names: bazel, nginx, postgresql, buildgrid, chromium, pip_sources"),
        "_script": attr.label(default = "//third_party:host_tools.py", allow_single_file = True),
        "_install": attr.label(default = "//third_party/envs:install.py", allow_single_file = True),
    },
    environ = ["DSD_BAZEL", "DSD_CACHE_DIR", "DSD_HOST_TOOLS_FINGERPRINT", "HOME", "XDG_CACHE_HOME", "PIP_CERT",
               "PIP_CONFIG_FILE", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_INDEX_URL"],
    local = True,
)

def host_tools_repositories():
    host_tools(name = "host_bazel", tools = ["bazel", "pip_sources"])
    host_tools(name = "proof_servers", tools = ["nginx", "postgresql", "buildgrid"])
    host_tools(name = "report_browser", tools = ["chromium", "postgresql"])
