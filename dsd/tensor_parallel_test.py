"""Tensor parallel (colwise/rowwise DTensors) and FSDP2 on 1-D meshes: state dicts against a
reference, and DCP checkpoints across the two layouts; uneven TP shards (odd widths split over
the ranks) saved and loaded, also into a model built on the meta device.

Spec: PyTorch's test_tp_checkpoint.py (test_tp_checkpoint, test_tp_checkpoint_load_on_meta_device)
and test_dtensor_resharding.py (1-D placement changes)."""


import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from absl.testing import parameterized
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.tensor import DTensor
from torch.distributed.tensor import Replicate
from torch.distributed.tensor import Shard
from torch.distributed.tensor.parallel import ColwiseParallel
from torch.distributed.tensor.parallel import RowwiseParallel
from torch.distributed.tensor.parallel import parallelize_module

from dsd import layout_checks
from models.dummy_models import UnevenDummyModel
from testing import checkpointing
from testing import parallelisms

LAYOUTS_1D = ("tp", "fsdp2")


def uneven_tp_plan():
    """Every Linear of UnevenDummyModel (5 -> 10 -> 15 -> 30 -> 5) split along a width of 5 or 15:
    3/2 and 8/7 over 2 ranks, 2/2/1/0 and 4/4/4/3 over 4 (DTensor shards like torch.chunk). The
    colwise layers hand DTensors on (use_local_output=False), so the rowwise ones see the true
    uneven global shape."""
    return {
        "net1.0": RowwiseParallel(input_layouts=Replicate()),  # weight [10, 5]: Shard(1)
        "net2.0": ColwiseParallel(use_local_output=False),  # weight [15, 10], bias [15]: Shard(0)
        "net3": RowwiseParallel(),  # weight [30, 15]: Shard(1)
        "net4.1": ColwiseParallel(output_layouts=Replicate()),  # weight [5, 30], bias [5]: Shard(0)
    }


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

    # Uneven TP shards ---------------------------------------------------------------------

    def trained_uneven(self, layout, seed=0):
        """Trained(reference, ref_optim, model, optim) of UnevenDummyModel: "uneven_tp"
        (uneven_tp_plan over every rank) or a parallelisms layout, trained like its reference."""
        if layout == "uneven_tp":
            layout = lambda module, device: parallelize_module(module, self.mesh(), uneven_tp_plan())  # noqa: E731
        return parallelisms.reference_and_wrapped(UnevenDummyModel, layout, self.device, seed=seed)

    def assert_uneven_shards(self, model):
        """Every sharded parameter's shards differ in size across the ranks and add up to its
        global size (the precondition of the uneven cases)."""
        sharded = {fqn: (p.placements[0].dim, p.shape[p.placements[0].dim], p.to_local().shape[p.placements[0].dim])
                   for fqn, p in model.named_parameters()
                   if isinstance(p, DTensor) and isinstance(p.placements[0], Shard)}
        everyone = [None] * self.world_size
        dist.all_gather_object(everyone, sharded)
        for fqn, (dim, size, _) in self.nonempty(sharded, "TP-sharded parameters").items():
            rows = [ranks[fqn][2] for ranks in everyone]
            self.assertEqual(sum(rows), size, f"{fqn}: shards {rows} along dim {dim} do not add up to {size}")
            self.assertGreater(len(set(rows)), 1, f"{fqn}: shards {rows} along dim {dim} are even")

    @parameterized.named_parameters(("into_uneven_tp", "uneven_tp"), ("into_fsdp2", "fsdp2"))
    def test_uneven_tp_shards_saved_and_loaded(self, load_layout):
        path = self.checkpoint_dir()
        reference, ref_optim, model, optim = self.trained_uneven("uneven_tp")
        self.assert_uneven_shards(model)
        checkpointing.save(model, optim, path)
        _, _, target, target_optim = self.trained_uneven(load_layout, seed=1)
        checkpointing.load(target, target_optim, path)
        loaded_msd, loaded_osd = get_state_dict(target, target_optim)
        self.verify_msd(reference, loaded_msd, StateDictOptions(), target)
        self.verify_osd(reference, ref_optim, loaded_osd, StateDictOptions(), target)

    def test_uneven_tp_checkpoint_loaded_into_a_meta_device_model(self):
        """Upstream's test_tp_checkpoint_load_on_meta_device: the TP model's own state_dict() saved
        with DCP; the same TP plan over a model built on the meta device; dcp.load fills its (meta)
        state dict, which DCP's planner materialises, and load_state_dict(assign=True) makes those
        tensors the parameters."""
        path = self.checkpoint_dir()
        reference, _, model, _ = self.trained_uneven("uneven_tp")
        self.assert_uneven_shards(model)
        dcp.save(model.state_dict(), checkpoint_id=path)

        with torch.device("meta"):
            meta_model = UnevenDummyModel(seed=1)
        target = parallelize_module(meta_model, self.mesh(), uneven_tp_plan())
        state_dict = target.state_dict()
        not_meta = sorted(fqn for fqn, value in self.nonempty(state_dict, "the meta model's state dict").items()
                          if not value.is_meta)
        self.assertEqual(not_meta, [], "precondition: the target's state dict is on the meta device")
        dcp.load(state_dict, checkpoint_id=path)
        target.load_state_dict(state_dict, assign=True)

        still_meta = sorted(fqn for fqn, p in target.named_parameters() if p.is_meta)
        self.assertEqual(still_meta, [], "parameters left on the meta device after the load")
        self.verify_msd(reference, target.state_dict(), StateDictOptions(), target)
