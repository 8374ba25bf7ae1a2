"""VerifyStateDictMixin: compares a reference (single-process) model/optimizer state dict with
a distributed one, as PyTorch's common_state_dict.py does, for TestCase subclasses.

Distributed values (DTensor, ShardedTensor) are gathered to full tensors before comparison.
Optimizer state dicts are keyed by parameter id in the reference and by FQN in DSD's output;
the mixin maps between them through the model and optimizer. Every failure names the FQN.
Differences from upstream: parameters absent from the optimizer (frozen) are allowed, and
optimizer state values are compared against the distributed ones (upstream compared each
reference value with itself).
"""

import copy
import itertools

import torch
from torch.distributed._shard.sharded_tensor import ShardedTensor
from torch.distributed._state_dict_utils import _gather_state_dict
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import set_state_dict
from torch.distributed.tensor import DTensor

STATE, PARAM_GROUPS = "state", "param_groups"


def gather_full(value):
    """A DTensor or ShardedTensor as one full tensor on every rank; anything else unchanged."""
    if isinstance(value, (DTensor, ShardedTensor)):
        return _gather_state_dict({"v": value})["v"]
    return value


def unflatten_osd(osd):
    """An optimizer state dict from flatten_optimizer_state_dict=True ("state.<fqn>.<key>",
    "param_groups.<fqn>.<hyperparameter>") in the nested form, one param group per FQN."""
    if STATE in osd or not osd:
        return osd
    state, groups = {}, {}
    for flat_key, value in osd.items():
        section, _, rest = flat_key.partition(".")
        fqn, _, key = rest.rpartition(".")
        if section == STATE:
            state.setdefault(fqn, {})[key] = value
        elif section == PARAM_GROUPS:
            groups.setdefault(fqn, {})[key] = value
        else:
            raise AssertionError(f"unexpected key {flat_key!r} in a flattened optimizer state dict")
    return {STATE: state, PARAM_GROUPS: [dict(g, params=[fqn]) for fqn, g in groups.items()]}


def _plain(value):
    """Tuples and lists compare equal (a state dict round trip turns Adam's betas into a list)."""
    return list(value) if isinstance(value, tuple) else value


