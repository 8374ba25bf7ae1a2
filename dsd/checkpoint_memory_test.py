"""What a checkpoint costs each rank in memory at 2 ranks: peak bounds for dcp.save, dcp.load,
async_save, HF save, HF consolidation and dcp_to_torch_save, and leak checks over repeated
saves and async_saves (dsd/memory_checks.py: the bounds, each with what was measured).
"""

import os

import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import HuggingFaceStorageWriter
from torch.distributed.checkpoint._consolidate_hf_safetensors import consolidate_safetensors_files
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from torch.distributed.checkpoint.state_dict import get_model_state_dict

from dsd.memory_checks import REPEATS
from dsd.memory_checks import MemoryCase
from testing import memory


class CheckpointMemoryTest(MemoryCase):

    def setUp(self):
        super().setUp()
        self.model, self.optim = self.trained()
        self.local = memory.local_bytes(self.state(self.model, self.optim))
        self.path = self.checkpoint_dir()

    def test_save_peak(self):
        with memory.Peak(self.device) as peak:
            dcp.save(self.state(self.model, self.optim), checkpoint_id=self.path)
        self.assert_peak_within("dcp.save", peak, self.local)

    def test_load_peak(self):
        dcp.save(self.state(self.model, self.optim), checkpoint_id=self.path)
        target, target_optim = self.trained(seed=1)
        state = self.state(target, target_optim)
        with memory.Peak(self.device) as peak:
            dcp.load(state, checkpoint_id=self.path)
        self.assert_peak_within("dcp.load", peak, self.local)

    def test_async_save_peak_until_the_future_resolves(self):
        group = dist.new_group(backend="gloo")
        with memory.Peak(self.device) as peak:
            dcp.async_save(self.state(self.model, self.optim), checkpoint_id=self.path, process_group=group).result()
        self.assert_peak_within("dcp.async_save", peak, self.local)

    def test_repeated_saves_do_not_grow(self):
        sizes = memory.after_each(lambda: dcp.save(self.state(self.model, self.optim), checkpoint_id=self.path),
                                  REPEATS)
        self.assert_no_growth("dcp.save", sizes, self.local)

    def test_repeated_async_saves_do_not_grow(self):
        group = dist.new_group(backend="gloo")
        sizes = memory.after_each(lambda: dcp.async_save(self.state(self.model, self.optim), checkpoint_id=self.path,
                                                         process_group=group).result(), REPEATS)
        self.assert_no_growth("dcp.async_save", sizes, self.local)

    def test_hf_save_peak(self):
        """Each rank writes its shard file of the model state (HF safetensors, not consolidated)."""
        msd = get_model_state_dict(self.model)
        with memory.Peak(self.device) as peak:
            dcp.save(msd, storage_writer=HuggingFaceStorageWriter(self.path, save_distributed=True))
        self.assert_peak_within("HF save", peak, memory.local_bytes(msd))

    def test_hf_consolidation_peak(self):
        """Rank 0 consolidates the shard files into full safetensors files (what the writer's finish
        step calls with enable_consolidation=True), tensor by tensor."""
        msd = get_model_state_dict(self.model)
        dcp.save(msd, storage_writer=HuggingFaceStorageWriter(self.path, save_distributed=True))
        dist.barrier()
        if self.rank == 0:
            os.makedirs(os.path.join(self.path, "consolidated"))
            with memory.Peak(self.device) as peak:
                consolidate_safetensors_files(self.path, os.path.join(self.path, "consolidated"),
                                              fqn_to_index_mapping=dict.fromkeys(msd, 1))
            whole = memory.local_bytes(msd) * self.world_size
            self.assert_peak_within("HF consolidation", peak, whole, what=" (x the whole model state)")
        dist.barrier()

    def test_dcp_to_torch_save_peak(self):
        """One process converts the checkpoint into a torch.save file: the whole state, once."""
        dcp.save(self.state(self.model, self.optim), checkpoint_id=self.path)
        dist.barrier()
        full = self.local * self.world_size
        if self.rank == 0:
            with memory.Peak(self.device) as peak:
                dcp_to_torch_save(self.path, os.path.join(self.path, "full.pt"))
            self.assert_peak_within("dcp_to_torch_save", peak, full, what=" (x the whole state)")
        dist.barrier()
