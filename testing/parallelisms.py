"""Wrapping a module the ways training stacks do, for scenarios that compare them.

    wrap(module, "fsdp2", device)   # one of WRAPPERS

fsdp1               FSDP (FullyShardedDataParallel) on a 1-D DeviceMesh, use_orig_params=True
fsdp1_flat_params   the same with use_orig_params=False (FlatParameter in optimizers)
fsdp2               fully_shard on a 1-D DeviceMesh
ddp                 DistributedDataParallel
plain               the module itself (every rank holds everything)
"""

import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel as DDP

WRAPPERS = ("fsdp1", "fsdp1_flat_params", "fsdp2", "ddp", "plain")
SHARDED = ("fsdp1", "fsdp1_flat_params", "fsdp2")


def wrap(module, wrapper, device):
    """`module` wrapped on `device`; a meta-device module stays on meta (call to_empty after)."""
    if not any(p.is_meta for p in module.parameters()):
        module = module.to(device)
    if wrapper == "plain":
        return module
    if wrapper == "ddp":
        return DDP(module, device_ids=[device.index] if device.type == "cuda" else None)
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
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
