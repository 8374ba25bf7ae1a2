"""A small decoder-only transformer (models/transformer.py: tied embedding and head, RMSNorm and
LayerNorm, a non-persistent rotary buffer, extra state) sharded per block the way training stacks
do it: state-dict parity of FSDP2 (per block) and FSDP1 (auto-wrap) with an unsharded reference,
DCP round trips between layouts followed by a training step, reshard_after_forward=False after a
forward, a meta-device model initialised from rank 0's full state dict, key names under
activation checkpointing and torch.compile, extra state, non-persistent buffers and the LR
scheduler's `initial_lr`.

Spec: PyTorch's test/distributed/checkpoint/test_state_dict.py (FSDP1 auto-wrap, FSDP2 per block,
compile, activation-checkpoint FQNs, extra_state, non-persistent buffers, broadcast_from_rank0,
meta-device models, initial_lr) and fsdp/test_fsdp_dsd.py (nested fully_shard parity,
reshard_after_forward=False after forward).
"""

import copy

import torch
import torch.distributed.checkpoint as dcp
from absl.testing import parameterized
from torch.distributed.checkpoint.metadata import BytesStorageMetadata
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.checkpoint.state_dict import set_model_state_dict
from torch.distributed.checkpoint.state_dict import set_state_dict
from torch.distributed.tensor import DTensor
from torch.distributed.tensor import Shard

from dsd import transformer_checks
from dsd.transformer_checks import SHARDED
from models import transformer
from testing import checkpointing
from testing import parallelisms
from testing.parallelisms import Trained
from testing.known_failures import known_failure
from testing.state_dict_verify import gather_full

FSDP_LAYOUTS = ("fsdp2", "fsdp1")
ROUND_TRIPS = (("fsdp2", "fsdp2"), ("fsdp1", "fsdp1"), ("fsdp1", "fsdp2"), ("fsdp2", "fsdp1"),
               ("tp", "fsdp2"), ("fsdp2", "tp"))


def _stored_keys(path):
    return set(dcp.FileSystemReader(path).read_metadata().state_dict_metadata)


class ShardedStateDictTest(transformer_checks.TransformerCase):

    @parameterized.named_parameters(*(
        (f"{layout}_{kind}", layout, full)
        for layout in FSDP_LAYOUTS for kind, full in (("sharded", False), ("full", True))))
    def test_state_dict_matches_reference(self, layout, full):
        reference, ref_optim, model, optim = self.trained(layout)
        options = StateDictOptions(full_state_dict=full)
        msd, osd = get_state_dict(model, optim, options=options)
        self.assertTrue(torch.equal(gather_full(msd["output.weight"]),
                                    gather_full(msd["tok_embeddings.weight"])),
                        "output.weight: the tied head differs from tok_embeddings.weight")
        self.verify_msd(reference, msd, options, model)
        self.verify_osd(reference, ref_optim, osd, options, model)
        self.verify_osd_by_load(model, optim, transformer.adamw(model.parameters()), options)

    @parameterized.named_parameters(*((f"{a}_to_{b}", a, b) for a, b in ROUND_TRIPS))
    def test_dcp_round_trip(self, save_layout, load_layout):
        """Saved by one layout, loaded into a fresh model and optimizer of another, then (without
        TP on the loading side, see transformer_checks) one more training step alike."""
        path = self.checkpoint_dir()
        trained = self.trained(save_layout)
        checkpointing.save(trained.model, trained.optim, path)
        self.assert_no_wrapper_prefixes(_stored_keys(path), "stored keys")

        target = self.model(load_layout, seed=1)
        target_optim = transformer.adamw(target.parameters())  # a restart: no optimizer state yet
        checkpointing.load(target, target_optim, path)
        loaded = trained._replace(model=target, optim=target_optim)
        self.verify_state(loaded, f"saved by {save_layout}, loaded by {load_layout}")
        self.assert_tied(target, "after load")
        if not parallelisms.has_tp(load_layout):  # see transformer_checks: TP drifts in the last bits
            self.continue_training(loaded)

    def test_fsdp2_reshard_after_forward_false_after_a_forward(self):
        """With reshard_after_forward=False a forward leaves the blocks' parameters unsharded;
        the state dict taken then is still the sharded one, and a checkpoint saved then loads."""
        path = self.checkpoint_dir()
        trained = self.trained("fsdp2", reshard_after_forward=False)
        with torch.no_grad():
            trained.model(self.batches(1, first_seed=50)[0])
        wq = trained.model.layers["0"].attention.wq.weight
        self.assertNotIsInstance(wq, DTensor, "precondition: the forward left layers.0 unsharded")
        value = get_model_state_dict(trained.model)["layers.0.attention.wq.weight"]
        self.assertIsInstance(value, DTensor, "layers.0.attention.wq.weight: the state dict is not the sharded one")
        self.assertEqual(tuple(value.placements), (Shard(0),), "layers.0.attention.wq.weight placements")
        self.verify_state(trained, "after a forward")
        checkpointing.save(trained.model, trained.optim, path)

        target = self.model("fsdp2", seed=1, reshard_after_forward=False)
        target_optim = transformer.adamw(target.parameters())
        checkpointing.load(target, target_optim, path)
        self.verify_state(trained._replace(model=target, optim=target_optim), "after load")
        self.continue_training(trained, what="the saved model, after one more step")


