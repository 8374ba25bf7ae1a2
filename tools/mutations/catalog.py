"""Mutations of DCP and DSD: each makes one behaviour silently wrong (no error at the point of
the fault), to prove the suite notices. Applied inside rank processes only (and in the rank
group that forks them), by tools/mutations/sitecustomize.py when DSD_MUTATION names one of them
(tools/mutate.py sets it); DSD_MUTATION=none applies the harness and changes nothing (the
control run).

Every patch replaces the function in its module and in every loaded module that imported it by
name (`from ... import f`), so each path that calls it is reached; modules imported later read
the patched attribute. "First X" means the first of each save or load (each planner), not the
first of the process.
"""

import dataclasses
import functools
import sys


def _replace_everywhere(owner, name, make):
    """owner.name = make(original), and the same in every loaded module holding the original."""
    original = getattr(owner, name)
    patched = functools.wraps(original)(make(original))
    setattr(owner, name, patched)
    for module in list(sys.modules.values()):
        if module is not None and module is not owner and getattr(module, name, None) is original:
            setattr(module, name, patched)
    return patched


def _bump_first_element(tensor):
    """+1 on one element of `tensor` (a DTensor's local shard, where this rank holds any)."""
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    if local.numel() and local.is_floating_point():
        local.view(-1)[0] += 1


def _once_per(owner_attr):
    """True the first time it is called for this planner (object), False after."""
    def first(obj):
        if getattr(obj, owner_attr, False):
            return False
        setattr(obj, owner_attr, True)
        return True
    return first


def none():
    """The control: the harness is on and nothing changes."""


def save_drops_last_item():
    """dcp.save: rank 0 leaves its last write item out of the checkpoint."""
    import torch.distributed as dist
    from torch.distributed.checkpoint import default_planner as dp

    def make(original):
        def create_local_plan(self):
            plan = original(self)
            if dist.get_rank() == 0 and len(plan.items) > 1:
                plan.items.pop()
            return plan
        return create_local_plan
    _replace_everywhere(dp.DefaultSavePlanner, "create_local_plan", make)


def save_corrupts_a_value():
    """dcp.save: in every save, the first tensor item each rank writes has one element off by one."""
    from torch.distributed.checkpoint import default_planner as dp
    first = _once_per("_dsd_mutated")

    def make(original):
        def resolve_data(self, write_item):
            data = original(self, write_item)
            if hasattr(data, "is_floating_point") and data.numel() and data.is_floating_point() and first(self):
                data = data.clone()
                _bump_first_element(data)
            return data
        return resolve_data
    _replace_everywhere(dp.DefaultSavePlanner, "resolve_data", make)


def load_skips_last_item():
    """dcp.load: each rank's last read item is not read (its tensor keeps the old value)."""
    from torch.distributed.checkpoint import default_planner as dp

    def make(original):
        def create_local_plan(self):
            plan = original(self)
            if len(plan.items) > 1:
                plan.items.pop()
            return plan
        return create_local_plan
    _replace_everywhere(dp.DefaultLoadPlanner, "create_local_plan", make)


def load_corrupts_a_value():
    """dcp.load: in every load, the first tensor each rank reads gets one element off by one."""
    from torch.distributed.checkpoint import default_planner as dp
    first = _once_per("_dsd_mutated")

    def make(original):
        def commit_tensor(self, read_item, tensor):
            if tensor.numel() and tensor.is_floating_point() and first(self):
                tensor.view(-1)[0] += 1
            return original(self, read_item, tensor)
        return commit_tensor
    _replace_everywhere(dp.DefaultLoadPlanner, "commit_tensor", make)


def reshard_reads_wrong_rows():
    """dcp.load resharding (also load_sharded_optimizer_state_dict): a read that starts inside a
    saved chunk starts at the chunk's first row instead (loads whose shards line up are unaffected)."""
    from torch.distributed.checkpoint import planner_helpers as ph

    def make(original):
        def create_read_items_for_chunk_list(fqn, checkpoint_md, local_chunks):
            items = original(fqn, checkpoint_md, local_chunks)
            return [dataclasses.replace(item, storage_offsets=type(item.storage_offsets)([0, *item.storage_offsets[1:]]))
                    if item.storage_offsets and item.storage_offsets[0] != 0 else item for item in items]
        return create_read_items_for_chunk_list
    _replace_everywhere(ph, "create_read_items_for_chunk_list", make)


