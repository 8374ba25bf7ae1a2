"""What a resharding load costs each rank in memory: saved at 4 ranks (phase 0), loaded at 2
(phase 1), each rank reading twice the share it saved; the peak of one load and the growth over
repeated loads (dsd/memory_checks.py: the bounds, each with what was measured).
"""

import torch.distributed.checkpoint as dcp

from dsd.memory_checks import REPEATS
from dsd.memory_checks import MemoryCase
from testing import memory


class ReshardingLoadMemoryTest(MemoryCase):

    def setUp(self):
        super().setUp()
        self.path = self.checkpoint_dir()

    def test_resharding_load_peak_and_growth(self):
        model, optim = self.trained(seed=self.phase)
        if self.phase == 0:
            dcp.save(self.state(model, optim), checkpoint_id=self.path)
            return
        state = self.state(model, optim)
        local = memory.local_bytes(state)
        with memory.Peak(self.device) as peak:
            dcp.load(state, checkpoint_id=self.path)
        self.assert_peak_within("resharding dcp.load", peak, local)
        sizes = memory.after_each(lambda: dcp.load(self.state(model, optim), checkpoint_id=self.path), REPEATS)
        self.assert_no_growth("resharding dcp.load", sizes, local)
