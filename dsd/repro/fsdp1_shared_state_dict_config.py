"""Repro: one ShardedStateDictConfig shared by an FSDP1 model with a DeviceMesh and one without.
FSDP1 sets _use_dtensor=True on the config of the mesh model, so the meshless model's
state_dict() takes the DTensor path with device_mesh=None and raises in its post-hook; the
process then aborts in interpreter teardown (THPVariable_clear's internal assert). The repro
prints the error it caught, finishes its work (repro.succeeded()) and exits normally.
Usage: python -m testing.launcher.rank_group --nproc=2 --report=R -- this.py"""

import traceback

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import ShardedStateDictConfig
from torch.distributed.fsdp import StateDictType

from models.dummy_models import dummy_model
from testing import repro

dist.init_process_group("gloo")
cpu = torch.device("cpu")


def trained_fsdp1(device_mesh=None):
    model = FSDP(dummy_model(True).to(cpu), device_mesh=device_mesh, device_id=cpu)
    optim = torch.optim.Adam(model.parameters(), lr=0.1)
    model(model.get_input(cpu, seed=dist.get_rank())).sum().backward()
    optim.step()
    return model


config = ShardedStateDictConfig()
with_mesh = trained_fsdp1(init_device_mesh("cpu", (dist.get_world_size(),)))
meshless = trained_fsdp1()
repro.started()
FSDP.set_state_dict_type(with_mesh, StateDictType.SHARDED_STATE_DICT, state_dict_config=config)
FSDP.set_state_dict_type(meshless, StateDictType.SHARDED_STATE_DICT, state_dict_config=config)
with_mesh.state_dict()
try:
    meshless.state_dict()
    print("the meshless model's state_dict() returned", flush=True)
except AttributeError:
    traceback.print_exc()
dist.barrier()
dist.destroy_process_group()
repro.succeeded()
