"""DSD across wrappers and state-dict kinds: FSDP1 (use_orig_params on/off), FSDP2, DDP and a
plain module; sharded / full / full+cpu_offload / flattened optimizer state dicts;
broadcast_from_rank0, strict=False, frozen and tied parameters, several param groups, and
Adam / AdamW / SGD with momentum. Every distributed state dict is checked against an
unsharded reference trained on the same inputs, with VerifyStateDictMixin.
"""

import copy

import torch
from absl.testing import parameterized
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.checkpoint.state_dict import set_model_state_dict
from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict
from torch.distributed.checkpoint.state_dict import set_state_dict

from models.dummy_models import dummy_model
from models.tied_weights import TiedEmbeddingModel
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.known_failures import affects
from testing.known_failures import known_wrong_result
from testing.state_dict_verify import VerifyStateDictMixin

KINDS = {
    "sharded": {},
    "full": {"full_state_dict": True},
    "full_cpu_offload": {"full_state_dict": True, "cpu_offload": True},
    "flattened_optim": {"flatten_optimizer_state_dict": True},
}
# Every wrapper x kind is a case; the ones torch cannot serve skip with the reason and the case
# that pins it (a combination left out silently would read as checked).
FSDP1_CPU_OFFLOAD_CRASHES = affects("2.13")
WRAPPER_X_KIND = tuple((f"{w}_{k}", w, k) for w in parallelisms.WRAPPERS for k in KINDS)
PINNED = "pinned by //dsd:crash_regressions_test"


def left_out(wrapper, kind, loading=False):
    """Why this (wrapper, state-dict kind) is not checked by a matrix case on this torch, or None."""
    if kind == "full_cpu_offload" and wrapper.startswith("fsdp1") and FSDP1_CPU_OFFLOAD_CRASHES:
        return f"FSDP1 + full_state_dict + cpu_offload crashes or fails rank 0 on this torch: {PINNED}"
    if kind == "full_cpu_offload" and wrapper == "fsdp1":
        return ("FSDP1 (use_orig_params) + full_state_dict + cpu_offload hands rank 0 wrong optimizer state on this "
                "torch: its model state is checked by test_fsdp1_full_cpu_offload_model_state, the optimizer state "
                "pinned by test_fsdp1_full_cpu_offload_optimizer_state")
    if loading and kind == "full_cpu_offload":
        return "a full cpu_offload state dict exists on rank 0 only: the other ranks have nothing to load"
    if loading and wrapper == "fsdp1" and kind == "flattened_optim":
        return f"FSDP1 set_state_dict(flatten_optimizer_state_dict=True) aborts rank 0 (mismatched collectives): {PINNED}"
    return None


# FSDP1 without use_orig_params flattens each unit into one FlatParameter: one requires_grad
# and one optimizer param group per unit (test_fsdp1_flat_params_limits checks both errors).
ORIG_PARAMS_WRAPPERS = tuple(w for w in parallelisms.WRAPPERS if w != "fsdp1_flat_params")
OPTIMIZERS = {
    "adam": lambda params: torch.optim.Adam(params, lr=0.01),
    "adamw": lambda params: torch.optim.AdamW(params, lr=0.01, weight_decay=0.1),
    "sgd_momentum": lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9),
}


def _named(*names):
    return tuple((n, n) for n in names)


