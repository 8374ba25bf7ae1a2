"""The report's data, read from the history: plain dicts, lists, strings and numbers (the same
from SQLite and PostgreSQL), so the page and the tests share one definition.

`report_data` covers the last `runs` invocations (or the one `invocation`); each matrix cell
(scenario x torch release x world size) is that cell's most recent result among them; its
status is the worst of its cases: failed (or error, or a target Bazel failed) > flaky >
xfailed (expected failure, a known bug) > passed > skipped.
"""

import collections

import sqlalchemy as sa

from tools.history import schema

CELL_STATUSES = ("passed", "xfailed", "skipped", "failed", "flaky")
_BAZEL_FAILED = {"FAILED", "TIMEOUT", "INCOMPLETE", "REMOTE_FAILURE", "FAILED_TO_BUILD", "TOOL_HALTED_BEFORE_TESTING"}
_EXECUTED = ("passed", "failed", "error", "xfailed", "flaky")
I, T, A, C = schema.invocations, schema.targets, schema.attempts, schema.cases


def _seconds(value):
    return None if value is None else round(float(value), 3)


def cell_status(target_statuses, case_statuses):
    """One of CELL_STATUSES for the targets' Bazel statuses and their cases' statuses."""
    cases = set(case_statuses)
    if cases & {"failed", "error"} or set(target_statuses) & _BAZEL_FAILED:
        return "failed"
    if "flaky" in cases or "FLAKY" in target_statuses:
        return "flaky"
    for status in ("xfailed", "passed"):
        if status in cases:
            return status
    return "skipped"


def invocations(conn, runs=20, invocation=None):
    """[run dict], oldest first: the last `runs` invocations, or the one whose id is `invocation`
    ("latest": the most recent)."""
    query = sa.select(I).order_by(I.c.started_at.desc(), I.c.invocation_id.desc())
    if invocation and invocation != "latest":
        query = query.where(I.c.invocation_id == invocation)
    rows = conn.execute(query.limit(1 if invocation else runs)).mappings().all()
    return [{
        "pk": r["id"], "invocation_id": r["invocation_id"], "started_at": r["started_at"].isoformat(timespec="seconds"),
        "commit": r["commit"], "commit_dirty": r["commit_dirty"], "command_line": r["command_line"],
        "exit_code": r["exit_code"], "wall_seconds": _seconds(r["wall_seconds"]),
        "bazel_seconds": _seconds((r["finished_at"] - r["started_at"]).total_seconds()) if r["finished_at"] else None,
    } for r in reversed(rows)]


# Strings are sorted here, not by the database: PostgreSQL's collation (en-US: a < B) is not
# SQLite's (bytes: B < a), and the report must not depend on which one holds the history.
def _targets(conn, pks):
    rows = [dict(r) for r in conn.execute(sa.select(T).where(T.c.invocation_pk.in_(pks))).mappings()]
    return sorted(rows, key=lambda r: (r["invocation_pk"], r["label"]))


def _cases(conn, pks):
    """{target pk: [case dict]} of the last attempts' cases, by shard, run and case id."""
    query = (sa.select(C.c.id, C.c.case_id, C.c.status, C.c.duration_s, C.c.message, A.c.shard, A.c.run,
                       A.c.target_pk)
             .join(A, C.c.attempt_pk == A.c.id).join(T, A.c.target_pk == T.c.id)
             .where(T.c.invocation_pk.in_(pks), A.c.is_last.is_(True)))
    rows = sorted(conn.execute(query).mappings(), key=lambda r: (r["target_pk"], r["shard"], r["run"], r["case_id"],
                                                                   r["id"]))
    out = collections.defaultdict(list)
    for r in rows:
        out[r["target_pk"]].append({"case_id": r["case_id"], "status": r["status"], "message": r["message"],
                                    "duration_s": _seconds(r["duration_s"]), "shard": r["shard"], "run": r["run"]})
    return out


def report_data(conn, runs=20, invocation=None):
    """{"runs", "matrix", "other_targets", "flaky", "slowest_targets", "case_durations"} of the
    last `runs` invocations (or one); runs oldest first."""
    invs = invocations(conn, runs, invocation)
    by_pk = {inv["pk"]: index for index, inv in enumerate(invs)}
    targets = _targets(conn, list(by_pk))
    cases = _cases(conn, list(by_pk))
    for t in targets:
        t["run_index"], t["cases"] = by_pk[t["invocation_pk"]], cases.get(t["id"], [])
    for inv in invs:
        inv["counts"] = _counts([t for t in targets if t["invocation_pk"] == inv["pk"]])
    return {
        "runs": [{k: v for k, v in inv.items() if k != "pk"} for inv in invs],
        "matrix": matrix(targets, invs),
        "other_targets": other_targets(targets, invs),
        "flaky": flaky_cases(targets, invs),
        "slowest_targets": slowest_targets(targets, len(invs)),
        "slowest_targets_all": slowest_targets(targets, len(invs), limit=None),
        "case_durations": case_durations(targets, len(invs)),
    }


