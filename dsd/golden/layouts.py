"""The golden corpus's checkpoints: what each layout saves, and the checksums that say what a
load must reproduce. Shared by the writer (dsd/golden/write_goldens.py, run by tools/golden.py)
and the reader (dsd/golden_corpus_test.py)."""

import hashlib

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.checkpoint.stateful import Stateful

from models.dummy_models import EvenDummyModel
from testing import checkpointing
from testing import parallelisms

# name: (wrapper, what the checkpoint holds besides the model and optimizer, how it was saved)
LAYOUTS = {
    "fsdp2": ("fsdp2", None, "save"),
    "fsdp1": ("fsdp1", None, "save"),
    "tp": ("tp", None, "save"),
    "fsdp2_stateful": ("fsdp2", "train", "save"),
    "fsdp2_async": ("fsdp2", None, "async_save"),
}
HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "amsgrad")


class TrainState(Stateful):
    """Step and dataloader position, saved beside the model."""

    def __init__(self, step=0, batches=0):
        self.step, self.batches = step, batches

    def state_dict(self):
        return {"step": self.step, "dataloader": {"batches_seen": self.batches}}

    def load_state_dict(self, state):
        self.step, self.batches = state["step"], state["dataloader"]["batches_seen"]


def model_and_optim(layout, device, seed):
    model = parallelisms.parallelize(EvenDummyModel(seed), LAYOUTS[layout][0], device)
    return model, torch.optim.Adam(model.parameters(), lr=0.01)


def state(layout, model, optim, train=None):
    """What dcp.save/dcp.load get for `layout`."""
    sd = {"app": checkpointing.AppState(model, optim)}
    if LAYOUTS[layout][1]:
        sd["train"] = train if train is not None else TrainState()
    return sd


def save(layout, model, optim, path):
    sd = state(layout, model, optim, TrainState(step=42, batches=1234))
    if LAYOUTS[layout][2] == "async_save":
        dcp.async_save(sd, checkpoint_id=path, process_group=dist.new_group(backend="gloo")).result()
    else:
        dcp.save(sd, checkpoint_id=path)


def digest(tensor):
    t = tensor.detach().cpu().contiguous()
    return f"{str(t.dtype).replace('torch.', '')}{list(t.shape)}:" + hashlib.sha256(t.numpy().tobytes()).hexdigest()[:24]


def checksums(model, optim):
    """{name: digest} of the full model and optimizer state, and the optimizer's hyperparameters."""
    msd, osd = get_state_dict(model, optim, options=StateDictOptions(full_state_dict=True))
    out = {f"model.{fqn}": digest(v) for fqn, v in msd.items()}
    for fqn, states in osd["state"].items():
        out.update({f"optim.{fqn}.{k}": digest(v) if isinstance(v, torch.Tensor) else repr(v) for k, v in states.items()})
    for i, group in enumerate(osd["param_groups"]):
        out.update({f"param_groups.{i}.{k}": repr(list(group[k]) if isinstance(group[k], tuple) else group[k])
                    for k in HYPERPARAMETERS if k in group})
    return dict(sorted(out.items()))
