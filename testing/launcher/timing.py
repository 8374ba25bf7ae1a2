"""Where a target's time goes, from the launcher's and the ranks' own timestamps: a breakdown in
seconds, written into the XML's properties (timing.<part>) and summarised by tools/xml_summary.py.

  starter       from starting a launch until its first rank process exists (torchrun's agent,
                or the rank group importing torch before it forks the ranks)
  imports       rank processes up to torch, the launcher and the test module imported
  rendezvous    init_process_group on every rank
  discovery     the case plan (discovery, filter, sharding) on every rank
  cases         inside test cases (each case's slowest rank)
  fixtures      inside setUpModule/setUpClass/tearDown*
  units         between units: the ranks agreeing on each outcome, records
  teardown      from the last unit to the last rank's exit: destroy_process_group and the
                interpreter's teardown
  environment   checking the environment against its description, beyond the launch it overlaps
  between       between phases (and relaunches)
  launcher      everything else: Bazel's test runner and the launcher's own start, the device
                choice, the XML
  overhead      all but cases and fixtures
"""

import collections

from testing.launcher import starters
from testing.launcher.protocol import CASE
from testing.launcher.protocol import FIXTURE

PARTS = ("starter", "imports", "rendezvous", "discovery", "cases", "fixtures", "units", "teardown", "environment",
         "between", "launcher")


def launch_parts(launch):
    """{part: seconds} of one finished launch (parts it never reached are absent)."""
    plans = [p for p in launch.records.plans.values() if p]
    if not plans or "started" not in plans[0]:
        return {"starter": (launch.ended or launch.started) - launch.started}
    first_start = min(p["started"] for p in plans)
    parts = {"starter": max(0.0, first_start - launch.started),
             "imports": max(p["imported"] for p in plans) - first_start,
             "rendezvous": max(p["connected"] for p in plans) - max(p["imported"] for p in plans),
             "discovery": max(p["t"] for p in plans) - max(p["connected"] for p in plans)}
    units = [u for u in launch.records.units.values() if u.ends]
    spans = collections.Counter()
    for unit in units:
        spans[unit.kind] += max(e.get("duration", 0.0) for e in unit.ends.values())
    parts["cases"], parts["fixtures"] = spans[CASE], spans[FIXTURE]
    work_end = max([e["t"] for u in units if u.kind in (CASE, FIXTURE) for e in u.ends.values()] or
                   [max(p["t"] for p in plans)])
    parts["units"] = max(0.0, work_end - max(p["t"] for p in plans) - parts["cases"] - parts["fixtures"])
    parts["teardown"] = max(0.0, _exited(launch) - work_end)
    return parts


def _exited(launch):
    """When the last rank exited (the rank group's report), else when the launch ended."""
    ended = [r.get("ended") for r in starters.read_report(launch.dir).get("ranks", {}).values()]
    return max(ended) if ended and all(ended) else launch.ended


def breakdown(process_started, finished, phases, environment_checks):
    """{part: seconds} of a whole target: its phases' launches, the environment checks' exposed
    time ([(started, ended, overlapped launch end)]), the gaps between launches, and the rest."""
    parts = collections.Counter()
    launches = [launch for phase in phases for launch in phase.launches if launch.ended]
    for launch in launches:
        parts.update(launch_parts(launch))
    for started, ended, launch_end in environment_checks:
        parts["environment"] += max(0.0, ended - max(started, launch_end or started))
    for before, after in zip(launches, launches[1:]):
        parts["between"] += max(0.0, after.started - before.ended)
    wall = finished - process_started
    parts["launcher"] = max(0.0, wall - sum(parts.values()))
    out = {part: round(parts.get(part, 0.0), 3) for part in PARTS}
    out["wall"] = round(wall, 3)
    out["overhead"] = round(wall - out["cases"] - out["fixtures"], 3)
    return out


def properties(parts):
    return {f"timing.{part}": f"{seconds:.2f}" for part, seconds in parts.items()}
