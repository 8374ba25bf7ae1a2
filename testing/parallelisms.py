"""The one vocabulary for how a model is parallelised, shared by the fixtures, the scenario
helpers and the framework families: degrees (ParallelDims), named layouts (LAYOUTS), one
parallelize(), one train().

    dims = ParallelDims(dp_shard=-1, tp=2).resolved(world_size)   # -1: the ranks the others leave
    mesh = dims.build_mesh("cpu")                   # dims named as below, those of degree > 1
    model = parallelize(model, "fsdp2_tp", device)  # a name from LAYOUTS
    trained = reference_and_wrapped(EvenDummyModel, "tp", device)

ParallelDims names its degrees as torchtitan's ParallelDims and ParallelismConfig do
(dp_replicate, dp_shard, cp, tp, pp, ep), so a framework family maps them one to one. The mesh
dimensions are ordered pp, dp_replicate, dp_shard, cp, tp (outermost first, torchtitan's order).

A layout is ParallelDims plus how data parallelism is applied over the dp dimensions:
  plain              the module itself (every rank holds everything; no gradient sync)
  ddp                DistributedDataParallel
  fsdp1              FullyShardedDataParallel on the dp_shard mesh, use_orig_params=True
  fsdp1_flat_params  the same with use_orig_params=False (FlatParameter in optimizers)
  fsdp2              fully_shard over every rank
  tp                 tensor parallel over every rank
  fsdp2_tp           2-D: tensor parallel within pairs of ranks, fully_shard across pairs
  hsdp               2-D: fully_shard on a (dp_replicate, dp_shard) mesh, shards over pairs

What a model contributes (both optional): `fsdp_units()`, the submodules sharded (FSDP2) or
auto-wrapped (FSDP1, by their unwrapped classes) before the root; `tp_plan()`, {FQN: ParallelStyle}.
Without them the root is the only unit and the plan alternates ColwiseParallel and
RowwiseParallel over the Linear layers in definition order (hidden widths must divide by tp).
"""

import collections
import copy
import dataclasses
import math

import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import fully_shard
from torch.distributed.fsdp.wrap import ModuleWrapPolicy
from torch.distributed.tensor.parallel import ColwiseParallel
from torch.distributed.tensor.parallel import RowwiseParallel
from torch.distributed.tensor.parallel import parallelize_module
from torch.nn.parallel import DistributedDataParallel as DDP

MESH_ORDER = ("pp", "dp_replicate", "dp_shard", "cp", "tp")


