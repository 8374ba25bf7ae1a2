"""VerifyStateDictMixin on hand-made state dicts: what it must accept and what it must reject."""

import copy

import torch
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Shard
from torch.distributed.tensor import distribute_tensor

from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import VerifyStateDictMixin


def _dist_osd(model, optim):
    """DSD's optimizer state dict, deep-copied: for a plain module its state values alias the
    live optimizer state, so editing them would edit the reference too."""
    return copy.deepcopy(get_optimizer_state_dict(model, optim))


def _model_and_optim(freeze_first=False):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    if freeze_first:
        model[0].requires_grad_(False)
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    model(torch.rand(3, 4)).sum().backward()
    optim.step()
    return model, optim


class VerifyMsdTest(VerifyStateDictMixin, DistributedTestCase):

    def msd(self):
        torch.manual_seed(0)
        return {"a.weight": torch.rand(4, 3), "a.bias": torch.rand(4)}

    def test_equal_plain_tensors_pass(self):
        self.verify_msd(self.msd(), copy.deepcopy(self.msd()))

    def test_sharded_dtensor_is_gathered_before_comparison(self):
        mesh = init_device_mesh(self.device_type, (self.world_size,))
        msd = self.msd()
        dist_msd = {k: distribute_tensor(v.to(self.device), mesh, [Shard(0)]) for k, v in msd.items()}
        self.verify_msd(msd, dist_msd, offload_to_cpu=True)
        dist_msd["a.bias"] = distribute_tensor(torch.zeros(4, device=self.device), mesh, [Shard(0)])
        with self.assertRaisesRegex(AssertionError, "a.bias has mismatched values"):
            self.verify_msd(msd, dist_msd, offload_to_cpu=True)

    def test_changed_value_fails_naming_the_fqn(self):
        dist_msd = self.msd()
        dist_msd["a.weight"][0, 0] += 1
        with self.assertRaisesRegex(AssertionError, r"a\.weight has mismatched values \(max abs difference 1"):
            self.verify_msd(self.msd(), dist_msd)

    def test_shape_mismatch_fails(self):
        dist_msd = self.msd()
        dist_msd["a.bias"] = torch.rand(5)
        with self.assertRaisesRegex(AssertionError, "a.bias: shape differs"):
            self.verify_msd(self.msd(), dist_msd)

    def test_missing_and_unexpected_keys_fail(self):
        dist_msd = self.msd()
        del dist_msd["a.bias"]
        with self.assertRaisesRegex(AssertionError, r"missing.*a\.bias"):
            self.verify_msd(self.msd(), dist_msd)
        dist_msd = dict(self.msd(), extra=torch.zeros(1))
        with self.assertRaisesRegex(AssertionError, r"not the reference.*extra"):
            self.verify_msd(self.msd(), dist_msd)

    def test_ignore_frozen_params_allows_only_frozen_keys_to_be_missing(self):
        msd = self.msd()
        msd["a.bias"].requires_grad_(False)
        msd["a.weight"].requires_grad_(True)
        options = StateDictOptions(ignore_frozen_params=True)
        self.verify_msd(msd, {"a.weight": msd["a.weight"].detach().clone()}, options)
        with self.assertRaisesRegex(AssertionError, r"trainable FQNs missing.*a\.weight"):
            self.verify_msd(msd, {"a.bias": msd["a.bias"].clone()}, options)


