"""Launches of ranks and their verdicts.

Launch: one torchrun over the cases not yet run, watched through the ranks' records. Every
moment of a rank's life is bounded: start-up until its plan, each case, each fixture, the
process-group shutdown, the idle time between units and the exit after its last record. When a
bound is passed (or a rank fails while others stay stuck in a collective) the stuck ranks'
Python stacks are dumped and the whole launch is killed.

run_phase(): launches until every planned case has a verdict, relaunching after a launch that
ended early, and turns the records into Results: one per case, plus one per fixture, shutdown,
crash or hang that went wrong, each attributed to the unit (or the gap between units) where it
happened, with ranks, exit codes or signals, and stacks or log tails. A unit that failed leaves
its artefacts (artifacts.py: per-rank log slices, what the case wrote) under failures/.

On CUDA every launch arms NCCL's flight recorder (TORCH_NCCL_TRACE_BUFFER_SIZE); before a hung
launch is killed, the stuck ranks are asked for a dump through TORCH_NCCL_DEBUG_INFO_PIPE_FILE,
written to <attempt dir>/nccl_flight_recorder/rank_<R> (TORCH_NCCL_DEBUG_INFO_TEMP_FILE); a
rank's own NCCL timeout dumps there too (TORCH_NCCL_DUMP_ON_TIMEOUT).
"""

import dataclasses
import glob
import os
import re
import signal
import subprocess
import sys
import time

from testing.launcher import artifacts
from testing.launcher import processes
from testing.launcher.protocol import CASE
from testing.launcher.protocol import FIXTURE
from testing.launcher.protocol import LAUNCHER
from testing.launcher.protocol import SHUTDOWN
from testing.launcher.protocol import LaunchSpec
from testing.launcher.protocol import Result
from testing.launcher.protocol import Status
from testing.launcher.protocol import case_dir_name
from testing.launcher.protocol import merge_unit
from testing.launcher.protocol import read_records

_POLL = 0.2
_STACK_DUMP_WAIT = 1.5
_FLIGHT_RECORDER_WAIT = 10.0
_FLIGHT_RECORDER_ENTRIES = "2000"


@dataclasses.dataclass
class Limits:
    """Seconds each moment of a launch may take (launcher flags of the same names)."""

    startup_timeout: float = 300.0
    case_timeout: float = 120.0
    fixture_timeout: float = 120.0
    shutdown_timeout: float = 60.0
    exit_timeout: float = 30.0
    idle_timeout: float = 60.0
    straggler_timeout: float = 120.0
    failure_grace: float = 10.0

    def for_kind(self, kind):
        return {CASE: ("case_timeout", self.case_timeout), FIXTURE: ("fixture_timeout", self.fixture_timeout),
                SHUTDOWN: ("shutdown_timeout", self.shutdown_timeout)}[kind]


class Interrupted(Exception):
    """SIGTERM/SIGINT reached the launcher (e.g. Bazel's timeout or a Ctrl-C)."""


def tail(path, lines=60, start=0):
    try:
        with open(path, errors="replace") as f:
            f.seek(start)
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def rank_exits(torchrun_log):
    """{rank: 'exit code N' / 'signal SIG'} from torchrun's failure report."""
    exits = {}
    for m in re.finditer(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n?\s*exitcode\s*:\s*(-?\d+)",
                         tail(torchrun_log, 400)):
        exits[int(m.group(1))] = processes.describe_exit(int(m.group(2)))
    return exits


