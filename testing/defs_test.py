"""dist_py_test's expansion and its load-time checks, through a real Bazel on a scratch
workspace that loads the repo's testing/defs.bzl and testing/pools.bzl."""

import os
import shutil

from absl.testing import absltest
from absl.testing import parameterized

from tools.testing.nested_bazel import NestedBazel

HERE = os.path.dirname(os.path.realpath(__file__))
POOLS = os.path.join(os.path.dirname(HERE), "platforms", "pools.bzl")


class DistPyTestMacroTest(parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tmp = os.environ.get("TEST_TMPDIR") or absltest.get_default_test_tmpdir()
        cls.ws = os.path.join(tmp, "ws")
        shutil.rmtree(cls.ws, ignore_errors=True)
        for package in ("testing/launcher", "platforms", "pkg"):
            os.makedirs(os.path.join(cls.ws, package))
        shutil.copy(os.path.join(HERE, "defs.bzl"), os.path.join(cls.ws, "testing", "defs.bzl"))
        shutil.copy(POOLS, os.path.join(cls.ws, "platforms", "pools.bzl"))
        files = {
            "WORKSPACE": 'workspace(name = "macro_test")\n',
            "testing/BUILD": "",
            "platforms/BUILD": "",
            "testing/launcher/BUILD": 'exports_files(["launcher.py"])\npy_library(name = "launcher", srcs = ["launcher.py"])\n',
            "testing/launcher/launcher.py": "",
            "pkg/m_test.py": "",
        }
        for path, content in files.items():
            with open(os.path.join(cls.ws, path), "w") as f:
                f.write(content)
        cls.bazel = NestedBazel(cls.ws, tmp, max_idle_secs=60)

    @classmethod
    def tearDownClass(cls):
        cls.bazel.shutdown()
        super().tearDownClass()

    def query(self, call, expression, output="label"):
        with open(os.path.join(self.ws, "pkg", "BUILD"), "w") as f:
            f.write('load("//testing:defs.bzl", "dist_py_test", "dist_test_suites")\n' + call + "\ndist_test_suites()\n")
        proc = self.bazel("query", expression, f"--output={output}")
        return proc.returncode, proc.stdout, proc.stderr

    def test_one_target_per_world_size_with_tags_pool_and_suites(self):
        rc, out, err = self.query(
            'dist_py_test(name = "m_test", srcs = ["m_test.py"], world_sizes = [2, 4], shard_count = {4: 3}, tags = ["slow"])',
            "//pkg:all", output="build")
        self.assertEqual(rc, 0, err)
        for ws in (2, 4):
            self.assertIn(f'name = "m_test_gpu{ws}"', out)
            self.assertIn(f'"--world_size={ws}"', out)
            self.assertIn(f'tags = ["cpu:{ws}", "gpu{ws}", "slow"]', out)
            self.assertIn(f'"Pool": "gpu{ws}"', out)
            self.assertIn(f'name = "gpu{ws}_tests"', out)
        self.assertIn('"--test_module=pkg.m_test"', out)
        self.assertIn("shard_count = 3", out)
        self.assertIn('main = "//testing/launcher:launcher.py"', out)
        rc, out, _ = self.query('dist_py_test(name = "m_test", srcs = ["m_test.py"], world_sizes = [2, 4])',
                                'attr(tags, "\\bgpu4\\b", tests(//pkg:all))')
        self.assertEqual(out.split(), ["//pkg:m_test_gpu4"])

    def test_phases(self):
        rc, out, err = self.query('dist_py_test(name = "m_test", srcs = ["m_test.py"], phases = [[4, 2], [1, 2]])',
                                  "tests(//pkg:m_test)")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(out.split()), ["//pkg:m_test_gpu1to2", "//pkg:m_test_gpu4to2"])

    @parameterized.named_parameters(
        ("world_size_below_1", "world_sizes = [0]", "world size must be >= 1"),
        ("duplicate_world_sizes", "world_sizes = [2, 2]", "duplicate world sizes"),
        ("empty_world_sizes", "world_sizes = []", "non-empty list"),
        ("shard_count_unknown_key", "world_sizes = [2], shard_count = {4: 2}", "shard_count has unknown key 4"),
        ("shard_count_below_1", "shard_count = 0", "must be >= 1"),
        ("macro_owned_tag", 'tags = ["gpu2"]', "is set by the macro"),
        ("bad_size", 'size = "huge"', "size must be one of"),
        ("two_srcs", 'srcs = ["m_test.py", "other.py"]', "exactly one .py file"),
        ("unknown_argument", "colour = 1", "unexpected keyword argument: colour"),
        ("phases_and_world_sizes", "world_sizes = [2], phases = [[2, 1]]", "not both"),
        ("one_phase", "phases = [[2]]", ">= 2 world sizes"),
        ("duplicate_phases", "phases = [[2, 1], [2, 1]]", "duplicate world sizes or phases"),
    )
    def test_bad_input_fails_at_load_time(self, args, message):
        srcs = "" if "srcs" in args else 'srcs = ["m_test.py"], '
        rc, _, err = self.query(f'dist_py_test(name = "m_test", {srcs}{args})', "//pkg:all")
        self.assertNotEqual(rc, 0)
        self.assertIn(message, err)


if __name__ == "__main__":
    absltest.main()
