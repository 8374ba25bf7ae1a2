"""VerifyStateDictMixin: what it must accept and, for every check, a break that it must reject."""

import copy
from unittest import mock

import torch
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import Replicate
from torch.distributed.tensor import distribute_tensor

from testing import state_dict_verify
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import VerifyStateDictMixin

SHARDED, FULL = StateDictOptions(), StateDictOptions(full_state_dict=True)


def _module(freeze_first=False):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    if freeze_first:
        model[0].requires_grad_(False)
    return model


def _trained(model):
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    model(torch.rand(3, 4, generator=torch.Generator().manual_seed(1))).sum().backward()
    optim.step()
    return optim


def _dist_osd(model, optim):
    """DSD's optimizer state dict, deep-copied: for a plain module its values alias the live
    optimizer state, so editing them would edit the reference too."""
    return copy.deepcopy(get_optimizer_state_dict(model, optim))


class _ReLUWithExtraState(nn.ReLU):

    def get_extra_state(self):
        return {"cap": 2.0}

    def set_extra_state(self, state):
        pass


class VerifyMsdTest(VerifyStateDictMixin, DistributedTestCase):

    def sharded(self):
        """(reference, fully_shard copy, its sharded state dict)."""
        reference = _module().to(self.device)
        model = fully_shard(copy.deepcopy(reference), mesh=self.mesh())
        return reference, model, get_model_state_dict(model)

    def test_plain_module_state_dict_passes(self):
        reference = _module()
        self.verify_msd(reference, copy.deepcopy(reference.state_dict()), SHARDED, reference)
        self.verify_msd(reference, copy.deepcopy(reference.state_dict()), FULL)

    def test_sharded_state_dict_passes_and_its_layout_is_checked(self):
        reference, model, msd = self.sharded()
        self.verify_msd(reference, msd, SHARDED, model)
        came_back_full = dict(msd, **{"0.weight": reference.state_dict()["0.weight"]})
        with self.assertRaisesRegex(AssertionError, r"0\.weight: the parameter is sharded .*holds a Tensor"):
            self.verify_msd(reference, came_back_full, SHARDED, model)
        replicated = dict(msd, **{"2.bias": distribute_tensor(reference.state_dict()["2.bias"], self.mesh(), [Replicate()])})
        with self.assertRaisesRegex(AssertionError, r"2\.bias: placements"):
            self.verify_msd(reference, replicated, SHARDED, model)
        with self.assertRaisesRegex(TypeError, "pass the wrapped model"):
            self.verify_msd(reference, msd, SHARDED)

    def test_a_full_state_dict_must_hold_plain_tensors(self):
        reference, model, msd = self.sharded()
        with self.assertRaisesRegex(AssertionError, r"a full state dict holds plain tensors, got DTensor"):
            self.verify_msd(reference, msd, FULL)

    def test_changed_value_fails_naming_the_fqn(self):
        reference, model, msd = self.sharded()
        changed = copy.deepcopy(get_model_state_dict(model, options=FULL))
        changed["0.weight"][0, 0] += 1
        with self.assertRaisesRegex(AssertionError, r"0\.weight has mismatched values \(max abs difference 1"):
            self.verify_msd(reference, changed, FULL)

    def test_shape_dtype_and_device_mismatches_fail(self):
        reference = _module()
        for key, value, message in (("0.bias", torch.rand(5), "0.bias: shape differs"),
                                    ("0.bias", torch.rand(8, dtype=torch.float64), "0.bias: dtype differs"),
                                    ("0.bias", torch.rand(8, device="meta"), r"0\.bias: on meta, expected cpu")):
            dist_msd = dict(copy.deepcopy(reference.state_dict()), **{key: value})
            with self.assertRaisesRegex(AssertionError, message):
                self.verify_msd(reference, dist_msd, FULL)

    def test_missing_and_unexpected_keys_fail(self):
        reference = _module()
        dist_msd = copy.deepcopy(reference.state_dict())
        del dist_msd["2.bias"]
        with self.assertRaisesRegex(AssertionError, r"missing.*2\.bias"):
            self.verify_msd(reference, dist_msd, FULL)
        with self.assertRaisesRegex(AssertionError, r"not the reference.*extra"):
            self.verify_msd(reference, dict(reference.state_dict(), extra=torch.zeros(1)), FULL)

    def test_ignore_frozen_params_reads_frozen_fqns_from_the_reference_module(self):
        reference = _module(freeze_first=True)
        options = StateDictOptions(full_state_dict=True, ignore_frozen_params=True)
        trainable = {k: v.clone() for k, v in reference.state_dict().items() if not k.startswith("0.")}
        self.verify_msd(reference, trainable, options)
        with self.assertRaisesRegex(AssertionError, r"trainable FQNs missing.*2\.weight"):
            self.verify_msd(reference, {k: v for k, v in trainable.items() if k != "2.weight"}, options)
        with self.assertRaisesRegex(AssertionError, r"frozen FQNs kept.*0\.bias"):
            self.verify_msd(reference, dict(trainable, **{"0.bias": reference.state_dict()["0.bias"]}), options)

    def test_full_cpu_offload_lives_on_rank_0_only(self):
        reference = _module()
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        if self.rank == 0:
            self.verify_msd(reference, copy.deepcopy(reference.state_dict()), options)
        else:
            self.verify_msd(reference, {}, options)
            with self.assertRaisesRegex(AssertionError, "rank 0 only"):
                self.verify_msd(reference, copy.deepcopy(reference.state_dict()), options)

    def test_an_empty_reference_fails(self):
        with self.assertRaisesRegex(AssertionError, "the reference state dict is empty"):
            self.verify_msd(nn.ReLU(), {}, FULL)

    def test_extra_state_is_compared_as_a_value(self):
        reference = _module()
        reference[1] = _ReLUWithExtraState()
        dist_msd = copy.deepcopy(reference.state_dict())
        self.assertEqual(dist_msd["1._extra_state"], {"cap": 2.0})
        self.verify_msd(reference, dist_msd, FULL)
        with self.assertRaisesRegex(AssertionError, r"1\._extra_state: non-tensor value differs"):
            self.verify_msd(reference, dict(dist_msd, **{"1._extra_state": {"cap": 3.0}}), FULL)


