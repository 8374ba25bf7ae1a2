"""A nested Bazel for tests: the binary ./bazelw found (@host_bazel), on an output root of the
test's own, never shipped to a remote worker (its targets are tagged no-remote)."""

import os
import subprocess

from tools.testing import host_tools

# A nested server lives for a few commands: C1 alone compiles its code (C2's optimising JIT costs
# more CPU than it saves in so short a life: about 40% of the server's CPU on a small workspace,
# measured with /proc/stat). Startup options only: no action key or result depends on them.
SHORT_LIVED_SERVER = ("--host_jvm_args=-XX:TieredStopAtLevel=1",)


def startup_options(output_user_root, max_idle_secs):
    """Startup options of a nested server: its own output root, a short idle life, C1 only."""
    return [f"--output_user_root={output_user_root}", f"--max_idle_secs={max_idle_secs}", *SHORT_LIVED_SERVER]


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def host_bazelrc(repository=None):
    """This machine's settings (./bazelw's .bazelrc.env: offline overrides, environment root, GPU
    count) for a scratch workspace; `repository` names this one as the scratch workspace does."""
    with open(os.path.join(ROOT, ".bazelrc.env")) as f:
        text = f.read()
    return text.replace("--//", f"--@{repository}//") if repository else text


class NestedBazel:
    """`bazel <startup> <command> <args>` in `workspace`, with its own output root (and base)."""

    def __init__(self, workspace, tmp, output_base=None, max_idle_secs=120):
        self.workspace, self.tmp = workspace, tmp
        self.startup = [host_tools.tool("bazel"), *startup_options(f"{tmp}/bazel_root", max_idle_secs)]
        if output_base:
            self.startup.append(f"--output_base={output_base}")

    def __call__(self, command, *args, timeout=900, env=None):
        """A CompletedProcess with stdout and stderr as text."""
        quiet = ["--noshow_progress", "--color=no", "--curses=no"] if command not in ("shutdown", "info") else []
        if command == "test":  # the workspace's .bazelrc.env may name a file in the read-only source tree
            quiet.append(f"--build_event_json_file={self.tmp}/events.json")
        return subprocess.run(self.startup + [command, *quiet, *args], cwd=self.workspace, capture_output=True,
                              text=True, timeout=timeout, env=env)

    def shutdown(self):
        subprocess.run(self.startup + ["shutdown"], cwd=self.workspace, capture_output=True)
