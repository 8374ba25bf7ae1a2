"""Checks shared by the tensor-parallel and 2-D scenario modules: a layout's state dicts
against an unsharded reference, and DCP checkpoints saved on one layout and loaded on another.
Layouts are testing/parallelisms.LAYOUTS names: tp, fsdp2 (1-D) and fsdp2_tp, hsdp (2x2 meshes)."""

from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict

from models.dummy_models import EvenDummyModel
from testing import checkpointing
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import VerifyStateDictMixin


def kinds(layouts):
    """(name, layout, full) for the sharded and the full state dict of each layout."""
    return tuple((f"{l}_{k}", l, full) for l in layouts for k, full in (("sharded", False), ("full", True)))


def pairs(layouts, involving):
    """(name, save layout, load layout) for every ordered pair with a layout of `involving`."""
    return tuple((f"{a}_to_{b}", a, b) for a in layouts for b in layouts
                 if a != b and (a in involving or b in involving))


class LayoutChecks(VerifyStateDictMixin, DistributedTestCase):
    """Not collected by itself (imported); the scenario modules subclass it."""

    def trained(self, layout, seed=0):
        return parallelisms.reference_and_wrapped(EvenDummyModel, layout, self.device, seed=seed)

    def check_state_dict_matches_reference(self, layout, full):
        reference, ref_optim, model, optim = self.trained(layout)
        options = StateDictOptions(full_state_dict=full)
        msd, osd = get_state_dict(model, optim, options=options)
        self.verify_msd(reference, msd, options, model)
        self.verify_osd(reference, ref_optim, osd, options, model)

    def check_save_on_one_layout_load_on_another(self, save_layout, load_layout):
        path = self.checkpoint_dir()
        reference, ref_optim, model, optim = self.trained(save_layout)
        checkpointing.save(model, optim, path)
        _, _, target, target_optim = self.trained(load_layout, seed=1)
        checkpointing.load(target, target_optim, path)
        loaded_msd, loaded_osd = get_state_dict(target, target_optim)
        self.verify_msd(reference, loaded_msd, StateDictOptions(), target)
        self.verify_osd(reference, ref_optim, loaded_osd, StateDictOptions(), target)
