"""The watchdog: whether a launch must end now, from its records and the clock alone.

    reason = check(view, now, limits, started, deadline)     # None: let it run

Pure (no processes, no files), so every bound is unit-tested with hand-made records
(watchdog_test.py). `view` is a records.LaunchRecords (or anything with its attributes).
Every moment of a rank's life is bounded: start-up until its plan, each case, each fixture, the
process-group shutdown, the idle time between units and the exit after its last record; a rank
that failed a unit while the others stay in it is given --failure_grace (they are likely stuck
in a collective the failed rank never joined).
"""

import dataclasses

from testing.launcher.protocol import CASE
from testing.launcher.protocol import FIXTURE
from testing.launcher.protocol import SHUTDOWN
from testing.launcher.protocol import Status


@dataclasses.dataclass
class Limits:
    """Seconds each moment of a launch may take (launcher flags of the same names)."""

    startup_timeout: float = 300.0
    case_timeout: float = 120.0
    fixture_timeout: float = 120.0
    shutdown_timeout: float = 60.0
    exit_timeout: float = 30.0
    idle_timeout: float = 60.0
    straggler_timeout: float = 120.0
    failure_grace: float = 10.0

    def for_kind(self, kind):
        return {CASE: ("case_timeout", self.case_timeout), FIXTURE: ("fixture_timeout", self.fixture_timeout),
                SHUTDOWN: ("shutdown_timeout", self.shutdown_timeout)}[kind]


def check(view, now, limits, started, deadline=None):
    """A reason to end the launch now, or None. `deadline`: (time, what) of the target's limit."""
    if deadline and now > deadline[0]:
        return f"the target reached its time limit ({deadline[1]})"
    if not view.all_planned():
        if now - started > limits.startup_timeout:
            late = sorted(rank for rank, plan in view.plans.items() if not plan)
            return (f"rank(s) {late} did not start within {limits.startup_timeout:.0f}s (--startup_timeout): "
                    "stuck importing the test module or in init_process_group?")
        return None
    open_units = view.open_units()
    for uid, unit in open_units.items():
        reason = _unit_overdue(uid, unit, now, limits)
        if reason:
            return reason
    if open_units:
        return None
    return _between_or_after(view, now, limits, started)


def _unit_overdue(uid, unit, now, limits):
    flag, limit = limits.for_kind(unit.kind)
    if now - unit.first_start > limit:
        return f"{uid} timed out after {limit:.0f}s (--{flag})"
    if not unit.ends:
        return None
    last_end = max(e["t"] for e in unit.ends.values())
    failed = sorted(rank for rank, e in unit.ends.items() if Status(e["status"]).failing)
    if failed and now - last_end > limits.failure_grace:
        return (f"rank(s) {failed} failed {uid} and the other ranks did not finish it within "
                f"{limits.failure_grace:.0f}s (--failure_grace): stuck in a collective?")
    if now - last_end > limits.straggler_timeout:
        return (f"rank(s) {sorted(unit.ends)} finished {uid} but the others did not within "
                f"{limits.straggler_timeout:.0f}s (--straggler_timeout)")
    return None


def _between_or_after(view, now, limits, started):
    """No unit is open: every rank is between units, or has recorded its end and must exit."""
    last = view.last_time or started
    if len(view.finished) == view.world_size:
        if now - last > limits.exit_timeout:
            return (f"every rank recorded its end but the processes did not exit within "
                    f"{limits.exit_timeout:.0f}s (--exit_timeout)")
        return None
    if now - last > limits.idle_timeout:
        idle = sorted(set(range(view.world_size)) - view.finished)
        return (f"rank(s) {idle} recorded nothing for {limits.idle_timeout:.0f}s (--idle_timeout) after "
                f"{', '.join(sorted({str(view.last_unit(rank)) for rank in idle}))}")
    return None
