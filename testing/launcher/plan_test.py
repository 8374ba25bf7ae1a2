"""Unit tests of case discovery order, test-filter patterns and shard partitioning."""

import types
import unittest

from absl.testing import absltest
from absl.testing import parameterized

from testing.launcher import plan

IDS = ["A.test_x", "A.test_y", "B.test_x", "B.test_z_slow", "C.test_w", "C.test_round_trip_even", "C.test_round_trip_odd"]


class MatchesTest(parameterized.TestCase):

    @parameterized.named_parameters(
        ("exact_id", "A.test_y", ["A.test_y"]),
        ("class", "B.", ["B.test_x", "B.test_z_slow"]),
        ("method_name", "test_x", ["A.test_x", "B.test_x"]),
        ("parameterized_variants", "test_round_trip", ["C.test_round_trip_even", "C.test_round_trip_odd"]),
        ("glob_is_anchored", "*slow", ["B.test_z_slow"]),
        ("glob_does_not_match_a_part", "test_*", []),
        ("several", "A.test_x,C.test_w", ["A.test_x", "C.test_w"]),
        ("space_separated", "A.test_x C.test_w", ["A.test_x", "C.test_w"]),
        ("exclusion_only", "-B.", ["A.test_x", "A.test_y", "C.test_w", "C.test_round_trip_even", "C.test_round_trip_odd"]),
        ("include_then_exclude", "B. -*slow*", ["B.test_x"]),
        ("empty", "", IDS),
        ("no_match", "Nope", []),
    )
    def test_filter(self, spec, expected):
        patterns = plan.parse_filter(spec)
        self.assertEqual([c for c in IDS if plan.matches(c, patterns)], expected)


class BalancedShardsTest(absltest.TestCase):

    DURATIONS = {"A.test_x": 10.0, "A.test_y": 1.0, "B.test_x": 9.0, "B.test_z_slow": 30.0, "C.test_w": 2.0,
                 "C.test_round_trip_even": 3.0}  # C.test_round_trip_odd: no record (the median, 6.0)

    def test_the_longest_case_first_onto_the_least_loaded_shard(self):
        shards = plan.balanced(IDS, 2, self.DURATIONS)
        self.assertEqual(shards, [["B.test_z_slow", "A.test_y"],  # 30 + 1; the tie at 30 goes to the lower shard
                                  ["A.test_x", "B.test_x", "C.test_round_trip_odd", "C.test_round_trip_even", "C.test_w"]])

    def test_a_balanced_plan_partitions_the_cases_and_keeps_discovery_order(self):
        shards = [plan.plan(IDS, "", i, 3, self.DURATIONS).cases for i in range(3)]
        self.assertCountEqual([c for s in shards for c in s], IDS)
        for cases in shards:
            self.assertEqual(cases, [c for c in IDS if c in cases], "discovery order within a shard")
        loads = [sum(self.DURATIONS.get(c, 6.0) for c in cases) for cases in shards]
        round_robin = [sum(self.DURATIONS.get(c, 6.0) for c in plan.plan(IDS, "", i, 3).cases) for i in range(3)]
        self.assertLess(max(loads), max(round_robin), "the slowest shard is faster than round-robin's")

    def test_durations_come_from_the_file_per_module(self):
        path = self.create_tempfile(content='{"modules": {"dsd.m": {"A.t": 2.5}}}').full_path
        self.assertEqual(plan.load_durations(path, "dsd.m"), {"A.t": 2.5})
        self.assertEqual(plan.load_durations(path, "dsd.other"), {})
        self.assertEqual(plan.load_durations("", "dsd.m"), {})


class PlanTest(parameterized.TestCase):

    @parameterized.parameters(1, 2, 3, 7, 9)
    def test_shards_partition_the_cases(self, total):
        shards = [plan.plan(IDS, "", i, total).cases for i in range(total)]
        flat = [c for s in shards for c in s]
        self.assertCountEqual(flat, IDS, "every case exactly once across shards")
        self.assertLessEqual(max(map(len, shards)) - min(map(len, shards)), 1, "balanced")

    def test_filter_applies_before_sharding_and_counts_are_kept(self):
        shards = [plan.plan(IDS, "B.", i, 2) for i in range(2)]
        self.assertEqual([s.cases for s in shards], [["B.test_x"], ["B.test_z_slow"]])
        self.assertEqual({(s.total, s.matched) for s in shards}, {(len(IDS), 2)})

    @parameterized.parameters((0, 0), (2, 2), (-1, 2))
    def test_bad_shard_raises(self, index, total):
        with self.assertRaises(ValueError):
            plan.plan(IDS, "", index, total)


class DiscoverTest(absltest.TestCase):

    def test_sorted_by_class_then_method_and_only_this_module(self):
        module = types.ModuleType("fixture_module")

        class Zeta(unittest.TestCase):
            def test_b(self):
                pass

            def test_a(self):
                pass

        class Alpha(unittest.TestCase):
            def test_only(self):
                pass

        class _Helper(unittest.TestCase):
            def test_hidden(self):
                pass

        for cls in (Zeta, Alpha, _Helper):
            cls.__module__ = module.__name__
            setattr(module, cls.__name__, cls)
        module.Imported = absltest.TestCase  # defined elsewhere: not collected
        self.assertEqual(list(plan.discover(module)),
                         ["Alpha.test_only", "Zeta.test_a", "Zeta.test_b"])


if __name__ == "__main__":
    absltest.main()
