"""DCP features on an FSDP2-sharded model: async_save (thread and process), default and
custom planners, FileSystemWriter options, Stateful non-tensor state (step, RNG, dataloader
position), dcp_to_torch_save / torch_save_to_dcp, meta-device init then load, and the
CUDA-only staging paths (skipped on CPU with the error torch raises there).
"""

import copy
import dataclasses
import glob
import os
import re

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from absl.testing import parameterized
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from torch.distributed.checkpoint.format_utils import torch_save_to_dcp
from torch.distributed.checkpoint.staging import DefaultStager
from torch.distributed.checkpoint.staging import StagingOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.checkpoint.state_dict_saver import AsyncCheckpointerType
from torch.distributed.checkpoint.stateful import Stateful

from models.dummy_models import dummy_model
from testing import checkpointing
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import VerifyStateDictMixin
from testing.state_dict_verify import gather_full


@dataclasses.dataclass
class TrainState(Stateful):
    """Non-tensor training state saved beside the model: step, dataloader position and this
    rank's RNG state. The RNG key names the rank: DCP saves a tensor that several ranks hold
    under one key only once (from one rank), so a shared key would hand every rank the same
    RNG state on load (test_stateful_non_tensor_state checks both)."""

    step: int = 0
    epoch: int = 0
    batches_seen: int = 0

    def state_dict(self):
        return {"step": self.step, "dataloader": {"epoch": self.epoch, "batches_seen": self.batches_seen},
                f"rng.rank{dist.get_rank()}": torch.get_rng_state(), "rng.shared": torch.get_rng_state()}

    def load_state_dict(self, state):
        self.step = state["step"]
        self.epoch, self.batches_seen = state["dataloader"]["epoch"], state["dataloader"]["batches_seen"]
        self.shared_rng = state["rng.shared"]
        torch.set_rng_state(state[f"rng.rank{dist.get_rank()}"])


class RenamingSavePlanner(dcp.DefaultSavePlanner):
    """Saves every key under "v2/" (e.g. a migrated checkpoint layout)."""

    def set_up_planner(self, state_dict, *args, **kwargs):
        super().set_up_planner({"v2/" + k: v for k, v in state_dict.items()}, *args, **kwargs)


class RenamingLoadPlanner(dcp.DefaultLoadPlanner):
    """Reads keys saved by RenamingSavePlanner into the original, unprefixed state dict."""

    def set_up_planner(self, state_dict, *args, **kwargs):
        self.original = state_dict
        super().set_up_planner({"v2/" + k: v for k, v in state_dict.items()}, *args, **kwargs)