def reshard_uneven_reads_a_row_short():
    """dcp.load resharding onto uneven shards (a local shard unlike every saved one, its rows not
    dividing the tensor's, e.g. 64 rows over 3 ranks): the last read of each such tensor is one row
    short (that row keeps its old value)."""
    from torch.distributed.checkpoint import planner_helpers as ph

    def make(original):
        def create_read_items_for_chunk_list(fqn, checkpoint_md, local_chunks):
            items = original(fqn, checkpoint_md, local_chunks)
            rows = checkpoint_md.size[0] if len(checkpoint_md.size) else 0
            saved = {(tuple(c.offsets), tuple(c.sizes)) for c in checkpoint_md.chunks}
            uneven = any(len(c.sizes) and rows % c.sizes[0] and (tuple(c.offsets), tuple(c.sizes)) not in saved
                         for c in local_chunks)
            last = items[-1] if items else None
            if uneven and last is not None and last.lengths and last.lengths[0] > 1:
                short = type(last.lengths)([last.lengths[0] - 1, *last.lengths[1:]])
                items = items[:-1] + [dataclasses.replace(last, lengths=short)]
            return items
        return create_read_items_for_chunk_list
    _replace_everywhere(ph, "create_read_items_for_chunk_list", make)


def strict_load_ignores_missing_keys():
    """dcp.load: a key the state dict has and the checkpoint lacks is skipped silently, as if
    every load allowed partial loads (the model keeps its old value)."""
    from torch.distributed.checkpoint import default_planner as dp

    def make(original):
        def create_default_local_load_plan(state_dict, metadata, strict=True):
            return original(state_dict, metadata, strict=False)
        return create_default_local_load_plan
    _replace_everywhere(dp, "create_default_local_load_plan", make)


def async_staging_shares_live_tensors():
    """async_save: staging hands the writer the live state dict instead of a copy, so what is
    written is whatever the tensors hold when the background write happens."""
    from torch.distributed.checkpoint import staging

    def make(original):
        def stage(self, state_dict, *args, **kwargs):
            return state_dict
        return stage
    for cls in (staging.DefaultStager, staging.BlockingAsyncStager):
        _replace_everywhere(cls, "stage", make)


def hf_consolidation_corrupts_a_value():
    """HF safetensors consolidation: in every consolidation, the first tensor's bytes read from the
    sharded files have their first byte flipped before being written to the consolidated file."""
    from torch.distributed.checkpoint import _consolidate_hf_safetensors as hf
    state = {"done": False}

    def make_read(original):
        def _read_tensor_data(f, start_offset, end_offset, metadata_size):
            data = original(f, start_offset, end_offset, metadata_size)
            if data and not state["done"]:
                state["done"] = True
                data = bytes([data[0] ^ 0x40]) + data[1:]
            return data
        return _read_tensor_data

    def make_consolidate(original):
        def consolidate(*args, **kwargs):
            state["done"] = False
            return original(*args, **kwargs)
        return consolidate
    _replace_everywhere(hf, "_read_tensor_data", make_read)
    _replace_everywhere(hf, "_consolidate_safetensors_files", make_consolidate)


def model_state_dict_drops_a_key():
    """get_(model_)state_dict: the last key of the model state dict is missing."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _get_model_state_dict(model, info):
            msd = original(model, info)
            if msd:
                msd.pop(list(msd)[-1])
            return msd
        return _get_model_state_dict
    _replace_everywhere(sd, "_get_model_state_dict", make)


def model_state_dict_corrupts_a_value():
    """get_(model_)state_dict: one value is off by one (a copy; the model is untouched)."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _get_model_state_dict(model, info):
            msd = original(model, info)
            for key, value in msd.items():
                if hasattr(value, "is_floating_point") and value.is_floating_point():
                    msd[key] = value.detach().clone()
                    _bump_first_element(msd[key])
                    break
            return msd
        return _get_model_state_dict
    _replace_everywhere(sd, "_get_model_state_dict", make)


