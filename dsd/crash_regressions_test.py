"""torch bugs that crash or hang ranks, pinned as regressions.

A crashing rank cannot report its own expected failure, so each case runs a minimal
reproduction (dsd/repro/) in a sub-launch of its own (torchrun, 2 CPU ranks, a timeout) and
matches the symptom in its output. While the bug reproduces the case is an expected
failure; once torch fixes it the repro prints REPRO OK and the case fails as an unexpected
success, so the suite goes green -> red -> green.
"""

import os
import re
import signal
import subprocess
import sys
import time

from testing.dist_test_case import DistributedTestCase
from testing.dist_test_case import known_failure
from testing.launcher import processes_with_env

REPRO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repro")


class ReproFailed(RuntimeError):
    pass


def run_repro(script, *args, nproc=2, timeout=90):
    """Runs dsd/repro/<script> on `nproc` CPU ranks; raises ReproFailed with the output unless
    it exits 0 with REPRO OK. Kills every process of the sub-launch on the way out."""
    token = f"DSD_REPRO_TOKEN={os.getpid()}.{time.time_ns()}"
    env = dict(os.environ, OMP_NUM_THREADS="1", DSD_REPRO_TOKEN=token.split("=", 1)[1])
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK",
                "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID", "CUDA_VISIBLE_DEVICES"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "--max-restarts=0", os.path.join(REPRO_DIR, script), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = "hang: ranks did not finish within %ds" % timeout
    finally:
        for pid in processes_with_env(token) + [proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    if proc.returncode != 0 or "REPRO OK" not in out:
        key_lines = [line for line in out.splitlines() if re.search(r"Error|exitcode|Signal|hang:", line)]
        raise ReproFailed(f"{script} (exit {proc.returncode}):\n" + "\n".join(key_lines[:40])
                          + "\n--- output tail ---\n" + out[-2000:])


class CrashRegressionsTest(DistributedTestCase):

    @known_failure(ReproFailed, r"exitcode\s*:\s*-11|SIGSEGV",
                   "FSDP1 (use_orig_params=True) get_state_dict(full_state_dict=True, "
                   "cpu_offload=True) segfaults rank 0 on CPU ranks")
    def test_fsdp1_full_state_dict_cpu_offload_use_orig_params(self):
        run_repro("fsdp1_full_state_dict_cpu_offload.py", "1")

    @known_failure(ReproFailed, r"out of bounds|hang:|exitcode\s*:\s*-(6|11)",
                   "FSDP1 (use_orig_params=False) full_state_dict + cpu_offload on CPU: one rank "
                   "fails ('setStorage ... out of bounds') or crashes, the others hang")
    def test_fsdp1_full_state_dict_cpu_offload_flat_params(self):
        run_repro("fsdp1_full_state_dict_cpu_offload.py", "0", timeout=60)

    @known_failure(ReproFailed, r"Received data size doesn't match expected size|exitcode\s*:\s*-6",
                   "FSDP1 set_state_dict(flatten_optimizer_state_dict=True) issues mismatched "
                   "collectives; gloo aborts rank 0")
    def test_fsdp1_flattened_optimizer_state_dict_load(self):
        run_repro("fsdp1_flattened_optimizer_state_dict_load.py")
