"""The ranks of tools/checkpoint_bench.py (started by testing.launcher.rank_group, one environment
at a time): time and peak memory of each checkpoint operation on a state of a stated size.

    --phase=save     FSDP2 state of --mb MB in all (parameters + Adam's two moments), then per
                     repeat: dcp.save, dcp.load, async_save (until its future resolves), HF save
                     with consolidation, and on rank 0 dcp_to_torch_save of the saved checkpoint
    --phase=reshard  at another world size: dcp.load of the checkpoint the save phase left

Each rank appends one JSON line per operation and repeat to --out: seconds (barrier to barrier,
so the slowest rank's time), its peak host memory above the RSS at the start (testing/memory.py)
and its local state bytes, plus device memory on a GPU rank.
"""

import argparse
import json
import os
import shutil
import time

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from torch.distributed.checkpoint import HuggingFaceStorageWriter
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import get_state_dict

from testing import memory
from testing import parallelisms

WIDTH = 2048  # a Linear(2048, 2048) with its Adam state is 48 MiB


def trained(total_mb, device, seed):
    layers = max(1, round(total_mb * memory.MB / (3 * 4 * (WIDTH * WIDTH + WIDTH))))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = nn.Sequential(*[nn.Linear(WIDTH, WIDTH) for _ in range(layers)])
    model = parallelisms.parallelize(module, "fsdp2", device)
    optim = torch.optim.Adam(model.parameters(), lr=0.01)
    parallelisms.train(model, optim, [torch.ones(2, WIDTH, device=device)])
    return model, optim


def state(model, optim):
    msd, osd = get_state_dict(model, optim)
    return {"model": msd, "optim": osd}


def measure(name, fn, device, local, out, repeat):
    dist.barrier()
    with memory.Peak(device) as peak:
        started = time.perf_counter()
        fn()
        dist.barrier()
        seconds = time.perf_counter() - started
    record = {"op": name, "repeat": repeat, "rank": dist.get_rank(), "world_size": dist.get_world_size(),
              "seconds": seconds, "peak_bytes": peak.added, "device_peak_bytes": peak.device_added,
              "local_bytes": local, "torch": torch.__version__}
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")


def save_phase(args, device):
    model, optim = trained(args.mb, device, seed=0)
    local = memory.local_bytes(state(model, optim))
    path, group = os.path.join(args.dir, "checkpoint"), dist.new_group(backend="gloo")
    target, target_optim = trained(args.mb, device, seed=1)
    for repeat in range(args.repeats):
        ops = [("save", lambda: dcp.save(state(model, optim), checkpoint_id=path)),
               ("load", lambda: dcp.load(state(target, target_optim), checkpoint_id=path)),
               ("async_save", lambda: dcp.async_save(state(model, optim), checkpoint_id=path + "_async",
                                                     process_group=group).result()),
               ("hf_save_consolidated", lambda: hf_save(model, os.path.join(args.dir, f"hf{repeat}")))]
        for name, fn in ops:
            measure(name, fn, device, local, args.out, repeat)
        convert = (lambda: dcp_to_torch_save(path, os.path.join(args.dir, "full.pt"))) if dist.get_rank() == 0 \
            else (lambda: None)
        measure("dcp_to_torch_save", convert, device, local * dist.get_world_size(), args.out, repeat)


def hf_save(model, path):
    dcp.save(get_model_state_dict(model), storage_writer=HuggingFaceStorageWriter(
        path, save_distributed=True, enable_consolidation=True))
    dist.barrier()
    if dist.get_rank() == 0:
        shutil.rmtree(path)


def reshard_phase(args, device):
    model, optim = trained(args.mb, device, seed=2)
    local = memory.local_bytes(state(model, optim))
    for repeat in range(args.repeats):
        measure("reshard_load", lambda: dcp.load(state(model, optim), checkpoint_id=os.path.join(args.dir, "checkpoint")),
                device, local, args.out, repeat)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phase", choices=("save", "reshard"), required=True)
    p.add_argument("--mb", type=float, default=256, help="the whole state in MiB (parameters + Adam moments)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dir", required=True, help="where the checkpoints go (shared by the phases)")
    p.add_argument("--out", required=True, help="JSON lines appended by every rank")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    memory.enable()
    device = torch.device(args.device, int(os.environ.get("LOCAL_RANK", 0)) if args.device == "cuda" else None)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        (save_phase if args.phase == "save" else reshard_phase)(args, device)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