class MetaDeviceInitTest(transformer_checks.TransformerCase):
    """A model built on the meta device, sharded, then given rank 0's full state dict (e.g. a
    consolidated checkpoint only rank 0 reads) with broadcast_from_rank0."""

    BROADCAST = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)

    def _reference(self):
        reference = self.model("plain")
        self.train(reference, transformer.adamw(reference.parameters()), self.batches(2))
        reference.softcap.cap = 12.0
        return reference

    def _meta_model(self, layout):
        with torch.device("meta"):
            model = transformer.Transformer(seed=5)
        return parallelisms.parallelize(model, layout, self.device)

    @parameterized.named_parameters(("fsdp2", "fsdp2"), ("fsdp2_tp", "fsdp2_tp"))
    def test_materialise_then_broadcast_rank0_full_state_dict(self, layout):
        reference = self._reference()
        model = self._meta_model(layout)
        model.to_empty(device=self.device)
        model.init_buffers()
        full = copy.deepcopy(reference.state_dict()) if self.rank == 0 else {}
        set_model_state_dict(model, full, options=self.BROADCAST)

        self.verify_msd(reference, get_model_state_dict(model), SHARDED, model)
        self.assert_tied(model, "after the broadcast")
        for name, buffer in reference.rope.named_buffers():
            self.assertTrue(torch.equal(getattr(model.rope, name), buffer), f"rope.{name} differs from the reference")
        if not parallelisms.has_tp(layout):
            self.continue_training(Trained(reference, transformer.adamw(reference.parameters()),
                                           model, transformer.adamw(model.parameters())), steps=2)

    @known_failure(KeyError, r"^KeyError: \d+$",
                   "set_model_state_dict(full_state_dict=True, broadcast_from_rank0=True) into a meta-device "
                   "FSDP2 model loads with assign=True, which unties output.weight from tok_embeddings.weight; an "
                   "optimizer built then holds both, FSDP2 re-ties them at the first forward, and "
                   "get_optimizer_state_dict fails on the orphaned parameter (materialising with to_empty first works): "
                   "the optimizer's param group names a parameter id get_optimizer_state_dict has no FQN for",
                   raised_in=("torch/distributed/checkpoint/state_dict.py:_get_optim_state_dict",
                              "torch/distributed/checkpoint/state_dict.py:<listcomp>"))
    def test_broadcast_into_a_meta_model_unties_the_head(self):
        reference = self._reference()
        model = self._meta_model("fsdp2")
        full = copy.deepcopy(reference.state_dict()) if self.rank == 0 else {}
        set_model_state_dict(model, full, options=self.BROADCAST)
        self.assertTrue(model.rope.cos.is_meta, "non-persistent buffers are not in the state dict: still on meta")
        model.init_buffers(device=self.device)
        self.verify_msd(reference, get_model_state_dict(model), SHARDED, model)
        optim = transformer.adamw(model.parameters())
        self.train(model, optim, self.batches(1, first_seed=100))
        get_optimizer_state_dict(model, optim)


