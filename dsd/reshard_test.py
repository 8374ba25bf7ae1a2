"""Resharding through DCP across world sizes and parallelisms.

Each target runs two launches (phases) on one TEST_TMPDIR: phase 0 trains and saves at one
world size, phase 1 loads at another (dist_py_test(phases = [[4, 2], ...])). Every case also
keeps, from phase 0, the full (unsharded) model and optimizer state as the reference that
phase 1 must reproduce, uneven shards (and empty shards at 4 ranks) included.
"""

import os

import torch
import torch.distributed as dist
from absl.testing import parameterized
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict

from models.dummy_models import dummy_model
from testing import checkpointing
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import VerifyStateDictMixin

FULL = StateDictOptions(full_state_dict=True)
SAVE_X_LOAD = (
    ("fsdp2_to_fsdp2", "fsdp2", "fsdp2"),
    ("fsdp1_to_fsdp1", "fsdp1", "fsdp1"),
    ("fsdp1_to_fsdp2", "fsdp1", "fsdp2"),
    ("fsdp2_to_fsdp1", "fsdp2", "fsdp1"),
    ("fsdp2_to_ddp", "fsdp2", "ddp"),
    ("fsdp1_to_plain", "fsdp1", "plain"),
)


class ReshardTest(VerifyStateDictMixin, DistributedTestCase):

    def _model(self, wrapper, seed):
        model = parallelisms.parallelize(dummy_model(False, seed), wrapper, self.device)
        return model, torch.optim.Adam(model.parameters(), lr=0.01)

    @parameterized.named_parameters(*SAVE_X_LOAD)
    def test_save_then_load_at_another_world_size(self, save_with, load_with):
        path = self.checkpoint_dir()
        reference_file = os.path.join(path, "reference.pt")
        if self.phase == 0:
            model, optim = self._model(save_with, seed=0)
            parallelisms.train(model, optim, [model.get_input(self.device, seed=s) for s in range(2)])
            checkpointing.save(model, optim, path)
            full = get_state_dict(model, optim, options=FULL)
            if self.rank == 0:
                torch.save({"model": full[0], "optim": full[1]}, reference_file)
            dist.barrier()
            return

        model, optim = self._model(load_with, seed=1)
        checkpointing.load(model, optim, path)

        saved_at, loaded_at = self.phase_world_sizes[0], self.world_size
        reference = torch.load(reference_file, weights_only=True)
        full_msd, full_osd = get_state_dict(model, optim, options=FULL)
        where = f"saved by {save_with} at {saved_at} ranks, loaded by {load_with} at {loaded_at}"
        self.assert_full_state_matches(reference, full_msd, full_osd, where)
