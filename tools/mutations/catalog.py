"""Mutations of DCP and DSD: each makes one behaviour silently wrong (no error at the point of
the fault), to prove the suite notices. Applied inside rank processes only, by
tools/mutations/sitecustomize.py when DSD_MUTATION names one of them (tools/mutate.py sets it).

Every patch wraps a function that DCP/DSD call through their module globals, so code that
imported the public API before the patch is affected too.
"""

import functools


def _wrap(owner, name, make):
    original = getattr(owner, name)
    setattr(owner, name, functools.wraps(original)(make(original)))


def _bump_first_element(tensor):
    """+1 on one element of `tensor` (a DTensor's local shard, where this rank holds any)."""
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    if local.numel() and local.is_floating_point():
        local.view(-1)[0] += 1


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
    _wrap(dp.DefaultSavePlanner, "create_local_plan", make)


def save_corrupts_a_value():
    """dcp.save: the first tensor item each rank writes has one element off by one."""
    from torch.distributed.checkpoint import default_planner as dp

    def make(original):
        done = []

        def resolve_data(self, write_item):
            data = original(self, write_item)
            if not done and hasattr(data, "is_floating_point") and data.numel():
                done.append(True)
                data = data.clone()
                _bump_first_element(data)
            return data
        return resolve_data
    _wrap(dp.DefaultSavePlanner, "resolve_data", make)


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
    _wrap(dp.DefaultLoadPlanner, "create_local_plan", make)


def load_corrupts_a_value():
    """dcp.load: the first tensor each rank reads gets one element off by one."""
    from torch.distributed.checkpoint import default_planner as dp

    def make(original):
        done = []

        def commit_tensor(self, read_item, tensor):
            if not done and tensor.numel() and tensor.is_floating_point():
                done.append(True)
                tensor.view(-1)[0] += 1
            return original(self, read_item, tensor)
        return commit_tensor
    _wrap(dp.DefaultLoadPlanner, "commit_tensor", make)


def reshard_reads_wrong_rows():
    """dcp.load resharding: a read that starts inside a saved chunk starts at the chunk's first
    row instead (only loads whose shards do not line up with the saved ones are affected)."""
    from torch.distributed.checkpoint import planner_helpers as ph

    def make(original):
        def create_read_items_for_chunk_list(fqn, checkpoint_md, local_chunks):
            items = original(fqn, checkpoint_md, local_chunks)
            for item in items:
                if item.storage_offsets and item.storage_offsets[0] != 0:
                    item.storage_offsets = type(item.storage_offsets)([0, *item.storage_offsets[1:]])
            return items
        return create_read_items_for_chunk_list
    _wrap(ph, "create_read_items_for_chunk_list", make)


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
    _wrap(sd, "_get_model_state_dict", make)


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
    _wrap(sd, "_get_model_state_dict", make)


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
    _wrap(sd, "_load_model_state_dict", make)


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
    _wrap(sd, "_get_optim_state_dict", make)


def set_optimizer_state_dict_does_nothing():
    """set_(optimizer_)state_dict: the optimizer keeps the state it had."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _load_optim_state_dict(model, optimizers, state_dict, info):
            return None
        return _load_optim_state_dict
    _wrap(sd, "_load_optim_state_dict", make)


def full_state_dict_ignored():
    """StateDictOptions(full_state_dict=True) is ignored: sharded state dicts come back."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _verify_options(*args, **kwargs):
            info = original(*args, **kwargs)
            info.full_state_dict = False
            return info
        return _verify_options
    _wrap(sd, "_verify_options", make)


def cpu_offload_on_every_rank():
    """full_state_dict + cpu_offload hands the full state to every rank, not rank 0 only."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _gather_state_dict(*args, **kwargs):
            kwargs["ranks_only"] = ()
            return original(*args, **kwargs)
        return _gather_state_dict
    _wrap(sd, "_gather_state_dict", make)


def ignore_frozen_params_ignored():
    """StateDictOptions(ignore_frozen_params=True) is ignored: frozen parameters are kept."""
    from torch.distributed.checkpoint import state_dict as sd

    def make(original):
        def _verify_options(*args, **kwargs):
            info = original(*args, **kwargs)
            info.ignore_frozen_params = False
            return info
        return _verify_options
    _wrap(sd, "_verify_options", make)


def stateful_never_loaded():
    """dcp.load reads into a Stateful's state dict but never calls its load_state_dict."""
    import torch.distributed.checkpoint as dcp
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
    _wrap(state_dict_loader, "load", make)
    dcp.load = state_dict_loader.load


MUTATIONS = {name: fn for name, fn in list(globals().items())
             if callable(fn) and not name.startswith("_") and fn.__module__ == __name__ and name != "apply"}


def apply(name):
    if name not in MUTATIONS:
        raise SystemExit(f"DSD_MUTATION={name!r}: no such mutation; known: {', '.join(MUTATIONS)}")
    MUTATIONS[name]()
