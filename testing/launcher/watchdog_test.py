"""Unit tests of the watchdog, with hand-made records and a hand-set clock (no processes)."""

from absl.testing import absltest
from absl.testing import parameterized

from testing.launcher import watchdog
from testing.launcher.protocol import CASE
from testing.launcher.protocol import FIXTURE
from testing.launcher.protocol import SHUTDOWN
from testing.launcher.records import Unit

LIMITS = watchdog.Limits(startup_timeout=30, case_timeout=20, fixture_timeout=15, shutdown_timeout=10,
                         exit_timeout=5, idle_timeout=8, straggler_timeout=12, failure_grace=3)


class View:
    """What watchdog.check reads of records.LaunchRecords, set by hand."""

    def __init__(self, world_size=2, planned=True):
        self.world_size = world_size
        self.plans = {r: ({"t": 0.0} if planned else None) for r in range(world_size)}
        self.units, self.finished, self.last_end, self.last_time = {}, set(), {}, 0.0

    def all_planned(self):
        return all(self.plans.values())

    def open_units(self):
        return {uid: u for uid, u in self.units.items() if len(u.ends) < self.world_size}

    def last_unit(self, rank):
        return self.last_end.get(rank)

    def unit(self, uid, kind, started, ends=()):
        unit = Unit(kind)
        unit.starts = {r: {"t": started} for r in range(self.world_size)}
        unit.ends = {r: {"t": t, "status": status} for r, t, status in ends}
        self.units[uid] = unit
        for r, t, _ in ends:
            self.last_end[r] = uid
            self.last_time = max(self.last_time, t)
        self.last_time = max(self.last_time, started)
        return self


class CheckTest(parameterized.TestCase):

    def check(self, view, now, deadline=None):
        return watchdog.check(view, now, LIMITS, started=0.0, deadline=deadline)

    def test_the_target_deadline_comes_first(self):
        self.assertIn("time limit (TEST_TIMEOUT)", self.check(View(), 10, deadline=(5, "TEST_TIMEOUT")))

    def test_ranks_that_never_plan_time_out_at_start_up(self):
        view = View(planned=False)
        view.plans[0] = {"t": 1.0}
        self.assertIsNone(self.check(view, 29))
        self.assertEqual(self.check(view, 31), "rank(s) [1] did not start within 30s (--startup_timeout): stuck "
                                               "importing the test module or in init_process_group?")

    @parameterized.named_parameters(("case", CASE, 20, "case_timeout"), ("fixture", FIXTURE, 15, "fixture_timeout"),
                                    ("shutdown", SHUTDOWN, 10, "shutdown_timeout"))
    def test_each_kind_of_unit_has_its_own_limit(self, kind, limit, flag):
        view = View().unit("A.u", kind, started=100.0)
        self.assertIsNone(self.check(view, 100 + limit - 0.5))
        self.assertEqual(self.check(view, 100 + limit + 0.5), f"A.u timed out after {limit}s (--{flag})")

    def test_a_rank_that_failed_gives_the_others_a_grace_period(self):
        view = View().unit("A.t", CASE, started=100.0, ends=[(1, 101.0, "failed")])
        self.assertIsNone(self.check(view, 103.5))
        self.assertIn("rank(s) [1] failed A.t and the other ranks did not finish it within 3s (--failure_grace)",
                      self.check(view, 104.5))

    def test_a_straggler_is_bounded_after_the_others_passed(self):
        view = View().unit("A.t", CASE, started=100.0, ends=[(0, 101.0, "passed")])
        self.assertIsNone(self.check(view, 112.5))
        self.assertIn("(--straggler_timeout)", watchdog.check(view, 113.5, watchdog.Limits(
            case_timeout=60, straggler_timeout=12), started=0.0))

    def test_idle_between_units(self):
        view = View().unit("A.t", CASE, started=100.0, ends=[(0, 101.0, "passed"), (1, 101.0, "passed")])
        self.assertIsNone(self.check(view, 108.5))
        self.assertEqual(self.check(view, 109.5), "rank(s) [0, 1] recorded nothing for 8s (--idle_timeout) after A.t")

    def test_ranks_that_recorded_their_end_must_exit(self):
        view = View().unit("A.t", CASE, started=100.0, ends=[(0, 101.0, "passed"), (1, 101.0, "passed")])
        view.finished = {0, 1}
        self.assertIsNone(self.check(view, 105.5))
        self.assertIn("did not exit within 5s (--exit_timeout)", self.check(view, 106.5))


if __name__ == "__main__":
    absltest.main()
