"""Sub-launches of minimal reproductions (dsd/repro/) for torch bugs that crash or hang ranks.

A crashing rank cannot report its own expected failure, so a case runs the repro on its own
CPU ranks (torchrun) and returns an Outcome for @known_crash to judge. A repro script calls
started() once its set-up is done and succeeded() at its very end; a hang is bounded by
`timeout`, after which every rank's Python stack is dumped into the output.
"""

import dataclasses
import faulthandler
import os
import re
import signal
import subprocess
import sys
import time

from testing.launcher import processes

START, SUCCESS = "REPRO START", "REPRO OK"
_DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK", "LOCAL_WORLD_SIZE",
             "TORCHELASTIC_RUN_ID", "CUDA_VISIBLE_DEVICES")


def started():
    """In a repro rank: dump stacks on SIGUSR1, then mark the start of the behaviour under test."""
    processes.die_with_parent()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    print(f"{START} rank {os.environ.get('RANK')}", flush=True)


def succeeded():
    print(f"{SUCCESS} rank {os.environ.get('RANK')}", flush=True)


@dataclasses.dataclass
class Outcome:
    script: str
    returncode: int
    output: str
    nproc: int
    hung: bool

    @property
    def completed(self):
        return self.returncode == 0 and self.output.count(SUCCESS) == self.nproc

    def first_match(self, signature):
        """Offset of `signature` in the output if it comes after the start and before any success marker."""
        begin = self.output.find(START)
        if begin < 0:
            return None
        m = re.compile(signature, re.M).search(self.output, begin)
        success = self.output.find(SUCCESS, begin)
        if m is None or 0 <= success < m.start():
            return None
        return m.start()

    def around(self, position, lines=8):
        head = self.output[:position].splitlines()[-2:]
        return "\n".join(head + self.output[position:].splitlines()[:lines])

    def summary(self):
        key = [line for line in self.output.splitlines() if re.search(r"Error|exitcode|Signal|hang:|REPRO", line)]
        return (f"{self.script}: {processes.describe_exit(self.returncode)}\n" + "\n".join(key[:40])
                + "\n--- output tail ---\n" + self.output[-3000:])


def run_repro(path, *args, nproc=2, timeout=90):
    """Runs the repro at `path` on `nproc` CPU ranks; kills every process of it on the way out."""
    token = processes.new_token("DSD_REPRO_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in _DIST_ENV}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **dict([token]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "--max-restarts=0", path, *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    hung = False
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        ranks = [pid for pid in processes.processes_with_env(*token) if pid != proc.pid]
        for pid in ranks:
            os.kill(pid, signal.SIGUSR1)
        time.sleep(2)
        processes.kill_launch(proc, token)
        output = proc.stdout.read() + f"\nhang: the ranks did not finish within {timeout}s (stacks above)\n"
    finally:
        processes.kill_launch(proc, token)
    return Outcome(os.path.basename(path), proc.returncode, output, nproc, hung)
