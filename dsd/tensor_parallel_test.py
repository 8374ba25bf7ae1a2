"""Tensor parallel (DTensor, parallelize_module colwise/rowwise) and 2-D layouts (FSDP2+TP on
a 2x2 mesh, HSDP replicate x shard): state dicts against an unsharded reference, and DCP
checkpoints saved on one layout and loaded on another.
"""

import copy

import torch
from absl.testing import parameterized
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.tensor import DTensor
from torch.distributed.tensor import Shard

from models.dummy_models import EvenDummyModel
from testing import checkpointing
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import VerifyStateDictMixin

LAYOUTS_1D = ("tp", "fsdp2")
LAYOUTS = LAYOUTS_1D + parallelisms.LAYOUTS_2D


def _kinds(layouts):
    return tuple((f"{l}_{k}", l, full) for l in layouts for k, full in (("sharded", False), ("full", True)))


def _pairs(layouts, involving):
    return tuple((f"{a}_to_{b}", a, b) for a in layouts for b in layouts
                 if a != b and (a in involving or b in involving))


class _LayoutChecks(VerifyStateDictMixin, DistributedTestCase):
    """The checks; the test classes below choose the layouts (by world size they need)."""

    def _pair(self, layout, seed=0):
        reference = EvenDummyModel(seed).to(self.device)
        model = parallelisms.wrap(copy.deepcopy(reference), layout, self.device)
        ref_optim = torch.optim.Adam(reference.parameters(), lr=0.01)
        optim = torch.optim.Adam(model.parameters(), lr=0.01)
        inputs = [reference.get_input(self.device, seed=s) for s in range(2)]
        parallelisms.train(reference, ref_optim, inputs)
        parallelisms.train(model, optim, inputs)
        return reference, ref_optim, model, optim

    def check_tp_shards_colwise_then_rowwise(self):
        _, _, model, optim = self._pair("tp")
        msd, _ = get_state_dict(model, optim)
        self.assertEqual(tuple(msd["net1.0.weight"].placements), (Shard(0),), "colwise weight")
        self.assertEqual(tuple(msd["net2.0.weight"].placements), (Shard(1),), "rowwise weight")
        self.assertIsInstance(msd["net2.0.bias"], DTensor)

    def check_state_dict_matches_reference(self, layout, full):
        reference, ref_optim, model, optim = self._pair(layout)
        options = StateDictOptions(full_state_dict=full)
        msd, osd = get_state_dict(model, optim, options=options)
        self.verify_msd(reference.state_dict(), msd, options)
        self.verify_osd(reference, ref_optim, ref_optim.state_dict(), osd)

    def check_save_on_one_layout_load_on_another(self, save_layout, load_layout):
        path = self.checkpoint_dir()
        reference, ref_optim, model, optim = self._pair(save_layout)
        checkpointing.save(model, optim, path)
        _, _, target, target_optim = self._pair(load_layout, seed=1)
        checkpointing.load(target, target_optim, path)
        loaded_msd, loaded_osd = get_state_dict(target, target_optim)
        self.verify_msd(reference.state_dict(), loaded_msd)
        self.verify_osd(reference, ref_optim, ref_optim.state_dict(), loaded_osd)


class TensorParallelTest(_LayoutChecks):
    """Tensor parallel (colwise/rowwise DTensors) and FSDP2 on 1-D meshes: state dicts against a reference, and DCP checkpoints across the two layouts."""

    def test_tp_shards_colwise_then_rowwise(self):
        self.check_tp_shards_colwise_then_rowwise()

    @parameterized.named_parameters(*_kinds(LAYOUTS_1D))
    def test_state_dict_matches_reference(self, layout, full):
        self.check_state_dict_matches_reference(layout, full)

    @parameterized.named_parameters(*_pairs(LAYOUTS_1D, LAYOUTS_1D))
    def test_save_on_one_layout_load_on_another(self, save_layout, load_layout):
        self.check_save_on_one_layout_load_on_another(save_layout, load_layout)


class TwoDimensionalTest(_LayoutChecks):
    """2-D layouts on 2x2 meshes (FSDP2+TP, HSDP): state dicts against a reference, and DCP checkpoints between every 1-D and 2-D layout."""

    @parameterized.named_parameters(*_kinds(parallelisms.LAYOUTS_2D))
    def test_state_dict_matches_reference(self, layout, full):
        self.check_state_dict_matches_reference(layout, full)

    @parameterized.named_parameters(*_pairs(LAYOUTS, parallelisms.LAYOUTS_2D))
    def test_save_on_one_layout_load_on_another(self, save_layout, load_layout):
        self.check_save_on_one_layout_load_on_another(save_layout, load_layout)