def set_model_state_dict_off_by_one():
    """set_(model_)state_dict: after loading, one parameter is off by one."""
    import torch
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _load_model_state_dict(model, state_dict, info):
            result = original(model, state_dict, info)
            with torch.no_grad():
                for p in model.parameters():
                    _bump_first_element(p)
                    break
            return result
        return _load_model_state_dict
    _replace_everywhere(sd, "_load_model_state_dict", make)


def broadcast_from_rank0_skips_a_tensor():
    """set_*_state_dict(broadcast_from_rank0=True): the ranks other than 0 keep their own value of
    the first tensor instead of rank 0's (the collectives still match)."""
    import torch
    import torch.distributed as dist
    from torch.distributed import _state_dict_utils as sdu

    def make(original):
        def _broadcast_state_dict(full_state_dict, local_state_dict, *args, **kwargs):
            key = next((k for k, v in local_state_dict.items() if torch.is_tensor(v)), None)
            kept = local_state_dict[key] if key is not None else None
            kept = kept.detach().clone() if kept is not None and not kept.is_meta else None
            result = original(full_state_dict, local_state_dict, *args, **kwargs)
            if kept is not None and dist.get_rank() != 0:
                with torch.no_grad():
                    target = local_state_dict[key]
                    (target.to_local() if hasattr(target, "to_local") else target).copy_(
                        kept.to_local() if hasattr(kept, "to_local") else kept)
            return result
        return _broadcast_state_dict
    _replace_everywhere(sdu, "_broadcast_state_dict", make)


def optimizer_state_dict_bumps_a_step():
    """get_(optimizer_)state_dict: one parameter's Adam step counter is one too high."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _get_optim_state_dict(model, optimizers, info):
            osd = original(model, optimizers, info)
            state = osd.get("state", osd)
            for key, value in state.items():
                step = value.get("step") if isinstance(value, dict) else (value if key.endswith(".step") else None)
                if step is not None:
                    if isinstance(value, dict):
                        value["step"] = step + 1
                    else:
                        state[key] = step + 1
                    break
            return osd
        return _get_optim_state_dict
    _replace_everywhere(sd, "_get_optim_state_dict", make)


def set_optimizer_state_dict_does_nothing():
    """set_(optimizer_)state_dict: the optimizer keeps the state it had."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _load_optim_state_dict(model, optimizers, state_dict, info):
            return None
        return _load_optim_state_dict
    _replace_everywhere(sd, "_load_optim_state_dict", make)


def optimizer_hyperparameters_not_restored():
    """set_(optimizer_)state_dict: the optimizer's state is loaded, but each param group keeps the
    hyperparameters it had (lr, betas, weight_decay, initial_lr ...), not the checkpoint's."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _load_optim_state_dict(model, optimizers, state_dict, info):
            kept = [[{k: v for k, v in group.items() if k != "params"} for group in optim.param_groups]
                    for optim in optimizers]
            result = original(model, optimizers, state_dict, info)
            for optim, groups in zip(optimizers, kept):
                for group, hyper in zip(optim.param_groups, groups):
                    group.update(hyper)
            return result
        return _load_optim_state_dict
    _replace_everywhere(sd, "_load_optim_state_dict", make)


def full_state_dict_ignored():
    """StateDictOptions(full_state_dict=True) is ignored: sharded state dicts come back."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _verify_options(*args, **kwargs):
            info = original(*args, **kwargs)
            info.full_state_dict = False
            return info
        return _verify_options
    _replace_everywhere(sd, "_verify_options", make)


def cpu_offload_on_every_rank():
    """full_state_dict + cpu_offload hands the full state to every rank, not rank 0 only."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _gather_state_dict(*args, **kwargs):
            kwargs["ranks_only"] = ()
            return original(*args, **kwargs)
        return _gather_state_dict
    _replace_everywhere(sd, "_gather_state_dict", make)


def ignore_frozen_params_ignored():
    """StateDictOptions(ignore_frozen_params=True) is ignored: frozen parameters are kept."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _verify_options(*args, **kwargs):
            info = original(*args, **kwargs)
            info.ignore_frozen_params = False
            return info
        return _verify_options
    _replace_everywhere(sd, "_verify_options", make)


