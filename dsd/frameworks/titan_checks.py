"""TitanCase: the base of the torchtitan families. A case trains with titan.build/titan_step,
checkpoints with torchtitan's CheckpointManager, and compares full states FQN by FQN.

A state (full_state) is what CheckpointManager saves, gathered to full tensors and keyed as in
its checkpoint: model FQNs, "optimizer.state.<fqn>.<name>", "optimizer.param_groups.<fqn>.<name>",
"lr_scheduler.last_epoch", "train_state.step", "train_state.ntokens_seen" (the dataloader's
position is compared on its own: see position()).
"""

import os

import torch
import torch.distributed as dist

from dsd.frameworks import titan
from dsd.frameworks import titan_step
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import gather_full

REFERENCE = "reference.pt"


def full_state(run, model_only=False):
    """{key: full tensor or value} of the run's checkpointed state (model_only: its model FQNs),
    the same on every rank (a pipeline's stages each gather their own FQNs, then exchange them)."""
    from torchtitan.components.checkpoint import ModelWrapper
    sections = {"": ModelWrapper(run.model_parts).state_dict()}
    if not model_only:
        sections.update({"optimizer.": run.optimizers.state_dict(), "lr_scheduler.": run.lr_schedulers.state_dict(),
                         "train_state.": run.train_state.state_dict()})
    state = {}
    for prefix, values in sections.items():
        for key, value in values.items():
            state[prefix + key] = gather_full(value).detach().clone() if isinstance(value, torch.Tensor) else value
    if run.parallel_dims.pp_enabled:
        stages = [None] * dist.get_world_size()
        dist.all_gather_object(stages, state)
        state = {k: v for stage in stages for k, v in stage.items()}
    return state


def position(run):
    """How many samples this rank's dataloader has read (its data set is titan's SyntheticTokens)."""
    return run.dataloader.dataset.position


class TitanCase(DistributedTestCase):

    def train(self, run, steps, checkpointer=None):
        """`steps` training steps; after each, checkpointer.save(step) as the Trainer calls it
        (it saves when the step is a multiple of its interval). Returns the losses."""
        losses = []
        for _ in range(steps):
            losses.append(titan_step.train_step(run))
            if checkpointer is not None:
                checkpointer.save(curr_step=run.train_state.step)
        return losses

    def save_reference(self, path, **values):
        """Rank 0 writes `values` beside the checkpoint, for a later phase to compare with."""
        if self.rank == 0:
            torch.save(values, os.path.join(path, REFERENCE))
        dist.barrier()

    def reference(self, path):
        return torch.load(os.path.join(path, REFERENCE), weights_only=False)

    def assert_same_state(self, expected, actual, where, rtol=0.0, atol=0.0):
        """Same keys; each tensor of the same dtype and shape and equal (bitwise unless a
        tolerance is given); each other value equal. Messages name the key (FQN)."""
        missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
        self.assertFalse(missing or extra, f"{where}: keys differ; missing {missing[:8]}, unexpected {extra[:8]}")
        self.nonempty([k for k in expected if isinstance(expected[k], torch.Tensor)], f"{where}: tensors")
        for key, want in expected.items():
            got = actual[key]
            if not isinstance(want, torch.Tensor):
                self.assertEqual(want, got, f"{where}: {key} differs")
                continue
            self.assertEqual((want.dtype, tuple(want.shape)), (got.dtype, tuple(got.shape)), f"{where}: {key} dtype/shape")
            same = torch.equal(want, got) if rtol == atol == 0 else torch.allclose(want, got, rtol=rtol, atol=atol)
            if not same:
                diff = (want.double() - got.double()).abs().max().item()
                self.fail(f"{where}: {key} differs (max abs difference {diff:.3g}, rtol {rtol}, atol {atol})")

    def assert_losses(self, expected, actual, where, rtol=0.0):
        """The losses of the same steps: equal floats, or within rtol."""
        self.assertEqual(len(expected), len(actual), f"{where}: number of steps")
        for step, (want, got) in enumerate(zip(expected, actual), 1):
            if rtol:
                self.assertTrue(abs(want - got) <= rtol * abs(want), f"{where}: loss of step {step}: {got} vs {want} (rtol {rtol})")
            else:
                self.assertEqual(want, got, f"{where}: loss of step {step} differs")


def build(dims, **options):
    """titan.build, with the backend torchtitan needs for the layout: expert parallelism under
    spmd_types all_to_alls with uneven splits, which gloo rejects (pinned by the checkpoint
    family), so an EP layout uses partial_dtensor, as on torch 2.13."""
    if dims.ep > 1:
        options.setdefault("backend", "partial_dtensor")
    return titan.build(dims, **options)
