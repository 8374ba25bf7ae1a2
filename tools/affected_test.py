"""tools/affected.py on a throw-away git repo built in TEST_TMPDIR, with a real Bazel.

The repo has three packages, a macro in a .bzl file, a `manual` test and a test_suite; each
case edits it one way and checks exactly which tests are selected.
"""

import os
import shutil
import stat
import subprocess
import sys

from absl.testing import absltest

from tools import affected
from tools.testing import host_tools
from tools.testing.nested_bazel import startup_options

FILES = {
    "WORKSPACE": 'workspace(name = "throwaway")\n',
    "BUILD": 'exports_files(["README.md"])\n',
    "README.md": "throw-away repo\n",
    "defs.bzl": (
        "def my_test(name, src, data = []):\n"
        "    native.sh_test(name = name, srcs = [src], data = data, tags = [\"gpu2\"])\n"
    ),
    "unused.bzl": "X = 1\n",
    "lib/BUILD": 'filegroup(name = "lib", srcs = ["lib.sh"], visibility = ["//visibility:public"])\n',
    "lib/lib.sh": "echo lib\n",
    "a/BUILD": (
        'load("//:defs.bzl", "my_test")\n'
        'my_test(name = "a_test", src = "a_test.sh", data = ["//lib", "data.txt"])\n'
        'sh_test(name = "manual_test", srcs = ["a_test.sh"], tags = ["manual"])\n'
    ),
    "a/a_test.sh": "exit 0\n",
    "a/data.txt": "one\n",
    "b/BUILD": 'sh_test(name = "b_test", srcs = ["b_test.sh"])\ntest_suite(name = "suite")\n',
    # Two environments, each a lock that only its own targets depend on, through select() as
    # testing/defs.bzl does (the second environment is optional: behind a flag).
    "envs/BUILD": (
        'exports_files(["one.lock", "two.lock"])\n'
        'config_setting(name = "two_enabled", values = {"define": "two=1"})\n'
        'sh_test(name = "one_test", srcs = ["t.sh"], data = ["one.lock"])\n'
        'sh_test(name = "two_test", srcs = ["t.sh"], data = select({":two_enabled": ["two.lock"], '
        '"//conditions:default": []}))\n'
        'sh_test(name = "cross_test", srcs = ["t.sh"], data = ["one.lock"] + select({":two_enabled": ["two.lock"], '
        '"//conditions:default": []}))\n'
    ),
    "envs/one.lock": "numpy==2.4.6\n",
    "envs/two.lock": "numpy==2.4.6\n",
    "envs/t.sh": "exit 0\n",
    "b/b_test.sh": "exit 0\n",
}
ALL = ["//a:a_test", "//b:b_test", "//envs:cross_test", "//envs:one_test", "//envs:two_test"]


class AffectedTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        real = host_tools.tool("bazel")
        tmp = os.environ.get("TEST_TMPDIR") or absltest.get_default_test_tmpdir()
        os.environ["DSD_CACHE_DIR"] = os.path.join(tmp, "cache")
        cls.repo = os.path.join(tmp, "repo")
        # Nested Bazel: its own output root (the user's is read-only in the sandbox).
        cls.bazel = os.path.join(tmp, "bazel")
        with open(cls.bazel, "w") as f:
            f.write(f'#!/bin/sh\nexec {real} {" ".join(startup_options(f"{tmp}/bazel_root", 120))} "$@"\n')
        os.chmod(cls.bazel, 0o755)
        shutil.rmtree(cls.repo, ignore_errors=True)
        for path, content in FILES.items():
            cls.write(path, content)
        for sh in ("a/a_test.sh", "b/b_test.sh", "lib/lib.sh", "envs/t.sh"):
            os.chmod(os.path.join(cls.repo, sh), 0o755)
        cls.git("init", "-q", "-b", "main")
        cls.git("add", "-A")
        cls.git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
        cls.base = cls.git("rev-parse", "HEAD").strip()

    @classmethod
    def tearDownClass(cls):
        for ws in (cls.repo, affected.Worktree(cls.repo, "HEAD", "base").path):
            if os.path.isdir(ws):
                subprocess.run([cls.bazel, "shutdown"], cwd=ws, capture_output=True)
        super().tearDownClass()

    @classmethod
    def write(cls, path, content):
        full = os.path.join(cls.repo, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)

    @classmethod
    def git(cls, *args):
        return subprocess.run(["git", *args], cwd=cls.repo, check=True, capture_output=True, text=True).stdout

    def setUp(self):
        super().setUp()
        self.git("reset", "-q", "--hard", self.base)
        self.git("clean", "-qfdx")

    def select(self, tag_filters="", head=None):
        return affected.affected(self.repo, self.base, head, self.bazel, tag_filters)

    def assertSelects(self, expected, everything=False, **kwargs):
        labels, why = self.select(**kwargs)
        self.assertEqual(labels, expected)
        self.assertEqual(why is not None, everything, why)

    def test_no_change_selects_nothing(self):
        self.assertSelects([])

    def test_source_edit(self):
        self.write("a/a_test.sh", "exit 0 # edited\n")
        self.assertSelects(["//a:a_test"])  # manual_test uses the same file but is never printed

    def test_data_file_edit(self):
        self.write("a/data.txt", "two\n")
        self.assertSelects(["//a:a_test"])

    def test_dependency_edit(self):
        self.write("lib/lib.sh", "echo changed\n")
        self.assertSelects(["//a:a_test"])

    def test_executable_bit_change(self):
        os.chmod(os.path.join(self.repo, "lib/lib.sh"), stat.S_IRUSR | stat.S_IWUSR)
        self.assertSelects(["//a:a_test"])

    def test_build_file_edit(self):
        self.write("b/BUILD", 'sh_test(name = "b_test", srcs = ["b_test.sh"], size = "small")\n')
        self.assertSelects(["//b:b_test"])

    def test_macro_edit(self):
        self.write("defs.bzl", FILES["defs.bzl"].replace("data = data,", "data = data, size = \"small\","))
        self.assertSelects(["//a:a_test"])

    def test_file_deleted(self):
        os.remove(os.path.join(self.repo, "lib/lib.sh"))
        self.assertSelects(["//a:a_test"])

    def test_file_renamed(self):
        self.git("mv", "b/b_test.sh", "b/b2_test.sh")
        self.write("b/BUILD", 'sh_test(name = "b_test", srcs = ["b2_test.sh"])\n')
        self.assertSelects(["//b:b_test"])

    def test_build_file_added_untracked(self):
        self.write("c/BUILD", 'sh_test(name = "c_test", srcs = ["c_test.sh"])\n')
        self.write("c/c_test.sh", "exit 0\n")
        self.assertSelects(["//c:c_test"])

    def test_build_file_removed(self):
        os.remove(os.path.join(self.repo, "b/BUILD"))
        self.assertSelects([])

    def test_an_environments_lock_selects_its_targets_and_the_cross_ones(self):
        self.write("envs/two.lock", "numpy==2.4.1\n")
        self.assertSelects(["//envs:cross_test", "//envs:two_test"])

    def test_workspace_edit_selects_everything(self):
        self.write("WORKSPACE", FILES["WORKSPACE"] + "# edited\n")
        self.assertSelects(ALL, everything=True)

    def test_unloaded_bzl_edit_selects_everything(self):
        self.write("unused.bzl", "X = 2\n")
        self.assertSelects(ALL, everything=True)

    def test_readme_edit_selects_nothing(self):
        self.write("README.md", "edited\n")
        self.assertSelects([])

    def test_tag_filters(self):
        self.write("WORKSPACE", FILES["WORKSPACE"] + "# edited\n")
        self.assertSelects(["//a:a_test"], everything=True, tag_filters="gpu2")
        self.assertSelects([t for t in ALL if t != "//a:a_test"], everything=True, tag_filters="-gpu2")

    def test_committed_head(self):
        self.write("b/b_test.sh", "exit 0 # committed\n")
        self.git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "change b")
        head = self.git("rev-parse", "HEAD").strip()
        self.write("a/a_test.sh", "exit 0 # uncommitted, not in head\n")
        self.assertSelects(["//b:b_test"], head=head)

    def test_command_line_formats_and_empty_selection(self):
        self.write("lib/lib.sh", "echo changed\n")
        self.write("b/b_test.sh", "exit 0 # changed\n")
        cmd = [sys.executable, "-m", "tools.affected", "--base", self.base, "--repo", self.repo, "--bazel", self.bazel]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        run = lambda *extra: subprocess.run(cmd + list(extra), capture_output=True, text=True, env=env)
        self.assertEqual(run().stdout, "//a:a_test\n//b:b_test\n")
        self.assertEqual(run("--format=bazel-args").stdout, "//a:a_test //b:b_test\n")
        pattern_file = os.path.join(self.create_tempdir().full_path, "targets.txt")
        self.assertEqual(run("--target_pattern_file", pattern_file).stdout, f"--target_pattern_file={pattern_file}\n")
        with open(pattern_file) as f:
            self.assertEqual(f.read(), "//a:a_test\n//b:b_test\n")
        self.setUp()
        empty = run()
        self.assertEqual((empty.returncode, empty.stdout), (0, ""))
        self.assertIn("no test target is affected", empty.stderr)


if __name__ == "__main__":
    absltest.main()