class VerifyOsdTest(VerifyStateDictMixin, DistributedTestCase):

    def test_dsd_optimizer_state_dict_matches(self):
        model = _module()
        optim = _trained(model)
        self.verify_osd(model, optim, _dist_osd(model, optim), SHARDED, model)

    def test_sharded_optimizer_state_layout_is_checked(self):
        reference = _module().to(self.device)
        model = fully_shard(copy.deepcopy(reference), mesh=self.mesh())
        ref_optim, optim = _trained(reference), _trained(model)
        dist_osd = get_optimizer_state_dict(model, optim)
        self.verify_osd(reference, ref_optim, dist_osd, SHARDED, model)
        full = get_optimizer_state_dict(model, optim, options=FULL)
        dist_osd["state"]["0.weight"]["exp_avg"] = full["state"]["0.weight"]["exp_avg"]
        with self.assertRaisesRegex(AssertionError, r"0\.weight\.exp_avg: the parameter is sharded"):
            self.verify_osd(reference, ref_optim, dist_osd, SHARDED, model)

    def test_changed_state_fails_naming_fqn_and_key(self):
        model = _module()
        optim = _trained(model)
        dist_osd = _dist_osd(model, optim)
        dist_osd["state"]["2.weight"]["exp_avg"] = dist_osd["state"]["2.weight"]["exp_avg"] + 1
        with self.assertRaisesRegex(AssertionError, r"2\.weight\.exp_avg has mismatched values"):
            self.verify_osd(model, optim, dist_osd, FULL)

    def test_changed_step_fails(self):
        model = _module()
        optim = _trained(model)
        dist_osd = _dist_osd(model, optim)
        dist_osd["state"]["0.bias"]["step"] = dist_osd["state"]["0.bias"]["step"] + 5
        with self.assertRaisesRegex(AssertionError, r"0\.bias\.step"):
            self.verify_osd(model, optim, dist_osd, FULL)

    def test_changed_hyperparameter_fails(self):
        model = _module()
        optim = _trained(model)
        dist_osd = _dist_osd(model, optim)
        dist_osd["param_groups"][0]["lr"] = 0.5
        with self.assertRaisesRegex(AssertionError, r"param_groups\[0\]\['lr'\] differs"):
            self.verify_osd(model, optim, dist_osd, FULL)

    def test_frozen_parameters_outside_the_optimizer_are_allowed(self):
        model = _module(freeze_first=True)
        optim = _trained(model)
        dist_osd = _dist_osd(model, optim)
        self.assertNotIn("0.weight", dist_osd["state"])
        self.verify_osd(model, optim, dist_osd, FULL)

    def test_flattened_param_groups_are_regrouped(self):
        model = _module()
        optim = _trained(model)
        dist_osd = _dist_osd(model, optim)
        group = dist_osd["param_groups"][0]
        dist_osd["param_groups"] = [dict(group, params=[fqn]) for fqn in group["params"]]
        self.verify_osd(model, optim, dist_osd, FULL)
        dist_osd["param_groups"][1]["lr"] = 1.0
        with self.assertRaisesRegex(AssertionError, "hyperparameters differ"):
            self.verify_osd(model, optim, dist_osd, FULL)

    def test_flattened_optimizer_state_dict_is_unflattened(self):
        model = _module()
        optim = _trained(model)
        nested = _dist_osd(model, optim)
        flat = {f"state.{fqn}.{k}": v for fqn, s in nested["state"].items() for k, v in s.items()}
        flat.update({f"param_groups.{fqn}.{k}": v for g in nested["param_groups"] for fqn in g["params"]
                     for k, v in g.items() if k != "params"})
        self.verify_osd(model, optim, flat, FULL)
        flat["state.2.bias.exp_avg"] = flat["state.2.bias.exp_avg"] * 3 + 1
        with self.assertRaisesRegex(AssertionError, r"2\.bias\.exp_avg has mismatched values"):
            self.verify_osd(model, optim, flat, FULL)

    def test_tuple_and_list_hyperparameters_compare_equal(self):
        model = _module()
        optim = _trained(model)
        dist_osd = _dist_osd(model, optim)
        dist_osd["param_groups"][0]["betas"] = list(dist_osd["param_groups"][0]["betas"])
        self.verify_osd(model, optim, dist_osd, FULL)
        dist_osd["param_groups"][0]["betas"] = [0.5, 0.999]
        with self.assertRaisesRegex(AssertionError, "betas"):
            self.verify_osd(model, optim, dist_osd, FULL)

    def test_an_empty_reference_optimizer_state_fails(self):
        model = _module()
        optim = torch.optim.Adam(model.parameters(), lr=0.01)  # no step: no state (DSD would create it)
        with self.assertRaisesRegex(AssertionError, "the reference optimizer state is empty"):
            self.verify_osd(model, optim, {"state": {}, "param_groups": []}, FULL)


