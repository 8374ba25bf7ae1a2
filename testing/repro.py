"""Sub-launches of minimal reproductions (dsd/repro/) for torch bugs that crash or hang ranks.

A crashing rank cannot report its own expected failure, so a case runs the repro on its own
CPU ranks (testing/launcher/rank_group.py, a fresh interpreter per rank, as torchrun starts
them) and returns an Outcome for @known_crash / @known_hang to judge. A repro script calls
started() once its set-up is done and succeeded() at the end of the behaviour under test; it
then exits through the interpreter's normal teardown. Each rank's output is kept apart, with
how it ended (its return code; a negative one for a signal). A hang is bounded by `timeout`,
after which every rank's Python stack is dumped into its output before the kill.
"""

import dataclasses
import faulthandler
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from testing.launcher import processes

START, SUCCESS = "REPRO START", "REPRO OK"
_DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK", "LOCAL_WORLD_SIZE",
             "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE", "CUDA_VISIBLE_DEVICES")


def started():
    """In a repro rank: Python and C++ stacks on a fatal signal, Python stacks on SIGUSR1 (a
    hang), then the mark of the start of the behaviour under test."""
    import torch

    processes.die_with_parent()
    faulthandler.enable(all_threads=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)
    torch._C._set_print_stack_traces_on_fatal_signal(True)
    print(f"{START} rank {os.environ.get('RANK')}", flush=True)


def succeeded():
    print(f"{SUCCESS} rank {os.environ.get('RANK')}", flush=True)


@dataclasses.dataclass
class RankOutcome:
    rank: int
    returncode: int      # None: killed by the repro's timeout before it ended
    output: str

    @property
    def signal(self):
        return signal.Signals(-self.returncode).name if self.returncode is not None and self.returncode < 0 else None

    @property
    def succeeded(self):
        return self.output.count(SUCCESS) == 1

    def after_start(self):
        """The output from the repro's start marker on ('' if the rank never started)."""
        begin = self.output.find(START)
        return "" if begin < 0 else self.output[begin:]


@dataclasses.dataclass
class Outcome:
    script: str
    ranks: list          # RankOutcome per rank
    hung: bool

    @property
    def completed(self):
        return not self.hung and all(r.returncode == 0 and r.succeeded for r in self.ranks)

    def summary(self):
        lines = [f"{self.script}: " + ("hung (killed at the timeout)" if self.hung else "ended")]
        for r in self.ranks:
            lines.append(f"--- rank {r.rank}: {processes.describe_exit(r.returncode)}"
                         f"{', succeeded' if r.succeeded else ''} ---")
            key = [line for line in r.output.splitlines() if re.search(r"Error|error|Signal|SIG|REPRO|File ", line)]
            lines += key[:30] + ["(output tail)", r.output[-1500:]]
        return "\n".join(lines)


def run_repro(path, *args, nproc=2, timeout=90):
    """Runs the repro at `path` on `nproc` CPU ranks; kills every process of it on the way out."""
    token = processes.new_token("DSD_REPRO_TOKEN")
    log_dir = tempfile.mkdtemp(prefix="repro-", dir=os.environ.get("TEST_TMPDIR"))
    report = os.path.join(log_dir, "ranks.json")
    env = {k: v for k, v in os.environ.items() if k not in _DIST_ENV}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **dict([token]))
    cmd = [sys.executable, "-m", "testing.launcher.rank_group", f"--nproc={nproc}", f"--report={report}",
           f"--log_dir={log_dir}", "--", path, *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    hung = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        for pid in processes.processes_with_env(*token):
            if pid != proc.pid:
                os.kill(pid, signal.SIGUSR1)
        time.sleep(2)
    finally:
        processes.kill_launch(proc, token)
    return Outcome(os.path.basename(path), _rank_outcomes(log_dir, report, nproc), hung)


def _rank_outcomes(log_dir, report, nproc):
    try:
        with open(report) as f:
            ranks = json.load(f)["ranks"]
    except (OSError, ValueError, KeyError):
        ranks = {}
    outcomes = []
    for rank in range(nproc):
        try:
            with open(os.path.join(log_dir, f"rank{rank}.log"), errors="replace") as f:
                output = f.read()
        except OSError:
            output = ""
        outcomes.append(RankOutcome(rank, ranks.get(str(rank), {}).get("returncode"), output))
    return outcomes
