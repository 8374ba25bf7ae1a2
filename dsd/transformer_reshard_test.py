"""The transformer fixture checkpointed at one world size and loaded at another (2 -> 4 and
4 -> 2): per-block FSDP2, FSDP1 auto-wrap, tensor parallel and 2-D (TP within pairs of ranks,
FSDP2 across them) checkpoints loaded into the same or another layout, each checked FQN by FQN
against the saver's unsharded reference, then (without TP) trained one more step alike; and a
consolidated state dict, read by rank 0 alone, broadcast into a meta-device model sharded at the
other world size.

Spec: PyTorch's test_dtensor_resharding.py (1-D <-> 2-D placement changes), test_tp_checkpoint.py,
test_2d_fsdp_dt_checkpoint.py and test_fsdp_checkpoint.py (save at one layout, load at another),
on a transformer instead of MLPs; test_state_dict.py's broadcast_from_rank0 into a meta model.
"""

import os

import torch
import torch.distributed as dist
from absl.testing import parameterized
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import set_model_state_dict

from dsd import transformer_checks
from dsd.transformer_checks import SHARDED
from models import transformer
from testing import parallelisms

CASES = (
    ("fsdp2", "fsdp2"),
    ("fsdp1", "fsdp2"),
    ("fsdp2", "fsdp1"),
    ("tp", "fsdp2_tp"),
    ("fsdp2_tp", "tp"),
    ("fsdp2_tp", "fsdp2"),
    ("fsdp2", "fsdp2_tp"),
)


class TransformerReshardTest(transformer_checks.TransformerCase):

    @parameterized.named_parameters(*((f"{a}_to_{b}", a, b) for a, b in CASES))
    def test_save_then_load_at_another_world_size(self, save_layout, load_layout):
        self.check_reshard(save_layout, load_layout)

    @parameterized.named_parameters(("fsdp2", "fsdp2"), ("fsdp2_tp", "fsdp2_tp"))
    def test_meta_device_model_from_rank0_consolidated_state_dict(self, layout):
        """The usual way to start from a consolidated checkpoint: build on meta, shard,
        materialise, then broadcast what rank 0 alone read (full_state_dict, broadcast_from_rank0)."""
        consolidated = os.path.join(self.checkpoint_dir(), "consolidated.pt")
        if self.phase == 0:
            trained = self.trained("fsdp2")
            full = get_model_state_dict(trained.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
            if self.rank == 0:
                torch.save(full, consolidated)
            dist.barrier()
            return

        reference = self.model("plain", seed=99)  # every rank reads it, to verify against
        reference.load_state_dict(torch.load(consolidated, weights_only=True))
        with torch.device("meta"):
            model = transformer.Transformer(seed=5)
        model = parallelisms.parallelize(model, layout, self.device)
        model.to_empty(device=self.device)
        model.init_buffers()
        state = torch.load(consolidated, weights_only=True, mmap=True) if self.rank == 0 else {}
        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
        where = f"{layout} at {self.world_size} ranks from a file saved at {self.phase_world_sizes[0]}"
        self.verify_msd(reference, get_model_state_dict(model), SHARDED, model)
        self.assert_tied(model, where)
        for name, buffer in reference.rope.named_buffers():
            self.assertTrue(torch.equal(getattr(model.rope, name), buffer), f"rope.{name} differs ({where})")
