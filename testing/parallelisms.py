"""Wrapping a module the ways training stacks do, for scenarios that compare them.

    wrap(module, "fsdp2", device)   # one of WRAPPERS or LAYOUTS_2D
    reference, ref_optim, model, optim = reference_and_wrapped(EvenDummyModel, "tp", device)

fsdp1               FSDP (FullyShardedDataParallel) on a 1-D DeviceMesh, use_orig_params=True
fsdp1_flat_params   the same with use_orig_params=False (FlatParameter in optimizers)
fsdp2               fully_shard on a 1-D DeviceMesh
ddp                 DistributedDataParallel
plain               the module itself (every rank holds everything)
tp                  tensor parallel over all ranks: Linear layers alternately colwise/rowwise
fsdp2_tp            2-D: tensor parallel within pairs of ranks, fully_shard across pairs
hsdp                2-D: fully_shard on a (replicate, shard) mesh of pairs of ranks
The tp plans need an MLP whose hidden widths divide by the TP degree (EvenDummyModel).
"""

import collections
import copy

import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor.parallel import ColwiseParallel
from torch.distributed.tensor.parallel import RowwiseParallel
from torch.distributed.tensor.parallel import parallelize_module
from torch.nn.parallel import DistributedDataParallel as DDP

WRAPPERS = ("fsdp1", "fsdp1_flat_params", "fsdp2", "ddp", "plain")
LAYOUTS_2D = ("fsdp2_tp", "hsdp")


def tp_plan(module):
    """Colwise, rowwise, colwise, ... over the module's Linear layers in definition order."""
    linears = [name for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
    return {name: ColwiseParallel() if i % 2 == 0 else RowwiseParallel() for i, name in enumerate(linears)}


def wrap(module, wrapper, device):
    """`module` wrapped on `device`; a meta-device module stays on meta (call to_empty after)."""
    if not any(p.is_meta for p in module.parameters()):
        module = module.to(device)
    if wrapper == "plain":
        return module
    if wrapper == "ddp":
        return DDP(module, device_ids=[device.index] if device.type == "cuda" else None)
    world_size = torch.distributed.get_world_size()
    if wrapper in LAYOUTS_2D:
        if world_size % 2:
            raise ValueError(f"{wrapper} needs an even world size, got {world_size}")
        names = ("dp", "tp") if wrapper == "fsdp2_tp" else ("replicate", "shard")
        mesh = init_device_mesh(device.type, (world_size // 2, 2), mesh_dim_names=names)
        if wrapper == "fsdp2_tp":
            module = parallelize_module(module, mesh["tp"], tp_plan(module))
            return fully_shard(module, mesh=mesh["dp"])
        return fully_shard(module, mesh=mesh)
    mesh = init_device_mesh(device.type, (world_size,))
    if wrapper == "tp":
        return parallelize_module(module, mesh, tp_plan(module))
    if wrapper == "fsdp2":
        return fully_shard(module, mesh=mesh)
    if wrapper in ("fsdp1", "fsdp1_flat_params"):
        # FSDP1 on CPU ranks needs device_id=cpu (it otherwise looks for an accelerator).
        return FSDP(module, device_mesh=mesh, device_id=device, use_orig_params=wrapper == "fsdp1")
    raise ValueError(f"unknown wrapper {wrapper!r}; expected one of {WRAPPERS}")


def train(model, optim, inputs):
    """One optimizer step per input; every rank must pass the same inputs for a reference run."""
    for x in inputs:
        optim.zero_grad()
        model(x).float().sum().backward()
        optim.step()


Trained = collections.namedtuple("Trained", "reference ref_optim model optim")


def adam(params):
    return torch.optim.Adam(params, lr=0.01)


def reference_and_wrapped(make_model, wrapper, device, make_optim=adam, seed=0, freeze=(), steps=2):
    """An unsharded reference on `device` and a `wrapper`-wrapped copy of it, each with its own
    optimizer over its trainable parameters, trained on the same inputs (identical on every rank).
    `freeze`: FQN prefixes whose parameters are frozen before wrapping."""
    reference = make_model(seed).to(device)
    for name, p in reference.named_parameters():
        if any(name.startswith(prefix) for prefix in freeze):
            p.requires_grad_(False)
    model = wrap(copy.deepcopy(reference), wrapper, device)
    ref_optim = make_optim([p for p in reference.parameters() if p.requires_grad])
    optim = make_optim([p for p in model.parameters() if p.requires_grad])
    inputs = [reference.get_input(device, seed=s) for s in range(steps)]
    train(reference, ref_optim, inputs)
    train(model, optim, inputs)
    return Trained(reference, ref_optim, model, optim)
