"""Proof that --config=remote-cache works end to end: a real HTTP cache (nginx with WebDAV PUT)
on 127.0.0.1, a //dsd target run by a nested Bazel from one output base, then from a second,
clean output base (a remote cache hit), then with a changed recorded environment (a miss).

Needs nginx (Debian: apt-get install nginx-light); started and stopped by the test itself.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

from absl.testing import absltest

TARGET = "//dsd:fsdp_model_state_test_gpu2"
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


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RemoteCacheProofTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        cls.bazel = os.environ.get("BAZEL_REAL") or shutil.which("bazel")
        if not cls.nginx:
            raise absltest.SkipTest("needs nginx for the HTTP cache: apt-get install nginx-light")
        if not cls.bazel:
            raise absltest.SkipTest("needs a bazel binary on PATH")
        # The runfiles are symlinks into the source tree: that tree is the workspace to build.
        cls.workspace = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
        cls.tmp = os.environ.get("TEST_TMPDIR") or absltest.get_default_test_tmpdir()
        cls.port = _free_port()
        for d in ("cache", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(cls.tmp, d), exist_ok=True)
        conf = os.path.join(cls.tmp, "nginx.conf")
        with open(conf, "w") as f:
            # As root, keep the workers root too: they would chown their temp dirs to `nobody`,
            # which Bazel's sandbox (a user namespace) refuses.
            f.write(NGINX_CONF.format(tmp=cls.tmp, port=cls.port, user="user root;" if os.geteuid() == 0 else ""))
        cls.server = subprocess.Popen([cls.nginx, "-c", conf, "-p", cls.tmp], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # the server answers (403/404 on the empty root)
            except OSError:
                if time.monotonic() > deadline or cls.server.poll() is not None:
                    raise RuntimeError(f"nginx did not start: {cls.server.stderr.read().decode()}")
                time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        for output_base in ("base1", "base2"):
            if os.path.isdir(os.path.join(cls.tmp, output_base)):
                subprocess.run(cls._startup(output_base) + ["shutdown"], cwd=cls.workspace, capture_output=True)
        cls.server.send_signal(signal.SIGQUIT)
        cls.server.wait(timeout=10)
        super().tearDownClass()

    @classmethod
    def _startup(cls, output_base):
        return [cls.bazel, f"--output_user_root={cls.tmp}/user_root",
                f"--output_base={cls.tmp}/{output_base}", "--max_idle_secs=120"]

    def bazel_test(self, output_base, *extra):
        cmd = self._startup(output_base) + [
            "test", TARGET, "--config=remote-cache", f"--remote_cache=http://127.0.0.1:{self.port}",
            "--symlink_prefix=/", "--spawn_strategy=local", "--noshow_progress", "--color=no", "--curses=no",
            *extra]
        proc = subprocess.run(cmd, cwd=self.workspace, capture_output=True, text=True, timeout=600)
        output = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 0, output[-3000:])
        processes = re.search(r"INFO: \d+ process(es)?: (.*)\.", output)
        summary = processes.group(2) if processes else ""
        result = re.search(r"^" + re.escape(TARGET) + r"\s+(.*)$", output, re.M)
        print(f"{output_base} {' '.join(extra)}: processes: {summary}; result: {result.group(1) if result else '?'}")
        return output, summary

    def test_second_output_base_hits_and_a_changed_environment_misses(self):
        _, first = self.bazel_test("base1")
        self.assertNotIn("remote cache hit", first, "the cache starts empty")
        self.assertTrue(os.listdir(os.path.join(self.tmp, "cache", "ac")), "results uploaded to the cache")

        output, second = self.bazel_test("base2")
        self.assertIn("remote cache hit", second, output[-2000:])
        self.assertNotRegex(second, r"\d+ (local|linux-sandbox)", "nothing ran: the test result came from the cache")

        # A different environment fingerprint (what a reinstalled torch produces) changes
        # @pypi//:env_info.json, an input of every test: the cached result no longer applies.
        output, third = self.bazel_test("base2", "--repo_env=DSD_PYTHON_ENV_FINGERPRINT=torch-reinstalled")
        self.assertRegex(third, r"\d+ local", "the test ran again: " + third)
        self.assertIn("PASSED", output)


if __name__ == "__main__":
    absltest.main()
