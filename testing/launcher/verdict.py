"""The verdict rule, written once: how the ranks' records of each unit, the launches of a phase
and the phases of a target become one result per case, fixture or launcher check.

A case passes only if every rank passed it; every rank skipping it (with a reason) skips it;
every rank hitting the same known torch bug makes it an expected failure; anything else
(a failure anywhere, or ranks that disagree) fails it, with each rank's story. Fixtures,
shutdowns and the launcher's own checks appear only where something went wrong. The launcher
(launcher.py) adds the target-level checks: a module without cases, a filter matching none.
"""

import dataclasses

from testing.launcher.protocol import CASE
from testing.launcher.protocol import LAUNCHER
from testing.launcher.protocol import Status


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
    phase failed or lacks the id, skipped if any skipped, expected failure if any, flaky if any,
    else passed."""
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
        for status in (Status.SKIPPED, Status.XFAILED, Status.FLAKY):
            hits = [(i, r) for i, r in parts if r.status is status]
            if hits:
                i, r = hits[0]
                merged.append(Result(rid, status, f"{label[i]}: {r.message}", r.detail, duration, kind))
                break
        else:
            merged.append(Result(rid, Status.PASSED, "", "", duration, kind))
    return merged


def flaky(first_failure, attempt):
    """The result of a case that failed (`first_failure`) and then passed on rerun `attempt`."""
    return Result(first_failure.id, Status.FLAKY,
                  f"failed, then passed on rerun {attempt} in a fresh launch: {first_failure.message}",
                  first_failure.detail, first_failure.duration, first_failure.kind)


def counts(results):
    out = {s: 0 for s in Status}
    for r in results:
        out[r.status] += 1
    return out



def target_checks(test_module, test_filter, plan, shard_index, total_shards):
    """Target-level results of one phase's plan (None: the ranks never planned): a module without
    cases and a filter matching nothing fail; an empty shard passes and says so (as a note)."""
    if plan is None:
        return [], []
    if plan.total == 0:
        return [Result("launcher.plan", Status.ERROR, f"{test_module} defines no test case", kind=LAUNCHER)], []
    if plan.matched == 0:
        return [Result("launcher.test_filter", Status.ERROR,
                       f"--test_filter={test_filter!r} matched none of the {plan.total} cases of {test_module}",
                       kind=LAUNCHER)], []
    if not plan.cases:
        return [], [f"shard {shard_index + 1} of {total_shards} has no case: {plan.matched} case(s) over "
                    f"{total_shards} shards"]
    return [], []
