"""DistributedTestCase helpers: skips with reasons, known_failure, shared checkpoint dirs.

Inner cases run through the rank worker's own run_case, so the statuses checked here are
the ones the launcher reports.
"""

import os

import torch.distributed as dist

from testing import dist_test_case
from testing.dist_test_case import DistributedTestCase
from testing.rank_worker import run_case


class _Inner(DistributedTestCase):
    """Not collected (defined with a leading underscore and run by hand below)."""

    @dist_test_case.known_failure(ValueError, "bad thing", "a recorded torch bug")
    def test_symptom_matches(self):
        raise ValueError("a bad thing happened")

    @dist_test_case.known_failure(ValueError, "bad thing", "a recorded torch bug")
    def test_bug_fixed(self):
        pass

    @dist_test_case.known_failure(ValueError, "bad thing", "a recorded torch bug")
    def test_other_message(self):
        raise ValueError("something else")

    @dist_test_case.known_failure(ValueError, "bad thing", "a recorded torch bug")
    def test_other_type(self):
        raise KeyError("bad thing")

    @dist_test_case.requires_world_size(64)
    def test_needs_64(self):
        pass

    @dist_test_case.requires_cuda("pinned-memory staging")
    def test_needs_cuda(self):
        pass


class HelpersTest(DistributedTestCase):

    def status(self, name):
        return run_case(_Inner(name))

    def test_known_failure_with_its_symptom_is_an_expected_failure(self):
        status, detail = self.status("test_symptom_matches")
        self.assertEqual(status, "xfail")
        self.assertIn("a recorded torch bug", detail)

    def test_known_failure_that_no_longer_fails_is_a_failure(self):
        status, detail = self.status("test_bug_fixed")
        self.assertEqual(status, "fail")
        self.assertIn("unexpected success", detail)

    def test_known_failure_with_another_symptom_is_an_error(self):
        self.assertEqual(self.status("test_other_message")[0], "error")
        self.assertEqual(self.status("test_other_type")[0], "error")

    def test_requires_world_size_skips_with_reason(self):
        self.assertEqual(self.status("test_needs_64"),
                         ("skip", f"needs world size >= 64, launched with {self.world_size}"))

    def test_requires_cuda_skips_on_cpu_only(self):
        status, detail = self.status("test_needs_cuda")
        if self.device_type == "cuda":
            self.assertEqual(status, "pass")
        else:
            self.assertEqual((status, detail), ("skip", "needs CUDA: pinned-memory staging"))

    def test_checkpoint_dir_is_fresh_and_shared(self):
        path = self.checkpoint_dir()
        self.assertEqual(os.listdir(path), [])
        paths = [None] * self.world_size
        dist.all_gather_object(paths, path)
        self.assertEqual(len(set(paths)), 1, paths)
        self.assertTrue(path.startswith(os.environ["TEST_TMPDIR"]), path)
