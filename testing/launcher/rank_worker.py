"""One rank of a launch, started by the launch's starter (starters.py: forked or spawned by the
rank group, or started by torchrun).

    python -m testing.launcher.rank_worker <launch spec file>

Initialises the process group once and runs the launch's units in the same order on every
rank: setUpModule, then per class setUpClass, its cases, tearDownClass, then tearDownModule
and the process-group shutdown. Each unit is recorded (start/end, protocol.py) before and
after it runs, so the launcher can tell where a rank crashed or hung. After each unit the
ranks agree on its outcome through the rendezvous store (not a collective, which a failed case
may have left unmatched); a unit that did not end cleanly on every rank ends the launch, and
the launcher starts a fresh one for the cases left. The last record, "done", comes after the
process group is destroyed; then the rank exits through normal interpreter teardown.

Debugging and coverage (set by the launcher in the launch spec):
  debug_rank   (DSD_DEBUG_RANK=N) rank N stops in pdb at the first line of each case: on the
               terminal when the launcher has one (bazel run, python -m testing.launcher), else
               it listens on a local port and says where in its log (`nc 127.0.0.1 PORT`)
  coverage_dir (DSD_COVERAGE=1) each rank measures torch.distributed.checkpoint with coverage.py
               and saves its data file there after its last record
"""

from testing.launcher import processes

processes.die_with_parent()  # before the slow imports: a torchrun killed during start-up takes this rank along

import datetime  # noqa: E402
import faulthandler  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import pdb  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import unittest  # noqa: E402

from testing.launcher import plan as plan_lib  # noqa: E402
from testing.launcher.protocol import CASE  # noqa: E402
from testing.launcher.protocol import FIXTURE  # noqa: E402
from testing.launcher.protocol import SHUTDOWN  # noqa: E402
from testing.launcher.protocol import LaunchSpec  # noqa: E402
from testing.launcher.protocol import RecordWriter  # noqa: E402
from testing.launcher.protocol import Status  # noqa: E402

# What coverage.py measures in the ranks (DSD_COVERAGE=1): DCP and DSD (checkpoint/state_dict.py).
COVERAGE_PACKAGES = ["torch.distributed.checkpoint"]


def _exit_with_launcher():
    """No rank outlives the launcher, even one SIGKILLed while torchrun lives on."""
    launcher_pid = int(os.environ.get("DSD_LAUNCHER_PID", "0"))

    def watch():
        while True:
            try:
                os.kill(launcher_pid, 0)
            except ProcessLookupError:
                os._exit(137)
            time.sleep(0.5)

    if launcher_pid:
        threading.Thread(target=watch, name="dsd-launcher-watch", daemon=True).start()


def _log_offset():
    """The size of this rank's log (stdout and stderr), after flushing Python's buffers."""
    sys.stdout.flush()
    sys.stderr.flush()
    return os.fstat(1).st_size


def _redirect_output(log_path):
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


class _CaseResult(unittest.TestResult):
    """Sorts a case's outcome; KnownFailure (testing.known_failures) is an expected failure."""

    known = None

    def addError(self, test, err):
        if err[0].__name__ == "KnownFailure":
            self.known = str(err[1])
        else:
            super().addError(test, err)


def run_case(test, debugger=None):
    """Runs one TestCase (under `debugger`, from the first line of its method); returns (Status, detail)."""
    if debugger is not None:
        method = getattr(test, test._testMethodName)
        setattr(test, test._testMethodName, lambda: debugger.run_case(method))
    result = _CaseResult()
    test.run(result)
    if result.errors:
        return Status.ERROR, "".join(tb for _, tb in result.errors)
    if result.failures:
        return Status.FAILED, "".join(tb for _, tb in result.failures)
    if result.expectedFailures or result.unexpectedSuccesses:
        return Status.ERROR, ("unittest.expectedFailure pins no symptom: mark known torch bugs with "
                              "testing.known_failures (known_failure, known_wrong_result, known_crash, known_hang)")
    if result.skipped:
        return Status.SKIPPED, result.skipped[0][1]
    if result.known is not None:
        return Status.XFAILED, result.known
    return Status.PASSED, ""


def call_fixture(*fns):
    """Calls fixture functions in order (all of them, as unittest runs cleanups after a failed
    tearDown); returns (Status, detail). SkipTest from setUpClass skips the class."""
    status, details = Status.PASSED, []
    for fn in fns:
        try:
            fn()
        except unittest.SkipTest as e:
            status, details = Status.SKIPPED, [str(e)]
        except BaseException:  # noqa: BLE001 (CheckpointException derives from BaseException)
            status = Status.ERROR
            details.append(traceback.format_exc())
    return status, "".join(details)


