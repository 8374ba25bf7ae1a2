"""One launch: the ranks started once (starters.py) over the cases not yet run, watched through
their records (records.py) until they exit or the watchdog (watchdog.py) ends the launch. Before
a kill, every rank that has not recorded its end dumps its Python stacks (SIGUSR1, which the
rank worker routes to faulthandler) and, on CUDA, its NCCL flight recorder. What the launch
left behind (records, exits, stacks, kill reason) is turned into results by attribution.py.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import time

from testing.launcher import processes
from testing.launcher import starters
from testing.launcher import watchdog
from testing.launcher.flight_recorder import FlightRecorder
from testing.launcher.protocol import LaunchSpec
from testing.launcher.records import LaunchRecords

_POLL = 0.05
_STACK_DUMP_WAIT = 1.5


class Interrupted(Exception):
    """SIGTERM/SIGINT reached the launcher (e.g. Bazel's timeout or a Ctrl-C)."""


@dataclasses.dataclass
class LaunchConfig:
    """What every launch of one phase shares."""

    spec: LaunchSpec              # the phase's spec; each launch adds its attempt dir and cases run
    world_size: int
    python: str                   # the phase's interpreter
    limits: watchdog.Limits
    deadline: tuple = None        # (time, what) of the target's own limit
    extra_env: dict = dataclasses.field(default_factory=dict)
    starter: str = "fork"         # starters.STARTERS
    tee_ranks: tuple = ()         # ranks whose output goes live to the launcher's (--tee_rank)
    pipe_dir: str = ""            # NCCL debug pipes of CUDA launches


def tail(path, lines=60, start=0):
    try:
        with open(path, errors="replace") as f:
            f.seek(start)
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Launch:

    def __init__(self, config, attempt_dir, already_run):
        self.config, self.dir = config, attempt_dir
        os.makedirs(self.dir)
        self.spec = dataclasses.replace(config.spec, attempt_dir=self.dir, already_run=list(already_run))
        self.spec_file = os.path.join(self.dir, "spec.json")
        self.spec.write(self.spec_file)
        self.world_size = config.world_size
        self.records = LaunchRecords(self.dir, self.world_size)
        self.kill_reason, self.stacks = None, {}
        self.token = processes.new_token("DSD_LAUNCH_TOKEN")
        self.started = self.ended = self.returncode = None
        self._teed = {rank: (0, b"") for rank in config.tee_ranks if rank < self.world_size}
        self.flight_recorder = (FlightRecorder(self.dir, os.path.join(config.pipe_dir, os.path.basename(self.dir)))
                                if self.spec.device == "cuda" else None)

    def rank_file(self, rank, ext):
        return os.path.join(self.dir, f"rank{rank}.{ext}")

    def run(self):
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.update(PYTHONUNBUFFERED="1", DSD_LAUNCHER_PID=str(os.getpid()), DSD_RANK_GROUP="1", **dict([self.token]),
                   **self.config.extra_env, **(self.flight_recorder.env() if self.flight_recorder else {}))
        cmd = starters.command(self.config.starter, self.config.python, self.world_size, self.dir, self.spec_file,
                               self.spec.test_module)
        self.started = time.time()
        with open(starters.starter_log(self.dir), "w") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=processes.die_with_parent)
        try:
            self._watch(proc)
        except Interrupted:
            self.records.update()
            self.kill(proc, "the launcher was interrupted (SIGTERM/SIGINT, e.g. Bazel's timeout)")
            raise
        finally:
            self.records.update()
            self.tee(final=True)
            self.returncode, self.ended = proc.returncode, time.time()
        return self.returncode

    def _watch(self, proc):
        while True:
            try:
                proc.wait(timeout=_POLL)
                return
            except subprocess.TimeoutExpired:
                pass
            self.records.update()
            self.tee()
            reason = watchdog.check(self.records, time.time(), self.config.limits, self.started, self.config.deadline)
            if reason:
                self.kill(proc, reason)
                return

    def kill(self, proc, reason):
        """Dumps the Python stacks of every rank that has not recorded its end (on CUDA first their
        NCCL flight recorders), then kills the launch."""
        self.kill_reason = reason
        pids = {rank: plan["pid"] for rank, plan in self.records.plans.items() if plan}
        stuck = [rank for rank in pids if rank not in self.records.finished]
        if stuck and self.flight_recorder:
            self.flight_recorder.dump(stuck)
        offsets = {rank: _size(self.rank_file(rank, "log")) for rank in stuck}
        for rank in stuck:
            try:
                os.kill(pids[rank], signal.SIGUSR1)
            except ProcessLookupError:
                pass
        if stuck:
            time.sleep(_STACK_DUMP_WAIT)
            self.stacks = {rank: tail(self.rank_file(rank, "log"), 200, offsets[rank]) for rank in stuck}
        processes.kill_launch(proc, self.token, pids.values())

    def tee(self, final=False):
        """Copies new lines of the --tee_rank ranks' logs to the launcher's output, as they come."""
        for rank, (read, partial) in self._teed.items():
            try:
                with open(self.rank_file(rank, "log"), "rb") as f:
                    f.seek(read)
                    data = f.read()
            except OSError:
                continue
            *lines, partial = (partial + data).split(b"\n")
            if final and partial:
                lines, partial = lines + [partial], b""
            self._teed[rank] = (read + len(data), partial)
            if lines:
                sys.stdout.write("".join(f"[rank{rank}] {line.decode(errors='replace')}\n" for line in lines))
                sys.stdout.flush()

    def exits(self):
        """{rank: 'exit code N' / 'signal SIG'} of the ranks that ended badly."""
        return starters.rank_exits(self.dir)

    def why_ranks_stopped(self, ranks):
        exits = self.exits()
        return "; ".join(f"rank {rank}: {exits.get(rank, 'ended without an exit report')}" for rank in ranks)

    def evidence(self, ranks_missing, ends=None):
        """Per-rank detail for a unit some ranks did not finish: finished ranks' outcomes, stuck
        ranks' stacks, dead ranks' log tails, and the starter's log."""
        lines = [f"{os.path.basename(self.dir)}: {self.config.starter} {processes.describe_exit(self.returncode)}"]
        for rank in range(self.world_size):
            if ends and rank in ends:
                lines += [f"--- rank {rank}: finished ({ends[rank]['status']}) ---", ends[rank].get("detail", "")]
            elif rank in self.stacks:
                lines += [f"--- rank {rank}: Python stacks at kill time ---", self.stacks[rank] or "(no stack dump)"]
            elif rank in ranks_missing:
                lines += [f"--- rank {rank}: last log lines ---", tail(self.rank_file(rank, "log"), 40)]
        exits = self.exits()
        if exits:
            lines.append("--- exits ---\n" + "\n".join(f"rank {rank}: {why}" for rank, why in sorted(exits.items())))
        lines += [f"--- {self.config.starter} ---", tail(starters.starter_log(self.dir), 40)]
        return "\n".join(lines)


def _size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0
