"""What the checkpoint memory modules share: the bounds (BOUNDS, GROWTH: each k with what was
measured), the fixture state and the checks.

A model of LAYERS Linear(WIDTH, WIDTH) layers, FSDP2 over every rank, one Adam step: its state
(parameters, exp_avg, exp_avg_sq) is `local` bytes on each rank (24 MB at 2 ranks). Each
operation's peak host memory above the RSS at its start (testing/memory.py) must stay within
k x local + ALLOWANCE, with k from the measured behaviour of today's releases (BOUNDS: the
bound, then what was measured: the same on torch 2.13 and 2.14); growth over repeated
operations must stay below what one leaked state dict per operation would add. On a GPU rank
the same bounds apply to device memory.
"""

import torch
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import get_state_dict

from testing import memory
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.memory import mb

WIDTH, LAYERS = 1024, 4
ALLOWANCE = 8 * memory.MB  # pickled metadata, plans, buffers of one small tensor, allocator pages
# operation: (k, what was measured at 2 ranks, in multiples of the state the bound is relative to:
# this rank's share, or for dcp_to_torch_save, which one process runs, the whole state)
BOUNDS = {
    "dcp.save": (0.25, "0.00: tensors stream into the files"),
    "dcp.load": (0.5, "0.17: a read buffer per item"),
    "dcp.async_save": (1.25, "1.1: one staged copy of the state, by design"),
    "HF save": (2.5, "2.0: each rank builds its shard file in memory (safetensors.torch.save returns bytes) "
                     "beside contiguous copies"),
    "HF consolidation": (0.5, "0.49 x the whole model state: rank 0 reads and writes tensor by tensor (the "
                              "largest tensor, a quarter of the state here, read and then written)"),
    "dcp_to_torch_save": (1.25, "1.04 x the whole state: it loads everything, then torch.save"),
    "resharding dcp.load": (0.5, "0.17 at 2 ranks from a 4-rank checkpoint"),
}
REPEATS = 8
# Growth over REPEATS - 2 repeated operations (the first two warm caches up): k x local + ALLOWANCE;
# one leaked state dict per operation adds (REPEATS - 2) x local.
GROWTH = {"dcp.save": 0.5, "dcp.async_save": 1.5, "resharding dcp.load": 0.5}


class MemoryCase(DistributedTestCase):
    """Not collected by itself: builds the trained FSDP2 model and measures operations on it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        memory.enable()

    def trained(self, seed=0):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = nn.Sequential(*[nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)])
        model = parallelisms.parallelize(module, "fsdp2", self.device)
        optim = torch.optim.Adam(model.parameters(), lr=0.01)
        parallelisms.train(model, optim, [torch.ones(2, WIDTH, device=self.device)])
        return model, optim

    def state(self, model, optim):
        msd, osd = get_state_dict(model, optim)
        return {"model": msd, "optim": osd}

    def assert_peak_within(self, operation, peak, local, what=""):
        k = BOUNDS[operation][0]
        bound = k * local + ALLOWANCE
        where = f"{operation}{what} on rank {self.rank}"
        print(f"{where}: peak +{mb(peak.added)} host = {peak.added / local:.2f} x local {mb(local)}", flush=True)
        self.assertLessEqual(peak.added, bound, f"{where}: peak +{mb(peak.added)} above the RSS at entry; bound "
                             f"{k} x local state {mb(local)} + {mb(ALLOWANCE)} = {mb(bound)}")
        self.assertLessEqual(peak.device_added, bound, f"{where}: peak +{mb(peak.device_added)} of device memory; "
                             f"bound {mb(bound)}")

    def assert_no_growth(self, operation, sizes, local):
        growth = sizes[-1] - sizes[1]
        bound = GROWTH[operation] * local + ALLOWANCE
        where = f"{operation} x {len(sizes)} on rank {self.rank}"
        print(f"{where}: RSS after each {[round(s / memory.MB) for s in sizes]} MB", flush=True)
        self.assertLessEqual(growth, bound, f"{where}: RSS grew {mb(growth)} from the 2nd to the last; bound "
                             f"{GROWTH[operation]} x local state {mb(local)} + {mb(ALLOWANCE)} = {mb(bound)} "
                             f"(one leaked state dict per operation adds {mb(local)} each)")
