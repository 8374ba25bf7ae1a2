"""torch bugs that crash or hang ranks, pinned as regressions.

A crashing rank cannot report its own expected failure, so each case runs a minimal
reproduction (dsd/repro/) in a sub-launch of 2 CPU ranks (testing/repro.py) and @known_crash
matches torch's crash report in its output, after the repro started and before any rank
printed its success marker. Once torch fixes a bug the repro completes and the case fails as an
unexpected success, so the suite goes green -> red -> green.
"""

import os

from testing.dist_test_case import DistributedTestCase
from testing.known_failures import known_crash
from testing.repro import run_repro

REPRO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repro")


class CrashRegressionsTest(DistributedTestCase):

    @known_crash("FSDP1 (use_orig_params=True) get_state_dict(full_state_dict=True, cpu_offload=True) segfaults "
                 "rank 0 on CPU ranks, cloning the unsharded parameter in FSDP's state-dict param_hook",
                 signal="SIGSEGV", frame="torch/distributed/fsdp/_state_dict_utils.py:param_hook",
                 torch_versions="2.13")
    def test_fsdp1_full_state_dict_cpu_offload_use_orig_params(self):
        return run_repro(os.path.join(REPRO_DIR, "fsdp1_full_state_dict_cpu_offload.py"), "1")

    @known_crash("FSDP1 (use_orig_params=False) full_state_dict + cpu_offload on CPU: unsharding for the state dict "
                 "splits a flat parameter whose storage was freed, and rank 0 fails ('setStorage ... out of bounds "
                 "for storage of size 0')", exit_code=1,
                 message=r"RuntimeError: setStorage: .* out of bounds for storage of size 0",
                 frame="torch/distributed/fsdp/_flat_param.py:_get_unflat_views_unaligned", torch_versions="2.13")
    def test_fsdp1_full_state_dict_cpu_offload_flat_params(self):
        return run_repro(os.path.join(REPRO_DIR, "fsdp1_full_state_dict_cpu_offload.py"), "0", timeout=60)

    # No frame pinned: gloo aborts in its own I/O thread, and whether the dying rank still prints
    # the Python stacks is a race (seen both ways); gloo's own size-check text locates it.
    @known_crash("FSDP1 set_state_dict(flatten_optimizer_state_dict=True) issues mismatched collectives while "
                 "re-sharding the optimizer state; gloo's size check aborts a rank, or (a race: seen once in a "
                 "fresh-clone CI run) both ranks wait in the mismatched all_gather",
                 signal="SIGABRT", message=r"Received data size doesn't match expected size",
                 or_hang=["torch/distributed/fsdp/_optim_utils.py:_shard_orig_param_state",
                          "torch/distributed/_functional_collectives.py:wait_tensor"])
    def test_fsdp1_flattened_optimizer_state_dict_load(self):
        # 30 s: the abort comes within 5 s (2 fresh interpreters importing torch); the hang (its
        # other ending) is waited out for the whole timeout.
        return run_repro(os.path.join(REPRO_DIR, "fsdp1_flattened_optimizer_state_dict_load.py"), timeout=30)
