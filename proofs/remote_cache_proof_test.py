"""Proof that cached results are shared across machines, and only where equivalent.

Two checkouts of this workspace at different paths, each with its own DSD_CACHE_DIR (so its own
Python environment directory), HOME and Bazel output root, like two developers' machines,
share one remote cache. They run a representative set (REPRESENTATIVE: a scenario target of each
rank count, 1 to 4, a phased one that changes world size, a launcher test, an
environment-neutral tools test), which exercises every input a key has; the proof does not
need the whole catalogue:
  - HTTP (nginx with WebDAV on 127.0.0.1): checkout A runs the set; checkout B then gets every
    test from the cache, running nothing;
  - one pin changed in B's lock (numpy): exactly the tests of that environment run again, the
    environment-neutral one still comes from the cache;
  - gRPC (BuildGrid's CAS and action cache), which most hosted caches speak: the same sharing;
  - a leak (B's locator naming its interpreter's absolute path, as a careless rule would): B's
    run misses the cache and the proof's own check says so, so a leak cannot pass unnoticed.
Both checkouts run ./bazelw, as a person would. B's environment is a hard-linked copy of A's,
installed from the same lock at another path (what a second machine would have).

Needs nginx, PostgreSQL, BuildGrid and Bazel (@proof_servers, @host_bazel); fails, never skips.
"""

import collections
import os
import re
import shutil
import subprocess
import sys

from absl.testing import absltest

from proofs import servers
from third_party.envs import install
from tools.testing import host_tools
from tools.testing.nested_bazel import startup_options

ENV_NEUTRAL = "//tools:xml_summary_test"
SMALL = ["//dsd:fsdp_model_state_test_gpu2", "//testing/launcher:plan_test", ENV_NEUTRAL]
REPRESENTATIVE = SMALL + ["//dsd:fsdp_model_state_test_gpu4", "//dsd:reshard_test_gpu2to1"]
_RESULT = re.compile(r"^(//\S+)\s+(\(cached\) )?(PASSED|FAILED|SKIPPED|NO STATUS|TIMEOUT)", re.M)


def package_sources(*find_links):
    """This machine's package sources (pip's, as @host_bazel found them with the user's HOME) as PIP_*
    variables, `find_links` first: a checkout runs with an empty HOME, and the other machine it
    stands for has its own pip configuration."""
    values = collections.defaultdict(list, {"find-links": list(find_links)})
    for flag in host_tools.entry("pip_sources")["flags"]:
        key, _, value = flag[2:].partition("=")
        if key in ("index-url", "extra-index-url", "find-links"):
            values[key].append(value)
    return {"PIP_" + key.upper().replace("-", "_"): " ".join(v) for key, v in values.items()}


def host_env_dir(runfile):
    """The directory of the environment a locator runfile resolves to on this host."""
    with open(os.path.join(os.path.dirname(os.path.realpath(runfile)), "interpreter")) as f:
        return os.path.dirname(os.path.dirname(f.read().strip()))


class Checkout:
    """A copy of the workspace at `path`, with its own cache dir, HOME and output root."""

    def __init__(self, case, tmp, name, path):
        self.case, self.path = case, path
        self.cache, self.home = os.path.join(tmp, name + "-cache"), os.path.join(tmp, name + "-home")
        shutil.copytree(servers.workspace(), path, symlinks=True,
                        ignore=shutil.ignore_patterns("bazel-*", ".bazelrc.env", "user.bazelrc", ".git"))
        os.makedirs(self.home)
        self.startup = startup_options(f"{tmp}/{name}-bazel", 60)
        self.extra_env = {}

    def adopt_env(self, env_dir):
        """Installs the environment of this lock as a hard-linked copy of `env_dir`."""
        root = os.path.join(self.cache, "envs")
        os.makedirs(root, exist_ok=True)
        subprocess.run(["cp", "-al", env_dir, os.path.join(root, os.path.basename(env_dir))], check=True)

    def bazel(self, *args):
        env = {"HOME": self.home, "PATH": os.environ["PATH"], "DSD_CACHE_DIR": self.cache,
               "BAZEL_REAL": host_tools.tool("bazel"), **self.extra_env}
        return subprocess.run([os.path.join(self.path, "bazelw"), *self.startup, *args], cwd=self.path, env=env,
                              capture_output=True, text=True, timeout=1800)

    def test(self, cache, *targets, instance=""):
        """{label: "PASSED" | "(cached) PASSED" | ...} and Bazel's output of one run."""
        proc = self.bazel("test", *targets, "--config=cpu", "--keep_going", "--config=remote-cache",
                          f"--remote_cache={cache}", f"--remote_instance_name={instance}", "--noshow_progress",
                          "--color=no", "--curses=no", f"--build_event_json_file={self.cache}/events.json",
                          "--test_summary=short")  # a line per target, which .bazelrc's terse summary leaves out
        output = proc.stdout + proc.stderr
        results = {m.group(1): (m.group(2) or "") + m.group(3) for m in _RESULT.finditer(output)}
        print(f"{self.path}: {servers.processes_line(output)}")
        self.case.assertTrue(results, output[-3000:])
        return results, output

    def shutdown(self):
        self.bazel("shutdown")


class RemoteCacheProofTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path
        self.env_dir = host_env_dir("../py_torch2_13/python3")
        self.a = Checkout(self, self.tmp, "a", os.path.join(self.tmp, "checkout-a"))
        self.b = Checkout(self, self.tmp, "b", os.path.join(self.tmp, "elsewhere", "checkout-b"))
        for checkout in (self.a, self.b):
            checkout.adopt_env(self.env_dir)
            self.addCleanup(checkout.shutdown)

    def assert_all_from_cache(self, results, output):
        ran = {label: r for label, r in results.items() if r not in ("(cached) PASSED", "SKIPPED")}
        self.assertEqual(ran, {}, "ran instead of coming from the cache:\n" + output[-3000:])
        self.assertRegex(servers.processes_line(output), r"remote cache hit")
        self.assertNotRegex(servers.processes_line(output), r"\d+ (local|linux-sandbox|processwrapper-sandbox)")

    def change_numpy_pin(self, checkout):
        """numpy 2.4.6 -> 2.4.1 in torch2_13.lock, with the hash uv finds for this interpreter in this
        machine's package sources (uv's own resolution: the environments have no pip)."""
        uv = install.uv_binary(os.path.dirname(os.path.dirname(self.env_dir)), sys.executable)
        pinned = subprocess.run([uv, "pip", "compile", "-", "--generate-hashes", "--no-header", "--quiet",
                                 "--python", os.path.join(self.env_dir, "bin", "python3"),
                                 *host_tools.entry("pip_sources")["flags"]],
                                input="numpy==2.4.1\n", capture_output=True, text=True, check=True,
                                env=dict(os.environ, UV_CACHE_DIR=os.path.join(self.tmp, "uv-cache"))).stdout
        self.assertRegex(pinned, r"^numpy==2\.4\.1 \\\n    --hash=sha256:[0-9a-f]{64}")
        lock = os.path.join(checkout.path, "third_party", "envs", "torch2_13.lock")
        with open(lock) as f:
            text = f.read()
        text = re.sub(r"^numpy==2\.4\.6 \\\n(    --hash=sha256:[0-9a-f]+( \\)?\n)+", lambda _: pinned.strip() + "\n",
                      text, flags=re.M)
        self.assertIn("numpy==2.4.1", text)
        with open(lock, "w") as f:
            f.write(text)
        checkout.extra_env.update(package_sources())

    def test_a_second_machine_gets_everything_from_an_http_cache_and_a_changed_pin_misses(self):
        cache = self.enter_context(servers.nginx_cache(os.path.join(self.tmp, "nginx")))
        first, output = self.a.test(cache, *REPRESENTATIVE)
        self.assertEqual(sorted(first), sorted(REPRESENTATIVE), output[-3000:])
        self.assertTrue(all(r == "PASSED" for r in first.values()), output[-3000:])

        second, output = self.b.test(cache, *REPRESENTATIVE)
        self.assertEqual(sorted(second), sorted(first))
        self.assert_all_from_cache(second, output)

        self.change_numpy_pin(self.b)
        third, output = self.b.test(cache, *SMALL)
        ran = sorted(label for label, r in third.items() if r == "PASSED")
        self.assertEqual(ran, ["//dsd:fsdp_model_state_test_gpu2", "//testing/launcher:plan_test"], output[-3000:])
        self.assertEqual(third[ENV_NEUTRAL], "(cached) PASSED", "an environment-neutral test is unaffected")

    def test_a_second_machine_gets_everything_from_a_grpc_cache(self):
        with servers.BuildGrid(pools=()) as grid:
            first, output = self.a.test(grid.endpoint, *SMALL, instance="main")
            self.assertTrue(all(r == "PASSED" for r in first.values()), output[-3000:])
            second, output = self.b.test(grid.endpoint, *SMALL, instance="main")
            self.assertEqual(sorted(second), sorted(first))
            self.assert_all_from_cache(second, output)

    def test_a_path_leaking_into_a_key_is_caught(self):
        """The check above fails when a key names where something lives (the interpreter's
        absolute path in the locator): what a leak would do to every user of the cache."""
        cache = self.enter_context(servers.nginx_cache(os.path.join(self.tmp, "nginx")))
        leaked = ["//dsd:fsdp_model_state_test_gpu2", ENV_NEUTRAL]
        first, output = self.a.test(cache, *leaked)
        self.assertTrue(all(r == "PASSED" for r in first.values()), output[-3000:])
        rule = os.path.join(self.b.path, "third_party", "python_env.bzl")
        with open(rule) as f:
            text = f.read()
        leak = 'rctx.file("python3", _LOCATOR.format(id = info["id"], name = rctx.attr.env) + "# " + info["python"] + "\\n",'
        self.assertIn('rctx.file("python3", _LOCATOR.format(id = info["id"], name = rctx.attr.env),', text)
        with open(rule, "w") as f:
            f.write(text.replace('rctx.file("python3", _LOCATOR.format(id = info["id"], name = rctx.attr.env),', leak))
        second, output = self.b.test(cache, *leaked)
        with self.assertRaises(AssertionError, msg="the proof's check must catch the leak"):
            self.assert_all_from_cache(second, output)
        self.assertEqual(second[ENV_NEUTRAL], "(cached) PASSED", "the leak reaches only the environment's tests")

if __name__ == "__main__":
    absltest.main()