class WrapperKeyNamesTest(transformer_checks.TransformerCase):
    """Wrappers applied per block prefix parameter names (named_parameters), and never the keys
    DSD returns or DCP stores; a checkpoint loads across wrapped and unwrapped models."""

    def _check(self, layout, prefix, prepare=None, finish=None):
        path = self.checkpoint_dir()
        trained = self.trained(layout, prepare=prepare, finish=finish)
        self.assertTrue(any(prefix in n for n, _ in trained.model.named_parameters()),
                        f"precondition: parameter names contain {prefix}")
        self.verify_state(trained, f"{prefix} model")
        msd, osd = get_state_dict(trained.model, trained.optim)
        self.assert_no_wrapper_prefixes(list(msd) + list(osd["state"]), "DSD keys")
        checkpointing.save(trained.model, trained.optim, path)
        stored = _stored_keys(path)
        self.assert_no_wrapper_prefixes(stored, "stored keys")
        self.assertIn("app.model.layers.0.attention.wq.weight", stored)

        plain = self.model(layout, seed=1)
        plain_optim = transformer.adamw(plain.parameters())
        checkpointing.load(plain, plain_optim, path)
        self.verify_state(trained._replace(model=plain, optim=plain_optim), "loaded without the wrappers")

        wrapped = self.model(layout, seed=1, prepare=prepare, finish=finish)
        wrapped_optim = transformer.adamw(wrapped.parameters())
        checkpointing.load(wrapped, wrapped_optim, path)
        self.verify_state(trained._replace(model=wrapped, optim=wrapped_optim), f"loaded into a {prefix} model")

    def test_activation_checkpointing_fsdp2(self):
        self._check("fsdp2", "_checkpoint_wrapped_module", prepare=transformer.apply_ac)

    def test_activation_checkpointing_fsdp1(self):
        self._check("fsdp1", "_checkpoint_wrapped_module", finish=transformer.apply_ac_inside_fsdp1_units)

    @known_failure(RuntimeError, r"Missing optimizer state for parameter 'layers\.0\._fsdp_wrapped_module\.",
                   "with checkpoint_wrapper outside FSDP1's units (layers.0._checkpoint_wrapped_module."
                   "_fsdp_wrapped_module.*: AC applied before FSDP1 auto-wrap), get_state_dict works but "
                   "set_state_dict cannot load even that same state dict back: it looks the optimizer state up "
                   "under a half-cleaned FQN (layers.0._fsdp_wrapped_module.*); AC inside the units works",
                   raised_in="torch/distributed/checkpoint/state_dict.py:_split_optim_state_dict")
    def test_activation_checkpointing_outside_fsdp1_units(self):
        trained = self.trained("fsdp1", prepare=transformer.apply_ac)
        self.verify_state(trained, "checkpoint_wrapper outside FSDP1 units")
        msd, osd = get_state_dict(trained.model, trained.optim)
        set_state_dict(trained.model, transformer.adamw(trained.model.parameters()), model_state_dict=msd,
                       optim_state_dict=osd)

    def test_torch_compile_and_activation_checkpointing_fsdp2(self):
        """torchtitan's order: activation checkpointing, torch.compile per block, fully_shard."""
        self._check("fsdp2", "_orig_mod", prepare=lambda m: transformer.apply_compile(transformer.apply_ac(m)))


