"""One rank of a launch: started by torchrun (one process per rank) from testing/launcher.py.

Initialises the process group once, runs the launch's cases in the same order on every rank,
and after each case agrees with the other ranks through the rendezvous store (not through a
collective, which a failed case may have left unmatched). A case that did not pass cleanly on
every rank ends the launch; the launcher starts a fresh one for the remaining cases.
Records go to the rank's JSON-lines file (see results.py); stdout/stderr to the rank's log.
"""

import ctypes
import os
import signal
import threading
import time


def _die_with_launch():
    """No rank outlives its launch: SIGKILL when torchrun dies (set before the slow imports
    below, so a torchrun killed during start-up takes this rank with it), and exit when the
    launcher is gone (it may have been SIGKILLed with torchrun still alive)."""
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
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


_die_with_launch()

import argparse  # noqa: E402
import datetime  # noqa: E402
import faulthandler  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
import unittest  # noqa: E402

from testing import case_selection  # noqa: E402

_CLEAN = ("pass", "skip", "xfail")


def _redirect_output(log_path):
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


class _Records:
    def __init__(self, path):
        self._f = open(path, "a", buffering=1)

    def emit(self, event, **fields):
        self._f.write(json.dumps(dict(event=event, t=time.time(), **fields)) + "\n")
        self._f.flush()


class _CaseResult(unittest.TestResult):
    """Reports a KnownFailure (testing.dist_test_case.known_failure) as an expected failure."""

    def addError(self, test, err):
        if err[0].__name__ == "KnownFailure":
            self.expectedFailures.append((test, str(err[1])))
        else:
            super().addError(test, err)


def run_case(test):
    """Runs one TestCase; returns (status, detail) with status in results.py's vocabulary."""
    result = _CaseResult()
    test.run(result)
    if result.errors:
        return "error", "".join(tb for _, tb in result.errors)
    if result.failures:
        return "fail", "".join(tb for _, tb in result.failures)
    if result.unexpectedSuccesses:
        return "xpass", ("unexpected success: the expected failure no longer happens "
                         "(fixed upstream?); remove the expected-failure mark")
    if result.skipped:
        return "skip", result.skipped[0][1]
    if result.expectedFailures:
        return "xfail", result.expectedFailures[0][1]
    return "pass", ""


def _class_setup(cls):
    try:
        cls.setUpClass()
        return None
    except BaseException:  # noqa: BLE001 (CheckpointException derives from BaseException)
        return traceback.format_exc()


def _class_teardown(cls):
    try:
        cls.tearDownClass()
        cls.doClassCleanups()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()


def _agree(store, index, case_id, status, world_size, timeout):
    """Every rank publishes its status for case `index` and reads everyone else's."""
    keys = [f"{index}:{case_id}/{r}" for r in range(world_size)]
    store.set(keys[int(os.environ["RANK"])], status)
    store.wait(keys, datetime.timedelta(seconds=timeout))
    return [store.get(k).decode() for k in keys]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--test_module", required=True)
    p.add_argument("--device", choices=("cpu", "cuda"), required=True)
    p.add_argument("--attempt_dir", required=True, help="records and logs of this launch")
    p.add_argument("--scratch_dir", required=True, help="per-case checkpoint directories go here")
    p.add_argument("--skip_file", default="", help="case ids already run by earlier launches")
    p.add_argument("--test_filter", default="")
    p.add_argument("--select", default="", help="the target's own cases (from BUILD), before --test_filter")
    p.add_argument("--shard_index", type=int, default=0)
    p.add_argument("--total_shards", type=int, default=1)
    p.add_argument("--pg_timeout", type=float, default=300.0)
    p.add_argument("--agree_timeout", type=float, default=3600.0)
    p.add_argument("--phase_index", type=int, default=0)
    p.add_argument("--phase_world_sizes", default="")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    _redirect_output(os.path.join(args.attempt_dir, f"rank{rank}.log"))
    faulthandler.enable(all_threads=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)
    records = _Records(os.path.join(args.attempt_dir, f"rank{rank}.jsonl"))

    import torch
    import torch.distributed as dist
    from absl import flags

    from testing import dist_test_case

    flags.FLAGS(sys.argv[:1])  # absltest helpers read flags; use their defaults
    if args.device == "cuda":
        torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=args.pg_timeout))
    phases = [int(w) for w in args.phase_world_sizes.split(",") if w] or [world_size]
    dist_test_case.configure(device=args.device, backend=backend, scratch_dir=args.scratch_dir,
                             phase=args.phase_index, phase_world_sizes=phases)

    module = importlib.import_module(args.test_module)
    cases = {c: t for c, t in case_selection.discover(module).items()
             if case_selection.matches(c, case_selection.parse_filter(args.select))}
    patterns = case_selection.parse_filter(args.test_filter)
    matched = [c for c in cases if case_selection.matches(c, patterns)]
    selected = case_selection.select(list(cases), patterns, args.shard_index, args.total_shards)
    done = set()
    if args.skip_file and os.path.exists(args.skip_file):
        with open(args.skip_file) as f:
            done = {line.strip() for line in f if line.strip()}
    plan = [c for c in selected if c not in done]
    records.emit("plan", cases=plan, pid=os.getpid(), matched=len(matched), total=len(cases))

    store = dist.PrefixStore(
        "dsd_launcher/" + os.path.basename(args.attempt_dir),
        dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                      timeout=datetime.timedelta(seconds=args.agree_timeout)),
    )
    current_cls = None
    class_error = None
    for index, case_id in enumerate(plan):
        test = cases[case_id]
        if type(test) is not current_cls:
            if current_cls is not None and class_error is None:
                _class_teardown(current_cls)
            current_cls = type(test)
            class_error = _class_setup(current_cls)
        records.emit("start", case=case_id)
        started = time.monotonic()
        if class_error is not None:
            status, detail = "error", "setUpClass failed:\n" + class_error
        else:
            status, detail = run_case(test)
        records.emit("end", case=case_id, status=status, detail=detail,
                     duration=time.monotonic() - started)
        verdicts = _agree(store, index, case_id, status, world_size, args.agree_timeout)
        if any(v not in _CLEAN for v in verdicts) or len(set(verdicts)) > 1:
            break  # the process group may be out of step: the launcher relaunches the rest
    if current_cls is not None and class_error is None:
        _class_teardown(current_cls)
    dist.destroy_process_group()
    records.emit("done")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: torch's exit-time destructors occasionally abort
    # ("terminate called without an active exception") after all results are written.
    os._exit(0)


if __name__ == "__main__":
    main()
