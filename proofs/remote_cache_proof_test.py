"""Proof that --config=remote-cache works end to end: a real HTTP cache (nginx with WebDAV PUT)
on 127.0.0.1, a //dsd target run by a nested Bazel from one output base, then from a second,
clean output base (a remote cache hit), then with a changed recorded environment (a miss).

Needs nginx and Bazel (@proof_servers, @host_bazel install or name them); fails, never skips,
without them.
"""

import os
import re

from absl.testing import absltest

from proofs import servers
from tools.testing.nested_bazel import NestedBazel

TARGET = "//dsd:fsdp_model_state_test_gpu2"


class RemoteCacheProofTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path
        self.cache = self.enter_context(servers.nginx_cache(os.path.join(self.tmp, "nginx")))
        self.bazels = {}

    def tearDown(self):
        for bazel in self.bazels.values():
            bazel.shutdown()
        super().tearDown()

    def bazel_test(self, output_base, *extra):
        bazel = self.bazels.setdefault(output_base, NestedBazel(
            servers.workspace(), self.tmp, output_base=os.path.join(self.tmp, output_base)))
        proc = bazel("test", TARGET, "--config=remote-cache", f"--remote_cache={self.cache}", "--symlink_prefix=/",
                     "--spawn_strategy=local", *extra)
        output = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 0, output[-3000:])
        summary = servers.processes_line(output)
        result = re.search(r"^" + re.escape(TARGET) + r"\s+(.*)$", output, re.M)
        print(f"{output_base} {' '.join(extra)}: {summary}; result: {result.group(1) if result else '?'}")
        return output, summary

    def test_second_output_base_hits_and_a_changed_environment_misses(self):
        _, first = self.bazel_test("base1")
        self.assertNotIn("remote cache hit", first, "the cache starts empty")
        self.assertTrue(os.listdir(os.path.join(self.tmp, "nginx", "cache", "ac")), "results uploaded to the cache")

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
