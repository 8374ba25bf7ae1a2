"""What the transformer scenario modules share: a trained, sharded models.transformer model with
its unsharded reference, and checks of a model's state against that reference.

    trained = self.trained("fsdp2")           # Trained(reference, ref_optim, model, optim)
    self.verify_state(trained, "after load")  # sharded DSD state dicts vs the reference
    self.continue_training(trained)           # one more step on both, then verify_state

The reference is an unsharded Transformer trained on the same batches. FSDP layouts reproduce it
bit for bit (every rank sees the same batch, so averaged gradients are exact); tensor parallelism
sums partial products in another order and drifts in the last bits (about 3e-5 relative after
two AdamW steps), beyond the mixin's allclose, so for layouts with TP the reference is the
trained model's own full state loaded into an unsharded copy (unsharded_copy), and the checks
of such cases are about checkpointing, not about TP's numerics.
"""

import os

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict

from models import transformer
from testing import checkpointing
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.parallelisms import Trained
from testing.parallelisms import has_tp
from testing.parallelisms import trainable
from testing.state_dict_verify import VerifyStateDictMixin
from testing.state_dict_verify import fqn_by_param_id

SHARDED = StateDictOptions()
FULL = StateDictOptions(full_state_dict=True)

def load_full_optim_state(reference, ref_optim, full_osd):
    """A DSD full optimizer state dict (FQN keys) loaded into `ref_optim`, the plain optimizer of
    the unsharded `reference` (parameter-index keys), without going through DSD."""
    pid = {fqn: i for i, fqn in fqn_by_param_id(reference, ref_optim).items()}
    groups = [dict(g, params=[pid[fqn] for fqn in g["params"]]) for g in full_osd["param_groups"]]
    ref_optim.load_state_dict({"state": {pid[fqn]: s for fqn, s in full_osd["state"].items()}, "param_groups": groups})


class TransformerCase(VerifyStateDictMixin, DistributedTestCase):
    """Not collected by itself (imported); scenario modules subclass it."""

    def batches(self, steps, first_seed=0):
        return transformer.batches(transformer.TransformerConfig(), self.device, steps, first_seed)

    def train(self, model, optim, batches, scheduler=None):
        """parallelisms.train with the transformer's next-token loss."""
        parallelisms.train(model, optim, batches, transformer.next_token_loss, scheduler)

    def model(self, layout, seed=0, prepare=None, freeze=(), finish=None, **kwargs):
        """A fresh Transformer(seed): `prepare` (e.g. activation checkpointing) and `freeze` (FQN
        prefixes) applied before sharding it as `layout` ("plain" leaves it unsharded), `finish`
        after."""
        module = transformer.Transformer(seed)
        for name, p in module.named_parameters():
            if name.startswith(tuple(freeze)):
                p.requires_grad_(False)
        if prepare is not None:
            module = prepare(module)
        if layout == "plain":
            return module.to(self.device)
        module = parallelisms.parallelize(module, layout, self.device, **kwargs)
        return finish(module) if finish is not None else module

    def trained(self, layout, seed=0, steps=2, prepare=None, freeze=(), finish=None, make_optim=transformer.adamw,
                **kwargs):
        """Trained(reference, ref_optim, model, optim): `layout` and its unsharded reference, each
        with its own optimizer, trained on the same `steps` batches (see the module docstring)."""
        model = self.model(layout, seed, prepare, freeze, finish, **kwargs)
        optim = make_optim(trainable(model))
        self.train(model, optim, self.batches(steps))
        if has_tp(layout):
            reference, ref_optim = self.unsharded_copy(model, optim, make_optim, freeze)
        else:
            reference = self.model("plain", seed, freeze=freeze)
            ref_optim = make_optim(trainable(reference))
            self.train(reference, ref_optim, self.batches(steps))
        return Trained(reference, ref_optim, model, optim)

    def unsharded_copy(self, model, optim, make_optim=transformer.adamw, freeze=()):
        """An unsharded Transformer and optimizer holding `model`'s and `optim`'s full state."""
        full_msd, full_osd = get_state_dict(model, optim, options=FULL)
        reference = self.model("plain", seed=99, freeze=freeze)
        reference.load_state_dict(full_msd)
        ref_optim = make_optim(trainable(reference))
        load_full_optim_state(reference, ref_optim, full_osd)
        return reference, ref_optim

    def verify_state(self, trained, what=""):
        """The model's and optimizer's sharded DSD state dicts match the reference's, FQN by FQN
        (AssertionError messages name the FQN; `what` says which step of the scenario)."""
        msd, osd = get_state_dict(trained.model, trained.optim)
        try:
            self.verify_msd(trained.reference, msd, SHARDED, trained.model)
            self.verify_osd(trained.reference, trained.ref_optim, osd, SHARDED, trained.model)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}" if what else str(e)) from None

    def continue_training(self, trained, steps=1, what="after one more step", scheduler=None, ref_scheduler=None):
        """One more step for the model and the reference, then verify_state: a loaded checkpoint
        that only looks right (a lost optimizer step count, a broken tie, an un-restored learning
        rate) trains differently."""
        batches = self.batches(steps, first_seed=100)
        self.train(trained.model, trained.optim, batches, scheduler)
        self.train(trained.reference, trained.ref_optim, batches, ref_scheduler)
        self.verify_state(trained, what)

    def assert_tied(self, model, what):
        self.assertIs(model.output.weight, model.tok_embeddings.weight,
                      f"{what}: output.weight is no longer tok_embeddings.weight (the tie is broken)")

    # Across world sizes (dist_py_test phases): phase 0 saves, phase 1 loads ------------------

    def check_reshard(self, save_layout, load_layout):
        """Phase 0 trains `save_layout`, saves model + optimizer with DCP and, beside it, its
        unsharded reference; phase 1 loads the checkpoint into a fresh `load_layout` model at its
        own world size and checks it against that reference (and, without TP, one more step).
        Returns the loaded Trained in phase 1, None in phase 0."""
        path = self.checkpoint_dir()
        reference_file = os.path.join(path, "reference.pt")
        if self.phase == 0:
            trained = self.trained(save_layout)
            trained.model.softcap.cap = trained.reference.softcap.cap = 12.0
            self.verify_state(trained, f"{save_layout} before saving")
            checkpointing.save(trained.model, trained.optim, path)
            if self.rank == 0:
                torch.save({"model": trained.reference.state_dict(), "optim": trained.ref_optim.state_dict()},
                           reference_file)
            dist.barrier()
            return None

        saved = torch.load(reference_file, weights_only=True)
        reference = self.model("plain", seed=99)
        reference.load_state_dict(saved["model"])
        ref_optim = transformer.adamw(reference.parameters())
        ref_optim.load_state_dict(saved["optim"])
        target = self.model(load_layout, seed=1)
        target_optim = transformer.adamw(target.parameters())
        checkpointing.load(target, target_optim, path)
        loaded = Trained(reference, ref_optim, target, target_optim)
        where = (f"saved by {save_layout} at {self.phase_world_sizes[0]} ranks, "
                 f"loaded by {load_layout} at {self.world_size}")
        self.verify_state(loaded, where)
        self.assert_tied(target, where)
        self.assertEqual(target.softcap.cap, 12.0, f"softcap._extra_state ({where})")
        if not has_tp(load_layout):
            self.continue_training(loaded, what=f"{where}, after one more step")
        return loaded
