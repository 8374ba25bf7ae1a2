"""The usual DCP application state: model + optimizer through DSD, as one Stateful.

    checkpointing.save(model, optim, path)   # dcp.save({"app": AppState(model, optim)})
    checkpointing.load(model, optim, path)   # dcp.load(...) then set_state_dict, in place

DCP calls AppState.state_dict() to plan (sharded DTensors for FSDP/TP models) and
load_state_dict() after reading, so a load reshards onto whatever layout `model` has.
"""

import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.checkpoint.state_dict import set_state_dict
from torch.distributed.checkpoint.stateful import Stateful


class AppState(Stateful):

    def __init__(self, model, optim):
        self.model, self.optim = model, optim

    def state_dict(self):
        msd, osd = get_state_dict(self.model, self.optim)
        return {"model": msd, "optim": osd}

    def load_state_dict(self, state):
        set_state_dict(self.model, self.optim, model_state_dict=state["model"], optim_state_dict=state["optim"])


def save(model, optim, path, **kwargs):
    dcp.save({"app": AppState(model, optim)}, checkpoint_id=path, **kwargs)


def load(model, optim, path, **kwargs):
    dcp.load({"app": AppState(model, optim)}, checkpoint_id=path, **kwargs)
