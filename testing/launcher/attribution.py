"""Attribution: what went wrong in a launch, and where. Turns a finished launch.Launch into
results: one per case, plus one per fixture, shutdown, crash or hang that went wrong, each
named after the unit (or the gap between units) where it happened, with ranks, exit codes or
signals, and stacks or log tails. A unit that failed keeps its artefacts (artifacts.py).

    collect(phase, launch)    adds the launch's results to `phase` (phase.Phase)
"""

import dataclasses
import os

from testing.launcher import artifacts
from testing.launcher.plan import Plan
from testing.launcher.protocol import CASE
from testing.launcher.protocol import FIXTURE
from testing.launcher.protocol import LAUNCHER
from testing.launcher.protocol import SHUTDOWN
from testing.launcher.protocol import Status
from testing.launcher.protocol import case_dir_name
from testing.launcher.verdict import Result
from testing.launcher.verdict import merge_unit


def collect(phase, launch):
    """Adds the results of `launch` to `phase`: its units, then what ended it badly."""
    view = launch.records
    if not view.all_planned():
        missing = sorted(rank for rank, plan in view.plans.items() if not plan)
        why = launch.kill_reason or f"rank(s) {missing} did not start ({launch.why_ranks_stopped(missing)})"
        phase.add(Result("launcher.launch", Status.ERROR, why, launch.evidence(missing), kind=LAUNCHER))
        return
    plans = view.plans
    if any(p["cases"] != plans[0]["cases"] for p in plans.values()):
        phase.add(Result("launcher.plan", Status.ERROR, "ranks planned different cases",
                         "\n".join(f"rank {rank}: {p['cases']}" for rank, p in sorted(plans.items())), kind=LAUNCHER))
        return
    if phase.plan is None:
        first = plans[0]
        phase.plan, phase.torch = Plan(list(first["cases"]), first["total"], first["matched"]), first.get("torch", {})
    interrupted = False
    for uid, unit in view.units.items():
        complete = len(unit.ends) == launch.world_size
        interrupted |= not complete
        result = merge_unit(uid, unit.ends, unit.kind) if complete else interrupted_unit(launch, uid, unit)
        if unit.kind == CASE or result.status.failing:
            result = _named(result)
            if result.status.failing:
                result = keep_artifacts(phase, launch, uid, unit, result)
            phase.add(result)
        if unit.kind == FIXTURE and uid.endswith(("setUpClass", "setUpModule")) and result.status is not Status.PASSED:
            block(phase, uid, result)
    if not interrupted:
        ended = after_units(launch)
        if ended:
            phase.add(ended)


def after_units(launch):
    """A rank that stopped between units (after its last record, before its next start), or ranks
    that recorded their end and then did not exit cleanly; None if all is well."""
    view, done = launch.records, launch.records.finished
    if len(done) < launch.world_size:
        missing = sorted(set(range(launch.world_size)) - done)
        after = ", ".join(sorted({str(view.last_unit(rank)) for rank in missing}))
        why = launch.kill_reason or launch.why_ranks_stopped(missing)
        return Result("launcher.between_units", Status.ERROR,
                      f"rank(s) {missing} stopped after {after}, before their next unit: {why}",
                      launch.evidence(missing), kind=LAUNCHER)
    if launch.returncode != 0:
        exits = launch.exits()
        why = launch.kill_reason or (f"the ranks' exit: {launch.why_ranks_stopped(sorted(exits))}" if exits
                                     else f"{launch.config.starter} exited with {launch.returncode}")
        return Result("launcher.exit", Status.ERROR, f"every rank recorded its end, then the launch failed: {why}",
                      launch.evidence(range(launch.world_size)), kind=LAUNCHER)
    return None


def interrupted_unit(launch, uid, unit):
    """The result of a unit that some ranks never finished (they crashed, hung or were killed)."""
    missing = sorted(set(range(launch.world_size)) - set(unit.ends))
    why = launch.kill_reason or f"rank(s) {missing} ended during {uid} ({launch.why_ranks_stopped(missing)})"
    failed = {rank: e for rank, e in unit.ends.items() if Status(e["status"]).failing}
    status = Status.ERROR
    if failed:
        # The others were stuck because of this failure (--failure_grace): it is the verdict.
        first = merge_unit(uid, failed)
        status, why = first.status, first.message + "; " + why
    last = launch.records.last_time or launch.started
    duration = max(launch.ended or last, last) - unit.first_start
    return Result(uid, status, why, why + "\n" + launch.evidence(missing, unit.ends), duration, unit.kind)


def keep_artifacts(phase, launch, uid, unit, result):
    """Keeps a failed unit's log slices and (a case) what it wrote; names them in its detail."""
    dest = os.path.join(phase.output_dir, "failures", case_dir_name(result.id))
    if os.path.exists(dest):  # the same id again (launcher.shutdown of a later launch)
        dest += f".{os.path.basename(launch.dir)}"
    logs = {rank: (launch.rank_file(rank, "log"), start.get("log", 0), unit.ends.get(rank, {}).get("log"))
            for rank, start in unit.starts.items()}
    scratch = os.path.join(phase.spec.scratch_dir, case_dir_name(uid)) if unit.kind == CASE else None
    try:
        artifacts.save(dest, result, logs, scratch, phase.artifacts_limit)
    except OSError as e:
        phase.log(f"warning: could not keep the failure artefacts of {result.id}: {e}")
        return result
    where = os.path.relpath(dest, phase.outputs_root)
    return dataclasses.replace(result, detail=(result.detail or result.message).rstrip("\n")
                               + f"\nfailure artefacts (rank logs, checkpoint): {where}/ in the outputs")


def block(phase, uid, fixture):
    """Cases a set-up fixture kept from running: skipped with its reason, or not run."""
    cls = uid.rpartition(".")[0]
    for case in phase.remaining():
        if cls and not case.startswith(cls + "."):
            continue
        if fixture.status is Status.SKIPPED:
            phase.add(Result(case, Status.SKIPPED, fixture.message))
        else:
            phase.add(Result(case, Status.ERROR, f"not run: {uid}: {fixture.message}"))


def _named(result):
    """Shutdown units are reported as launcher.shutdown (one per launch)."""
    if result.kind == SHUTDOWN:
        return dataclasses.replace(result, id="launcher.shutdown", kind=LAUNCHER)
    return result
