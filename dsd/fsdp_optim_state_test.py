"""FSDP model + optimizer saved with DCP; optimizer loaded with load_sharded_optimizer_state_dict.

Spec: PyTorch test/distributed/checkpoint/test_fsdp_optim_state.py (FsdpOptimStateCheckpoint).
"""

import torch
import torch.distributed.checkpoint as dcp
from absl.testing import parameterized
from torch.distributed._shard.sharded_tensor import ShardedTensor
from torch.distributed.checkpoint.optimizer import load_sharded_optimizer_state_dict
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import StateDictType

from models.world_size_scaled import WorldSizeScaledModel
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import gather_full


class FsdpOptimStateCheckpointTest(DistributedTestCase):

    def _create_model(self, seed=0):
        model = FSDP(WorldSizeScaledModel(self.world_size, seed=seed).to(self.device), device_id=self.device)
        FSDP.set_state_dict_type(model, StateDictType.SHARDED_STATE_DICT)
        return model, torch.optim.Adam(model.parameters(), lr=0.1)

    @parameterized.named_parameters(("default_load_planner", True), ("no_planner", False))
    def test_load_sharded_optimizer_state_dict(self, pass_planner):
        path = self.checkpoint_dir()
        model, optim = self._create_model()
        model(model.get_input(self.device, seed=self.rank)).sum().backward()
        optim.step()  # Adam creates its state lazily
        osd_before = FSDP.optim_state_dict(model, optim)
        dcp.save({"model": model.state_dict(), "optim": osd_before}, storage_writer=dcp.FileSystemWriter(path))

        model_2, optim_2 = self._create_model(seed=1)
        self.assertEqual(len(optim_2.state), 0, "fresh Adam has no state")
        state_dict = {"model": model_2.state_dict()}  # the optimizer cannot load with the model
        dcp.load(state_dict, storage_reader=dcp.FileSystemReader(path))
        model_2.load_state_dict(state_dict["model"])
        optim_state = load_sharded_optimizer_state_dict(
            model_state_dict=state_dict["model"],
            optimizer_key="optim",
            storage_reader=dcp.FileSystemReader(path),
            planner=dcp.DefaultLoadPlanner() if pass_planner else None,
        )
        for fqn, state in self.nonempty(optim_state["optim"]["state"], "loaded optimizer state").items():
            for key in ("exp_avg", "exp_avg_sq"):
                self.assertIsInstance(state[key], ShardedTensor, f"{fqn}.{key}: load_sharded_optimizer_state_dict "
                                      "returns ShardedTensors")
        optim_2.load_state_dict(FSDP.optim_state_dict_to_load(model_2, optim_2, optim_state["optim"]))
        osd_after = FSDP.optim_state_dict(model_2, optim_2)

        before, after = osd_before["state"], osd_after["state"]
        self.assertEqual(sorted(before), sorted(after), "FQNs with optimizer state")
        for fqn, state in self.nonempty(before, "optimizer state").items():
            self.assertEqual(sorted(state), sorted(after[fqn]), f"{fqn}: state keys")
            for key, value in state.items():
                got = after[fqn][key]
                if key == "step":
                    self.assertEqual(float(value), float(got), f"{fqn}.step")
                else:
                    self.assertTrue(torch.equal(gather_full(value), gather_full(got)), f"{fqn}.{key} differs after load")
        self.assertEqual(osd_before["param_groups"][0]["lr"], osd_after["param_groups"][0]["lr"], "lr")
        for fqn, value in self.nonempty(model.state_dict(), "model state dict").items():
            self.assertTrue(torch.equal(gather_full(value), gather_full(model_2.state_dict()[fqn])),
                            f"{fqn}: model weights differ after load")