@dataclasses.dataclass(frozen=True)
class ParallelDims:
    """Parallel degrees; one of them may be -1 (what world_size leaves, see resolved()). ep
    borrows its ranks from dp_shard x cp (torchtitan's rule), so it adds no mesh dimension here."""
    dp_replicate: int = 1
    dp_shard: int = -1
    cp: int = 1
    tp: int = 1
    pp: int = 1
    ep: int = 1

    def resolved(self, world_size):
        """These degrees with the -1 filled in, checked against `world_size` (ValueError says why)."""
        degrees = {d: getattr(self, d) for d in MESH_ORDER}
        free = [d for d, n in degrees.items() if n == -1]
        if len(free) > 1 or any(n < 1 and n != -1 for n in degrees.values()) or self.ep < 1:
            raise ValueError(f"{self}: degrees are >= 1, and at most one is -1")
        fixed = math.prod(n for n in degrees.values() if n != -1)
        if world_size % fixed or (not free and fixed != world_size):
            raise ValueError(f"{self}: {' x '.join(f'{d}={n}' for d, n in degrees.items() if n != -1)} "
                             f"does not divide into {world_size} ranks")
        resolved = dataclasses.replace(self, **{d: world_size // fixed for d in free})
        if (resolved.dp_shard * resolved.cp) % resolved.ep:
            raise ValueError(f"{resolved}: ep={resolved.ep} must divide dp_shard x cp")
        return resolved

    @property
    def world_size(self):
        return math.prod(getattr(self, d) for d in MESH_ORDER)

    def mesh_dims(self, keep=()):
        """[(name, degree)] of the mesh: the dimensions of degree > 1 or named in `keep`, else
        dp_shard alone."""
        dims = [(d, getattr(self, d)) for d in MESH_ORDER if getattr(self, d) > 1 or d in keep]
        return dims or [("dp_shard", 1)]

    def build_mesh(self, device_type, keep=()):
        """A DeviceMesh over every rank of the default group (call on resolved dims); `keep`:
        dimensions to include even at degree 1 (a layout's own, so that its plan applies at any
        world size)."""
        names, shape = zip(*self.mesh_dims(keep))
        return init_device_mesh(device_type, shape, mesh_dim_names=names)

    def named(self):
        """The dimensions these (unresolved) degrees ask for: those not 1."""
        return tuple(d for d in MESH_ORDER if getattr(self, d) != 1)

    def dp_mesh(self, mesh):
        """The data-parallel part of `mesh`: (dp_replicate, dp_shard) for HSDP, else dp_shard."""
        names = [d for d in ("dp_replicate", "dp_shard") if d in mesh.mesh_dim_names]
        return mesh[tuple(names)] if len(names) > 1 else mesh[names[0]]


@dataclasses.dataclass(frozen=True)
class Layout:
    dims: ParallelDims
    data_parallel: str  # "none", "ddp", "fsdp1", "fsdp1_flat_params" or "fsdp2"


LAYOUTS = {
    "plain": Layout(ParallelDims(dp_replicate=-1, dp_shard=1), "none"),
    "ddp": Layout(ParallelDims(dp_replicate=-1, dp_shard=1), "ddp"),
    "fsdp1": Layout(ParallelDims(), "fsdp1"),
    "fsdp1_flat_params": Layout(ParallelDims(), "fsdp1_flat_params"),
    "fsdp2": Layout(ParallelDims(), "fsdp2"),
    "tp": Layout(ParallelDims(dp_shard=1, tp=-1), "none"),
    "fsdp2_tp": Layout(ParallelDims(tp=2), "fsdp2"),
    "hsdp": Layout(ParallelDims(dp_replicate=-1, dp_shard=2), "fsdp2"),
}
WRAPPERS = ("fsdp1", "fsdp1_flat_params", "fsdp2", "ddp", "plain")  # the 1-D data-parallel layouts
LAYOUTS_2D = ("fsdp2_tp", "hsdp")


def has_tp(layout):
    return LAYOUTS[layout].dims.tp != 1


def alternating_tp_plan(module):
    """Colwise, rowwise, colwise, ... over the module's Linear layers in definition order."""
    linears = [name for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
    return {name: ColwiseParallel() if i % 2 == 0 else RowwiseParallel() for i, name in enumerate(linears)}


def parallelize(module, layout, device, reshard_after_forward=True):
    """`module` parallelised as `layout` (a name from LAYOUTS) over every rank of the default
    group, on `device`; a meta-device module stays on meta (to_empty it after)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {sorted(LAYOUTS)}")
    if not any(p.is_meta for p in module.parameters()):
        module = module.to(device)
    spec = LAYOUTS[layout]
    if spec.data_parallel == "none" and spec.dims.tp == 1:
        return module
    if spec.data_parallel == "ddp":
        return DDP(module, device_ids=[device.index] if device.type == "cuda" else None)
    dims = spec.dims.resolved(torch.distributed.get_world_size())
    mesh = dims.build_mesh(device.type, keep=spec.dims.named())
    if has_tp(layout):
        plan = module.tp_plan() if hasattr(module, "tp_plan") else alternating_tp_plan(module)
        module = parallelize_module(module, mesh["tp"], plan)
    if spec.data_parallel == "none":
        return module
    if spec.data_parallel == "fsdp2":
        return shard(module, dims.dp_mesh(mesh), reshard_after_forward)
    # FSDP1 auto-wraps the units' own classes: a wrapper applied before (checkpoint_wrapper,
    # torch.compile) stays outside each FSDP unit, as FSDP1's auto-wrap of such a model does.
    classes = {type(_unwrapped(u)) for u in fsdp_units(module)}
    # FSDP1 on CPU ranks needs device_id=cpu (it otherwise looks for an accelerator).
    return FSDP(module, device_mesh=mesh["dp_shard"], device_id=device,
                use_orig_params=spec.data_parallel == "fsdp1",
                auto_wrap_policy=ModuleWrapPolicy(classes) if classes else None)


def _unwrapped(module):
    """The module inside checkpoint_wrapper and torch.compile wrappers."""
    while hasattr(module, "_checkpoint_wrapped_module") or hasattr(module, "_orig_mod"):
        module = getattr(module, "_checkpoint_wrapped_module", None) or module._orig_mod
    return module


def fsdp_units(module):
    return list(module.fsdp_units()) if hasattr(module, "fsdp_units") else []


def shard(module, mesh, reshard_after_forward=True):
    """fully_shard over `mesh`: each of the module's fsdp_units, then the root."""
    for unit in fsdp_units(module):
        fully_shard(unit, mesh=mesh, reshard_after_forward=reshard_after_forward)
    return fully_shard(module, mesh=mesh, reshard_after_forward=reshard_after_forward)


def sum_of_outputs(output, inputs):
    return output.float().sum()


def train(model, optim, inputs, loss=sum_of_outputs, scheduler=None):
    """One optimizer step (and scheduler step) per input, minimising loss(model(x), x); every
    rank passes the same inputs, so that a reference run sees what the sharded one sees."""
    for x in inputs:
        optim.zero_grad()
        loss(model(x), x).backward()
        optim.step()
        if scheduler is not None:
            scheduler.step()


Trained = collections.namedtuple("Trained", "reference ref_optim model optim")


def trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def adam(params):
    return torch.optim.Adam(params, lr=0.01)


def reference_and_wrapped(make_model, layout, device, make_optim=adam, seed=0, freeze=(), steps=2):
    """An unsharded reference on `device` and a `layout`-parallelised copy of it, each with its
    own optimizer over its trainable parameters, trained on the same inputs (identical on every
    rank). `layout`: a name from LAYOUTS, or a function(module, device) that parallelises it.
    `freeze`: FQN prefixes whose parameters are frozen before parallelising."""
    reference = make_model(seed).to(device)
    for name, p in reference.named_parameters():
        if name.startswith(tuple(freeze)):
            p.requires_grad_(False)
    model = copy.deepcopy(reference)
    model = layout(model, device) if callable(layout) else parallelize(model, layout, device)
    ref_optim, optim = make_optim(trainable(reference)), make_optim(trainable(model))
    inputs = [reference.get_input(device, seed=s) for s in range(steps)]
    train(reference, ref_optim, inputs)
    train(model, optim, inputs)
    return Trained(reference, ref_optim, model, optim)
