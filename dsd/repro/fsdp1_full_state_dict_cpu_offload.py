"""Repro: FSDP1 full state dict with cpu_offload on CPU ranks (repro.succeeded() on every rank
when torch behaves). Usage: torchrun --nproc-per-node=2 this.py [use_orig_params: 1|0]"""

import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from testing import repro

dist.init_process_group("gloo")
use_orig_params = sys.argv[1:] != ["0"]
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 15), nn.Linear(15, 5))
reference = {k: v.clone() for k, v in model.state_dict().items()}
mesh = init_device_mesh("cpu", (dist.get_world_size(),))
model = FSDP(model, device_mesh=mesh, device_id=torch.device("cpu"), use_orig_params=use_orig_params)
optim = torch.optim.Adam(model.parameters(), lr=0.01)
repro.started()
msd, _ = get_state_dict(model, optim, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
if dist.get_rank() == 0:
    for fqn, value in reference.items():
        assert torch.equal(msd[fqn], value), fqn
dist.barrier()
dist.destroy_process_group()
repro.succeeded()
# What this repro pins ends with the line above. On torch 2.14.1 under load, interpreter exit
# after this sequence intermittently aborts ("terminate called without an active exception",
# SIGABRT) after every rank succeeded: a separate, unpinned teardown bug (README, Known torch
# bugs), which must not decide this repro's outcome.
os._exit(0)