class NonParameterStateTest(transformer_checks.TransformerCase):

    @parameterized.named_parameters(("fsdp2", "fsdp2"), ("fsdp1", "fsdp1"))
    def test_extra_state(self, layout):
        path = self.checkpoint_dir()
        trained = self.trained(layout)
        trained.model.softcap.cap = trained.reference.softcap.cap = 12.0
        msd = get_model_state_dict(trained.model)
        self.assertEqual(msd["softcap._extra_state"], {"cap": 12.0}, "softcap._extra_state")
        self.verify_msd(trained.reference, msd, SHARDED, trained.model)
        checkpointing.save(trained.model, trained.optim, path)
        stored = dcp.FileSystemReader(path).read_metadata().state_dict_metadata
        # DCP flattens a dict-valued extra state into one bytes entry per item.
        self.assertIsInstance(stored.get("app.model.softcap._extra_state.cap"), BytesStorageMetadata,
                              f"softcap._extra_state.cap stored as bytes; stored keys: {sorted(stored)}")

        target = self.model(layout, seed=1)
        target_optim = transformer.adamw(target.parameters())
        checkpointing.load(target, target_optim, path)
        self.assertEqual(target.softcap.cap, 12.0, "softcap._extra_state: set_extra_state not applied")
        tokens = self.batches(1, first_seed=7)[0]
        with torch.no_grad():
            self.assertTrue(torch.equal(target(tokens), trained.reference(tokens)), "logits differ after load")

    @parameterized.named_parameters(("fsdp2", "fsdp2"), ("fsdp1", "fsdp1"))
    def test_non_persistent_buffers_are_neither_saved_nor_loaded(self, layout):
        path = self.checkpoint_dir()
        trained = self.trained(layout)
        msd = get_model_state_dict(trained.model)
        self.assertEqual(sorted(k for k in msd if k.startswith("rope.")), [], "rope buffers in the DSD state dict")
        checkpointing.save(trained.model, trained.optim, path)
        stored = sorted(k for k in _stored_keys(path) if ".rope." in k)
        self.assertEqual(stored, [], "non-persistent rope buffers stored in the checkpoint")

        target = self.model(layout, seed=1)
        target_optim = transformer.adamw(target.parameters())
        with torch.no_grad():
            target.rope.cos.fill_(7.0)
        checkpointing.load(target, target_optim, path)
        self.assertTrue(bool((target.rope.cos == 7.0).all()), "rope.cos: a load wrote a non-persistent buffer")
        target.init_buffers()
        self.verify_state(trained._replace(model=target, optim=target_optim), "after load")
        self.continue_training(trained._replace(model=target, optim=target_optim))

    @parameterized.named_parameters(("fsdp2", "fsdp2"), ("fsdp1", "fsdp1"))
    def test_lr_scheduler_and_initial_lr(self, layout):
        """The usual restart: model, optimizer and scheduler built, then the checkpoint loaded into
        them (the scheduler before the optimizer's state, as torch.optim documents)."""
        path = self.checkpoint_dir()
        batches = self.batches(3)
        model = self.model(layout)
        optim = transformer.adamw(model.parameters())
        scheduler = transformer.cosine_warmup(optim)
        self.train(model, optim, batches, scheduler)
        reference = self.model("plain")
        ref_optim = transformer.adamw(reference.parameters())
        ref_scheduler = transformer.cosine_warmup(ref_optim)
        self.train(reference, ref_optim, batches, ref_scheduler)
        dcp.save({"app": checkpointing.AppState(model, optim), "lr_scheduler": scheduler}, checkpoint_id=path)

        target = self.model(layout, seed=1)
        target_optim = transformer.adamw(target.parameters())
        target_scheduler = transformer.cosine_warmup(target_optim)
        dcp.load({"app": checkpointing.AppState(target, target_optim), "lr_scheduler": target_scheduler},
                 checkpoint_id=path)
        for i, (group, ref_group) in enumerate(zip(self.nonempty(target_optim.param_groups, "param groups"),
                                                   ref_optim.param_groups)):
            for key in ("lr", "initial_lr"):
                self.assertEqual(group.get(key), ref_group[key], f"param_groups[{i}][{key!r}] after load")
        self.assertEqual(target_scheduler.last_epoch, ref_scheduler.last_epoch, "lr_scheduler.last_epoch")
        self.assertEqual(target_scheduler.get_last_lr(), ref_scheduler.get_last_lr(), "lr_scheduler last lr")
        loaded = Trained(reference, ref_optim, target, target_optim)
        self.verify_state(loaded, "after load")
        self.continue_training(loaded, steps=2, scheduler=target_scheduler, ref_scheduler=ref_scheduler)
        self.assertEqual(target_optim.param_groups[0]["lr"], ref_optim.param_groups[0]["lr"], "lr after two more steps")
