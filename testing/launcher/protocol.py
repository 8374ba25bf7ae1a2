"""The launcher <-> rank contract: unit kinds, statuses, the launch spec and the record format.

A launch hands its ranks one LaunchSpec (a JSON file). Each rank appends JSON lines to
<attempt dir>/rank<R>.jsonl, flushed per record, so a crash loses nothing already written:

  {"event": "plan", "cases": [...], "total": N, "matched": M, "pid": P, "torch": {...},
   "started": S, "imported": I, "connected": C}   S/I/C: when the process started, had imported
                                                   torch and the test module, and had its group
  {"event": "start", "unit": U, "kind": K, "log": L}      K: case | fixture | shutdown
  {"event": "end", "unit": U, "kind": K, "status": S, "detail": D, "duration": T, "log": L}
  {"event": "done"}                              after teardown and process-group shutdown

A unit is a test case ("Class.method"), a fixture ("Class.setUpClass", "tearDownModule", ...)
or the rank's shutdown. S is a Status value; L the size of the rank's log (rank<R>.log) at that
moment, so the launcher can cut out what a rank logged during a unit. Every record carries "t",
its time.time(). How the records become a verdict: verdict.py (launcher side only).
"""

import dataclasses
import enum
import json
import re
import time

CASE, FIXTURE, SHUTDOWN = "case", "fixture", "shutdown"  # unit kinds
LAUNCHER = "launcher"  # results the launcher adds (no rank ran them)


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"        # an assertion failed
    ERROR = "error"          # an exception other than an assertion
    SKIPPED = "skipped"
    XFAILED = "xfailed"      # a known torch bug reproduced with its recorded symptom
    FLAKY = "flaky"          # failed, then passed when the launcher reran it in a fresh launch
                             # (--flaky_reruns; the launcher's verdict, never a rank's)

    @property
    def failing(self):
        return self in (Status.FAILED, Status.ERROR)


@dataclasses.dataclass
class LaunchSpec:
    """Everything a rank needs to run its share of a launch (written once, read by every rank)."""

    test_module: str
    device: str
    attempt_dir: str
    scratch_dir: str
    test_filter: str = ""
    shard_index: int = 0
    total_shards: int = 1
    already_run: list = dataclasses.field(default_factory=list)  # case ids with a verdict from earlier launches
    fail_fast: bool = False
    pg_timeout: float = 300.0
    agree_timeout: float = 3600.0
    phase: int = 0
    phase_world_sizes: list = dataclasses.field(default_factory=list)
    durations_file: str = ""  # recorded case durations: shards balanced by them (plan.py)
    random_seed: int = 0      # every case starts from torch.manual_seed(random_seed) (TEST_RANDOM_SEED)
    coverage_dir: str = ""   # ranks measure torch.distributed.checkpoint with coverage.py into it
    debug_rank: int = -1     # this rank stops in pdb at the start of each case (DSD_DEBUG_RANK)

    def write(self, path):
        with open(path, "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=1)

    @classmethod
    def read(cls, path):
        with open(path) as f:
            return cls(**json.load(f))


def case_dir_name(unit):
    """A file name for a case or fixture id ("Class.method"): the name of the case's scratch
    directory (DistributedTestCase.checkpoint_dir()) and of its failure artefacts."""
    return re.sub(r"[^\w.-]", "_", unit)


class RecordWriter:
    """One rank's record file (kept open for the rank's life)."""

    def __init__(self, path):
        self._f = open(path, "a", buffering=1)  # noqa: SIM115

    def emit(self, event, **fields):
        self._f.write(json.dumps(dict(event=event, t=time.time(), **fields)) + "\n")
        self._f.flush()
