"""How a launch starts its ranks, and how it learns how each one ended.

  fork      (default on CPU ranks) testing/launcher/rank_group.py imports torch and the test
            module's dependencies once, then forks the ranks; it reports each rank's exit in
            ranks.json
  spawn     rank_group.py with a fresh interpreter per rank
  torchrun  torch.distributed.run --standalone (default on CUDA: what GPU pools and elastic
            jobs use); each rank's exit is read from torchrun's failure report

Every starter runs `testing.launcher.rank_worker <spec>` on every rank under the same protocol,
so the verdict does not depend on the starter (launcher_test runs the fault table under each).
"""

import json
import os
import re

from testing.launcher import processes

STARTERS = ("auto", "fork", "spawn", "torchrun")
RANK_WORKER = "testing.launcher.rank_worker"


def choose(requested, device):
    """The starter for `device`: torchrun on CUDA, fork on CPU ranks, unless one is requested."""
    if requested not in STARTERS:
        raise ValueError(f"unknown rank starter {requested!r}; expected one of {', '.join(STARTERS)}")
    if requested != "auto":
        return requested
    return "torchrun" if device == "cuda" else "fork"


def command(starter, python, world_size, attempt_dir, spec_file, test_module):
    """The command line that starts the launch's ranks."""
    if starter == "torchrun":
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world_size}",
                "--max-restarts=0", "--monitor-interval=0.1", "-m", RANK_WORKER, spec_file]
    cmd = [python, "-m", "testing.launcher.rank_group", f"--nproc={world_size}",
           f"--report={os.path.join(attempt_dir, 'ranks.json')}"]
    if starter == "fork":
        cmd += ["--fork", f"--preimport_from={test_module}"]
    return cmd + ["--", "-m", RANK_WORKER, spec_file]


def starter_log(attempt_dir):
    """The starter's own output (torchrun's agent, or the rank group)."""
    return os.path.join(attempt_dir, "starter.log")


def read_report(attempt_dir):
    """ranks.json of a rank group ({} for torchrun, or before the group wrote it)."""
    try:
        with open(os.path.join(attempt_dir, "ranks.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def rank_exits(attempt_dir):
    """{rank: 'exit code N' / 'signal SIG'} of the ranks that ended badly, from the rank group's
    report, else from torchrun's failure report."""
    report = read_report(attempt_dir)
    if report:
        first = report.get("first_failure")
        return {int(rank): processes.describe_exit(r["returncode"])
                + (f" (stopped after rank {first} failed)" if r.get("stopped_by_group") else "")
                for rank, r in report["ranks"].items() if r.get("returncode") not in (None, 0)}
    exits = {}
    text = _tail(starter_log(attempt_dir))
    for m in re.finditer(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n?\s*exitcode\s*:\s*(-?\d+)", text):
        exits[int(m.group(1))] = processes.describe_exit(int(m.group(2)))
    return exits


def _tail(path, size=64 * 1024):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
