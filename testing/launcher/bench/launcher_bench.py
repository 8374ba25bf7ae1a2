"""Wall time of the launcher (one process group for all cases) against upstream-style
per-case spawning (fresh processes and process group per test method, as PyTorch's
MultiProcessTestCase does), on one module of K cases, side by side in one run.

    ./bazelw run //testing/launcher/bench:launcher_bench -- --cases=10 --world_size=2
    python -m testing.launcher.bench.launcher_bench --cases=10        (from the repo root, project venv)

Prints a table; nothing is asserted (speed goals live here, not in timed tests).
"""

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import unittest

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("cases", 10, "K, the number of cases in the module.")
flags.DEFINE_integer("world_size", 2, "Ranks per case.")
flags.DEFINE_integer("repeats", 1, "Runs of each mode; the table shows the best.")

MODULE = "testing.launcher.bench.bench_cases"


def _spawned_rank(rank, world_size, store_path, case_id, scratch, result_queue):
    """One rank of one case, the upstream way: fresh interpreter, fresh process group."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import importlib

    import torch.distributed as dist
    from absl import flags as absl_flags

    from testing.launcher import plan
    from testing import dist_test_case

    absl_flags.FLAGS(["bench"])
    dist.init_process_group("gloo", store=dist.FileStore(store_path, world_size), rank=rank,
                            world_size=world_size)
    dist_test_case.configure(device="cpu", backend="gloo", scratch_dir=scratch)
    test = plan.discover(importlib.import_module(MODULE))[case_id]
    result = unittest.TestResult()
    test.run(result)
    dist.destroy_process_group()
    result_queue.put((rank, result.wasSuccessful()))


def per_case_spawn(case_ids, world_size):
    ctx = multiprocessing.get_context("spawn")
    ok = True
    for case_id in case_ids:
        with tempfile.TemporaryDirectory() as tmp:
            queue = ctx.Queue()
            procs = [ctx.Process(target=_spawned_rank,
                                 args=(r, world_size, os.path.join(tmp, "store"), case_id, tmp, queue))
                     for r in range(world_size)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            outcomes = [queue.get(timeout=10) for _ in procs]
            ok &= all(success for _, success in outcomes) and all(p.exitcode == 0 for p in procs)
    return ok


def launcher_run(world_size):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TEST_TMPDIR=tmp, DSD_DEVICE="cpu", PYTHONPATH=os.pathsep.join(sys.path))
        for k in ("XML_OUTPUT_FILE", "TEST_UNDECLARED_OUTPUTS_DIR", "TESTBRIDGE_TEST_ONLY",
                  "TEST_SHARD_INDEX", "TEST_TOTAL_SHARDS", "TEST_SHARD_STATUS_FILE"):
            env.pop(k, None)
        proc = subprocess.run([sys.executable, "-m", "testing.launcher", f"--test_module={MODULE}",
                               f"--world_size={world_size}"], env=env, capture_output=True, text=True)
        return proc.returncode == 0


def timed(fn, *args):
    start = time.monotonic()
    ok = fn(*args)
    return time.monotonic() - start, ok


def main(argv):
    del argv
    os.environ["DSD_BENCH_CASES"] = str(FLAGS.cases)
    os.environ.setdefault("TEST_TMPDIR", tempfile.mkdtemp())
    case_ids = [f"SaveLoadTest.test_round_trip{i}" for i in range(FLAGS.cases)]
    rows = []
    for name, fn, args in (("launcher: 1 launch, 1 process group", launcher_run, (FLAGS.world_size,)),
                           ("per-case spawn (upstream style)", per_case_spawn, (case_ids, FLAGS.world_size))):
        runs = [timed(fn, *args) for _ in range(FLAGS.repeats)]
        rows.append((name, min(t for t, _ in runs), all(ok for _, ok in runs)))
    print(f"\n{FLAGS.cases} DCP save/load cases, world size {FLAGS.world_size}, CPU ranks (gloo), "
          f"{os.cpu_count()} cores, best of {FLAGS.repeats}")
    print(f"{'mode':40} {'wall s':>8} {'per case s':>11} {'all passed':>11}")
    for name, wall, ok in rows:
        print(f"{name:40} {wall:8.1f} {wall / FLAGS.cases:11.2f} {str(ok):>11}")
    print(f"ratio per-case / launcher: {rows[1][1] / rows[0][1]:.1f}x")


if __name__ == "__main__":
    app.run(main)
