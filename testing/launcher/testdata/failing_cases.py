"""Launcher fixture: each failure mode, each followed by a case that must still run and pass.

Cases run in name order: a_*, then b_* and so on. Which failure modes are active is chosen
by DSD_FIXTURE_MODES (comma separated: fail, crash, hang); all by default.
"""

import os

import torch
import torch.distributed as dist

from testing.dist_test_case import DistributedTestCase

MODES = os.environ.get("DSD_FIXTURE_MODES", "fail,crash,hang").split(",")


class FailureModesTest(DistributedTestCase):

    def _after(self):
        t = torch.ones(1, device=self.device)
        dist.all_reduce(t)
        self.assertEqual(t.item(), self.world_size)

    def test_a_assert_on_last_rank_only(self):
        if "fail" not in MODES:
            self.skipTest("mode off")
        if self.rank == self.world_size - 1:
            self.assertEqual(1, 2, "deliberate failure on the last rank")
        t = torch.ones(1, device=self.device)
        dist.all_reduce(t)  # the other ranks wait here for the failed rank

    def test_b_after_assert(self):
        self._after()

    def test_c_rank_crashes(self):
        if "crash" not in MODES:
            self.skipTest("mode off")
        dist.barrier()
        if self.rank == self.world_size - 1:
            os._exit(3)
        dist.barrier()

    def test_d_after_crash(self):
        self._after()

    def test_e_rank_skips_collective(self):
        if "hang" not in MODES:
            self.skipTest("mode off")
        if self.rank != self.world_size - 1:
            t = torch.ones(1, device=self.device)
            dist.all_reduce(t)  # the last rank never joins: a hang

    def test_f_after_hang(self):
        self._after()
