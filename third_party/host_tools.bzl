"""Host programs as repositories: @host_bazel (the Bazel binary for nested runs) and
@proof_servers (nginx, PostgreSQL, BuildGrid for the remote proofs).

Each is a tools.json written by third_party/host_tools.py: paths and versions, or a one-line
reason per missing program. @proof_servers installs what is missing (as root on Debian) when
first fetched, i.e. only when a proof is built; DSD_HOST_TOOLS_INSTALL=0 turns that off.
./bazelw passes DSD_HOST_TOOLS_FINGERPRINT, which changes when a program appears or goes, so
the repository (and the proofs' cache key) follows the host. The targets that read these files
run only locally (tag no-remote): paths of this host are part of their key.
"""

def _host_tools_impl(rctx):
    python = rctx.which("python3")
    if not python:
        fail("%s: no python3 on PATH" % rctx.name)
    args = [python, rctx.path(rctx.attr._script), "--out", "tools.json", "--tools", ",".join(rctx.attr.tools)]
    if rctx.attr.install and rctx.os.environ.get("DSD_HOST_TOOLS_INSTALL", "1") == "1":
        args.append("--install")
    if rctx.attr.buildgrid_requirements:
        args += ["--buildgrid_requirements", str(rctx.path(rctx.attr.buildgrid_requirements))]
    result = rctx.execute(args, timeout = 1800, quiet = False)
    if result.return_code != 0:
        fail("%s: %s" % (rctx.name, (result.stderr.strip() or result.stdout.strip()).splitlines()[-1]))
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", 'package(default_visibility = ["//visibility:public"])\n\nexports_files(["tools.json"])\n')

host_tools = repository_rule(
    implementation = _host_tools_impl,
    attrs = {
        "tools": attr.string_list(mandatory = True),
        "install": attr.bool(default = False),
        "buildgrid_requirements": attr.label(allow_single_file = True),
        "_script": attr.label(default = "//third_party:host_tools.py", allow_single_file = True),
    },
    environ = ["DSD_BAZEL", "DSD_BASE_PYTHON", "DSD_CACHE_DIR", "DSD_HOST_TOOLS_FINGERPRINT", "DSD_HOST_TOOLS_INSTALL"],
    local = True,
)

def host_tools_repositories():
    host_tools(name = "host_bazel", tools = ["bazel"])
    host_tools(
        name = "proof_servers",
        tools = ["nginx", "postgresql", "buildgrid"],
        install = True,
        buildgrid_requirements = Label("//third_party:requirements-remote-proof.txt"),
    )