def class_cleanups(cls):
    """doClassCleanups() keeps the cleanups' errors in cls.tearDown_exceptions instead of raising."""
    cls.doClassCleanups()
    errors, cls.tearDown_exceptions = list(getattr(cls, "tearDown_exceptions", [])), []
    if errors:
        raise RuntimeError("class cleanup failed:\n" + "".join(
            "".join(traceback.format_exception(*exc_info)) for exc_info in errors))


class Rank:
    """Runs units, records them, and agrees on each outcome with the other ranks."""

    def __init__(self, spec, records, store, rank, world_size, debugger=None):
        self.spec, self.records, self.store = spec, records, store
        self.rank, self.world_size = rank, world_size
        self.debugger = debugger
        self._seq = itertools.count()

    def unit(self, unit, kind, fn):
        self.records.emit("start", unit=unit, kind=kind, log=_log_offset())
        started = time.monotonic()
        status, detail = fn()
        duration = time.monotonic() - started
        self.records.emit("end", unit=unit, kind=kind, status=status.value, detail=detail, duration=duration,
                          log=_log_offset())
        return status

    def agree(self, unit, status):
        """True if every rank ended `unit` with the same clean status."""
        keys = [f"{next(self._seq)}:{unit}/{r}" for r in range(self.world_size)]
        self.store.set(keys[self.rank], status.value)
        self.store.wait(keys, datetime.timedelta(seconds=self.spec.agree_timeout))
        statuses = {self.store.get(k).decode() for k in keys}
        return len(statuses) == 1 and not Status(statuses.pop()).failing

    def run(self, module, cases, plan):
        """Runs the plan; returns when every rank agreed to stop or everything ran."""
        if hasattr(module, "setUpModule"):
            status = self.unit("setUpModule", FIXTURE, lambda: call_fixture(module.setUpModule))
            if not self.agree("setUpModule", status) or status is not Status.PASSED:
                return
        for cls, group in itertools.groupby(plan, key=lambda c: type(cases[c])):
            if not self._run_class(cls, [cases[c] for c in group]):
                break
        if hasattr(module, "tearDownModule"):
            teardown = (module.tearDownModule, unittest.case.doModuleCleanups)
            self.agree("tearDownModule", self.unit("tearDownModule", FIXTURE, lambda: call_fixture(*teardown)))

    def _run_class(self, cls, tests):
        """Runs one class's cases between its fixtures; False stops the launch. A failed or
        skipped setUpClass runs no case: the launcher reports the class's cases from it."""
        name = cls.__name__
        status = self.unit(f"{name}.setUpClass", FIXTURE, lambda: call_fixture(cls.setUpClass))
        if status is not Status.PASSED:
            call_fixture(lambda: class_cleanups(cls))
            return self.agree(f"{name}.setUpClass", status) and status is Status.SKIPPED
        keep_going = self.agree(f"{name}.setUpClass", status)
        for test in tests if keep_going else ():
            status = self.unit(_case_id(test), CASE, lambda: run_case(test, self.debugger))
            keep_going = self.agree(_case_id(test), status) and not (self.spec.fail_fast and status.failing)
            if not keep_going:
                break
        status = self.unit(f"{name}.tearDownClass", FIXTURE,
                           lambda: call_fixture(cls.tearDownClass, lambda: class_cleanups(cls)))
        return self.agree(f"{name}.tearDownClass", status) and keep_going


def _case_id(test):
    return f"{type(test).__name__}.{test._testMethodName}"


def start_coverage(coverage_dir, rank, torch_version):
    """coverage.py over COVERAGE_PACKAGES, started after `import torch` (which loads none of them;
    started before it, torch 2.13's and 2.14's import of torch._C crash) and before anything else
    of torch.distributed, so their module-level code counts. The data file's name carries torch's
    version, which tools/dcp_coverage.py groups by."""
    try:
        import coverage
    except ImportError as e:
        raise RuntimeError("DSD_COVERAGE=1 needs coverage.py in the ranks' environment (pinned in the locked "
                           "environments, third_party/envs/*.lock)") from e

    os.makedirs(coverage_dir, exist_ok=True)
    cov = coverage.Coverage(data_file=os.path.join(coverage_dir, "coverage"),
                            data_suffix=f"torch-{torch_version}.rank{rank}.{os.getpid()}.{os.urandom(3).hex()}",
                            source_pkgs=COVERAGE_PACKAGES)
    cov.start()
    return cov


