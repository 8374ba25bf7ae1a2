"""Bazel's test protocol, as the launcher honours it (one small function per piece, like
absltest's _setup_sharding and get_default_xml_output_filename):

  TEST_SHARD_INDEX / TEST_TOTAL_SHARDS   this shard's cases (plan.py; balanced by --durations)
  TEST_RANDOM_SEED                       every case starts from torch.manual_seed(it) (default 0)
  TEST_SHARD_STATUS_FILE                 touched: the launcher shards
  TEST_PREMATURE_EXIT_FILE               created at start, removed on a clean end: a launcher
                                         killed in between leaves it, and Bazel fails the test
  TEST_TIMEOUT                           the target's own limit: TEST_TIMEOUT minus 20 s (not under
                                         `bazel run`, which sets it but enforces nothing)
  TEST_TMPDIR                            scratch (checkpoints), NCCL pipes
  TEST_UNDECLARED_OUTPUTS_DIR            per-rank logs, records, failure artefacts (outputs.zip)
  TEST_TARGET                            the XML's suite name
  XML_OUTPUT_FILE, TESTBRIDGE_TEST_ONLY, TESTBRIDGE_TEST_RUNNER_FAIL_FAST, TEST_WARNINGS_OUTPUT_FILE,
  TEST_INFRASTRUCTURE_FAILURE_FILE       read where they are used (launcher.py, report.py)
"""

import dataclasses
import importlib
import os
import re
import shutil
import tempfile
import time

from testing.launcher import plan as plan_lib
from testing.launcher import processes

_STALE_OUTPUTS = r"attempt\d+|rerun\d+|phase\d+|failures|coverage"


@dataclasses.dataclass
class TestProtocol:
    suite: str
    shard_index: int
    total_shards: int
    tmpdir: str
    output_dir: str
    deadline: tuple           # (time.time() limit, what it is)
    coverage_dir: str
    process_started: float    # when this process (Bazel's test runner stub, then the launcher) started
    random_seed: int = 0

    @classmethod
    def from_environment(cls, args, environ=None):
        env = os.environ if environ is None else environ
        shard_index, total_shards = shard(env)
        tmpdir = env.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="dsd-")
        output_dir = outputs(args.output_dir or os.path.join(tmpdir, "outputs"))
        return cls(suite=env.get("TEST_TARGET") or args.test_module, shard_index=shard_index,
                   total_shards=total_shards, tmpdir=tmpdir, output_dir=output_dir,
                   deadline=deadline(env, args.timeout, args.debug_rank >= 0),
                   coverage_dir=os.path.join(output_dir, "coverage") if args.coverage else "",
                   process_started=processes.process_start_time(os.getpid()), random_seed=random_seed(env))

    def logs_location(self):
        if not os.environ.get("TEST_TARGET"):
            return self.output_dir
        target = os.environ["TEST_TARGET"].lstrip("/").replace(":", "/")
        shard_dir = f"shard_{self.shard_index + 1}_of_{self.total_shards}/" if self.total_shards > 1 else ""
        return f"bazel-testlogs/{target}/{shard_dir}test.outputs/ (outputs.zip)"


def shard(env):
    """(index, total) of this shard; touching TEST_SHARD_STATUS_FILE says the launcher shards."""
    if env.get("TEST_SHARD_STATUS_FILE"):
        open(env["TEST_SHARD_STATUS_FILE"], "a").close()
    return int(env.get("TEST_SHARD_INDEX", "0")), int(env.get("TEST_TOTAL_SHARDS", "1"))


def deadline(env, timeout, debugging):
    """(time, what) the target must end by: Bazel's TEST_TIMEOUT minus 20 s under `bazel test`,
    else --timeout (`bazel run` sets TEST_TIMEOUT too but enforces nothing; a debugging session
    is not cut short)."""
    bazel_timeout = 0 if env.get("BUILD_WORKSPACE_DIRECTORY") else float(env.get("TEST_TIMEOUT", "0") or 0)
    if bazel_timeout > 40 and not debugging:
        return time.time() + bazel_timeout - 20, f"Bazel's TEST_TIMEOUT of {bazel_timeout:.0f}s minus 20s"
    return time.time() + timeout, f"--timeout={timeout:.0f}"


def outputs(output_dir):
    """The outputs directory, without an earlier run's launches (`bazel run` reuses test.outputs/)."""
    os.makedirs(output_dir, exist_ok=True)
    for stale in os.listdir(output_dir):
        if re.fullmatch(_STALE_OUTPUTS, stale):
            shutil.rmtree(os.path.join(output_dir, stale), ignore_errors=True)
    return output_dir


class PrematureExitFile:
    """TEST_PREMATURE_EXIT_FILE: exists while the launcher runs; removed when it returns (an
    exception or a kill leaves it, and Bazel fails the test however it exited)."""

    def __init__(self, env=None):
        self.path = (os.environ if env is None else env).get("TEST_PREMATURE_EXIT_FILE")

    def __enter__(self):
        if self.path:
            open(self.path, "a").close()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.path and os.path.exists(self.path):
            os.remove(self.path)


def list_cases(test_module, test_filter, protocol, durations_file=""):
    """--list: this shard's case ids, one a line."""
    cases = plan_lib.discover(importlib.import_module(test_module))
    durations = plan_lib.load_durations(durations_file, test_module)
    for case in plan_lib.plan(list(cases), test_filter, protocol.shard_index, protocol.total_shards, durations).cases:
        print(case)
    return 0


def random_seed(env):
    """TEST_RANDOM_SEED (Bazel sets it to the run number under --runs_per_test), else 0."""
    value = env.get("TEST_RANDOM_SEED", "")
    return int(value) if value.lstrip("-").isdigit() else 0
