"""A private PostgreSQL cluster on 127.0.0.1, for the tests that need a real server (the remote
execution proof's BuildGrid, tools/history's team store), with the host's server binaries
(@proof_servers / @report_browser: tools/testing/host_tools.py). As root the cluster belongs to
`nobody` (PostgreSQL refuses to run as root), in a directory under /tmp that nobody can reach;
so a test using it runs outside Bazel's sandbox (tag no-sandbox). Nothing is left running or on
disk afterwards.

    with pg_cluster.cluster("bgd") as server:      # server.url(driver="psycopg2"), server.port
"""

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile

from testing.launcher.processes import free_port
from tools.testing import host_tools


@dataclasses.dataclass
class Server:
    user: str
    port: int
    data: str

    def url(self, driver="psycopg", database="postgres"):
        return f"postgresql+{driver}://{self.user}@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def cluster(user, icu_collation=False):
    """Starts a throw-away cluster (trust authentication, loopback only) and yields its Server.
    icu_collation: an en-US ICU collation, as a team's server typically has (PostgreSQL 15+)."""
    pg_bin = host_tools.tool("postgresql")
    tmp = tempfile.mkdtemp(prefix="dsd-pg-", dir="/tmp")
    os.chmod(tmp, 0o755)
    data, port = os.path.join(tmp, "data"), free_port()
    as_pg_user = []
    if os.geteuid() == 0:
        as_pg_user = [shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin"), "-u", "nobody", "--"]
    os.makedirs(data)
    started = False
    try:
        _hand_over(data, as_pg_user)
        _run(as_pg_user + [os.path.join(pg_bin, "initdb"), "-D", data, "-U", user, "--auth=trust", "-E", "UTF8",
                           *(_icu(pg_bin) if icu_collation else [])])
        _run(as_pg_user + [os.path.join(pg_bin, "pg_ctl"), "-D", data, "-w", "-t", "60",
                           "-l", os.path.join(data, "server.log"),
                           "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
        started = True
        yield Server(user, port, data)
    finally:
        if started:
            subprocess.run(as_pg_user + [os.path.join(pg_bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                           capture_output=True)
        if not os.environ.get("DSD_KEEP_PROOF_TMP"):  # set it to debug
            shutil.rmtree(tmp, ignore_errors=True)


def _icu(pg_bin):
    major = os.path.basename(os.path.dirname(pg_bin))
    if major.isdigit() and int(major) >= 15:
        return ["--locale-provider=icu", "--icu-locale=en-US", "--locale=C.UTF-8"]
    return []


def _hand_over(data, as_pg_user):
    """The data directory to `nobody` when running as root."""
    if not as_pg_user:
        return
    try:
        shutil.chown(data, "nobody")
    except OSError as e:
        raise RuntimeError(f"cannot give {data} to `nobody` ({e.strerror}): in Bazel's sandbox? the test needs the "
                           "no-sandbox tag") from e


def _run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        program = os.path.basename(cmd[cmd.index("--") + 1] if "--" in cmd else cmd[0])
        raise RuntimeError(f"{program} failed: {lines[-1] if lines else result.returncode}")