class VerifyStateDictMixin:
    """Assertions for state dicts; mix into a unittest.TestCase."""

    def assert_tensor_matches(self, ref, dist_value, fqn, offload_to_cpu=False):
        ref, full = gather_full(ref), gather_full(dist_value)
        self.assertIsInstance(full, torch.Tensor, f"{fqn}: distributed value is {type(dist_value).__name__}, not a tensor")
        if offload_to_cpu:
            ref, full = ref.cpu(), full.cpu()
        self.assertEqual(tuple(ref.shape), tuple(full.shape), f"{fqn}: shape differs")
        if not torch.allclose(ref.to(full.device), full):
            diff = (ref.to(full.device) - full).abs().max().item()
            self.fail(f"{fqn} has mismatched values (max abs difference {diff:.3g})")

    def assert_value_matches(self, ref, dist_value, fqn):
        if isinstance(ref, torch.Tensor):
            self.assert_tensor_matches(ref, dist_value, fqn)
        else:
            self.assertEqual(ref, dist_value, f"{fqn}: value differs")

    def verify_msd(self, msd, dist_msd, options=StateDictOptions(), offload_to_cpu=False):
        """Model state dicts: same keys (frozen ones may be missing with ignore_frozen_params)."""
        missing = sorted(set(msd) - set(dist_msd))
        unexpected = sorted(set(dist_msd) - set(msd))
        self.assertEqual(unexpected, [], f"FQNs in the distributed state dict but not the reference: {unexpected}")
        if options.ignore_frozen_params:
            trainable = [fqn for fqn in missing if msd[fqn].requires_grad]
            self.assertEqual(trainable, [], f"trainable FQNs missing with ignore_frozen_params: {trainable}")
        else:
            self.assertEqual(missing, [], f"FQNs missing from the distributed state dict: {missing}")
        for fqn, ref in msd.items():
            if fqn in dist_msd:
                self.assert_tensor_matches(ref, dist_msd[fqn], fqn, offload_to_cpu)

    def _fqn_by_param_id(self, model, optim):
        params = list(itertools.chain.from_iterable(g["params"] for g in optim.param_groups))
        pid_of = {id(p): i for i, p in enumerate(params)}
        return {pid_of[id(p)]: fqn for fqn, p in model.named_parameters() if id(p) in pid_of}

    def verify_osd(self, model, optim, osd, dist_osd):
        """Optimizer state dicts: `osd` from optim.state_dict() (param ids), `dist_osd` from DSD (FQNs)."""
        dist_osd = unflatten_osd(dist_osd)
        fqn_of = self._fqn_by_param_id(model, optim)
        ref_state = {fqn_of[pid]: s for pid, s in osd[STATE].items()}
        self.assertEqual(sorted(ref_state), sorted(dist_osd[STATE]), "FQNs with optimizer state differ")
        for fqn, states in ref_state.items():
            dist_states = dist_osd[STATE][fqn]
            self.assertEqual(sorted(states), sorted(dist_states), f"{fqn}: optimizer state keys differ")
            for key, value in states.items():
                self.assert_value_matches(value, dist_states[key], f"{fqn}.{key}")

        ref_groups = [dict(g, params=sorted(fqn_of[p] for p in g["params"])) for g in osd[PARAM_GROUPS]]
        dist_groups = [dict(g, params=sorted(g["params"])) for g in dist_osd[PARAM_GROUPS]]
        if len(dist_groups) != len(ref_groups):
            dist_groups = self._regroup(ref_groups, dist_groups)
        self.assertEqual(len(ref_groups), len(dist_groups), "number of param_groups differs")
        for i, (group, dist_group) in enumerate(zip(ref_groups, dist_groups)):
            self.assertEqual(sorted(group), sorted(dist_group), f"param_groups[{i}]: keys differ")
            for key, value in group.items():
                self.assertEqual(_plain(value), _plain(dist_group[key]),
                                 f"param_groups[{i}][{key!r}] differs (params {group['params']})")

    def _regroup(self, ref_groups, dist_groups):
        """Flattened param_groups (one per FQN) merged back into the reference's grouping."""
        by_fqn = {fqn: g for g in dist_groups for fqn in g["params"]}
        merged = []
        for group in ref_groups:
            missing = [f for f in group["params"] if f not in by_fqn]
            self.assertEqual(missing, [], f"FQNs missing from the distributed param_groups: {missing}")
            first = by_fqn[group["params"][0]]
            for fqn in group["params"]:
                other = {k: _plain(v) for k, v in by_fqn[fqn].items() if k != "params"}
                self.assertEqual(other, {k: _plain(v) for k, v in first.items() if k != "params"},
                                 f"{fqn}: hyperparameters differ within one reference param_group")
            merged.append(dict(copy.copy(first), params=sorted(group["params"])))
        return merged

    def verify_osd_by_load(self, model, optim, new_optim, dist_osd):
        """Loads the gathered `dist_osd` into `new_optim` through DSD and compares with `optim`."""
        set_state_dict(model, optimizers=new_optim, model_state_dict={},
                       optim_state_dict=_gather_state_dict(unflatten_osd(dist_osd)))
        self.assert_nested_equal(optim.state_dict(), new_optim.state_dict(), "optimizer.state_dict()")

    def assert_nested_equal(self, expected, actual, path):
        if isinstance(expected, dict):
            self.assertIsInstance(actual, dict, path)
            self.assertEqual(sorted(map(str, expected)), sorted(map(str, actual)), f"{path}: keys differ")
            for key in expected:
                self.assert_nested_equal(expected[key], actual[key], f"{path}[{key!r}]")
        elif isinstance(expected, (list, tuple)):
            self.assertIsInstance(actual, (list, tuple), path)
            self.assertEqual(len(expected), len(actual), f"{path}: length differs")
            for i, (e, a) in enumerate(zip(expected, actual)):
                self.assert_nested_equal(e, a, f"{path}[{i}]")
        elif isinstance(expected, torch.Tensor):
            self.assert_tensor_matches(expected, actual, path)
        else:
            self.assertEqual(_plain(expected), _plain(actual), f"{path} differs")
