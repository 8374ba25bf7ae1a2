"""dist_py_test's expansion and its load-time checks, through a real Bazel on a scratch
workspace that loads the repository's own .bzl files (the macro and what it loads)."""

import os
import shutil

from absl.testing import absltest
from absl.testing import parameterized

from tools.testing.nested_bazel import NestedBazel
from tools.testing.nested_bazel import host_bazelrc

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
BZL = ["testing/defs.bzl", "testing/settings.bzl", "platforms/pools.bzl", "platforms/worker_image.bzl",
       "third_party/envs/envs.bzl", "third_party/envs/settings.bzl", "third_party/python_env.bzl",
       "third_party/envs/install.py", "third_party/envs/probe.py"]
BUILDS = {
    "WORKSPACE": ('workspace(name = "macro_test")\n'
                  'load("//third_party/envs:envs.bzl", "python_env_repositories")\npython_env_repositories()\n'
                  'load("//platforms:worker_image.bzl", "worker_image_repository")\nworker_image_repository()\n'),
    "testing/BUILD": ('package(default_visibility = ["//visibility:public"])\nload(":settings.bzl", "device_settings")\n'
                      'device_settings()\nexports_files(["env_main.py", "quarantine.json", "durations.json"])\n'),
    "testing/env_main.py": "",
    "testing/quarantine.json": "{}",
    "testing/durations.json": "{}",
    "testing/launcher/BUILD": ('package(default_visibility = ["//visibility:public"])\nexports_files(["launcher.py"])\n'
                               'py_library(name = "launcher", srcs = ["launcher.py"])\n'),
    "testing/launcher/launcher.py": "",
    "platforms/BUILD": 'load(":pools.bzl", "pool_settings")\npool_settings()\n',
    "third_party/BUILD": 'exports_files(["python_env.bzl"])\n',
    "third_party/envs/BUILD": ('load(":settings.bzl", "environment_settings")\nenvironment_settings()\n'
                               'exports_files(["torch2_13.lock", "torch2_14.lock", "tools.lock", "install.py", '
                               '"probe.py"])\n'),
    "third_party/envs/torch2_13.lock": "",
    "third_party/envs/torch2_14.lock": "",
    "third_party/envs/tools.lock": "",
    "pkg/m_test.py": "",
}


