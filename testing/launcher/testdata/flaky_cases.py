"""Launcher fixture: a deliberately flaky case (it fails the first time it runs in a TEST_TMPDIR
and passes after), a case that always fails, and one that always passes."""

import os

import torch.distributed as dist

from testing.dist_test_case import DistributedTestCase


class FlakyTest(DistributedTestCase):

    def test_fails_the_first_time(self):
        marker = os.path.join(os.environ["TEST_TMPDIR"], f"flaky_marker_rank{self.rank}")
        first = not os.path.exists(marker)
        dist.barrier()  # every rank looks before any rank leaves its marker
        if first:
            open(marker, "w").close()
        self.assertFalse(first, "deliberately flaky: fails the first time it runs")

    def test_always_fails(self):
        self.fail("deliberate failure, every time")

    def test_passes(self):
        dist.barrier()
