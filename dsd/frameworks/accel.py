"""Hugging Face accelerate's FSDP2 path on CPU ranks: its Accelerator, prepare, save_state /
load_state (DCP, SHARDED_STATE_DICT), get_state_dict, save_model and merge_fsdp_weights, on a
small MLP trained on synthetic data, beside an unsharded reference trained in the same process.

The global batch is split across ranks (split_batches=True), so one reference fits every world
size; accelerate's stateful dataloader carries the data position through save_state.
"""

import torch
from torch.utils.data import TensorDataset

GLOBAL_BATCH, SAMPLES, LR = 8, 64, 1e-2


class MLP(torch.nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(8, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def data():
    generator = torch.Generator().manual_seed(1234)
    return TensorDataset(torch.randn(SAMPLES, 8, generator=generator), torch.randn(SAMPLES, 4, generator=generator))


def optimizer_and_schedule(model):
    optim = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    return optim, torch.optim.lr_scheduler.LambdaLR(optim, lambda step: 1.0 / (1.0 + 0.5 * step))


def step(model, optim, schedule, batch):
    x, y = batch
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optim.step()
    schedule.step()
    optim.zero_grad()
    return loss


def reference(steps):
    """(model, optimizer) after `steps` unsharded steps over the same global batches."""
    model = MLP(seed=0)
    optim, schedule = optimizer_and_schedule(model)
    loader = torch.utils.data.DataLoader(data(), batch_size=GLOBAL_BATCH)
    for _, batch in zip(range(steps), loader):
        step(model, optim, schedule, batch)
    return model, optim


def accelerator():
    """An Accelerator running accelerate's own FSDP2 code over the launcher's gloo ranks."""
    from accelerate import Accelerator
    from accelerate import FullyShardedDataParallelPlugin
    from accelerate.state import AcceleratorState
    from accelerate.state import PartialState
    from accelerate.utils import DataLoaderConfiguration
    from accelerate.utils import DistributedType

    AcceleratorState._reset_state(reset_partial_state=True)  # one Accelerator per case, as per job
    plugin = FullyShardedDataParallelPlugin(fsdp_version=2, state_dict_type="SHARDED_STATE_DICT",
                                            reshard_after_forward=True, cpu_ram_efficient_loading=False)
    acc = Accelerator(cpu=True, fsdp_plugin=plugin,
                      dataloader_config=DataLoaderConfiguration(split_batches=True, use_stateful_dataloader=True))
    # accelerate switches to FSDP only for accelerator devices (AcceleratorState.__init__ lists
    # MULTI_GPU/XPU/NPU/...); on CPU ranks it silently falls back to DDP (MULTI_CPU) and drops the
    # plugin. Setting the distributed type it would have chosen is the whole workaround: from
    # here on prepare/save_state/load_state run accelerate's FSDP2 code (the case asserts it).
    if acc.distributed_type == DistributedType.MULTI_CPU:
        acc.state.distributed_type = DistributedType.FSDP
        acc.state.fsdp_plugin = plugin
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return acc


def prepared(acc, seed):
    """(model, optimizer, schedule, loader) built as a user script does, then prepared."""
    model = MLP(seed)
    optim, schedule = optimizer_and_schedule(model)
    loader = torch.utils.data.DataLoader(data(), batch_size=GLOBAL_BATCH)
    return acc.prepare(model, optim, schedule, loader)