class VerifyOsdByLoadTest(VerifyStateDictMixin, DistributedTestCase):

    def test_a_faithful_state_dict_loads_back(self):
        model = _module()
        optim = _trained(model)
        self.verify_osd_by_load(model, optim, torch.optim.Adam(model.parameters(), lr=0.01))

    def test_a_corrupted_copy_fails(self):
        model = _module()
        optim = _trained(model)

        def corrupted_copy(*args, **kwargs):
            osd = copy.deepcopy(get_optimizer_state_dict(*args, **kwargs))
            osd["state"]["0.weight"]["exp_avg_sq"] *= 2
            return osd

        with mock.patch.object(state_dict_verify, "get_optimizer_state_dict", corrupted_copy):
            with self.assertRaisesRegex(AssertionError, r"exp_avg_sq"):
                self.verify_osd_by_load(model, optim, torch.optim.Adam(model.parameters(), lr=0.01))

    def test_corruption_of_the_live_aliases_fails_too(self):
        """DSD returns aliases of a plain module's optimizer tensors: corrupting them in place
        corrupts the live optimizer, so only a snapshot taken before can see it."""
        model = _module()
        optim = _trained(model)

        def corrupted_in_place(*args, **kwargs):
            osd = get_optimizer_state_dict(*args, **kwargs)
            osd["state"]["0.weight"]["exp_avg_sq"].mul_(2)
            return osd

        with mock.patch.object(state_dict_verify, "get_optimizer_state_dict", corrupted_in_place):
            with self.assertRaisesRegex(AssertionError, r"exp_avg_sq"):
                self.verify_osd_by_load(model, optim, torch.optim.Adam(model.parameters(), lr=0.01))
