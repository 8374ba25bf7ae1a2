"""Benchmark fixture: K small DCP save/load round trips (K = DSD_BENCH_CASES, default 10)."""

import os

import torch
import torch.distributed.checkpoint as dcp
from absl.testing import parameterized

from testing.dist_test_case import DistributedTestCase

CASES = int(os.environ.get("DSD_BENCH_CASES", "10"))


class SaveLoadTest(DistributedTestCase):

    @parameterized.parameters(range(CASES))
    def test_round_trip(self, i):
        path = self.checkpoint_dir()
        # Plain tensors are replicated: DCP writes one copy (rank 0's), every rank reads it.
        state = {"w": torch.full((64, 64), float(i)), "step": i}
        dcp.save(state, checkpoint_id=path)
        loaded = {"w": torch.zeros(64, 64), "step": -1}
        dcp.load(loaded, checkpoint_id=path)
        torch.testing.assert_close(loaded["w"], state["w"])
        self.assertEqual(loaded["step"], i)