class DcpFeaturesTest(VerifyStateDictMixin, DistributedTestCase):

    _async_group = None

    def async_group(self):
        """A gloo process group reserved for async checkpointing (created once, collectively)."""
        if DcpFeaturesTest._async_group is None:
            DcpFeaturesTest._async_group = dist.new_group(backend="gloo")
        return DcpFeaturesTest._async_group

    def _trained(self, seed=0, steps=2):
        model = parallelisms.parallelize(dummy_model(False, seed), "fsdp2", self.device)
        optim = torch.optim.Adam(model.parameters(), lr=0.01)
        parallelisms.train(model, optim, [model.get_input(self.device, seed=s) for s in range(steps)])
        return model, optim

    def _snapshot(self, model, optim):
        msd, osd = get_state_dict(model, optim)
        return copy.deepcopy({k: gather_full(v) for k, v in msd.items()}), copy.deepcopy(osd)

    def _assert_model_equals(self, model, snapshot, what):
        for fqn, value in self.nonempty(get_model_state_dict(model), "the model state dict").items():
            self.assert_tensor_matches(snapshot[fqn], value, f"{what}: {fqn}")

    @parameterized.named_parameters(("thread", AsyncCheckpointerType.THREAD),
                                    ("process", AsyncCheckpointerType.PROCESS))
    def test_async_save(self, checkpointer_type):
        path = self.checkpoint_dir()
        model, optim = self._trained()
        saved, _ = self._snapshot(model, optim)
        # The save finishes in the background with collectives of its own: give it a process
        # group of its own, or they interleave with the training step's and deadlock.
        future = dcp.async_save({"app": checkpointing.AppState(model, optim)}, checkpoint_id=path,
                                async_checkpointer_type=checkpointer_type, process_group=self.async_group(),
                                async_stager=DefaultStager(StagingOptions(False, False, False, False)))
        parallelisms.train(model, optim, [model.get_input(self.device, seed=7)])  # training goes on
        future.result()
        fresh, fresh_optim = self._trained(seed=1)
        checkpointing.load(fresh, fresh_optim, path)
        self._assert_model_equals(fresh, saved, "state at async_save time")

    def test_async_save_pinned_memory_staging(self):
        path = self.checkpoint_dir()
        model, optim = self._trained()
        try:
            response = dcp.async_save({"app": checkpointing.AppState(model, optim)}, checkpoint_id=path,
                                      process_group=self.async_group(),
                                      async_stager=DefaultStager())  # pinned, shared, non-blocking
        except AssertionError as e:
            if self.device_type == "cpu" and "requires that the current accelerator is available" in str(e):
                self.skipTest(f"needs CUDA: DefaultStager's pinned non-blocking staging raises on CPU: {e}")
            raise
        response.upload_completion.result() if hasattr(response, "upload_completion") else response.result()
        fresh, fresh_optim = self._trained(seed=1)
        checkpointing.load(fresh, fresh_optim, path)
        self._assert_model_equals(fresh, self._snapshot(model, optim)[0], "pinned async_save")

    def test_cache_staged_state_dict(self):
        path = self.checkpoint_dir()
        model, optim = self._trained()
        writer = dcp.FileSystemWriter(path, cache_staged_state_dict=True)
        try:
            dcp.async_save({"app": checkpointing.AppState(model, optim)}, storage_writer=writer,
                           process_group=self.async_group()).result()
        except RuntimeError as e:
            # CPU builds say "Cannot access accelerator device", CUDA builds "Found no NVIDIA driver".
            if self.device_type == "cpu" and re.search(r"Cannot access accelerator device|Found no NVIDIA driver", str(e)):
                self.skipTest(f"needs CUDA: FileSystemWriter(cache_staged_state_dict=True) raises on CPU: {e}")
            raise
        fresh, fresh_optim = self._trained(seed=1)
        checkpointing.load(fresh, fresh_optim, path)
        self._assert_model_equals(fresh, self._snapshot(model, optim)[0], "cached staging")

    def test_default_planners_explicitly(self):
        path = self.checkpoint_dir()
        model, optim = self._trained()
        saved, _ = self._snapshot(model, optim)
        dcp.save(get_model_state_dict(model), checkpoint_id=path, planner=dcp.DefaultSavePlanner())
        fresh, _ = self._trained(seed=1)
        msd = get_model_state_dict(fresh)
        dcp.load(msd, checkpoint_id=path, planner=dcp.DefaultLoadPlanner())
        self._assert_model_equals(fresh, saved, "default planners")

    def test_custom_planner_renames_keys(self):
        path = self.checkpoint_dir()
        model, optim = self._trained()
        saved, _ = self._snapshot(model, optim)
        dcp.save(get_model_state_dict(model), checkpoint_id=path, planner=RenamingSavePlanner())
        keys = set(dcp.FileSystemReader(path).read_metadata().state_dict_metadata)
        self.assertEqual(keys, {"v2/" + k for k in saved}, "keys on disk")
        fresh, _ = self._trained(seed=1)
        msd = get_model_state_dict(fresh)
        with self.assertRaisesRegex(CheckpointException, r"Missing key in checkpoint state_dict: net1\.0\.",
                                    msg="the unprefixed keys are not in the checkpoint"):
            dcp.load(copy.copy(msd), checkpoint_id=path)
        dcp.load(msd, checkpoint_id=path, planner=RenamingLoadPlanner())
        self._assert_model_equals(fresh, saved, "renaming planners")

    @parameterized.named_parameters(*(
        (f"threads{t}_{'file_per_rank' if single else 'file_per_item'}", t, single)
        for t in (1, 4) for single in (True, False)))
    def test_filesystem_writer_options(self, thread_count, single_file_per_rank):
        path = self.checkpoint_dir()
        model, optim = self._trained()
        saved, _ = self._snapshot(model, optim)
        dcp.save({"app": checkpointing.AppState(model, optim)}, storage_writer=dcp.FileSystemWriter(
            path, thread_count=thread_count, single_file_per_rank=single_file_per_rank))
        files = glob.glob(os.path.join(path, "*.distcp"))
        if single_file_per_rank:
            self.assertLessEqual(len(files), self.world_size * thread_count, files)
        else:
            self.assertGreater(len(files), self.world_size * thread_count, "one file per item")
        fresh, fresh_optim = self._trained(seed=1)
        checkpointing.load(fresh, fresh_optim, path)
        self._assert_model_equals(fresh, saved, "FileSystemWriter options")

    def test_stateful_non_tensor_state(self):
        path = self.checkpoint_dir()
        model, optim = self._trained()
        train = TrainState(step=42, epoch=3, batches_seen=1234)
        torch.manual_seed(100 + self.rank)  # RNG state differs per rank, as in real training
        saved_rng = torch.get_rng_state()
        dcp.save({"app": checkpointing.AppState(model, optim), "train": train}, checkpoint_id=path)

        fresh, fresh_optim = self._trained(seed=1)
        restored = TrainState()
        torch.manual_seed(999)
        dcp.load({"app": checkpointing.AppState(fresh, fresh_optim), "train": restored}, checkpoint_id=path)
        self.assertEqual((restored.step, restored.epoch, restored.batches_seen), (42, 3, 1234))
        self.assertTrue(torch.equal(torch.get_rng_state(), saved_rng), "this rank's RNG state restored")
        shared = [None] * self.world_size
        dist.all_gather_object(shared, restored.shared_rng)
        self.assertTrue(all(torch.equal(s, shared[0]) for s in self.nonempty(shared, "RNG states")),
                        "a tensor under a key every rank saves comes back identical on all ranks")
        model_sd = get_model_state_dict(model)
        for fqn, value in self.nonempty(get_model_state_dict(fresh), "the loaded model state dict").items():
            self.assert_tensor_matches(model_sd[fqn], value, fqn)

    def test_dcp_to_torch_save_and_back(self):
        dcp_dir, back_dir = self.checkpoint_dir("dcp"), self.checkpoint_dir("dcp_again")
        torch_file = os.path.join(os.path.dirname(dcp_dir), "full.pt")
        model, optim = self._trained()
        saved, _ = self._snapshot(model, optim)
        dcp.save(get_model_state_dict(model), checkpoint_id=dcp_dir)
        if self.rank == 0:  # offline conversions, one process
            dcp_to_torch_save(dcp_dir, torch_file)
            full = torch.load(torch_file, weights_only=True)
            self.assertEqual(sorted(full), sorted(saved), "keys of the torch.save file")
            for fqn, value in self.nonempty(full, "the torch.save file").items():
                self.assertTrue(torch.equal(value, saved[fqn]), f"{fqn} differs in the torch.save file")
            torch_save_to_dcp(torch_file, back_dir)
        dist.barrier()
        fresh, _ = self._trained(seed=1)
        msd = get_model_state_dict(fresh)
        dcp.load(msd, checkpoint_id=back_dir)
        self._assert_model_equals(fresh, saved, "torch.save -> DCP")

    def test_meta_device_init_then_load(self):
        path = self.checkpoint_dir()
        model, optim = self._trained()
        saved, _ = self._snapshot(model, optim)
        dcp.save(get_model_state_dict(model), checkpoint_id=path)
        with torch.device("meta"):
            meta_model = dummy_model(False, seed=1)
        meta_model = parallelisms.parallelize(meta_model, "fsdp2", self.device)
        meta_model.to_empty(device=self.device)
        msd = get_model_state_dict(meta_model)
        dcp.load(msd, checkpoint_id=path)
        self._assert_model_equals(meta_model, saved, "meta-initialised model")
        self.assertTrue(all(p.device.type == self.device_type for p in meta_model.parameters()),
                        "parameters materialised")
