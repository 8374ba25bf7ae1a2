"""accelerate's FSDP2 checkpoints: save_state (a sharded state dict through DCP) at 2 ranks,
load_state in fresh launches at 2 and 4 ranks, against an unsharded reference, then one more
step; and the full-state exports users ship to the Hub (get_state_dict, save_model,
merge_fsdp_weights), read back with safetensors.

One target runs three launches (dist_py_test(phases = [[2, 2, 4]])): phase 0 trains and saves,
phases 1 and 2 load. accelerate is imported lazily (tools/catalogue.py plans the cases without it).
"""

import os

import torch
from safetensors.torch import load_file
from torch.distributed.tensor import DTensor

from dsd.frameworks import accel
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import gather_full

SAVED_AFTER = 2
TOLERANCE = dict(rtol=1e-5, atol=1e-6)  # FSDP averages gradients across ranks: float rounding


class AccelerateCheckpointTest(DistributedTestCase):

    def assert_matches(self, reference, actual, where):
        """{FQN: tensor} equals the reference model's parameters (gathered, within TOLERANCE)."""
        expected = dict(reference.named_parameters())
        self.assertEqual(sorted(expected), sorted(actual), f"{where}: FQNs")
        for fqn, want in expected.items():
            got = gather_full(actual[fqn]).detach()
            self.assertTrue(torch.allclose(want.detach(), got, **TOLERANCE),
                            f"{where}: {fqn} differs by {(want - got).abs().max().item():.3g}")

    def assert_optimizer_matches(self, reference, ref_optim, model, optim, where):
        by_param = dict(zip([p for _, p in model.named_parameters()], [n for n, _ in model.named_parameters()]))
        ref_state = {n: ref_optim.state[p] for n, p in reference.named_parameters()}
        states = self.nonempty(list(optim.state.items()), f"{where}: optimizer state")
        for param, state in states:
            fqn = by_param[param]
            for key in ("exp_avg", "exp_avg_sq", "step"):
                got, want = gather_full(state[key]), ref_state[fqn][key]
                self.assertTrue(torch.allclose(want, got, **TOLERANCE), f"{where}: optimizer {fqn}.{key} differs")

    def test_sharded_state_resumes_at_any_world_size(self):
        path = self.checkpoint_dir()
        acc = accel.accelerator()
        model, optim, schedule, loader = accel.prepared(acc, seed=0 if self.phase == 0 else 5)
        self.assertTrue(acc.is_fsdp2, f"accelerate did not take its FSDP2 path: {acc.distributed_type}")
        self.assertIsInstance(model.fc1.weight, DTensor, "fc1.weight: prepare did not shard the model")
        batches = iter(loader)
        if self.phase == 0:
            for _ in range(SAVED_AFTER):
                accel.step(model, optim, schedule, next(batches))
            acc.save_state(path)
            self.assertTrue(os.path.isdir(os.path.join(path, "pytorch_model_fsdp_0")), "no DCP model directory")
            return
        acc.load_state(path)
        where = f"saved at {self.phase_world_sizes[0]} ranks, loaded at {self.world_size}"
        reference, ref_optim = accel.reference(SAVED_AFTER)
        self.assert_matches(reference, dict(model.named_parameters()), where)
        self.assert_optimizer_matches(reference, ref_optim, model, optim, where)
        self.assertEqual(schedule.get_last_lr(), [accel.LR / (1.0 + 0.5 * SAVED_AFTER)], f"{where}: learning rate")
        accel.step(model, optim, schedule, next(iter(loader)))  # the loader resumes at batch 3
        reference, ref_optim = accel.reference(SAVED_AFTER + 1)
        self.assert_matches(reference, dict(model.named_parameters()), f"{where}, one step later")
        self.assert_optimizer_matches(reference, ref_optim, model, optim, f"{where}, one step later")

    def test_full_state_exports(self):
        """get_state_dict (rank 0), save_model(safe_serialization=True) and merge_fsdp_weights of
        the sharded checkpoint: each holds the trained model's full weights (phase 0 only)."""
        from accelerate.utils import merge_fsdp_weights
        if self.phase:
            return
        path = self.checkpoint_dir(f"phase{self.phase}")
        acc = accel.accelerator()
        model, optim, schedule, loader = accel.prepared(acc, seed=0)
        for batch, _ in zip(loader, range(SAVED_AFTER)):
            accel.step(model, optim, schedule, batch)
        reference, _ = accel.reference(SAVED_AFTER)
        acc.save_state(os.path.join(path, "state"))
        full = acc.get_state_dict(model)  # a collective; rank 0 receives the full tensors
        acc.save_model(model, os.path.join(path, "hub"), safe_serialization=True)
        # Every rank calls it (it synchronises them); the main process merges and writes.
        merge_fsdp_weights(os.path.join(path, "state", "pytorch_model_fsdp_0"), os.path.join(path, "merged"))
        if self.rank != 0:
            self.assertEqual(full, {}, "get_state_dict hands the full state to rank 0 only")
            return
        self.assert_matches(reference, full, "get_state_dict")
        self.assert_matches(reference, load_file(os.path.join(path, "hub", "model.safetensors")), "save_model")
        self.assert_matches(reference, load_file(os.path.join(path, "merged", "model.safetensors")), "merge_fsdp_weights")
