"""The macros from another workspace: a throw-away workspace loads @dsd//testing:defs.bzl through
local_repository, declares a dist_py_test and runs it with a nested Bazel. Every label the
macros use is a Label(), so they resolve to this repository, not to the consumer's."""

import os
import textwrap
import unittest

from tools.testing.nested_bazel import NestedBazel
from tools.testing.nested_bazel import host_bazelrc

HERE = os.path.dirname(os.path.realpath(__file__))
DSD = os.path.dirname(HERE)
FILES = {
    "WORKSPACE": f"""\
        workspace(name = "consumer")
        local_repository(name = "dsd", path = "{DSD}")
        load("@dsd//third_party/envs:envs.bzl", "python_env_repositories")
        python_env_repositories()
        load("@dsd//platforms:worker_image.bzl", "worker_image_repository")
        worker_image_repository()
        register_toolchains("@dsd//third_party:python_toolchain")
        """,
    "pkg/BUILD": """\
        load("@dsd//testing:defs.bzl", "dist_py_test", "dist_test_suites")
        dist_py_test(
            name = "consumer_test",
            srcs = ["consumer_test.py"],
            world_sizes = [2],
            deps = ["@dsd//testing:dist_test_case"],
        )
        dist_test_suites()
        """,
    "pkg/consumer_test.py": """\
        import torch
        import torch.distributed as dist
        from testing.dist_test_case import DistributedTestCase

        class ConsumerTest(DistributedTestCase):
            def test_all_reduce(self):
                t = torch.ones(1)
                dist.all_reduce(t)
                self.assertEqual(t.item(), self.world_size)
        """,
}


class ExternalWorkspaceTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = os.environ["TEST_TMPDIR"]
        cls.ws = os.path.join(cls.tmp, "consumer")
        FILES[".bazelrc"] = host_bazelrc("dsd")
        for path, text in FILES.items():
            full = os.path.join(cls.ws, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(textwrap.dedent(text))
        cls.bazel = NestedBazel(cls.ws, cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.bazel.shutdown()

    def test_the_macro_resolves_to_this_repository(self):
        proc = self.bazel("query", "deps(//pkg:consumer_test_gpu2, 1)", "--output=label")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        labels = proc.stdout.split()
        self.assertIn("@dsd//testing/launcher:launcher", labels)
        self.assertIn("@dsd//testing:env_main.py", labels)
        self.assertNotIn("//testing/launcher:launcher", labels)

    def test_a_consumer_target_runs(self):
        proc = self.bazel("test", "//pkg:consumer_test_gpu2", "--@dsd//testing:device=cpu", "--test_output=errors",
                          timeout=900)
        output = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 0, output[-4000:])
        self.assertRegex(output, r"//pkg:consumer_test_gpu2\s+PASSED")


if __name__ == "__main__":
    unittest.main()
