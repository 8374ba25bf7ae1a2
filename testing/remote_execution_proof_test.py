"""Proof that --config=rbe routes test actions by pool, against real servers on loopback.

Starts a private PostgreSQL cluster, a BuildGrid REAPI server (testing/remote/buildgrid.yml.in)
and two test-double workers (testing/remote/bots_test_worker.py) advertising Pool=cpu and
Pool=gpu2, then runs a nested Bazel with --config=rbe:
  - //dsd:fsdp_model_state_test_gpu2 (Pool=gpu2) executes on the gpu2 worker,
  - //models:models_test (the cpu platform's Pool=cpu) executes on the cpu worker,
  - //dsd:fsdp_model_state_test_gpu4 (Pool=gpu4, no such worker) fails with BuildGrid's queue
    timeout instead of running anywhere else.
Needs `DSD_REMOTE_PROOF=1 ./bazelw env` (BuildGrid's venv) and PostgreSQL's server binaries.
Everything it starts is stopped in tearDownClass.
"""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest

HERE = os.path.dirname(os.path.realpath(__file__))
WORKSPACE = os.path.dirname(HERE)
QUEUE_TIMEOUT = 8


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port, proc, what, timeout=60):
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


class RemoteExecutionProofTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.procs = []
        cls.python = os.environ.get("DSD_REMOTE_PROOF_PYTHON", "")
        pg_bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        cls.bazel = os.environ.get("BAZEL_REAL") or shutil.which("bazel")
        if not os.path.exists(cls.python):
            raise absltest.SkipTest("needs BuildGrid's venv: run DSD_REMOTE_PROOF=1 ./bazelw env")
        if not pg_bins:
            raise absltest.SkipTest("needs PostgreSQL's server binaries (Debian: postgresql)")
        if not cls.bazel:
            raise absltest.SkipTest("needs a bazel binary on PATH")
        cls.pg_bin = os.path.dirname(pg_bins[-1])
        # PostgreSQL refuses to run as root: as root, the cluster belongs to `nobody`, in a
        # directory under /tmp that nobody can reach.
        cls.tmp = tempfile.mkdtemp(prefix="dsd-rbe-proof-", dir="/tmp")
        os.chmod(cls.tmp, 0o755)
        runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin")
        cls.as_pg_user = [runuser, "-u", "nobody", "--"] if os.geteuid() == 0 else []
        try:
            cls._start_postgres()
            cls._start_buildgrid()
            cls.worker_logs = {pool: cls._start_worker(pool) for pool in ("cpu", "gpu2")}
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _spawn(cls, cmd, log_name, **kwargs):
        log = open(os.path.join(cls.tmp, log_name), "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        cls.procs.append(proc)
        return proc

    @classmethod
    def _start_postgres(cls):
        data = os.path.join(cls.tmp, "pg")
        os.makedirs(data)
        if cls.as_pg_user:
            shutil.chown(data, "nobody")
        cls.pg_port = _free_port()
        subprocess.run(cls.as_pg_user + [os.path.join(cls.pg_bin, "initdb"), "-D", data, "-U", "bgd",
                                         "--auth=trust"], check=True, capture_output=True)
        cls.pg_data = data
        subprocess.run(cls.as_pg_user + [
            os.path.join(cls.pg_bin, "pg_ctl"), "-D", data, "-w", "-l", os.path.join(data, "server.log"),
            "-o", f"-p {cls.pg_port} -k {data} -c listen_addresses=127.0.0.1", "start"],
            check=True, capture_output=True)
        url = f"postgresql+psycopg2://bgd@127.0.0.1:{cls.pg_port}/postgres"
        bgd = os.path.join(os.path.dirname(cls.python), "bgd")
        subprocess.run([bgd, "migrate", "apply", url], check=True, capture_output=True)

    @classmethod
    def _start_buildgrid(cls):
        cls.port = _free_port()
        os.makedirs(os.path.join(cls.tmp, "cas"))
        with open(os.path.join(HERE, "remote", "buildgrid.yml.in")) as f:
            config = f.read().format(port=cls.port, pg_port=cls.pg_port, cas_dir=os.path.join(cls.tmp, "cas"),
                                     queue_timeout=QUEUE_TIMEOUT)
        path = os.path.join(cls.tmp, "buildgrid.yml")
        with open(path, "w") as f:
            f.write(config)
        bgd = os.path.join(os.path.dirname(cls.python), "bgd")
        server = cls._spawn([bgd, "server", "start", path], "buildgrid.log")
        _wait_for_port(cls.port, server, "BuildGrid")

    @classmethod
    def _start_worker(cls, pool):
        log = os.path.join(cls.tmp, f"worker-{pool}.log")
        cls._spawn([cls.python, os.path.join(HERE, "remote", "bots_test_worker.py"), f"--server=127.0.0.1:{cls.port}",
                    "--instance=main", f"--pool={pool}", f"--name={pool}-worker",
                    f"--work_dir={os.path.join(cls.tmp, 'work-' + pool)}", f"--log={log}"], f"worker-{pool}.out")
        deadline = time.monotonic() + 30
        while not (os.path.exists(log) and "READY" in open(log).read()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {pool} did not register: {open(os.path.join(cls.tmp, f'worker-{pool}.out')).read()}")
            time.sleep(0.2)
        return log

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "bazel", None) and os.path.isdir(os.path.join(getattr(cls, "tmp", "/nonexistent"), "ob")):
            subprocess.run(cls._bazel_startup() + ["shutdown"], cwd=WORKSPACE, capture_output=True)
        for proc in reversed(getattr(cls, "procs", [])):
            proc.kill()
            proc.wait()
        if getattr(cls, "pg_data", None):
            subprocess.run(cls.as_pg_user + [os.path.join(cls.pg_bin, "pg_ctl"), "-D", cls.pg_data, "-m", "immediate",
                                             "stop"], capture_output=True)
        if getattr(cls, "tmp", None) and not os.environ.get("DSD_KEEP_PROOF_TMP"):  # set it to debug
            shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    @classmethod
    def _bazel_startup(cls):
        return [cls.bazel, f"--output_user_root={cls.tmp}/user_root", f"--output_base={cls.tmp}/ob",
                "--max_idle_secs=120"]

    def bazel_test(self, *targets):
        cmd = self._bazel_startup() + [
            "test", *targets, "--config=rbe", f"--remote_executor=grpc://127.0.0.1:{self.port}",
            "--remote_instance_name=main", "--remote_retries=0", "--nocache_test_results",
            "--symlink_prefix=/", "--noshow_progress", "--color=no", "--curses=no", "--verbose_failures"]
        proc = subprocess.run(cmd, cwd=WORKSPACE, capture_output=True, text=True, timeout=900)
        return proc.returncode, proc.stdout + proc.stderr

    def executed(self, pool):
        with open(self.worker_logs[pool]) as f:
            return [line for line in f if line.startswith("EXECUTED")]

    def test_actions_run_on_the_worker_of_their_pool(self):
        rc, output = self.bazel_test("//dsd:fsdp_model_state_test_gpu2", "//models:models_test")
        self.assertEqual(rc, 0, output[-3000:])
        self.assertRegex(output, r"INFO: \d+ processes: .*2 remote", "both test actions ran remotely")
        gpu2, cpu = "".join(self.executed("gpu2")), "".join(self.executed("cpu"))
        print("gpu2 worker:", gpu2, "cpu worker:", cpu, sep="\n")
        self.assertIn("testlogs/dsd/fsdp_model_state_test_gpu2/", gpu2)
        self.assertNotIn("fsdp_model_state_test_gpu2", cpu)
        self.assertIn("testlogs/models/models_test/", cpu)
        self.assertNotIn("models_test", gpu2)

    def test_a_pool_without_workers_fails_clearly(self):
        before = {pool: len(self.executed(pool)) for pool in self.worker_logs}
        rc, output = self.bazel_test("//dsd:fsdp_model_state_test_gpu4")
        self.assertNotEqual(rc, 0, output[-3000:])
        self.assertIn("queued for too long", output)
        print(re.findall(r".*Remote Execution Failure.*\n.*", output))
        self.assertEqual({pool: len(self.executed(pool)) for pool in self.worker_logs}, before,
                         "the gpu4 action must not run on another pool's worker")


if __name__ == "__main__":
    absltest.main()
