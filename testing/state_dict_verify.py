"""VerifyStateDictMixin: compares a reference (unsharded) model/optimizer with the state dicts a
distributed model produces, as PyTorch's common_state_dict.py does, for TestCase subclasses.

Every check can fail, and every failure names the FQN:
  - keys: the reference's FQNs; with ignore_frozen_params, frozen FQNs (from the reference's
    named_parameters(), not from detached state-dict tensors) may be absent, trainable ones not;
  - kind: full_state_dict gives plain tensors (on rank 0 only with cpu_offload); a sharded state
    dict gives each value the layout of the wrapped model's parameter (DTensor placements,
    FSDP1's Shard(0) DTensors or ShardedTensors, plain tensors for DDP and plain modules);
  - device: cpu_offload means CPU; otherwise the reference's device (compared, never hidden by .to());
  - values: distributed values are gathered to full tensors and compared with the reference;
    non-tensor values (a module's extra state) are compared as they are.
Optimizer state dicts are keyed by parameter id in the reference and by FQN in DSD's output;
the mixin maps between them through the models. verify_osd_by_load compares against a
snapshot taken before DSD runs (DSD returns aliases of the live tensors for plain models).
"""

import copy
import itertools

import torch
import torch.distributed as dist
from torch.distributed._shard.sharded_tensor import ShardedTensor
from torch.distributed._state_dict_utils import _gather_state_dict
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.tensor import DTensor
from torch.distributed.tensor import Shard

STATE, PARAM_GROUPS = "state", "param_groups"
FSDP1_SHARDED = "FSDP1: a Shard(0) DTensor (DeviceMesh) or a ShardedTensor"


def gather_full(value):
    """A DTensor or ShardedTensor as one full tensor on every rank; anything else unchanged."""
    if isinstance(value, (DTensor, ShardedTensor)):
        return _gather_state_dict({"v": value})["v"]
    return value


# What FSDP1, checkpoint_wrapper and torch.compile insert into parameter names; DDP prefixes "module.".
WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def clean_fqn(name):
    """A wrapped module's parameter name as the unwrapped module calls it."""
    for wrapper in WRAPPER_PREFIXES:
        name = name.replace(wrapper, "")
    return name[len("module."):] if name.startswith("module.") else name


def fqn_by_param_id(model, optim):
    """{parameter index in `optim`'s plain state dict: FQN in `model`}."""
    params = list(itertools.chain.from_iterable(g["params"] for g in optim.param_groups))
    pid_of = {id(p): i for i, p in enumerate(params)}
    return {pid_of[id(p)]: fqn for fqn, p in model.named_parameters() if id(p) in pid_of}


def sharding_of(model):
    """The expected layout of `model`'s sharded state-dict values: FSDP1_SHARDED for every FQN
    under FSDP1, else {fqn: the parameter's DTensor placements, or None for a plain tensor}."""
    if any(isinstance(m, FSDP) for m in model.modules()):
        return FSDP1_SHARDED
    return {clean_fqn(n): tuple(p.placements) if isinstance(p, DTensor) else None
            for n, p in model.named_parameters(remove_duplicate=False)}


def _expected(sharding, fqn):
    """The layout for `fqn`; a key no parameter is named after (renamed by a state-dict hook and
    _fqn_modifiers) takes the model's layout if every parameter has the same one."""
    if sharding == FSDP1_SHARDED or fqn in sharding:
        return sharding if sharding == FSDP1_SHARDED else sharding[fqn]
    layouts = set(sharding.values())
    if len(layouts) != 1:
        raise AssertionError(f"{fqn}: no parameter has this name and the model's layouts differ {layouts}")
    return layouts.pop()


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


def snapshot(value):
    """A deep copy whose tensors share no storage with the live ones."""
    return copy.deepcopy(value)


def _plain(value):
    """Tuples and lists compare equal (a state dict round trip turns Adam's betas into a list)."""
    return list(value) if isinstance(value, tuple) else value


