"""Writes the golden corpus's checkpoints (tools/golden.py runs this module through the
launcher, once per environment and world size, with DSD_GOLDEN_DIR set). Not a test target."""

import json
import os
import platform

import torch
import torch.distributed as dist
from absl.testing import parameterized

from dsd.golden import layouts
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase


class WriteGoldens(DistributedTestCase):

    @parameterized.named_parameters(*((name, name) for name in layouts.LAYOUTS))
    def test_write(self, layout):
        path = os.path.join(os.environ["DSD_GOLDEN_DIR"], f"{layout}_ws{self.world_size}")
        model, optim = layouts.model_and_optim(layout, self.device, seed=0)
        parallelisms.train(model, optim, [model.get_input(self.device, seed=s) for s in range(2)])
        layouts.save(layout, model, optim, path)
        checksums = layouts.checksums(model, optim)
        if self.rank == 0:
            entry = {"layout": layout, "world_size": self.world_size, "saved_with": {
                "torch": str(torch.__version__), "git_version": torch.version.git_version, "python": platform.python_version()},
                "extras": {"step": 42, "batches_seen": 1234} if layouts.LAYOUTS[layout][1] else {},
                "checksums": checksums}
            with open(os.path.join(path, "golden.json"), "w") as f:
                json.dump(entry, f, indent=1, sort_keys=True)
        dist.barrier()
