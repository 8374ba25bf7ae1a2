"""Repro: set_state_dict with flatten_optimizer_state_dict=True into FSDP1 on CPU ranks
(repro.succeeded() on every rank when torch behaves). Usage: torchrun --nproc-per-node=2 this.py"""

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.checkpoint.state_dict import set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from testing import repro

dist.init_process_group("gloo")
torch.manual_seed(0)
mesh = init_device_mesh("cpu", (dist.get_world_size(),))
model = FSDP(nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 5)), device_mesh=mesh,
             device_id=torch.device("cpu"), use_orig_params=True)
optim = torch.optim.Adam(model.parameters(), lr=0.01)
model(torch.rand(4, 5)).sum().backward()
optim.step()
repro.started()
options = StateDictOptions(flatten_optimizer_state_dict=True)
msd, osd = get_state_dict(model, optim, options=options)
set_state_dict(model, optim, model_state_dict=msd, optim_state_dict=osd, options=options)
dist.barrier()
dist.destroy_process_group()
repro.succeeded()