def _counts(targets):
    counts = dict.fromkeys(("targets", "failed_targets", *schema.CASE_STATUSES), 0)
    for t in targets:
        counts["targets"] += 1
        counts["failed_targets"] += t["status"] in _BAZEL_FAILED
        for case in t["cases"]:
            counts[case["status"]] += 1
    return counts


def matrix(targets, invs):
    """{"scenarios", "columns": [[release, world size]], "cells": [cell]}: the most recent result
    of each (scenario, torch release, world size) of the launcher's targets."""
    latest = {}
    for t in targets:
        if t["test_module"]:
            key = (t["scenario"], t["torch_release"] or "?", t["world_sizes"] or "?")
            if key not in latest or latest[key][0]["run_index"] < t["run_index"]:
                latest[key] = [t]
            elif latest[key][0]["run_index"] == t["run_index"]:
                latest[key].append(t)
    cells = []
    for (scenario, release, ws), group in sorted(latest.items()):
        group_cases = [dict(c, label=t["label"]) for t in group for c in t["cases"]]
        run = invs[group[0]["run_index"]]
        cells.append({"scenario": scenario, "release": release, "world_size": ws,
                      "status": cell_status([t["status"] for t in group], [c["status"] for c in group_cases]),
                      "labels": [t["label"] for t in group], "target_statuses": [t["status"] for t in group],
                      "invocation_id": run["invocation_id"], "started_at": run["started_at"],
                      "torch_version": group[0]["torch_version"], "device": group[0]["device"],
                      "environments": group[0]["environments"], "cases": group_cases})
    return {"scenarios": sorted({c["scenario"] for c in cells}),
            "columns": sorted({(c["release"], c["world_size"]) for c in cells}, key=column_order), "cells": cells}


def column_order(column):
    """Releases alphabetically, then world sizes as numbers (2 before 2 -> 4 before 4)."""
    release, ws = column
    phases = [p.strip() for p in ws.split("->")]
    return release, [int(p) if p.isdigit() else -1 for p in phases], ws


def other_targets(targets, invs):
    """[{label, status, cases: {status: n}, started_at}]: the latest result of each target without
    the launcher's properties (plain absltest / unittest targets)."""
    latest = {}
    for t in targets:
        if not t["test_module"]:
            latest[t["label"]] = t
    out = []
    for label, t in sorted(latest.items()):
        counts = collections.Counter(c["status"] for c in t["cases"])
        out.append({"label": label, "status": cell_status([t["status"]], counts),
                    "bazel_status": t["status"], "counts": dict(sorted(counts.items())),
                    "invocation_id": invs[t["run_index"]]["invocation_id"]})
    return out


def flaky_cases(targets, invs):
    """[{label, case_id, flaky, executed, rate, last_message, last_invocation}] of the cases that
    were flaky at least once; rate = executions flaky / executions (skips left out; one per run,
    more under --runs_per_test); highest rate first."""
    seen = collections.defaultdict(lambda: {"flaky": 0, "executed": 0, "last_message": None, "last_invocation": None})
    for t in targets:
        for case in t["cases"]:
            entry = seen[(t["label"], case["case_id"])]
            entry["executed"] += case["status"] in _EXECUTED
            if case["status"] == "flaky":
                entry["flaky"] += 1
                entry["last_message"] = case["message"]
                entry["last_invocation"] = invs[t["run_index"]]["invocation_id"]
    out = [{"label": label, "case_id": case_id, **e, "rate": round(e["flaky"] / e["executed"], 3)}
           for (label, case_id), e in seen.items() if e["flaky"]]
    return sorted(out, key=lambda e: (-e["rate"], -e["flaky"], e["label"], e["case_id"]))


def _series(items, n_runs):
    """{key: [duration or None per run]} from (key, run index, duration) triples."""
    series = collections.defaultdict(lambda: [None] * n_runs)
    for key, index, duration in items:
        if duration is not None:
            series[key][index] = round((series[key][index] or 0) + duration, 3)
    return series


def _trend(durations):
    known = [d for d in durations if d is not None]
    mean = sum(known) / len(known)
    earlier = [d for d in durations[:-1] if d is not None]
    change = None
    if durations[-1] is not None and earlier and sum(earlier):
        change = round(durations[-1] / (sum(earlier) / len(earlier)) - 1, 3)
    return {"durations": durations, "mean": round(mean, 3), "max": round(max(known), 3),
            "latest": durations[-1], "change": change, "runs": len(known)}


def slowest_targets(targets, n_runs, limit=15):
    """The `limit` targets with the longest mean duration over the runs (cached results left
    out: they repeat an old duration), with their durations per run."""
    series = _series([(t["label"], t["run_index"], t["duration_s"]) for t in targets if not t["cached"]], n_runs)
    rows = [{"label": label, **_trend(durations)} for label, durations in series.items()]
    return sorted(rows, key=lambda r: (-r["mean"], r["label"]))[:limit]  # limit None: all