class Launch:
    """One torchrun launch; its records are re-read on every poll."""

    def __init__(self, phase, attempt, done):
        self.phase = phase
        self.dir = os.path.join(phase.output_dir, f"attempt{attempt}")
        os.makedirs(self.dir)
        self.spec = dataclasses.replace(phase.spec, attempt_dir=self.dir, done=list(done))
        self.spec_file = os.path.join(self.dir, "spec.json")
        self.spec.write(self.spec_file)
        self.torchrun_log = os.path.join(self.dir, "torchrun.log")
        self.world_size = phase.world_size
        self.records = {}
        self.kill_reason = None
        self.stacks = {}
        self.token = processes.new_token("DSD_LAUNCH_TOKEN")
        self.started = time.time()
        self.ended = None
        self.returncode = None
        self.tee_ranks = [rk for rk in phase.tee_ranks if rk < self.world_size]
        self._teed = {rk: (0, b"") for rk in self.tee_ranks}  # rank: (bytes read, partial line)
        self.flight_recorder = os.path.join(self.dir, "nccl_flight_recorder") if self.spec.device == "cuda" else None
        self.nccl_pipes = (os.path.join(phase.pipe_dir, f"phase{self.spec.phase}_{os.path.basename(self.dir)}")
                           if self.flight_recorder else None)

    def rank_file(self, rank, ext):
        return os.path.join(self.dir, f"rank{rank}.{ext}")

    def read(self):
        self.records = {rank: read_records(self.rank_file(rank, "jsonl")) for rank in range(self.world_size)}

    # ---- views of the records ----

    def plans(self):
        return {rk: next((x for x in recs if x["event"] == "plan"), None) for rk, recs in self.records.items()}

    def done(self):
        return {rk for rk, recs in self.records.items() if any(x["event"] == "done" for x in recs)}

    def units(self):
        """{unit: (kind, {rank: start record}, {rank: end record})}, in first-start order."""
        units = {}
        for rank, recs in self.records.items():
            for x in recs:
                if x["event"] in ("start", "end"):
                    kind, starts, ends = units.setdefault(x["unit"], (x["kind"], {}, {}))
                    (starts if x["event"] == "start" else ends)[rank] = x
        return dict(sorted(units.items(), key=lambda kv: min(s["t"] for s in kv[1][1].values())))

    def open_units(self):
        return {u: v for u, v in self.units().items() if len(v[2]) < self.world_size}

    def last_unit(self, rank):
        ends = [x for x in self.records.get(rank, []) if x["event"] == "end"]
        return ends[-1]["unit"] if ends else None

    # ---- the watchdog ----

    def check(self, now, limits, deadline):
        """A reason to end this launch now, or None."""
        if deadline and now > deadline[0]:
            return f"the target reached its time limit ({deadline[1]})"
        plans = self.plans()
        if not all(plans.values()):
            if now - self.started > limits.startup_timeout:
                late = sorted(rk for rk, p in plans.items() if not p)
                return (f"rank(s) {late} did not start within {limits.startup_timeout:.0f}s (--startup_timeout): "
                        "stuck importing the test module or in init_process_group?")
            return None
        for unit, (kind, starts, ends) in self.open_units().items():
            flag, limit = limits.for_kind(kind)
            if now - min(s["t"] for s in starts.values()) > limit:
                return f"{unit} timed out after {limit:.0f}s (--{flag})"
            if ends:
                last_end = max(e["t"] for e in ends.values())
                failed = sorted(rk for rk, e in ends.items() if Status(e["status"]).failing)
                if failed and now - last_end > limits.failure_grace:
                    return (f"rank(s) {failed} failed {unit} and the other ranks did not finish it within "
                            f"{limits.failure_grace:.0f}s (--failure_grace): stuck in a collective?")
                if now - last_end > limits.straggler_timeout:
                    return (f"rank(s) {sorted(ends)} finished {unit} but the others did not within "
                            f"{limits.straggler_timeout:.0f}s (--straggler_timeout)")
        if self.open_units():
            return None
        done = self.done()
        last = max((x["t"] for recs in self.records.values() for x in recs), default=self.started)
        if len(done) == self.world_size:
            if now - last > limits.exit_timeout:
                return (f"every rank recorded its end but the processes did not exit within "
                        f"{limits.exit_timeout:.0f}s (--exit_timeout)")
        elif now - last > limits.idle_timeout:
            idle = sorted(set(range(self.world_size)) - done)
            return (f"rank(s) {idle} recorded nothing for {limits.idle_timeout:.0f}s (--idle_timeout) after "
                    f"{', '.join(sorted({str(self.last_unit(rk)) for rk in idle}))}")
        return None

    def kill(self, proc, reason):
        """Dumps the Python stacks of every rank that has not recorded its end (on CUDA first their
        NCCL flight recorders), then kills the launch."""
        self.kill_reason = reason
        pids = {rk: p["pid"] for rk, p in self.plans().items() if p}
        stuck = [rk for rk in pids if rk not in self.done()]
        if stuck and self.flight_recorder:
            self.dump_flight_recorder(stuck)
        offsets = {rk: os.path.getsize(self.rank_file(rk, "log")) if os.path.exists(self.rank_file(rk, "log")) else 0
                   for rk in stuck}
        for rk in stuck:
            try:
                os.kill(pids[rk], signal.SIGUSR1)
            except ProcessLookupError:
                pass
        if stuck:
            time.sleep(_STACK_DUMP_WAIT)
            self.stacks = {rk: tail(self.rank_file(rk, "log"), 200, offsets[rk]) for rk in stuck}
        processes.kill_launch(proc, self.token, pids.values())

    def dump_flight_recorder(self, ranks):
        """Asks `ranks` for their NCCL flight-recorder dump (writing to the named pipe each rank's
        NCCL watchdog reads) and waits a little for the files. Not verified on a GPU here."""
        asked = []
        for rk in ranks:
            try:
                fd = os.open(os.path.join(self.nccl_pipes, f"rank_{rk}.pipe"), os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # no pipe (an older torch, or NCCL not initialised yet)
            try:
                os.write(fd, b"1\n")
                asked.append(rk)
            except OSError:
                pass
            finally:
                os.close(fd)
        deadline = time.time() + (_FLIGHT_RECORDER_WAIT if asked else 0)
        while time.time() < deadline and len(glob.glob(os.path.join(self.flight_recorder, "rank_*"))) < len(asked):
            time.sleep(_POLL)

    def nccl_env(self):
        """NCCL flight recorder settings of a CUDA launch (a value the user set wins)."""
        os.makedirs(self.flight_recorder, exist_ok=True)
        os.makedirs(self.nccl_pipes, exist_ok=True)
        dump = os.path.join(self.flight_recorder, "rank_")
        env = {"TORCH_NCCL_TRACE_BUFFER_SIZE": _FLIGHT_RECORDER_ENTRIES, "TORCH_FR_BUFFER_SIZE": _FLIGHT_RECORDER_ENTRIES,
               "TORCH_NCCL_DUMP_ON_TIMEOUT": "1", "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": dump,
               "TORCH_FR_DUMP_TEMP_FILE": dump,
               "TORCH_NCCL_DEBUG_INFO_PIPE_FILE": os.path.join(self.nccl_pipes, "rank_")}
        return {k: v for k, v in env.items() if k not in os.environ}

    def tee(self, final=False):
        """Copies new lines of the --tee_rank ranks' logs to the launcher's output, as they come."""
        for rk in self.tee_ranks:
            read, partial = self._teed[rk]
            try:
                with open(self.rank_file(rk, "log"), "rb") as f:
                    f.seek(read)
                    data = f.read()
            except OSError:
                continue
            lines = (partial + data).split(b"\n")
            partial = lines.pop()
            if final and partial:
                lines, partial = lines + [partial], b""
            self._teed[rk] = (read + len(data), partial)
            if lines:
                sys.stdout.write("".join(f"[rank{rk}] {line.decode(errors='replace')}\n" for line in lines))
                sys.stdout.flush()

    def run(self, python, limits, deadline, extra_env):
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.update(PYTHONUNBUFFERED="1", DSD_LAUNCHER_PID=str(os.getpid()), **dict([self.token]), **extra_env)
        if self.flight_recorder:
            env.update(self.nccl_env())
        cmd = [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={self.world_size}",
               "--max-restarts=0", "--monitor-interval=0.2", "-m", "testing.launcher.rank_worker", self.spec_file]
        with open(self.torchrun_log, "w") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=processes.die_with_parent)
        try:
            while proc.poll() is None:
                time.sleep(_POLL)
                self.read()
                self.tee()
                reason = self.check(time.time(), limits, deadline)
                if reason:
                    self.kill(proc, reason)
                    break
        except Interrupted:
            self.read()
            self.kill(proc, "the launcher was interrupted (SIGTERM/SIGINT, e.g. Bazel's timeout)")
            raise
        finally:
            self.read()
            self.tee(final=True)
            self.returncode = proc.returncode
            self.ended = time.time()
        return self.returncode

    # ---- attribution ----

    def why_ranks_stopped(self, ranks):
        """'rank 1 exited with signal SIGSEGV' style reasons, from torchrun's report."""
        exits = rank_exits(self.torchrun_log)
        return "; ".join(f"rank {rk}: {exits.get(rk, 'ended without a report from torchrun')}" for rk in ranks)

    def evidence(self, ranks_missing, ends=None):
        """Per-rank detail for a unit some ranks did not finish: finished ranks' outcomes, stuck
        ranks' stacks, dead ranks' log tails, and torchrun's log."""
        lines = [f"{os.path.basename(self.dir)}: torchrun {processes.describe_exit(self.returncode)}"]
        for rk in range(self.world_size):
            if ends and rk in ends:
                lines += [f"--- rank {rk}: finished ({ends[rk]['status']}) ---", ends[rk].get("detail", "")]
            elif rk in self.stacks:
                lines += [f"--- rank {rk}: Python stacks at kill time ---", self.stacks[rk] or "(no stack dump)"]
            elif rk in ranks_missing:
                lines += [f"--- rank {rk}: last log lines ---", tail(self.rank_file(rk, "log"), 40)]
        lines += ["--- torchrun ---", tail(self.torchrun_log, 40)]
        return "\n".join(lines)


