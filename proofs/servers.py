"""Loopback servers for the infrastructure proofs, each a context manager that leaves nothing
running: nginx as an HTTP (WebDAV) cache, and BuildGrid (REAPI: CAS, action cache, execution)
on a private PostgreSQL cluster with test-double workers per pool.

Programs come from tools.testing.host_tools; a missing one fails the proof with what to install.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from testing.launcher.processes import free_port
from tools.testing import host_tools
from tools.testing import pg_cluster

HERE = os.path.dirname(os.path.realpath(__file__))

NGINX_CONF = """
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location / {{
      root {tmp}/cache;
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:rw all:rw;
    }}
  }}
}}
"""


def wait_for_port(port, proc, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


@contextlib.contextmanager
def nginx_cache(tmp):
    """An HTTP cache on 127.0.0.1; yields its URL. Entries land under tmp/cache (ac/, cas/)."""
    nginx = host_tools.tool("nginx")
    for d in ("cache", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        # As root, keep the workers root too: they would chown their temp dirs to `nobody`,
        # which Bazel's sandbox (a user namespace) refuses.
        f.write(NGINX_CONF.format(tmp=tmp, port=port, user="user root;" if os.geteuid() == 0 else ""))
    server = subprocess.Popen([nginx, "-c", conf, "-p", tmp], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers (403/404 on the empty root)
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"nginx did not start: {server.stderr.read().decode()}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGQUIT)
        server.wait(timeout=10)


class BuildGrid:
    """PostgreSQL + a BuildGrid server (CAS, action cache, execution) + Bots-API workers per pool.

    Workers are test doubles (proofs/bots_test_worker.py, no off-the-shelf worker installs
    here); `worker_env` is what a worker image sets (Docker ENV) for the actions it runs.
    """

    def __init__(self, pools=("cpu", "gpu2"), queue_timeout=8, worker_env=None):
        self.pools, self.queue_timeout, self.worker_env = pools, queue_timeout, worker_env or {}
        self.procs = []

    def __enter__(self):
        self.python = host_tools.tool("buildgrid")
        self.tmp = tempfile.mkdtemp(prefix="dsd-rbe-proof-", dir="/tmp")
        self._stack = contextlib.ExitStack()
        try:
            self._start_postgres()
            self._start_buildgrid()
            self.worker_logs = {pool: self._start_worker(pool) for pool in self.pools}
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def endpoint(self):
        return f"grpc://127.0.0.1:{self.port}"

    def _spawn(self, cmd, log_name, **kwargs):
        with open(os.path.join(self.tmp, log_name), "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        self.procs.append(proc)
        return proc

    def _start_postgres(self):
        self.pg = self._stack.enter_context(pg_cluster.cluster("bgd"))
        bgd = os.path.join(os.path.dirname(self.python), "bgd")
        subprocess.run([bgd, "migrate", "apply", self.pg.url(driver="psycopg2")], check=True, capture_output=True)

    def _start_buildgrid(self):
        self.port = free_port()
        os.makedirs(os.path.join(self.tmp, "cas"))
        with open(os.path.join(HERE, "buildgrid.yml.in")) as f:
            config = f.read().format(port=self.port, pg_port=self.pg.port, cas_dir=os.path.join(self.tmp, "cas"),
                                     queue_timeout=self.queue_timeout)
        path = os.path.join(self.tmp, "buildgrid.yml")
        with open(path, "w") as f:
            f.write(config)
        server = self._spawn([os.path.join(os.path.dirname(self.python), "bgd"), "server", "start", path],
                             "buildgrid.log")
        wait_for_port(self.port, server, "BuildGrid")

    def _start_worker(self, pool):
        log = os.path.join(self.tmp, f"worker-{pool}.log")
        self._spawn([self.python, os.path.join(HERE, "bots_test_worker.py"), f"--server=127.0.0.1:{self.port}",
                     "--instance=main", f"--pool={pool}", f"--name={pool}-worker",
                     f"--work_dir={os.path.join(self.tmp, 'work-' + pool)}", f"--log={log}"]
                    + [f"--image_env={k}={v}" for k, v in self.worker_env.items()], f"worker-{pool}.out")
        deadline = time.monotonic() + 30
        while "READY" not in _read(log):
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {pool} did not register: {_read(os.path.join(self.tmp, f'worker-{pool}.out'))}")
            time.sleep(0.2)
        return log

    def executed(self, pool):
        with open(self.worker_logs[pool]) as f:
            return [line for line in f if line.startswith("EXECUTED")]

    def __exit__(self, *exc):
        for proc in reversed(self.procs):
            proc.kill()
            proc.wait()
        self._stack.close()
        if not os.environ.get("DSD_KEEP_PROOF_TMP"):  # set it to debug
            shutil.rmtree(self.tmp, ignore_errors=True)


def workspace():
    """The source tree (runfiles are symlinks into it): the workspace nested runs build."""
    return os.path.dirname(HERE)


def processes_line(output):
    """Bazel's 'N processes: ...' summary of an invocation."""
    lines = [line for line in output.splitlines() if " process" in line and line.startswith("INFO: ")]
    return lines[-1] if lines else ""


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
