"""The launcher <-> rank protocol: statuses, the launch spec, records, verdicts and JUnit XML.

Both sides import this module, so the rule "a target passes only if every planned case has a
verdict from every rank and every rank then finished cleanly" is written once.

A launch hands its ranks one LaunchSpec (a JSON file). Each rank appends JSON lines to
<attempt dir>/rank<R>.jsonl, flushed per record, so a crash loses nothing already written:

  {"event": "plan", "cases": [...], "total": N, "matched": M, "pid": P, "torch": {...}}
  {"event": "start", "unit": U, "kind": K, "log": L}      K: case | fixture | shutdown
  {"event": "end", "unit": U, "kind": K, "status": S, "detail": D, "duration": T, "log": L}
  {"event": "done"}                              after teardown and process-group shutdown

A unit is a test case ("Class.method"), a fixture ("Class.setUpClass", "tearDownModule", ...)
or the rank's shutdown. S is a Status value; L the size of the rank's log (rank<R>.log) at that
moment, so the launcher can cut out what a rank logged during a unit.
"""

import dataclasses
import enum
import json
import os
import re
import time
import xml.etree.ElementTree as ET

CASE, FIXTURE, SHUTDOWN = "case", "fixture", "shutdown"  # unit kinds
LAUNCHER = "launcher"  # results the launcher adds (no rank ran them)


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"        # an assertion failed
    ERROR = "error"          # an exception other than an assertion
    SKIPPED = "skipped"
    XFAILED = "xfailed"      # a known torch bug reproduced with its recorded symptom

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
    done: list = dataclasses.field(default_factory=list)  # case ids run by earlier launches
    fail_fast: bool = False
    pg_timeout: float = 300.0
    agree_timeout: float = 3600.0
    phase: int = 0
    phase_world_sizes: list = dataclasses.field(default_factory=list)
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


def read_records(path):
    """The records of one rank file; a torn last line (rank killed mid-write) is dropped."""
    records = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    break
    return records


@dataclasses.dataclass
class Result:
    """One entry of a target's verdict: a case, a failed fixture, or a launcher check."""

    id: str
    status: Status
    message: str = ""
    detail: str = ""
    duration: float = 0.0
    kind: str = CASE


def headline(text):
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def merge_unit(unit, ends, kind=CASE):
    """One verdict from every rank's "end" record of `unit` ({rank: record}, all ranks)."""
    result = _merge(unit, ends)
    result.kind = kind
    return result


def _story(rank, end):
    return f"--- rank {rank} ({end['status']}) ---\n{end.get('detail', '')}"


def _merge(unit, ends):
    """Every rank ended `unit`: one verdict. A case whose ranks disagree (one passes, another hits
    the known bug or skips) is a failure, and the detail tells each rank's story."""
    duration = max((e.get("duration", 0.0) for e in ends.values()), default=0.0)
    by_status = {}
    for rank, end in sorted(ends.items()):
        by_status.setdefault(Status(end["status"]), []).append(rank)
    stories = "\n".join(_story(r, e) for r, e in sorted(ends.items()))
    failing = sorted(r for s, ranks in by_status.items() if s.failing for r in ranks)
    if failing:
        status = Status.FAILED if all(Status(ends[r]["status"]) is Status.FAILED for r in failing) else Status.ERROR
        first = ends[failing[0]]
        message = f"failed on rank(s) {failing}: {headline(first.get('detail')) or first['status']}"
        others = "\n".join(_story(r, e) for r, e in sorted(ends.items()) if r not in failing)
        detail = "\n".join(_story(r, ends[r]) for r in failing) + (
            f"\n--- the other ranks ---\n{others}" if others else "")
        return Result(unit, status, message, detail, duration)
    if len(by_status) > 1:
        agreed = {s.value: r for s, r in by_status.items()}
        return Result(unit, Status.FAILED, f"ranks disagree on the outcome: {agreed}", stories, duration)
    (status,) = by_status
    detail = ends[min(ends)].get("detail", "")
    if status is Status.SKIPPED:
        return Result(unit, Status.SKIPPED, detail, "", duration)
    if status is Status.XFAILED:
        return Result(unit, Status.XFAILED, detail.strip().splitlines()[0] if detail.strip() else "", detail, duration)
    return Result(unit, Status.PASSED, "", "", duration)


def merge_phases(per_phase, world_sizes):
    """One result per id from consecutive launches (phases) of the same cases: failing if any
    phase failed or lacks the id, skipped if any skipped, expected failure if any, else passed."""
    merged = []
    label = {i: f"phase {i} (world size {ws})" for i, ws in enumerate(world_sizes)}
    for rid in dict.fromkeys(r.id for results in per_phase for r in results):
        parts = [(i, r) for i, results in enumerate(per_phase) for r in results if r.id == rid]
        missing = sorted(set(range(len(per_phase))) - {i for i, _ in parts})
        duration = sum(r.duration for _, r in parts)
        failed = [(i, r) for i, r in parts if r.status.failing]
        kind = parts[0][1].kind
        if kind != CASE:
            missing = []  # fixture and launcher entries exist only where something went wrong
        if failed or missing:
            status = Status.ERROR if any(r.status is Status.ERROR for _, r in failed) else Status.FAILED
            message = "; ".join([f"{label[i]}: {r.message}" for i, r in failed] +
                                [f"{label[i]}: did not run" for i in missing])
            detail = "\n".join(f"=== {label[i]} ===\n{r.detail}" for i, r in failed)
            merged.append(Result(rid, status, message, detail, duration, kind))
            continue
        for status in (Status.SKIPPED, Status.XFAILED):
            hits = [(i, r) for i, r in parts if r.status is status]
            if hits:
                i, r = hits[0]
                merged.append(Result(rid, status, f"{label[i]}: {r.message}", r.detail, duration, kind))
                break
        else:
            merged.append(Result(rid, Status.PASSED, "", "", duration, kind))
    return merged


def counts(results):
    out = {s: 0 for s in Status}
    for r in results:
        out[r.status] += 1
    return out


def write_junit(path, suite_name, results, total_time, properties=None, system_out=""):
    """JUnit XML as CI tools read it: failures (assertions) apart from errors (exceptions),
    skips with their reason, and expected failures as pytest writes xfail:
    <skipped type="pytest.xfail" message=...>."""
    c = counts(results)
    skipped = c[Status.SKIPPED] + c[Status.XFAILED]
    attrs = dict(tests=str(len(results)), failures=str(c[Status.FAILED]), errors=str(c[Status.ERROR]),
                 skipped=str(skipped), time=f"{total_time:.3f}")
    suites = ET.Element("testsuites", **attrs)
    suite = ET.SubElement(suites, "testsuite", name=suite_name, **attrs)
    if properties:
        props = ET.SubElement(suite, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", name=name, value=str(value))
    for r in results:
        cls, _, method = r.id.rpartition(".")
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{cls}" if cls else suite_name,
                             name=method, time=f"{r.duration:.3f}")
        if r.status is Status.FAILED:
            ET.SubElement(case, "failure", message=r.message[:1000]).text = r.detail or r.message
        elif r.status is Status.ERROR:
            ET.SubElement(case, "error", message=r.message[:1000]).text = r.detail or r.message
        elif r.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", message=r.message[:1000])
        elif r.status is Status.XFAILED:
            ET.SubElement(case, "skipped", type="pytest.xfail", message=r.message[:1000]).text = r.detail
    if system_out:
        ET.SubElement(suite, "system-out").text = system_out
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
