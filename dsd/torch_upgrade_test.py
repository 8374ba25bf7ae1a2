"""Checkpoints across torch releases: saved by one environment's torch, loaded by another's,
at the same or another world size (FSDP2, FSDP1 and tensor-parallel model and optimizer state,
non-tensor Stateful extras, an async-saved checkpoint).

Each target runs two launches (phases) on one TEST_TMPDIR, each with its own Python
environment (dist_py_test(phases = [["2@torch2_13", "2@torch2_14"]])): phase 0 trains, saves
with DCP and keeps the full state as a plain reference file; phase 1 loads into a differently
initialised model with the other torch and must reproduce the reference. Upgrades are the
promise users rely on; downgrades are informative.
"""

import os

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from absl.testing import parameterized
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.checkpoint.stateful import Stateful

from models.dummy_models import EvenDummyModel
from testing import checkpointing
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import VerifyStateDictMixin

FULL = StateDictOptions(full_state_dict=True)
LAYOUTS = (("fsdp2", "fsdp2"), ("fsdp1", "fsdp1"), ("tp", "tp"))


class TrainState(Stateful):
    """Step, dataloader position and this rank's RNG state, as a training loop keeps them."""

    def __init__(self, step=0, batches=0, world_size=None):
        self.step, self.batches = step, batches
        self.ranks = range(world_size or dist.get_world_size())

    def state_dict(self):
        state = {"step": self.step, "dataloader": {"batches_seen": self.batches}}
        if dist.get_rank() in self.ranks:
            state[f"rng.rank{dist.get_rank()}"] = torch.get_rng_state()
        return state

    def load_state_dict(self, state):
        self.step, self.batches = state["step"], state["dataloader"]["batches_seen"]
        if f"rng.rank{dist.get_rank()}" in state:
            torch.set_rng_state(state[f"rng.rank{dist.get_rank()}"])


class TorchUpgradeTest(VerifyStateDictMixin, DistributedTestCase):

    def model(self, layout, seed):
        model = parallelisms.parallelize(EvenDummyModel(seed), layout, self.device)
        return model, torch.optim.Adam(model.parameters(), lr=0.01)

    def trained(self, layout):
        model, optim = self.model(layout, seed=0)
        parallelisms.train(model, optim, [model.get_input(self.device, seed=s) for s in range(2)])
        return model, optim

    def save_reference(self, path, model, optim, **extra):
        full_msd, full_osd = get_state_dict(model, optim, options=FULL)
        if self.rank == 0:
            torch.save({"model": full_msd, "optim": full_osd, "torch": str(torch.__version__), **extra},
                       os.path.join(path, "reference.pt"))
        dist.barrier()

    def assert_matches_reference(self, path, model, optim):
        reference = torch.load(os.path.join(path, "reference.pt"), weights_only=True)
        where = (f"saved by torch {reference['torch']} at {self.phase_world_sizes[0]} ranks, loaded by torch "
                 f"{torch.__version__} at {self.world_size}")
        full_msd, full_osd = get_state_dict(model, optim, options=FULL)
        self.assert_full_state_matches(reference, full_msd, full_osd, where)
        return reference

    @parameterized.named_parameters(*LAYOUTS)
    def test_model_and_optimizer(self, layout):
        path = self.checkpoint_dir()
        if self.phase == 0:
            model, optim = self.trained(layout)
            checkpointing.save(model, optim, path)
            self.save_reference(path, model, optim)
            return
        model, optim = self.model(layout, seed=1)
        checkpointing.load(model, optim, path)
        self.assert_matches_reference(path, model, optim)

    def test_stateful_extras(self):
        path = self.checkpoint_dir()
        saved_at = self.phase_world_sizes[0]
        if self.phase == 0:
            model, optim = self.trained("fsdp2")
            torch.manual_seed(100 + self.rank)
            dcp.save({"app": checkpointing.AppState(model, optim), "train": TrainState(42, 1234)}, checkpoint_id=path)
            rngs = [None] * self.world_size
            dist.all_gather_object(rngs, torch.get_rng_state())
            self.save_reference(path, model, optim, rngs=rngs)
            return
        model, optim = self.model("fsdp2", seed=1)
        train = TrainState(world_size=min(saved_at, self.world_size))  # a grown job has no RNG state for new ranks
        torch.manual_seed(999)
        dcp.load({"app": checkpointing.AppState(model, optim), "train": train}, checkpoint_id=path)
        reference = self.assert_matches_reference(path, model, optim)
        self.assertEqual((train.step, train.batches), (42, 1234), "step and dataloader position")
        if self.rank < saved_at:
            self.assertTrue(torch.equal(torch.get_rng_state(), reference["rngs"][self.rank]), f"rank {self.rank}'s RNG state")

    def test_async_saved_checkpoint(self):
        path = self.checkpoint_dir()
        if self.phase == 0:
            model, optim = self.trained("fsdp2")
            group = dist.new_group(backend="gloo")  # async_save's collectives run beside training's
            dcp.async_save({"app": checkpointing.AppState(model, optim)}, checkpoint_id=path,
                           process_group=group).result()
            self.save_reference(path, model, optim)
            return
        model, optim = self.model("fsdp2", seed=1)
        checkpointing.load(model, optim, path)
        self.assert_matches_reference(path, model, optim)
