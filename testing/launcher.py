"""The launcher: the `main` of every distributed test target (see defs.bzl).

Started by Bazel as the test binary (or by `bazel run`, or `python -m testing.launcher`), it
  1. chooses the device (CUDA when every rank can have its own GPU, else CPU ranks on gloo;
     --device / DSD_DEVICE forces it) and, on CUDA, locks that many GPU slots on the host;
  2. starts the ranks with torchrun (standalone rendezvous on a free port, no restarts); each
     rank runs all of this shard's cases in one process group (rank_worker.py);
  3. watches the ranks' records: a case that hangs (per-case timeout), a rank that fails while
     others stay stuck, or a rank that crashes ends the launch after the stuck ranks' Python
     stacks are dumped; the case is reported failed and a fresh launch runs the remaining cases;
  4. writes one JUnit XML (XML_OUTPUT_FILE), per-rank logs (TEST_UNDECLARED_OUTPUTS_DIR) and
     exits non-zero if any case failed. Honours TEST_SHARD_INDEX/TEST_TOTAL_SHARDS/
     TEST_SHARD_STATUS_FILE, TESTBRIDGE_TEST_ONLY (--test_filter) and TEST_TMPDIR.
"""

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from testing import gpu_slots
from testing import results as results_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("test_module", None, "Python module holding the test cases, e.g. dsd.fsdp_optim_state_test.")
flags.DEFINE_integer("world_size", 2, "Number of ranks.", lower_bound=1)
flags.DEFINE_list("phases", [], "World sizes of consecutive launches sharing TEST_TMPDIR, e.g. 4,2 to "
                  "save at 4 ranks and load at 2 (cases read self.phase); default: one launch at --world_size.")
flags.DEFINE_enum("device", os.environ.get("DSD_DEVICE") or "auto", gpu_slots.DEVICES,
                  "Where ranks run; default $DSD_DEVICE (set by --config=cpu|gpu), else auto.")
flags.DEFINE_string("test_filter", os.environ.get("TESTBRIDGE_TEST_ONLY", ""),
                    "Cases to run: ids (Class.method), classes, method names or globs; '-' excludes.")
flags.DEFINE_string("select", "", "Cases this target owns (same syntax as --test_filter), set in BUILD "
                    "when several targets share one module; --test_filter narrows it further.")
flags.DEFINE_float("case_timeout", 120.0, "Seconds one case may run before it counts as hung.")
flags.DEFINE_float("straggler_timeout", 120.0,
                   "Seconds a rank may lag behind the others that finished the same case.")
flags.DEFINE_float("failure_grace", 10.0,
                   "Seconds the other ranks get to finish a case that failed on one rank.")
flags.DEFINE_float("pg_timeout", 300.0, "Process-group collective timeout in each rank.")
flags.DEFINE_string("xml_output", os.environ.get("XML_OUTPUT_FILE", ""), "JUnit XML path.")
flags.DEFINE_string("output_dir", os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", ""),
                    "Per-rank logs; a temporary directory when empty.")
flags.DEFINE_string("gpu_lock_dir", os.environ.get("DSD_GPU_LOCK_DIR", "/tmp/dsd-gpu-slots"),
                    "Host-wide directory of GPU slot lock files.")
flags.DEFINE_float("gpu_lock_timeout", 3600.0, "Seconds to wait for free GPU slots.")
flags.DEFINE_bool("list", False, "Print this shard's case ids and exit (no ranks started).")

_POLL = 0.2
_STACK_DUMP_WAIT = 1.5


class _Interrupted(Exception):
    pass


def _die_with_parent():
    """In the child: SIGKILL torchrun if the launcher dies (even by SIGKILL); ranks do the same."""
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _report(res):
    mark = {results_lib.PASSED: "  OK  ", results_lib.FAILED: " FAIL ", results_lib.SKIPPED: " SKIP "}[res.status]
    _log(f"[{mark}] {res.case_id} ({res.duration:.2f}s){'  ' + res.message if res.message else ''}")
    if res.status == results_lib.FAILED and res.detail:
        _log(res.detail)