def case_durations(targets, n_runs, limit=25):
    """The `limit` slowest executed cases (mean over the runs; skips and cached results left out) with their
    duration per run and the change of the latest against the mean of the earlier runs."""
    series = _series([((t["label"], c["case_id"]), t["run_index"], c["duration_s"])
                      for t in targets if not t["cached"] for c in t["cases"] if c["status"] in _EXECUTED], n_runs)
    rows = [{"label": label, "case_id": case_id, **_trend(durations)} for (label, case_id), durations in series.items()]
    return sorted(rows, key=lambda r: (-r["mean"], r["label"], r["case_id"]))[:limit]


def budget_lines(data, top=10):
    """The last run against the one before it (report_data of 2 runs): wall and test time, and
    the `top` executed targets whose test time changed most."""
    runs = data["runs"]
    if len(runs) < 2:
        return [f"{len(runs)} run(s) recorded: nothing to compare yet"]
    before, last = runs[-2], runs[-1]
    lines = [f"CI wall time: {_delta(before['wall_seconds'], last['wall_seconds'])} "
             f"(runs {before['started_at']} -> {last['started_at']})",
             f"bazel test: {_delta(before['bazel_seconds'], last['bazel_seconds'])}"]
    per_run = [{}, {}]
    for target in data["slowest_targets_all"]:
        for index, seconds in enumerate(target["durations"][-2:]):
            if seconds is not None:
                per_run[index][target["label"]] = seconds
    changed = sorted((per_run[1][label] - per_run[0][label], label) for label in set(per_run[0]) & set(per_run[1]))
    changed.sort(key=lambda item: -abs(item[0]))
    lines.append(f"test time of the {len(changed)} targets run both times: "
                 f"{_delta(sum(per_run[0][l] for _, l in changed), sum(per_run[1][l] for _, l in changed))}")
    lines += [f"  {delta:+7.1f}s  {label}" for delta, label in changed[:top]]
    return lines


def _delta(before, after):
    if before is None or after is None:
        return f"{before}s -> {after}s"
    return f"{before:.0f}s -> {after:.0f}s ({after - before:+.0f}s, {100 * (after - before) / before:+.0f}%)" \
        if before else f"{before:.0f}s -> {after:.0f}s"


def durations(conn, runs=20):
    """{module: {case id: mean seconds}} over the last `runs` runs, of the modules that have a
    sharded target (the ones whose shards testing/launcher/plan.py balances): cases that ran to the
    end (passed, expected failures, flaky), not cached."""
    pks = [inv["pk"] for inv in invocations(conn, runs)]
    sharded = {r["test_module"] for r in conn.execute(
        sa.select(T.c.test_module).where(T.c.invocation_pk.in_(pks), T.c.shard_count > 1)).mappings()}
    rows = conn.execute(sa.select(T.c.test_module, C.c.case_id, C.c.duration_s)
                        .join(A, C.c.attempt_pk == A.c.id).join(T, A.c.target_pk == T.c.id)
                        .where(T.c.invocation_pk.in_(pks), T.c.test_module.in_(sorted(m for m in sharded if m)),
                               C.c.status.in_(("passed", "xfailed", "flaky")), A.c.cached.is_(False))).mappings()
    seen = collections.defaultdict(list)
    for r in rows:
        seen[(r["test_module"], r["case_id"])].append(float(r["duration_s"]))
    out = collections.defaultdict(dict)
    for (module, case), values in sorted(seen.items()):
        out[module][case] = round(sum(values) / len(values), 3)
    return dict(out)


def quarantine_passes(conn, entries, runs=5):
    """[(entry, [target labels])] of the quarantined cases that passed in each of the last
    `runs` recorded runs of every target they ran in (testing/launcher/quarantine.py's message
    says what the case did: "...; this run: passed")."""
    pks = [inv["pk"] for inv in invocations(conn, runs)]
    if len(pks) < runs:
        return []
    query = (sa.select(T.c.label, T.c.test_module, T.c.invocation_pk, C.c.case_id, C.c.message)
             .join(A, C.c.attempt_pk == A.c.id).join(T, A.c.target_pk == T.c.id)
             .where(T.c.invocation_pk.in_(pks), A.c.is_last.is_(True), C.c.message.like("quarantined: %")))
    outcomes = collections.defaultdict(dict)
    for r in conn.execute(query).mappings():
        outcomes[(r["test_module"], r["case_id"], r["label"])][r["invocation_pk"]] = \
            (r["message"] or "").endswith("this run: passed")
    found = []
    for entry in entries:
        labels = [label for (module, case, label), runs_ in outcomes.items()
                  if (module, case) == (entry["module"], entry["case"])
                  and len(runs_) == len(pks) and all(runs_.values())]
        if labels:
            found.append((entry, sorted(labels)))
    return found