class Phase:
    """All launches at one world size (one phase of a target).

    outputs_root: the target's output directory (output_dir, or its parent for a phase of
    several), which failure artefacts are named relative to; artifacts_limit: bytes of a failed
    case's scratch directory to keep; tee_ranks: ranks whose output goes live to the launcher's;
    pipe_dir: where CUDA launches put NCCL's debug pipes (not in the outputs: zip skips FIFOs).
    """

    def __init__(self, spec, world_size, output_dir, python, limits, deadline, extra_env, log, outputs_root=None,
                 artifacts_limit=20 * 1024 * 1024, tee_ranks=(), pipe_dir=None):
        self.spec, self.world_size, self.output_dir = spec, world_size, output_dir
        self.python, self.limits, self.deadline, self.extra_env = python, limits, deadline, extra_env
        self.log = log
        self.outputs_root = outputs_root or output_dir
        self.artifacts_limit, self.tee_ranks = artifacts_limit, list(tee_ranks)
        self.pipe_dir = pipe_dir or os.path.join(os.path.dirname(spec.scratch_dir), "nccl_pipes")
        self.results = []   # Results, in the order they became known
        self.plan = None    # every case of this shard (from the first launch's plan record)
        self.torch = {}     # the ranks' torch build (from the plan record)
        self.launches = []

    def case_results(self):
        return {r.id: r for r in self.results if r.kind == CASE}

    def remaining(self):
        have = self.case_results()
        return [c for c in self.plan or [] if c not in have]

    def add(self, result):
        self.results.append(result)
        self.log(result)

    def run(self):
        while True:
            launch = Launch(self, len(self.launches), done=list(self.case_results()))
            self.launches.append(launch)
            try:
                launch.run(self.python, self.limits, self.deadline, self.extra_env)
            finally:
                before = len(self.case_results())
                self.collect(launch)
            if self.plan is None:
                return
            left = self.remaining()
            if not left:
                return
            failed = [r for r in self.case_results().values() if r.status.failing]
            if self.spec.fail_fast and failed:
                for case in left:
                    self.add(Result(case, Status.SKIPPED, f"not run: --test_runner_fail_fast after {failed[0].id} failed"))
                return
            if len(self.case_results()) == before or launch.kill_reason and "time limit" in launch.kill_reason:
                why = launch.kill_reason or "the launch made no progress"
                for case in left:
                    self.add(Result(case, Status.ERROR, f"not run: {why}"))
                return
            self.log(f"-- relaunching for the {len(left)} remaining case(s) (attempt {len(self.launches)})")

    def collect(self, launch):
        plans = launch.plans()
        if not all(plans.values()):
            missing = sorted(rk for rk, p in plans.items() if not p)
            why = launch.kill_reason or f"rank(s) {missing} did not start ({launch.why_ranks_stopped(missing)})"
            self.add(Result("launcher.launch", Status.ERROR, why, launch.evidence(missing), kind=LAUNCHER))
            return
        first = plans[0]
        if any(p["cases"] != first["cases"] for p in plans.values()):
            self.add(Result("launcher.plan", Status.ERROR, "ranks planned different cases",
                            "\n".join(f"rank {rk}: {p['cases']}" for rk, p in sorted(plans.items())), kind=LAUNCHER))
            return
        if self.plan is None:
            self.plan = list(first["cases"])
            self.torch = first.get("torch", {})
            self.total, self.matched = first["total"], first["matched"]
        interrupted = False
        for unit, (kind, starts, ends) in launch.units().items():
            if len(ends) == self.world_size:
                result = merge_unit(unit, ends, kind)
            else:
                interrupted = True
                result = self._interrupted(launch, unit, kind, starts, ends)
            if kind == CASE or result.status.failing:
                result = self._named(result)
                if result.status.failing:
                    result = self._save_artifacts(launch, unit, kind, starts, ends, result)
                self.add(result)
            if kind == FIXTURE and unit.endswith(("setUpClass", "setUpModule")) and result.status is not Status.PASSED:
                self._block(unit, result)
        done = launch.done()
        if not interrupted and len(done) < self.world_size:
            # A rank stopped between units: after its last record, before its next start.
            missing = sorted(set(range(self.world_size)) - done)
            after = ", ".join(sorted({str(launch.last_unit(rk)) for rk in missing}))
            why = launch.kill_reason or launch.why_ranks_stopped(missing)
            self.add(Result("launcher.between_units", Status.ERROR,
                            f"rank(s) {missing} stopped after {after}, before their next unit: {why}",
                            launch.evidence(missing), kind=LAUNCHER))
        elif len(done) == self.world_size and launch.returncode != 0:
            exits = rank_exits(launch.torchrun_log)
            why = launch.kill_reason or f"torchrun {processes.describe_exit(launch.returncode)}" + (
                f" ({launch.why_ranks_stopped(sorted(exits))})" if exits else "")
            self.add(Result("launcher.exit", Status.ERROR,
                            f"every rank recorded its end, then the launch failed: {why}",
                            launch.evidence(range(self.world_size)), kind=LAUNCHER))

    def _save_artifacts(self, launch, unit, kind, starts, ends, result):
        """Keeps a failed unit's log slices and (a case) what it wrote; names them in its detail."""
        dest = os.path.join(self.output_dir, "failures", case_dir_name(result.id))
        if os.path.exists(dest):  # the same id again (launcher.shutdown of a later launch)
            dest += f".{os.path.basename(launch.dir)}"
        logs = {rk: (launch.rank_file(rk, "log"), start.get("log", 0), ends.get(rk, {}).get("log"))
                for rk, start in starts.items()}
        scratch = os.path.join(self.spec.scratch_dir, case_dir_name(unit)) if kind == CASE else None
        try:
            artifacts.save(dest, result, logs, scratch, self.artifacts_limit)
        except OSError as e:
            self.log(f"warning: could not keep the failure artefacts of {result.id}: {e}")
            return result
        where = os.path.relpath(dest, self.outputs_root)
        return dataclasses.replace(result, detail=(result.detail or result.message).rstrip("\n")
                                   + f"\nfailure artefacts (rank logs, checkpoint): {where}/ in the outputs")

    def _interrupted(self, launch, unit, kind, starts, ends):
        """The Result of a unit that some ranks never finished (they crashed, hung or were killed)."""
        missing = sorted(set(range(self.world_size)) - set(ends))
        why = launch.kill_reason or f"rank(s) {missing} ended during {unit} ({launch.why_ranks_stopped(missing)})"
        failed = {rk: e for rk, e in ends.items() if Status(e["status"]).failing}
        status = Status.ERROR
        if failed:
            # The others were stuck because of this failure (--failure_grace): it is the verdict.
            first = merge_unit(unit, failed)
            status, why = first.status, first.message + "; " + why
        last = max((x["t"] for recs in launch.records.values() for x in recs), default=launch.started)
        duration = max(launch.ended or last, last) - min(s["t"] for s in starts.values())
        return Result(unit, status, why, why + "\n" + launch.evidence(missing, ends), duration, kind)

    def _block(self, unit, fixture):
        """Cases a set-up fixture kept from running: skipped with its reason, or not run."""
        cls = unit.rpartition(".")[0]
        for case in self.remaining():
            if cls and not case.startswith(cls + "."):
                continue
            if fixture.status is Status.SKIPPED:
                self.add(Result(case, Status.SKIPPED, fixture.message))
            else:
                self.add(Result(case, Status.ERROR, f"not run: {unit}: {fixture.message}"))

    @staticmethod
    def _named(result):
        """Shutdown units are reported as launcher.shutdown (one per launch)."""
        if result.kind == SHUTDOWN:
            return dataclasses.replace(result, id="launcher.shutdown", kind=LAUNCHER)
        return result


def spec_for(args, device, scratch_dir, phase, world_sizes, shard_index, total_shards, coverage_dir=""):
    return LaunchSpec(test_module=args.test_module, device=device, attempt_dir="", scratch_dir=scratch_dir,
                      test_filter=args.test_filter, shard_index=shard_index, total_shards=total_shards,
                      fail_fast=args.fail_fast, pg_timeout=args.pg_timeout, phase=phase,
                      phase_world_sizes=list(world_sizes), coverage_dir=coverage_dir,
                      debug_rank=getattr(args, "debug_rank", -1),
                      agree_timeout=max(LaunchSpec.agree_timeout, args.pg_timeout))


def python_for(phase_env, envs):
    """The interpreter of a phase's environment (runfiles path), or this launcher's own."""
    return envs.get(phase_env) or sys.executable