def processes_with_env(token):
    """PIDs of live (non-zombie) processes whose environment contains `token`."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if token.encode() not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[-1].split()[0] != "Z":
                    pids.append(int(pid))
        except OSError:
            continue
    return pids


def _log(msg=""):
    print(msg, flush=True)


def _tail(path, lines=60, start=0):
    try:
        with open(path, errors="replace") as f:
            f.seek(start)
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Launch:
    """One torchrun launch over the cases not yet run."""

    def __init__(self, runner, attempt, skip):
        self.r = runner
        self.dir = os.path.join(runner.output_dir, f"attempt{attempt}")
        os.makedirs(self.dir)
        self.skip_file = os.path.join(self.dir, "skip.txt")
        with open(self.skip_file, "w") as f:
            f.writelines(c + "\n" for c in skip)
        self.torchrun_log = os.path.join(self.dir, "torchrun.log")
        self.records = {}
        self.kill_reason = None
        self.stacks = {}
        self.token = f"DSD_LAUNCH_TOKEN={os.getpid()}.{attempt}.{time.time_ns()}"

    def rank_file(self, rank, ext):
        return os.path.join(self.dir, f"rank{rank}.{ext}")

    def command(self):
        r = self.r
        return [
            sys.executable, "-m", "torch.distributed.run",
            "--standalone", f"--nproc-per-node={r.world_size}", "--max-restarts=0",
            "--monitor-interval=0.2", "-m", "testing.rank_worker",
            f"--test_module={FLAGS.test_module}", f"--device={r.device}",
            f"--attempt_dir={self.dir}", f"--scratch_dir={r.scratch_dir}",
            f"--skip_file={self.skip_file}", f"--test_filter={FLAGS.test_filter}", f"--select={FLAGS.select}",
            f"--shard_index={r.shard_index}", f"--total_shards={r.total_shards}",
            f"--pg_timeout={FLAGS.pg_timeout}",
            f"--phase_index={r.phase_index}", f"--phase_world_sizes={','.join(map(str, r.phases))}",
        ]

    def read(self):
        self.records = {rank: results_lib.rank_records(self.rank_file(rank, "jsonl"))
                        for rank in range(self.r.world_size)}

    def events(self, event):
        """{rank: [records of that event]}"""
        return {rank: [x for x in recs if x["event"] == event] for rank, recs in self.records.items()}

    def pids(self):
        return {rank: plans[0]["pid"] for rank, plans in self.events("plan").items() if plans}

    def ends(self):
        return {rank: {x["case"]: x for x in xs} for rank, xs in self.events("end").items()}

    def current_case(self):
        """(case, first seen start time, {rank: end record}) of the case still in progress."""
        ends = self.ends()
        for rank, starts in self.events("start").items():
            for s in starts:
                case_ends = {rk: e[s["case"]] for rk, e in ends.items() if s["case"] in e}
                if len(case_ends) < self.r.world_size:
                    first = min(x["t"] for xs in self.events("start").values() for x in xs if x["case"] == s["case"])
                    return s["case"], first, case_ends
        return None, None, {}

    def check(self, now):
        """A reason to end this launch now, or None."""
        if self.r.deadline and now > self.r.deadline:
            return "the test is about to reach its Bazel timeout (TEST_TIMEOUT)"
        case, started, ends = self.current_case()
        if case is None:
            return None
        if now - started > FLAGS.case_timeout:
            return f"case timed out after {FLAGS.case_timeout:.0f}s (--case_timeout)"
        if ends:
            last_end = max(e["t"] for e in ends.values())
            failed = sorted(rk for rk, e in ends.items() if e["status"] not in ("pass", "skip", "xfail"))
            if failed and now - last_end > FLAGS.failure_grace:
                return (f"rank(s) {failed} failed and the other ranks did not finish the case within "
                        f"{FLAGS.failure_grace:.0f}s (--failure_grace): stuck in a collective?")
            if now - last_end > FLAGS.straggler_timeout:
                return (f"ranks {sorted(ends)} finished the case but the others did not within "
                        f"{FLAGS.straggler_timeout:.0f}s (--straggler_timeout)")
        return None

    def kill(self, proc, reason):
        """Dumps the Python stacks of every rank still in a case, then kills the whole launch."""
        self.kill_reason = reason
        pids = self.pids()
        _, _, ends = self.current_case()
        stuck = [rk for rk in pids if rk not in ends]
        offsets = {}
        for rk in stuck:
            offsets[rk] = os.path.getsize(self.rank_file(rk, "log")) if os.path.exists(self.rank_file(rk, "log")) else 0
            try:
                os.kill(pids[rk], signal.SIGUSR1)
            except ProcessLookupError:
                pass
        if stuck:
            time.sleep(_STACK_DUMP_WAIT)
            self.stacks = {rk: _tail(self.rank_file(rk, "log"), 200, offsets[rk]) for rk in stuck}
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # Ranks run in sessions of their own: find them all, also those not yet recorded.
        for pid in set(pids.values()) | set(processes_with_env(self.token)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()

    def run(self):
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONUNBUFFERED"] = "1"
        env["DSD_LAUNCHER_PID"] = str(os.getpid())
        env["DSD_LAUNCH_TOKEN"] = self.token.split("=", 1)[1]
        env.update(self.r.extra_env)
        with open(self.torchrun_log, "w") as log:
            proc = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        self.r.proc = proc
        try:
            while proc.poll() is None:
                time.sleep(_POLL)
                self.read()
                reason = self.check(time.time())
                if reason:
                    self.kill(proc, reason)
                    break
        except _Interrupted:
            self.read()
            self.kill(proc, "the test was interrupted (SIGTERM/SIGINT, e.g. Bazel's timeout)")
            raise
        finally:
            self.r.proc = None
            self.read()
        return proc.returncode


class Runner:
    def __init__(self, device, world_size, output_dir, scratch_dir, shard_index, total_shards, extra_env,
                 phase_index=0, phases=None):
        self.device, self.world_size = device, world_size
        self.phase_index, self.phases = phase_index, phases or [world_size]
        self.output_dir, self.scratch_dir = output_dir, scratch_dir
        self.shard_index, self.total_shards = shard_index, total_shards
        self.extra_env = extra_env
        self.proc = None
        timeout = float(os.environ.get("TEST_TIMEOUT", "0") or 0)
        self.deadline = time.time() + timeout - 20 if timeout > 40 else None
        self.results = []  # CaseResult, in run order
        self.plan = None  # every case of this shard, from the first launch
        self.warnings = []

    def _crash_detail(self, launch, case, ends, rc):
        lines = [f"launch {os.path.basename(launch.dir)}: torchrun exit code {rc}"]
        for rk in range(self.world_size):
            if rk in ends:
                lines.append(f"--- rank {rk}: finished the case ({ends[rk]['status']}) ---")
                if ends[rk].get("detail"):
                    lines.append(ends[rk]["detail"])
            elif rk in launch.stacks:
                lines.append(f"--- rank {rk}: did not finish; Python stacks at kill time ---")
                lines.append(launch.stacks[rk] or "(no stack dump: the rank had already exited)")
            else:
                lines.append(f"--- rank {rk}: did not finish; last log lines ---")
                lines.append(_tail(launch.rank_file(rk, "log"), 40))
        lines.append("--- torchrun ---")
        lines.append(_tail(launch.torchrun_log, 40))
        return "\n".join(lines)

    def _collect(self, launch, rc):
        """Adds the results of one launch; returns True if it made progress."""
        plans = launch.events("plan")
        plan = plans.get(0, [{}])[0].get("cases") if plans.get(0) else None
        if plan is None:
            return False
        if any(p and p[0]["cases"] != plan for p in plans.values()):
            raise RuntimeError(f"ranks planned different cases: { {rk: p[0]['cases'] for rk, p in plans.items() if p} }")
        if self.plan is None:
            self.plan = list(plan)
            first = plans[0][0]
            if FLAGS.test_filter and first["matched"] == 0:
                self.results.append(results_lib.CaseResult(
                    "launcher.test_filter", results_lib.FAILED,
                    f"--test_filter={FLAGS.test_filter!r} matched none of the {first['total']} cases of {FLAGS.test_module}"))
                _report(self.results[-1])
        ends = launch.ends()
        progress = False
        for case in plan:
            case_ends = {rk: e[case] for rk, e in ends.items() if case in e}
            started = any(x["case"] == case for xs in launch.events("start").values() for x in xs)
            if len(case_ends) == self.world_size:
                res = results_lib.merge_case(case, case_ends)
            elif started or case_ends:
                missing = sorted(set(range(self.world_size)) - set(case_ends))
                why = launch.kill_reason or (f"rank(s) {missing} exited during the case "
                                             f"(torchrun exit code {rc}; see the rank logs below)")
                failed = {rk: e for rk, e in case_ends.items() if e["status"] not in ("pass", "skip", "xfail")}
                if failed:
                    why = results_lib.merge_case(case, failed).message + "; " + why
                res = results_lib.CaseResult(case, results_lib.FAILED, why,
                                             why + "\n" + self._crash_detail(launch, case, case_ends, rc),
                                             max((e["duration"] for e in case_ends.values()), default=0.0))
            else:
                break
            progress = True
            self.results.append(res)
            _report(res)
        if rc not in (0, None) and launch.kill_reason is None and all(
                len({rk for rk, e in ends.items() if c in e}) == self.world_size for c in plan):
            self.warnings.append(f"torchrun exited with code {rc} after every rank had reported every case of "
                                 f"{os.path.basename(launch.dir)} (exit-time abort); the results stand")
        return progress

    def remaining(self):
        ran = {r.case_id for r in self.results}
        return [c for c in (self.plan or []) if c not in ran]

    def run(self):
        attempt = 0
        while True:
            launch = Launch(self, attempt, skip=[r.case_id for r in self.results])
            try:
                rc = launch.run()
            except _Interrupted:
                self._collect(launch, None)
                raise
            progress = self._collect(launch, rc)
            if self.plan is None:
                detail = self._crash_detail(launch, None, {}, rc)
                self.results.append(results_lib.CaseResult(
                    "launcher.launch", results_lib.FAILED,
                    launch.kill_reason or f"the ranks did not start (torchrun exit code {rc})", detail))
                _report(self.results[-1])
                return
            left = self.remaining()
            if not left:
                return
            if not progress or launch.kill_reason and "Bazel timeout" in launch.kill_reason:
                for case in left:
                    self.results.append(results_lib.CaseResult(
                        case, results_lib.FAILED, "not run: " + (launch.kill_reason or "the launch made no progress")))
                    _report(self.results[-1])
                return
            attempt += 1
            _log(f"-- relaunching for the {len(left)} remaining case(s) (attempt {attempt})")


def main(argv):
    del argv
    if not FLAGS.test_module:
        raise app.UsageError("--test_module is required (dist_py_test sets it)")
    t0 = time.monotonic()
    if os.environ.get("TEST_SHARD_STATUS_FILE"):
        open(os.environ["TEST_SHARD_STATUS_FILE"], "a").close()
    shard_index = int(os.environ.get("TEST_SHARD_INDEX", "0"))
    total_shards = int(os.environ.get("TEST_TOTAL_SHARDS", "1"))
    if FLAGS.list:
        return _list_cases(shard_index, total_shards)

    base_tmp = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="dsd-")
    output_dir = FLAGS.output_dir or os.path.join(base_tmp, "outputs")
    os.makedirs(output_dir, exist_ok=True)
    scratch_dir = os.path.join(base_tmp, "scratch")
    suite = FLAGS.test_module
    phases = [int(p) for p in FLAGS.phases] or [FLAGS.world_size]
    ranks_needed = max(phases)
    try:
        gpus = gpu_slots.visible_gpus()
        device, why = gpu_slots.choose_device(FLAGS.device, ranks_needed, gpus, gpu_slots.torch_has_cuda())
    except gpu_slots.DeviceError as e:
        return _device_failure(suite, e, t0)
    sizes = "world sizes " + " -> ".join(map(str, phases)) if len(phases) > 1 else f"world size {phases[0]}"
    _log(f"{suite}: {sizes}, device {device} ({why}), shard {shard_index + 1}/{total_shards}"
         + (f", filter {FLAGS.test_filter!r}" if FLAGS.test_filter else ""))
    if os.environ.get("TEST_TARGET"):  # under bazel test: where the logs land after the run
        target = os.environ["TEST_TARGET"].lstrip("/").replace(":", "/")
        shard = f"shard_{shard_index + 1}_of_{total_shards}/" if total_shards > 1 else ""
        _log(f"per-rank logs: bazel-testlogs/{target}/{shard}test.outputs/ (outputs.zip)")
    else:
        _log(f"per-rank logs: {output_dir}")

    def interrupt(signum, frame):
        raise _Interrupted()

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)

    slots = None
    extra_env = {}
    runner = None
    try:
        if device == "cuda":
            slots = gpu_slots.GpuSlots(gpus, ranks_needed, FLAGS.gpu_lock_dir, FLAGS.gpu_lock_timeout).__enter__()
            extra_env["CUDA_VISIBLE_DEVICES"] = ",".join(slots.acquired)
            _log(f"GPU slots: {slots.acquired} (locked in {FLAGS.gpu_lock_dir})")
        per_phase = []
        for index, world_size in enumerate(phases):
            if len(phases) > 1:
                _log(f"-- phase {index}: world size {world_size}")
            phase_dir = os.path.join(output_dir, f"phase{index}") if len(phases) > 1 else output_dir
            runner = Runner(device, world_size, phase_dir, scratch_dir, shard_index, total_shards, extra_env,
                            index, phases)
            runner.run()
            per_phase.append(runner.results)
        if len(phases) > 1:
            runner.results = results_lib.merge_phases(per_phase, phases)
    except gpu_slots.DeviceError as e:
        return _device_failure(suite, e, t0)
    except _Interrupted:
        res = list(runner.results) if runner else []
        res += [results_lib.CaseResult(c, results_lib.FAILED, "not run: the test was interrupted (SIGTERM/SIGINT)")
                for c in (runner.remaining() if runner else [])]
        _finish(suite, res, t0, runner.warnings if runner else [])
        return 143
    finally:
        if slots:
            slots.close()
    return _finish(suite, runner.results, t0, runner.warnings)


def _device_failure(suite, error, t0):
    res = results_lib.CaseResult("launcher.device", results_lib.FAILED, str(error))
    _report(res)
    return _finish(suite, [res], t0, [])


def _finish(suite, res, t0, warnings):
    elapsed = time.monotonic() - t0
    for w in warnings:
        _log("warning: " + w)
    if FLAGS.xml_output:
        results_lib.write_junit_xml(FLAGS.xml_output, suite, res, elapsed)
    c = results_lib.count(res)
    xfail = sum(1 for r in res if r.status == results_lib.PASSED and r.message == "expected failure")
    _log(f"{suite}: {c[results_lib.PASSED]} passed, {c[results_lib.FAILED]} failed, "
         f"{c[results_lib.SKIPPED]} skipped in {elapsed:.1f}s"
         + (f" ({xfail} of the passed are expected failures: known torch bugs that still reproduce)" if xfail else ""))
    return 1 if c[results_lib.FAILED] else 0


def _list_cases(shard_index, total_shards):
    import importlib
    from testing import case_selection
    cases = case_selection.discover(importlib.import_module(FLAGS.test_module))
    owned = [c for c in cases if case_selection.matches(c, case_selection.parse_filter(FLAGS.select))]
    for c in case_selection.select(owned, case_selection.parse_filter(FLAGS.test_filter),
                                   shard_index, total_shards):
        print(c)
    return 0


if __name__ == "__main__":
    app.run(main)
