"""The transformer fixture saved at 4 ranks and loaded at 3: a non-power-of-two change, so every
sharded dimension (vocab 64, width 32, MLP 64) splits unevenly (22/21/21 rows) and the load
plan reads across shard boundaries. FSDP2, FSDP1, TP and 2-D checkpoints load into FSDP2 and
FSDP1 (TP cannot run at 3 ranks: 4 heads), checked FQN by FQN against the saver's unsharded
reference, then trained one more step alike.

Spec: PyTorch's test_planner.py (resharding plans, 4 -> 3) and test_fsdp_checkpoint.py, end to
end on a transformer.
"""

import torch.distributed as dist
from absl.testing import parameterized
from torch.distributed.checkpoint.state_dict import get_model_state_dict

from dsd import transformer_checks

CASES = (
    ("fsdp2", "fsdp2"),
    ("fsdp1", "fsdp1"),
    ("fsdp1", "fsdp2"),
    ("fsdp2_tp", "fsdp2"),
    ("tp", "fsdp1"),
)


class TransformerUnevenReshardTest(transformer_checks.TransformerCase):

    @parameterized.named_parameters(*((f"{a}_to_{b}", a, b) for a, b in CASES))
    def test_save_at_4_load_at_3(self, save_layout, load_layout):
        loaded = self.check_reshard(save_layout, load_layout)
        if loaded is None or load_layout != "fsdp2":
            return
        rows = [None] * self.world_size
        local = get_model_state_dict(loaded.model)["tok_embeddings.weight"].to_local()
        dist.all_gather_object(rows, local.shape[0])
        self.assertEqual(sum(rows), 64, f"tok_embeddings.weight rows per rank {rows}")
        self.assertGreater(len(set(rows)), 1, f"precondition: uneven shards at {self.world_size} ranks, got {rows}")
