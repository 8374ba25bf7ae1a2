"""torchtitan checkpoints loaded by another layout at another world size, as torchtitan users
reshard: saved at 2 ranks (FSDP2, TP, 2 pipeline stages, MoE with EP 2), loaded at 4 (FSDP2 x
TP, HSDP, FSDP over 4 ranks without a pipeline, EP 4). The loaded state equals the saved one FQN
by FQN (bitwise), then one more step on the same global batch matches the saving job's.

dist_py_test(phases = [[2, 4]]): phase 0 saves and keeps the reference, phase 1 loads. The
dataloader state cannot be resharded (torchtitan #811, pinned by torchtitan_checkpoint_test),
so the loading job excludes it and seeks its data to the restored step, as users do.
"""

from absl.testing import parameterized

from dsd.frameworks import titan
from dsd.frameworks.titan_checks import TitanCase
from dsd.frameworks.titan_checks import build
from dsd.frameworks.titan_checks import full_state
from testing.dist_test_case import requires_torch
from testing.parallelisms import LAYOUTS
from testing.parallelisms import ParallelDims

SAVE_AT = 2
# After one step from equal states the layouts differ only by reduction order: within 1e-5
# absolute (1/80 of the largest AdamW update at lr 8e-4) or 1e-4 relative.
STEP_TOLERANCE = dict(rtol=1e-4, atol=1e-5)
PER_RANK = "train_state.ntokens_seen"  # the tokens this rank read: another layout reads other shares
RESHARDS = (
    ("fsdp2_to_fsdp2_tp", LAYOUTS["fsdp2"].dims, LAYOUTS["fsdp2_tp"].dims, "llama3"),
    ("tp_to_hsdp", LAYOUTS["tp"].dims, LAYOUTS["hsdp"].dims, "llama3"),
    ("moe_ep2_to_ep4", ParallelDims(ep=2), ParallelDims(ep=4), "deepseek_v3"),
)


class ReshardTest(TitanCase):

    @parameterized.named_parameters(*RESHARDS)
    def test_load_into_another_layout(self, saved_as, loaded_as, model):
        self.check_reshard(saved_as, loaded_as, model)

    @requires_torch("2.14", "torchtitan 0.3.0 cannot step a pipeline on torch 2.13 (pinned by "
                            "torchtitan_checkpoint_test ResumeTest.test_pipeline_resume_equals_uninterrupted_run)")
    def test_pipeline_stages_load_into_fsdp(self):
        """PP 2 -> PP 1: two stages' checkpoint (each rank owns other FQNs) into FSDP2 over 4 ranks."""
        self.check_reshard(ParallelDims(dp_shard=1, pp=2), LAYOUTS["fsdp2"].dims, "llama3")

    def check_reshard(self, saved_as, loaded_as, model):
        path = self.checkpoint_dir()
        if self.phase == 0:
            run = build(saved_as, model=model)
            checkpointer = titan.checkpointer(run, path, interval=SAVE_AT)
            self.train(run, SAVE_AT, checkpointer)
            saved = full_state(run)
            losses = self.train(run, 1)
            checkpointer.close()
            self.save_reference(path, saved=saved, losses=losses, after=full_state(run))
            return
        where = f"saved as {saved_as} at {self.phase_world_sizes[0]} ranks, loaded as {loaded_as} at {self.world_size}"
        run = build(loaded_as, model=model, seed=7)
        checkpointer = titan.checkpointer(run, path, exclude_from_loading=["dataloader"])
        self.assertTrue(checkpointer.load(step=SAVE_AT), f"{where}: no checkpoint loaded")
        run.dataloader.dataset.position = SAVE_AT * titan.local_batch(run.parallel_dims)
        reference = self.reference(path)
        self.assert_same_state(reference["saved"], full_state(run), where)
        self.assert_losses(reference["losses"], self.train(run, 1), f"{where}: the next step", rtol=STEP_TOLERANCE["rtol"])
        after = {k: v for k, v in full_state(run).items() if k != PER_RANK}
        expected = {k: v for k, v in reference["after"].items() if k != PER_RANK}
        self.assert_same_state(expected, after, f"{where}: after one more step", **STEP_TOLERANCE)
        checkpointer.close()
