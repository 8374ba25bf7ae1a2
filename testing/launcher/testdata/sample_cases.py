"""Launcher fixture: cases that pass, a parameterized case and a skip, using collectives."""

import torch
import torch.distributed as dist
from absl.testing import parameterized

from testing.dist_test_case import DistributedTestCase


class CollectivesTest(DistributedTestCase):

    def test_all_reduce(self):
        t = torch.tensor([float(self.rank + 1)], device=self.device)
        dist.all_reduce(t)
        n = self.world_size
        self.assertEqual(t.item(), n * (n + 1) / 2)

    @parameterized.named_parameters(("one", 1), ("three", 3))
    def test_broadcast(self, value):
        t = torch.tensor([value if self.rank == 0 else -1], device=self.device)
        dist.broadcast(t, src=0)
        self.assertEqual(t.item(), value)

    def test_skipped(self):
        self.skipTest("launcher fixture: always skipped")


class ScratchDirTest(DistributedTestCase):

    def test_checkpoint_dir_is_shared(self):
        path = self.checkpoint_dir()
        paths = [None] * self.world_size
        dist.all_gather_object(paths, path)
        self.assertLen(set(paths), 1)
