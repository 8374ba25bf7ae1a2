"""Framework checkpoints across torch releases: a torchtitan job and an accelerate job save
under one pinned torch and resume under the other (dist_py_test(phases =
[["2@frameworks2_13", "2@frameworks2_14"], ...]), tagged cross_version).

torchtitan: FSDP2, saved at step N by CheckpointManager; the resumed job's state equals the saved
one bitwise and its next steps match the uninterrupted run's within LOSS_RTOL (another torch
computes a step in another order, and 2.13 runs torchtitan with spmd_backend partial_dtensor).
accelerate: FSDP2 save_state / load_state against the unsharded reference.
"""

import torch

from dsd.frameworks import accel
from dsd.frameworks import titan
from dsd.frameworks.accelerate_checkpoint_test import AccelerateCheckpointTest
from dsd.frameworks.titan_checks import TitanCase
from dsd.frameworks.titan_checks import build
from dsd.frameworks.titan_checks import full_state
from testing.parallelisms import LAYOUTS

SAVE_AT, MORE = 2, 2
LOSS_RTOL = 1e-4
STATE_TOLERANCE = dict(rtol=1e-3, atol=1e-5)


class TorchtitanUpgradeTest(TitanCase):

    def test_fsdp2_job_resumes_under_the_other_torch(self):
        path = self.checkpoint_dir()
        run = build(LAYOUTS["fsdp2"].dims, seed=0 if self.phase == 0 else 7)
        checkpointer = titan.checkpointer(run, path, interval=SAVE_AT)
        if self.phase == 0:
            self.train(run, SAVE_AT, checkpointer)
            saved = full_state(run)
            losses = self.train(run, MORE, checkpointer)
            checkpointer.close()
            self.save_reference(path, saved=saved, losses=losses, final=full_state(run), torch=torch.__version__)
            return
        self.assertTrue(checkpointer.load(step=SAVE_AT), "no checkpoint loaded")
        reference = self.reference(path)
        where = f"saved by torch {reference['torch']}, resumed by torch {torch.__version__}"
        self.assert_same_state(reference["saved"], full_state(run), where)
        self.assert_losses(reference["losses"], self.train(run, MORE), where, rtol=LOSS_RTOL)
        self.assert_same_state(reference["final"], full_state(run), f"{where}: after {MORE} steps", **STATE_TOLERANCE)
        checkpointer.close()


class AccelerateUpgradeTest(AccelerateCheckpointTest):
    """accelerate's resume case (the export case is the same under either torch)."""
    test_full_state_exports = None


del AccelerateCheckpointTest  # collected as AccelerateUpgradeTest only