def stateful_never_loaded():
    """dcp.load reads into a Stateful's state dict but never calls its load_state_dict."""
    from torch.distributed.checkpoint import state_dict_loader
    from torch.distributed.checkpoint.stateful import Stateful

    class ReadOnly(Stateful):
        def __init__(self, inner):
            self.inner = inner

        def state_dict(self):
            return self.inner.state_dict()

        def load_state_dict(self, state):
            pass

    def make(original):
        def load(state_dict, *args, **kwargs):
            wrapped = {k: ReadOnly(v) if isinstance(v, Stateful) else v for k, v in state_dict.items()}
            return original(wrapped, *args, **kwargs)
        return load
    _replace_everywhere(state_dict_loader, "load", make)


def _tensor_copies(value):
    """Copies of every tensor (a DTensor's local shard) in a nested state dict."""
    if isinstance(value, dict):
        return [c for v in value.values() for c in _tensor_copies(v)]
    if isinstance(value, (list, tuple)):
        return [c for v in value for c in _tensor_copies(v)]
    local = value.to_local() if hasattr(value, "to_local") else value
    return [local.clone()] if hasattr(local, "clone") else []


_LEAKED = []


def _with_copies(module, name, when, leak):
    """module.name copies every tensor of its state dict (argument 0) `when` ("before": held for
    the whole call; "after": made once the call has filled it) and keeps them (leak) or not."""
    def make(original):
        def call(state_dict, *args, **kwargs):
            held = _tensor_copies(state_dict) if when == "before" else []
            out = original(state_dict, *args, **kwargs)
            held += _tensor_copies(state_dict) if when == "after" else []
            if leak:
                _LEAKED.append(held)
            return out
        return call
    _replace_everywhere(module, name, make)


def save_holds_an_extra_copy():
    """dcp.save (every path: save, async_save's background save, the HF writer) holds a copy of
    each local tensor while it writes: the values are right, the peak memory doubles."""
    from torch.distributed.checkpoint import state_dict_saver
    _with_copies(state_dict_saver, "_save_state_dict", "before", leak=False)


def save_leaks_a_copy_per_call():
    """dcp.save keeps a copy of the state it saved, forever: one state dict leaked per save."""
    from torch.distributed.checkpoint import state_dict_saver
    _with_copies(state_dict_saver, "_save_state_dict", "before", leak=True)


def load_holds_an_extra_copy():
    """dcp.load (and dcp_to_torch_save) copies what it loaded before returning: a second copy
    of the state at the peak."""
    from torch.distributed.checkpoint import state_dict_loader
    _with_copies(state_dict_loader, "_load_state_dict", "after", leak=False)


def load_leaks_a_copy_per_call():
    """dcp.load keeps a copy of the state it loaded, forever: one state dict leaked per load."""
    from torch.distributed.checkpoint import state_dict_loader
    _with_copies(state_dict_loader, "_load_state_dict", "after", leak=True)


def async_staging_leaks_each_staged_copy():
    """async_save: the stager keeps every staged state dict alive after its save completed."""
    from torch.distributed.checkpoint import staging

    def make(original):
        def stage(self, state_dict, *args, **kwargs):
            staged = original(self, state_dict, *args, **kwargs)
            _LEAKED.append(staged)
            return staged
        return stage
    for cls in (staging.DefaultStager, staging.BlockingAsyncStager):
        _replace_everywhere(cls, "stage", make)


def hf_consolidation_holds_every_tensor():
    """HF consolidation keeps every tensor it read until the end, instead of one at a time."""
    from torch.distributed.checkpoint import _consolidate_hf_safetensors as hf

    def make(original):
        def read(*args, **kwargs):
            data = original(*args, **kwargs)
            _LEAKED.append(bytes(data))
            return data
        return read
    _replace_everywhere(hf, "_read_tensor_data", make)


MUTATIONS = {name: fn for name, fn in list(globals().items())
             if callable(fn) and not name.startswith("_") and fn.__module__ == __name__
             and name not in ("apply", "none")}
CONTROL = "none"


def apply(name):
    if name == CONTROL:
        return none()
    if name not in MUTATIONS:
        raise SystemExit(f"DSD_MUTATION={name!r}: no such mutation; known: {', '.join(MUTATIONS)}")
    MUTATIONS[name]()