class VerifyStateDictMixin:
    """Assertions for state dicts; mix into a DistributedTestCase."""

    def assert_layout(self, value, expected, fqn, full):
        """`value` is what a state dict of that kind must hold for a parameter of layout `expected`."""
        if full:
            self.assertIs(type(value), torch.Tensor,
                          f"{fqn}: a full state dict holds plain tensors, got {type(value).__name__}")
        elif expected == FSDP1_SHARDED:
            if isinstance(value, DTensor):
                self.assertEqual(tuple(value.placements), (Shard(0),), f"{fqn}: FSDP1 DTensor placements")
            else:
                self.assertIsInstance(value, ShardedTensor, f"{fqn}: FSDP1 sharded state dicts hold DTensors or "
                                      f"ShardedTensors, got {type(value).__name__}")
        elif expected is None:
            self.assertIs(type(value), torch.Tensor, f"{fqn}: the parameter is a plain tensor, the state dict "
                          f"holds a {type(value).__name__}")
        else:
            self.assertIsInstance(value, DTensor, f"{fqn}: the parameter is sharded {expected}, the state dict "
                                  f"holds a {type(value).__name__}")
            self.assertEqual(tuple(value.placements), expected, f"{fqn}: placements")

    def assert_tensor_matches(self, ref, dist_value, fqn, device=None):
        """Gathered `dist_value` equals gathered `ref`, on `device` (default: ref's device type)."""
        ref, full = gather_full(ref), gather_full(dist_value)
        self.assertIsInstance(full, torch.Tensor, f"{fqn}: distributed value is {type(dist_value).__name__}, not a tensor")
        expected = torch.device(device) if device is not None else ref.device
        self.assertEqual(full.device.type, expected.type, f"{fqn}: on {full.device}, expected {expected.type}")
        self.assertEqual(tuple(ref.shape), tuple(full.shape), f"{fqn}: shape differs")
        self.assertEqual(ref.dtype, full.dtype, f"{fqn}: dtype differs")
        ref = ref.to(full.device)  # same device type, checked above
        if not torch.equal(ref, full) and not torch.allclose(ref, full):
            diff = (ref - full).abs().max().item()
            self.fail(f"{fqn} has mismatched values (max abs difference {diff:.3g})")

    def assert_value_matches(self, ref, dist_value, fqn, device=None):
        if isinstance(ref, torch.Tensor):
            self.assert_tensor_matches(ref, dist_value, fqn, device)
        else:
            self.assertEqual(ref, dist_value, f"{fqn}: value differs")

    def assert_full_state_matches(self, reference, full_msd, full_osd, where):
        """Full model and optimizer state dicts (DSD's FQN-keyed form, e.g. loaded from a checkpoint)
        equal `reference` ({"model": ..., "optim": ...} in the same form), key for key."""
        self.assertEqual(sorted(full_msd), sorted(reference["model"]), where)
        for fqn, value in self.nonempty(reference["model"], "the reference model state").items():
            self.assert_tensor_matches(value, full_msd[fqn], f"{fqn} ({where})")
        self.assertEqual(sorted(full_osd["state"]), sorted(reference["optim"]["state"]), where)
        for fqn, states in self.nonempty(reference["optim"]["state"], "the reference optimizer state").items():
            for key, value in states.items():
                self.assert_value_matches(value, full_osd["state"][fqn][key], f"{fqn}.{key} ({where})")

    def _rank0_only(self, options, state_dict, what):
        """Full cpu_offload state dicts live on rank 0 only: True (after checking) on other ranks."""
        if options.full_state_dict and options.cpu_offload and dist.get_rank() != 0:
            self.assertFalse(state_dict.get(STATE, state_dict), f"{what}: full cpu_offload state lives on rank 0 only")
            return True
        return False

    def verify_msd(self, reference, dist_msd, options=StateDictOptions(), model=None):
        """`reference`: the unsharded module; `dist_msd`: a state dict of `model` (the wrapped
        module that produced it; needed for sharded state dicts, whose layout is checked)."""
        if self._rank0_only(options, dist_msd, "model state dict"):
            return
        msd = self.nonempty(reference.state_dict(), "the reference state dict")
        if not options.full_state_dict and model is None:
            raise TypeError("verify_msd: pass the wrapped model to check a sharded state dict's layout")
        sharding = sharding_of(model) if model is not None else {}
        frozen = {n for n, p in reference.named_parameters(remove_duplicate=False) if not p.requires_grad}
        missing = sorted(set(msd) - set(dist_msd))
        unexpected = sorted(set(dist_msd) - set(msd))
        self.assertEqual(unexpected, [], f"FQNs in the distributed state dict but not the reference: {unexpected}")
        if options.ignore_frozen_params:
            trainable_missing, frozen_kept = sorted(set(missing) - frozen), sorted(frozen & set(dist_msd))
            self.assertEqual(trainable_missing, [], f"trainable FQNs missing with ignore_frozen_params: {trainable_missing}")
            self.assertEqual(frozen_kept, [], f"frozen FQNs kept with ignore_frozen_params: {frozen_kept}")
        else:
            self.assertEqual(missing, [], f"FQNs missing from the distributed state dict: {missing}")
        device = "cpu" if options.cpu_offload else None
        for fqn in self.nonempty([f for f in msd if f in dist_msd], "FQNs to compare"):
            if not isinstance(msd[fqn], torch.Tensor):  # a module's extra state (get_extra_state)
                self.assertEqual(msd[fqn], dist_msd[fqn], f"{fqn}: non-tensor value differs")
                continue
            full = options.full_state_dict
            self.assert_layout(dist_msd[fqn], None if full else _expected(sharding, fqn), fqn, full)
            self.assert_tensor_matches(msd[fqn], dist_msd[fqn], fqn, device)

    def assert_no_wrapper_prefixes(self, keys, what):
        prefixed = sorted(k for k in keys if k != clean_fqn(k))
        self.assertEqual(prefixed, [], f"{what}: keys with wrapper prefixes {prefixed}")

    def verify_osd(self, reference, ref_optim, dist_osd, options=StateDictOptions(), model=None):
        """`dist_osd`: DSD's optimizer state dict (FQN keys) of `model`'s optimizer; compared with
        `ref_optim`, the optimizer of the unsharded `reference` (parameter-id keys)."""
        if self._rank0_only(options, dist_osd, "optimizer state dict"):
            return
        if not options.full_state_dict and model is None:
            raise TypeError("verify_osd: pass the wrapped model to check a sharded state dict's layout")
        sharding = sharding_of(model) if model is not None else {}
        osd = ref_optim.state_dict()
        dist_osd = unflatten_osd(dist_osd)
        fqn_of = fqn_by_param_id(reference, ref_optim)
        ref_state = self.nonempty({fqn_of[pid]: s for pid, s in osd[STATE].items()}, "the reference optimizer state")
        self.assertEqual(sorted(ref_state), sorted(dist_osd[STATE]), "FQNs with optimizer state differ")
        device = "cpu" if options.cpu_offload else None
        for fqn, states in ref_state.items():
            dist_states = dist_osd[STATE][fqn]
            self.assertEqual(sorted(states), sorted(dist_states), f"{fqn}: optimizer state keys differ")
            for key, value in self.nonempty(states, f"{fqn}: optimizer state").items():
                if isinstance(value, torch.Tensor) and value.dim() > 0:
                    full = options.full_state_dict
                    self.assert_layout(dist_states[key], None if full else _expected(sharding, fqn), f"{fqn}.{key}", full)
                self.assert_value_matches(value, dist_states[key], f"{fqn}.{key}", device)

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

    def verify_osd_by_load(self, model, optim, new_optim, options=StateDictOptions()):
        """Snapshots `optim`'s state, takes DSD's optimizer state dict, loads it (gathered to full
        tensors) into `new_optim` through DSD and compares `new_optim` with the snapshot."""
        expected = snapshot(optim.state_dict())
        dist_osd = get_optimizer_state_dict(model, optim, options=options)
        set_optimizer_state_dict(model, new_optim, optim_state_dict=_gather_state_dict(unflatten_osd(dist_osd)))
        actual = new_optim.state_dict()
        self.nonempty(actual[STATE], "the loaded optimizer state")
        self.assert_nested_equal(expected, actual, "optimizer.state_dict()")

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
            self.assert_tensor_matches(gather_full(expected), actual, path)
        else:
            self.assertEqual(_plain(expected), _plain(actual), f"{path} differs")
