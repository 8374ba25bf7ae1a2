"""Launcher fixture for --phases: phase 0 writes, later phases read; one case fails in phase 1."""

import json
import os

import torch.distributed as dist

from testing.dist_test_case import DistributedTestCase


class PhasedTest(DistributedTestCase):

    def test_later_phase_reads_what_phase_0_wrote(self):
        path = os.path.join(self.checkpoint_dir(), "written_at.json")
        if self.phase == 0:
            if self.rank == 0:
                with open(path, "w") as f:
                    json.dump({"world_size": self.world_size}, f)
            dist.barrier()
            return
        with open(path) as f:
            self.assertEqual(json.load(f)["world_size"], self.phase_world_sizes[0])
        self.assertEqual(self.world_size, self.phase_world_sizes[self.phase])

    def test_fails_only_in_phase_1(self):
        self.assertEqual(self.phase, 0, "deliberate failure in phase 1")