class DsdWrappersTest(VerifyStateDictMixin, DistributedTestCase):

    def _pair(self, wrapper, make_model=lambda seed: dummy_model(False, seed), make_optim=OPTIMIZERS["adam"],
              seed=0, freeze=()):
        return parallelisms.reference_and_wrapped(make_model, wrapper, self.device, make_optim, seed, freeze)

    def _verify(self, reference, ref_optim, model, optim, options):
        msd, osd = get_state_dict(model, optim, options=options)
        self.verify_msd(reference, msd, options, model)
        self.verify_osd(reference, ref_optim, osd, options, model)

    def _skip_if_left_out(self, wrapper, kind, loading=False):
        why = left_out(wrapper, kind, loading)
        if why:
            self.skipTest(why)

    @parameterized.named_parameters(*WRAPPER_X_KIND)
    def test_state_dict_matches_reference(self, wrapper, kind):
        self._skip_if_left_out(wrapper, kind)
        reference, ref_optim, model, optim = self._pair(wrapper)
        self._verify(reference, ref_optim, model, optim, StateDictOptions(**KINDS[kind]))

    @parameterized.named_parameters(*WRAPPER_X_KIND)
    def test_set_state_dict_restores_saved_state(self, wrapper, kind):
        self._skip_if_left_out(wrapper, kind, loading=True)
        reference, ref_optim, model, optim = self._pair(wrapper)
        options = StateDictOptions(**KINDS[kind])
        msd, osd = copy.deepcopy(get_state_dict(model, optim, options=options))
        parallelisms.train(model, optim, [reference.get_input(self.device, seed=9)])  # move away
        set_state_dict(model, optim, model_state_dict=msd, optim_state_dict=osd, options=options)
        self._verify(reference, ref_optim, model, optim, options)

    @parameterized.named_parameters(*_named("fsdp1", "fsdp2"))
    def test_broadcast_from_rank0(self, wrapper):
        reference, ref_optim, _, _ = self._pair("plain")
        _, _, model, optim = self._pair(wrapper, seed=1)
        msd, osd = copy.deepcopy(get_state_dict(reference, ref_optim))
        if self.rank != 0:  # only rank 0 holds the checkpoint
            msd, osd = {}, {}
        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
        set_model_state_dict(model, msd, options=options)
        set_optimizer_state_dict(model, optim, osd, options=options)
        self._verify(reference, ref_optim, model, optim, StateDictOptions())
        self._verify(reference, ref_optim, model, optim, StateDictOptions(full_state_dict=True))

    @parameterized.named_parameters(*_named(*(w for w in parallelisms.WRAPPERS if w != "ddp")))
    def test_strict_false_reports_missing_and_unexpected_keys(self, wrapper):
        self.assertEqual(self._strict_false_keys(wrapper), (["net4.1.bias"], ["not.a.parameter"]))

    @known_wrong_result("for DDP, set_model_state_dict(strict=False) reports missing keys with DDP's "
                        "'module.' prefix, which DSD strips from the state dict's own keys",
                        wrong=(["module.net4.1.bias"], ["not.a.parameter"]),
                        right=(["net4.1.bias"], ["not.a.parameter"]))
    def test_strict_false_reports_missing_and_unexpected_keys_ddp(self):
        return self._strict_false_keys("ddp")

    def _strict_false_keys(self, wrapper):
        """(missing, unexpected) keys set_model_state_dict(strict=False) reports for a state dict
        without net4.1.bias and with an extra key; the model keeps its values."""
        _, _, model, _ = self._pair(wrapper)
        msd = get_model_state_dict(model)
        saved = copy.deepcopy(msd)
        msd.pop("net4.1.bias")
        msd["not.a.parameter"] = torch.zeros(1)
        with self.assertRaisesRegex(RuntimeError, "Unexpected key|Missing key"):
            set_model_state_dict(model, copy.copy(msd))
        result = set_model_state_dict(model, msd, options=StateDictOptions(strict=False))
        after = get_model_state_dict(model)
        for fqn, value in self.nonempty(saved, "the saved state dict").items():
            self.assert_tensor_matches(value, after[fqn], fqn)
        return list(result.missing_keys), list(result.unexpected_keys)

    @known_wrong_result("with full_state_dict=True, set_model_state_dict(strict=False) loads but reports "
                        "no missing keys (the sharded path reports them)", wrong=[], right=["net4.1.bias"])
    def test_strict_false_full_state_dict_reports_missing_keys(self):
        _, _, model, _ = self._pair("fsdp2")
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
        full.pop("net4.1.bias")
        result = set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, strict=False))
        return list(result.missing_keys)

    @known_wrong_result("FSDP1 (use_orig_params=True) get_state_dict(full_state_dict=True, cpu_offload=True) "
                        "hands rank 0 optimizer state that differs from the same full state dict without "
                        "cpu_offload: every exp_avg (it segfaults on torch 2.13, see crash_regressions_test)",
                        wrong=["net1.0.bias.exp_avg", "net1.0.weight.exp_avg", "net2.0.bias.exp_avg",
                               "net2.0.weight.exp_avg", "net3.bias.exp_avg", "net3.weight.exp_avg",
                               "net4.1.bias.exp_avg", "net4.1.weight.exp_avg"],
                        right=[], torch_versions="2.14")
    def test_fsdp1_full_cpu_offload_optimizer_state(self):
        if FSDP1_CPU_OFFLOAD_CRASHES:
            self.skipTest(f"segfaults rank 0 on this torch: {PINNED}")
        _, _, model, optim = self._pair("fsdp1")
        _, full = get_state_dict(model, optim, options=StateDictOptions(**KINDS["full"]))
        _, offloaded = get_state_dict(model, optim, options=StateDictOptions(**KINDS["full_cpu_offload"]))
        differing = [None]
        if self.rank == 0:
            differing = [sorted(f"{fqn}.{key}" for fqn, states in self.nonempty(full["state"], "optimizer state").items()
                                for key, value in states.items() if not torch.equal(value, offloaded["state"][fqn][key]))]
        torch.distributed.broadcast_object_list(differing, src=0)
        return differing[0]

    def test_fsdp1_full_cpu_offload_model_state(self):
        """The model half of FSDP1 (use_orig_params) full_state_dict + cpu_offload, which the matrix
        leaves out for its optimizer state: on rank 0, on CPU, equal to the reference."""
        if FSDP1_CPU_OFFLOAD_CRASHES:
            self.skipTest(f"segfaults rank 0 on this torch: {PINNED}")
        reference, _, model, optim = self._pair("fsdp1")
        options = StateDictOptions(**KINDS["full_cpu_offload"])
        msd, _ = get_state_dict(model, optim, options=options)
        self.verify_msd(reference, msd, options, model)

    def test_fsdp1_flat_params_limits(self):
        with self.assertRaisesRegex(ValueError, "uniform `requires_grad` when `use_orig_params=False`"):
            self._pair("fsdp1_flat_params", freeze=("net1.",))
        _, _, model, _ = self._pair("fsdp1_flat_params")
        self.assertLen(list(model.parameters()), 1, "one FlatParameter for the whole unit")

    @parameterized.named_parameters(*_named(*ORIG_PARAMS_WRAPPERS))
    def test_frozen_parameters(self, wrapper):
        reference, ref_optim, model, optim = self._pair(wrapper, freeze=("net1.",))
        options = StateDictOptions(ignore_frozen_params=True)
        msd, osd = get_state_dict(model, optim, options=options)
        self.assertNotIn("net1.0.weight", msd, "ignore_frozen_params keeps frozen parameters out")
        self.verify_msd(reference, msd, options, model)
        self.verify_osd(reference, ref_optim, osd, options, model)
        msd, _ = get_state_dict(model, optim)
        self.verify_msd(reference, msd, StateDictOptions(), model)

    @parameterized.named_parameters(*_named(*parallelisms.WRAPPERS))
    def test_tied_parameters(self, wrapper):
        reference, ref_optim, model, optim = self._pair(wrapper, make_model=TiedEmbeddingModel)
        for kind in ("sharded", "full"):
            options = StateDictOptions(**KINDS[kind])
            msd, osd = get_state_dict(model, optim, options=options)
            self.verify_msd(reference, msd, options, model)
            self.verify_osd(reference, ref_optim, osd, options, model)

    @parameterized.named_parameters(*_named(*ORIG_PARAMS_WRAPPERS))
    def test_multiple_param_groups(self, wrapper):
        def make_optim(params):
            params = list(params)
            return torch.optim.Adam([{"params": params[:3], "lr": 0.01}, {"params": params[3:], "lr": 0.05}])
        reference, ref_optim, model, optim = self._pair(wrapper, make_optim=make_optim)
        msd, osd = get_state_dict(model, optim)
        self.assertLen(osd["param_groups"], 2)
        self.verify_osd(reference, ref_optim, osd, StateDictOptions(), model)

    @parameterized.named_parameters(*(
        (f"{w}_{o}", w, o) for w in parallelisms.WRAPPERS for o in OPTIMIZERS))
    def test_optimizers(self, wrapper, optimizer):
        reference, ref_optim, model, optim = self._pair(wrapper, make_optim=OPTIMIZERS[optimizer])
        self._verify(reference, ref_optim, model, optim, StateDictOptions())
        new_optim = OPTIMIZERS[optimizer]([p for p in model.parameters() if p.requires_grad])
        self.verify_osd_by_load(model, optim, new_optim)
