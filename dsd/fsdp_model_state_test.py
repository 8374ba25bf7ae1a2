"""A meta-device FSDP Linear saved with DCP and loaded into a differently initialised model,
on the same process group and resharded onto even/odd sub-groups.

Spec: PyTorch test/distributed/checkpoint/test_fsdp_model_state.py (FsdpModelStateCheckpoint).
"""

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import StateDictType

from testing.dist_test_case import DistributedTestCase


class FsdpModelStateCheckpointTest(DistributedTestCase):

    def _fsdp_linear(self, process_group=None):
        return FSDP(torch.nn.Linear(8, 8, device="meta"), device_id=self.device, process_group=process_group)

    def _check_save_then_load(self, process_group):
        path = self.checkpoint_dir()
        model = self._fsdp_linear()
        model(torch.rand(8, 8, device=self.device)).sum().backward()
        with FSDP.state_dict_type(model, StateDictType.SHARDED_STATE_DICT):
            dcp.save({"model": model.state_dict()}, storage_writer=dcp.FileSystemWriter(path),
                     planner=dcp.DefaultSavePlanner())

        model_2 = self._fsdp_linear(process_group)
        with FSDP.summon_full_params(model), FSDP.summon_full_params(model_2):
            self.assertFalse(torch.equal(model.weight, model_2.weight), "weight: models must start different")
            self.assertFalse(torch.equal(model.bias, model_2.bias), "bias: models must start different")

        with FSDP.state_dict_type(model_2, StateDictType.SHARDED_STATE_DICT):
            state_dict = {"model": model_2.state_dict()}
            dcp.load(state_dict, storage_reader=dcp.FileSystemReader(path), planner=dcp.DefaultLoadPlanner())
            model_2.load_state_dict(state_dict["model"])

        with FSDP.summon_full_params(model), FSDP.summon_full_params(model_2):
            self.assertTrue(torch.equal(model.weight, model_2.weight), "weight differs after load")
            self.assertTrue(torch.equal(model.bias, model_2.bias), "bias differs after load")

    def test_fsdp_model_state_no_resharding(self):
        self._check_save_then_load(process_group=None)

    def test_fsdp_model_state_with_resharding(self):
        # Every rank creates both groups (new_group is collective); each joins its parity's.
        even = dist.new_group([r for r in range(self.world_size) if r % 2 == 0])
        odd = dist.new_group([r for r in range(self.world_size) if r % 2 == 1])
        self._check_save_then_load(process_group=even if self.rank % 2 == 0 else odd)