class CaseDebugger(pdb.Pdb):
    """pdb that stops at the first line of a case's own test method (past absl's parameterized
    wrapper and anything it calls); from there on it is plain pdb."""

    def run_case(self, method):
        self._target = inspect.unwrap(getattr(method, "__func__", method)).__code__
        self._arrived = self._entered = False
        return self.runcall(method)

    def stop_here(self, frame):
        if not self._arrived:
            if frame.f_code is not self._target:
                return False
            self._arrived = True
        return super().stop_here(frame)

    def user_call(self, frame, argument_list):
        if frame.f_code is self._target and not self._entered:
            self._entered = True  # stop at its first line, not at the call
            return
        super().user_call(frame, argument_list)


def debugger_for(rank):
    """A pdb for the debugged rank: on the launcher's terminal if it has one (stdin is inherited
    through torchrun), else on a local TCP port it announces in its log (`nc 127.0.0.1 PORT`)."""
    if os.isatty(0):
        tty = os.ttyname(0)
        print(f"DSD_DEBUG_RANK: rank {rank} stops in pdb on {tty} at the start of each case", flush=True)
        return CaseDebugger(stdin=open(tty), stdout=open(tty, "w"))  # noqa: SIM115
    server = socket.create_server(("127.0.0.1", 0))
    print(f"DSD_DEBUG_RANK: rank {rank} waits for a debugger: nc 127.0.0.1 {server.getsockname()[1]}", flush=True)
    conn, _ = server.accept()
    stream = conn.makefile("rw", buffering=1)
    return CaseDebugger(stdin=stream, stdout=stream)


def torch_build(torch):
    return {"version": torch.__version__, "git_version": torch.version.git_version,
            "cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None),
            "python": platform.python_version()}


def main(argv):
    spec = LaunchSpec.read(argv[1])
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    _exit_with_launcher()
    _redirect_output(os.path.join(spec.attempt_dir, f"rank{rank}.log"))
    faulthandler.enable(all_threads=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)  # the launcher's stack dumps
    records = RecordWriter(os.path.join(spec.attempt_dir, f"rank{rank}.jsonl"))
    timing = {"started": processes.process_start_time(os.getpid())}

    import torch

    # A fatal signal (a segfault, std::terminate's abort, also during interpreter teardown) prints
    # torch's C++ stack beside faulthandler's Python one: attribution can then name the frames.
    torch._C._set_print_stack_traces_on_fatal_signal(True)
    cov = start_coverage(spec.coverage_dir, rank, torch.__version__) if spec.coverage_dir else None
    import torch.distributed as dist
    from absl import flags

    from testing import dist_test_case

    flags.FLAGS(sys.argv[:1])  # absltest helpers read flags; use their defaults
    module = importlib.import_module(spec.test_module)
    timing["imported"] = time.time()
    backend = _init_process_group(spec, rank)
    store = dist.PrefixStore(
        "dsd_launcher/" + os.path.basename(spec.attempt_dir),
        dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                      timeout=datetime.timedelta(seconds=spec.agree_timeout)),
    )
    timing["connected"] = time.time()
    dist_test_case.configure(device=spec.device, backend=backend, scratch_dir=spec.scratch_dir,
                             phase=spec.phase, phase_world_sizes=spec.phase_world_sizes or [world_size],
                             random_seed=spec.random_seed)
    cases = plan_lib.discover(module)
    plan = plan_lib.plan(list(cases), spec.test_filter, spec.shard_index, spec.total_shards,
                         plan_lib.load_durations(spec.durations_file, spec.test_module))
    todo = [c for c in plan.cases if c not in set(spec.already_run)]
    records.emit("plan", cases=todo, total=plan.total, matched=plan.matched, pid=os.getpid(), torch=torch_build(torch),
                 **timing)

    debugger = debugger_for(rank) if spec.debug_rank == rank else None
    runner = Rank(spec, records, store, rank, world_size, debugger)
    runner.run(module, cases, todo)
    runner.unit("shutdown", SHUTDOWN, lambda: call_fixture(dist.destroy_process_group))
    if cov is not None:
        cov.stop()
        cov.save()
    records.emit("done")
    return 0


def _init_process_group(spec, rank):
    """The default group (env://, as every starter sets it up); returns its backend."""
    import torch
    import torch.distributed as dist

    if spec.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=spec.pg_timeout))
    return backend


if __name__ == "__main__":
    # Run the importable module, not __main__: code that imports testing.launcher.rank_worker
    # (fixtures of the launcher's tests) then sees this run's objects. The rank then leaves
    # through the interpreter's normal teardown (atexit handlers, torch's exit hooks, C++ static
    # destructors), as a training job does: the launcher bounds it (--exit_timeout) and a crash,
    # hang or non-zero status there fails the target as launcher.exit.
    from testing.launcher import rank_worker
    sys.exit(rank_worker.main(sys.argv))