class DistPyTestMacroTest(parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tmp = os.environ.get("TEST_TMPDIR") or absltest.get_default_test_tmpdir()
        cls.ws = os.path.join(tmp, "ws")
        shutil.rmtree(cls.ws, ignore_errors=True)
        for path in BZL:
            os.makedirs(os.path.dirname(os.path.join(cls.ws, path)), exist_ok=True)
            shutil.copy(os.path.join(ROOT, path), os.path.join(cls.ws, path))
        for path, content in dict(BUILDS, **{".bazelrc": host_bazelrc()}).items():
            os.makedirs(os.path.dirname(os.path.join(cls.ws, path)), exist_ok=True)
            with open(os.path.join(cls.ws, path), "w") as f:
                f.write(content)
        cls.bazel = NestedBazel(cls.ws, tmp, max_idle_secs=60)

    @classmethod
    def tearDownClass(cls):
        cls.bazel.shutdown()
        super().tearDownClass()

    def query(self, call, expression, output="label", *flags):
        with open(os.path.join(self.ws, "pkg", "BUILD"), "w") as f:
            f.write('load("//testing:defs.bzl", "dist_py_test", "dist_test_suites")\n' + call + "\ndist_test_suites()\n")
        proc = self.bazel("query", expression, f"--output={output}", *flags)
        return proc.returncode, proc.stdout, proc.stderr

    def test_one_target_per_world_size_and_environment_with_tags_pool_and_suites(self):
        rc, out, err = self.query(
            'dist_py_test(name = "m_test", srcs = ["m_test.py"], world_sizes = [2, 4], shard_count = {4: 3}, tags = ["slow"])',
            "tests(//pkg:all)")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(out.split()), [f"//pkg:m_test_gpu{ws}{env}" for ws in (2, 4)
                                               for env in ("", "_local", "_torch2_14")])
        rc, out, err = self.query(
            'dist_py_test(name = "m_test", srcs = ["m_test.py"], world_sizes = [2, 4], shard_count = {4: 3}, tags = ["slow"])',
            "//pkg:m_test_gpu4", "build")
        self.assertEqual(rc, 0, err)
        self.assertIn('tags = ["cpu:4", "gpu4", "slow", "torch2_13"]', out)
        self.assertIn('"--test_module=pkg.m_test"', out)
        self.assertIn('"--phases=4@torch2_13"', out)
        self.assertIn('"Pool": "gpu4"', out)
        self.assertIn("shard_count = 3", out)
        self.assertIn('main = "//testing:env_main.py"', out)
        self.assertIn('"$(rootpath //testing/launcher:launcher.py)"', out)
        rc, out, _ = self.query('dist_py_test(name = "m_test", srcs = ["m_test.py"], world_sizes = [2, 4])',
                                'attr(tags, "\\btorch2_14\\b", tests(//pkg:all))')
        self.assertEqual(sorted(out.split()), ["//pkg:m_test_gpu2_torch2_14", "//pkg:m_test_gpu4_torch2_14"])
        rc, out, _ = self.query('dist_py_test(name = "m_test", srcs = ["m_test.py"], world_sizes = [2, 4])',
                                "kind(test_suite, //pkg:all)")
        self.assertEqual(sorted(out.split()), ["//pkg:gpu2_tests", "//pkg:gpu4_tests", "//pkg:local_tests",
                                               "//pkg:m_test", "//pkg:torch2_13_tests", "//pkg:torch2_14_tests"])

    def test_the_device_is_decided_by_flags_and_the_gpu_count(self):
        # The unpinned environment ("local", a CUDA-capable torch): unconfigured, it installs nothing.
        rc, _, err = self.query('dist_py_test(name = "m_test", srcs = ["m_test.py"], world_sizes = [2], envs = ["local"])',
                                "//pkg:all")
        self.assertEqual(rc, 0, err)
        for flags, device in (((), "cpu"), (("--//testing:visible_gpus=1",), "cpu"),
                              (("--//testing:visible_gpus=2",), "cuda"),
                              (("--//testing:device=cpu", "--//testing:visible_gpus=8"), "cpu"),
                              (("--//testing:device=cuda",), "cuda")):
            proc = self.bazel("cquery", "//pkg:m_test_gpu2_local", "--output=build", "--//third_party/envs:local",
                              *flags)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn(f'env = {{"DSD_DEVICE": "{device}"', proc.stdout, flags)
            # An automatic choice of CPU ranks says why (the launcher turns it into a Bazel warning).
            self.assertEqual('"DSD_DEVICE_WHY": "auto: ' in proc.stdout, device == "cpu" and "--//testing:device=cpu"
                             not in flags, (flags, proc.stdout))

    def test_phases_within_and_across_environments(self):
        rc, out, err = self.query(
            'dist_py_test(name = "m_test", srcs = ["m_test.py"], envs = ["torch2_13"], '
            'phases = [[4, 2], ["2@torch2_13", "2@torch2_14"]])', "tests(//pkg:m_test)")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(out.split()), ["//pkg:m_test_gpu4to2", "//pkg:m_test_torch2_13_gpu2_to_torch2_14_gpu2"])
        rc, out, _ = self.query(
            'dist_py_test(name = "m_test", srcs = ["m_test.py"], phases = [["2@torch2_13", "2@torch2_14"]])',
            'attr(tags, "\\bcross_version\\b", tests(//pkg:all))')
        self.assertEqual(out.split(), ["//pkg:m_test_torch2_13_gpu2_to_torch2_14_gpu2"])

    @parameterized.named_parameters(
        ("world_size_below_1", "world_sizes = [0]", "world size must be >= 1"),
        ("duplicate_world_sizes", "world_sizes = [2, 2]", "duplicate world sizes"),
        ("empty_world_sizes", "world_sizes = []", "non-empty list"),
        ("shard_count_unknown_key", "world_sizes = [2], shard_count = {4: 2}", "shard_count has unknown key 4"),
        ("shard_count_below_1", "shard_count = 0", "must be >= 1"),
        ("macro_owned_tag", 'tags = ["gpu2"]', "is set by the macro"),
        ("environment_tag", 'tags = ["torch2_14"]', "is set by the macro"),
        ("bad_size", 'size = "huge"', "size must be one of"),
        ("two_srcs", 'srcs = ["m_test.py", "other.py"]', "exactly one .py file"),
        ("unknown_argument", "colour = 1", "unexpected keyword argument: colour"),
        ("phases_and_world_sizes", "world_sizes = [2], phases = [[2, 1]]", "not both"),
        ("one_phase", "phases = [[2]]", ">= 2 world sizes"),
        ("duplicate_phases", "phases = [[2, 1], [2, 1]]", "duplicate world sizes or phases"),
        ("unknown_environment", 'envs = ["torch1_0"]', 'unknown environment "torch1_0"'),
        ("unknown_phase_environment", 'phases = [["2@torch1_0", "2@torch2_13"]]', 'unknown environment "torch1_0"'),
        ("partial_phase_environments", 'phases = [["2@torch2_13", 2]]', "every phase or for none"),
    )
    def test_bad_input_fails_at_load_time(self, args, message):
        srcs = "" if "srcs" in args else 'srcs = ["m_test.py"], '
        rc, _, err = self.query(f'dist_py_test(name = "m_test", {srcs}{args})', "//pkg:all")
        self.assertNotEqual(rc, 0)
        self.assertIn(message, err)


if __name__ == "__main__":
    absltest.main()
