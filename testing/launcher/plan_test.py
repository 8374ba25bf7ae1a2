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
