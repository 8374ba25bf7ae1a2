"""Tensor parallel (colwise/rowwise DTensors) and FSDP2 on 1-D meshes: state dicts against a
reference, and DCP checkpoints across the two layouts."""

from absl.testing import parameterized
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.tensor import DTensor
from torch.distributed.tensor import Replicate
from torch.distributed.tensor import Shard

from dsd import layout_checks

LAYOUTS_1D = ("tp", "fsdp2")


class TensorParallelTest(layout_checks.LayoutChecks):

    def test_tp_shards_colwise_then_rowwise(self):
        _, _, model, optim = self.trained("tp")
        msd, _ = get_state_dict(model, optim)
        self.assertEqual(tuple(msd["net1.0.weight"].placements), (Shard(0),), "colwise weight")
        self.assertEqual(tuple(msd["net2.0.weight"].placements), (Shard(1),), "rowwise weight")
        self.assertIsInstance(msd["net2.0.bias"], DTensor)
        self.assertEqual(tuple(msd["net2.0.bias"].placements), (Replicate(),), "rowwise bias")

    @parameterized.named_parameters(*layout_checks.kinds(LAYOUTS_1D))
    def test_state_dict_matches_reference(self, layout, full):
        self.check_state_dict_matches_reference(layout, full)

    @parameterized.named_parameters(*layout_checks.pairs(LAYOUTS_1D, LAYOUTS_1D))
    def test_save_on_one_layout_load_on_another(self, save_layout, load_layout):
        self.check_save_on_one_layout_load_on_another(save_layout, load_layout)