class VerifyOsdTest(VerifyStateDictMixin, DistributedTestCase):

    def test_dsd_optimizer_state_dict_matches(self):
        model, optim = _model_and_optim()
        self.verify_osd(model, optim, optim.state_dict(), _dist_osd(model, optim))

    def test_changed_state_fails_naming_fqn_and_key(self):
        model, optim = _model_and_optim()
        dist_osd = _dist_osd(model, optim)
        dist_osd["state"]["2.weight"]["exp_avg"] = dist_osd["state"]["2.weight"]["exp_avg"] + 1
        with self.assertRaisesRegex(AssertionError, r"2\.weight\.exp_avg has mismatched values"):
            self.verify_osd(model, optim, optim.state_dict(), dist_osd)

    def test_changed_step_fails(self):
        model, optim = _model_and_optim()
        dist_osd = _dist_osd(model, optim)
        dist_osd["state"]["0.bias"]["step"] = dist_osd["state"]["0.bias"]["step"] + 5
        with self.assertRaisesRegex(AssertionError, r"0\.bias\.step"):
            self.verify_osd(model, optim, optim.state_dict(), dist_osd)

    def test_changed_hyperparameter_fails(self):
        model, optim = _model_and_optim()
        dist_osd = _dist_osd(model, optim)
        dist_osd["param_groups"][0]["lr"] = 0.5
        with self.assertRaisesRegex(AssertionError, r"param_groups\[0\]\['lr'\] differs"):
            self.verify_osd(model, optim, optim.state_dict(), dist_osd)

    def test_frozen_parameters_outside_the_optimizer_are_allowed(self):
        model, optim = _model_and_optim(freeze_first=True)
        dist_osd = _dist_osd(model, optim)
        self.assertNotIn("0.weight", dist_osd["state"])
        self.verify_osd(model, optim, optim.state_dict(), dist_osd)

    def test_flattened_param_groups_are_regrouped(self):
        model, optim = _model_and_optim()
        dist_osd = _dist_osd(model, optim)
        group = dist_osd["param_groups"][0]
        dist_osd["param_groups"] = [dict(group, params=[fqn]) for fqn in group["params"]]
        self.verify_osd(model, optim, optim.state_dict(), dist_osd)
        dist_osd["param_groups"][1]["lr"] = 1.0
        with self.assertRaisesRegex(AssertionError, "hyperparameters differ"):
            self.verify_osd(model, optim, optim.state_dict(), dist_osd)

    def test_flattened_optimizer_state_dict_is_unflattened(self):
        model, optim = _model_and_optim()
        nested = _dist_osd(model, optim)
        flat = {f"state.{fqn}.{k}": v for fqn, s in nested["state"].items() for k, v in s.items()}
        flat.update({f"param_groups.{fqn}.{k}": v for g in nested["param_groups"] for fqn in g["params"]
                     for k, v in g.items() if k != "params"})
        self.verify_osd(model, optim, optim.state_dict(), flat)
        flat["state.2.bias.exp_avg"] = flat["state.2.bias.exp_avg"] * 3 + 1
        with self.assertRaisesRegex(AssertionError, r"2\.bias\.exp_avg has mismatched values"):
            self.verify_osd(model, optim, optim.state_dict(), flat)

    def test_tuple_and_list_hyperparameters_compare_equal(self):
        model, optim = _model_and_optim()
        dist_osd = _dist_osd(model, optim)
        dist_osd["param_groups"][0]["betas"] = list(dist_osd["param_groups"][0]["betas"])
        self.verify_osd(model, optim, optim.state_dict(), dist_osd)
        dist_osd["param_groups"][0]["betas"] = [0.5, 0.999]
        with self.assertRaisesRegex(AssertionError, "betas"):
            self.verify_osd(model, optim, optim.state_dict(), dist_osd)

    def test_verify_by_load(self):
        model, optim = _model_and_optim()
        dist_osd = _dist_osd(model, optim)
        new_optim = torch.optim.Adam(model.parameters(), lr=0.01)
        self.verify_osd_by_load(model, optim, new_optim, copy.deepcopy(dist_osd))
        dist_osd["state"]["0.weight"]["exp_avg_sq"] = dist_osd["state"]["0.weight"]["exp_avg_sq"] * 2
        with self.assertRaisesRegex(AssertionError, r"exp_avg_sq"):
            self.verify_osd_by_load(model, optim, torch.optim.Adam(model.parameters(), lr=0.01), dist_osd)
