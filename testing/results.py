"""Per-rank case records, their merge into one verdict per case, and the JUnit XML.

Ranks append JSON lines to <run_dir>/attempt<K>/rank<R>.jsonl (flushed per record, so a
crash loses nothing already written):
  {"event": "plan", "cases": [...], "pid": P}     the cases this launch will run, in order
  {"event": "start", "case": C}
  {"event": "end", "case": C, "status": S, "detail": D, "duration": T}
  {"event": "done"}                                 clean end of the launch on this rank
S is one of pass, fail, error, skip, xfail, xpass (unexpected success).
"""

import dataclasses
import json
import os
import xml.etree.ElementTree as ET

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
_FAILING = ("fail", "error", "xpass")


@dataclasses.dataclass
class CaseResult:
    case_id: str
    status: str  # PASSED, FAILED or SKIPPED
    message: str = ""
    detail: str = ""
    duration: float = 0.0


def rank_records(path):
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


def merge_case(case_id, ends):
    """One verdict from every rank's "end" record ({rank: record}); all ranks must have ended."""
    duration = max((e.get("duration", 0.0) for e in ends.values()), default=0.0)
    by_status = {}
    for rank, end in sorted(ends.items()):
        by_status.setdefault(end["status"], []).append(rank)
    failing = sorted(r for s in _FAILING for r in by_status.get(s, []))
    if failing:
        first = ends[failing[0]]
        headline = (first.get("detail") or first["status"]).strip().splitlines()[-1]
        message = f"failed on rank(s) {failing}: {headline}"
        detail = "\n".join(f"--- rank {r} ({ends[r]['status']}) ---\n{ends[r].get('detail', '')}"
                           for r in failing)
        return CaseResult(case_id, FAILED, message, detail, duration)
    statuses = set(by_status)
    if statuses == {"skip"}:
        return CaseResult(case_id, SKIPPED, ends[min(ends)].get("detail", ""), "", duration)
    if statuses <= {"pass", "xfail"}:
        detail = ends[min(ends)].get("detail", "") if "xfail" in statuses else ""
        return CaseResult(case_id, PASSED, "expected failure" if detail else "", detail, duration)
    return CaseResult(case_id, FAILED, f"ranks disagree on the outcome: {by_status}",
                      "\n".join(f"rank {r}: {e['status']}: {e.get('detail', '')}" for r, e in sorted(ends.items())),
                      duration)


def merge_phases(per_phase, world_sizes):
    """One result per case from the results of consecutive launches (phases) of the same cases:
    failed if any phase failed, skipped if any skipped (and none failed), else passed."""
    merged = []
    for case_id in dict.fromkeys(r.case_id for results in per_phase for r in results):
        parts = [(i, r) for i, results in enumerate(per_phase) for r in results if r.case_id == case_id]
        ran = {i for i, _ in parts}
        missing = [i for i in range(len(per_phase)) if i not in ran]
        label = {i: f"phase {i} (world size {world_sizes[i]})" for i in range(len(per_phase))}
        failed = [(i, r) for i, r in parts if r.status == FAILED]
        skipped = [(i, r) for i, r in parts if r.status == SKIPPED]
        duration = sum(r.duration for _, r in parts)
        if failed or missing:
            message = "; ".join([f"{label[i]}: {r.message}" for i, r in failed] +
                                [f"{label[i]}: did not run" for i in missing])
            detail = "\n".join(f"=== {label[i]} ===\n{r.detail}" for i, r in failed)
            merged.append(CaseResult(case_id, FAILED, message, detail, duration))
        elif skipped:
            i, r = skipped[0]
            merged.append(CaseResult(case_id, SKIPPED, f"{label[i]}: {r.message}", "", duration))
        else:
            detail = "\n".join(f"{label[i]}: {r.detail}" for i, r in parts if r.detail)
            message = "expected failure" if any(r.message == "expected failure" for _, r in parts) else ""
            merged.append(CaseResult(case_id, PASSED, message, detail, duration))
    return merged


def write_junit_xml(path, suite_name, results, total_time):
    """One <testsuite> with a <testcase> per case, in run order."""
    counts = count(results)
    suites = ET.Element("testsuites", tests=str(len(results)), failures=str(counts[FAILED]),
                        errors="0", skipped=str(counts[SKIPPED]), time=f"{total_time:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=suite_name, tests=str(len(results)),
                          failures=str(counts[FAILED]), errors="0", skipped=str(counts[SKIPPED]),
                          time=f"{total_time:.3f}")
    for r in results:
        cls, _, method = r.case_id.partition(".")
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{cls}", name=method,
                             time=f"{r.duration:.3f}")
        if r.status == FAILED:
            ET.SubElement(case, "failure", message=r.message[:1000]).text = r.detail or r.message
        elif r.status == SKIPPED:
            ET.SubElement(case, "skipped", message=r.message[:1000])
        elif r.detail:
            ET.SubElement(case, "system-out").text = r.detail
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def count(results):
    counts = {PASSED: 0, FAILED: 0, SKIPPED: 0}
    for r in results:
        counts[r.status] += 1
    return counts
