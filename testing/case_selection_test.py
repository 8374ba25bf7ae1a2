"""Unit tests of case discovery order, --test_filter patterns and shard partitioning."""

import types
import unittest

from absl.testing import absltest
from absl.testing import parameterized

from testing import case_selection

IDS = ["A.test_x", "A.test_y", "B.test_x", "B.test_z_slow", "C.test_w"]


class MatchesTest(parameterized.TestCase):

    @parameterized.named_parameters(
        ("exact_id", "A.test_y", ["A.test_y"]),
        ("class", "B", ["B.test_x", "B.test_z_slow"]),
        ("method_name", "test_x", ["A.test_x", "B.test_x"]),
        ("glob", "*slow*", ["B.test_z_slow"]),
        ("several", "A.test_x,C.test_w", ["A.test_x", "C.test_w"]),
        ("space_separated", "A.test_x C", ["A.test_x", "C.test_w"]),
        ("exclusion_only", "-B", ["A.test_x", "A.test_y", "C.test_w"]),
        ("include_then_exclude", "B -*slow*", ["B.test_x"]),
        ("empty", "", IDS),
        ("no_match", "Nope", []),
    )
    def test_filter(self, spec, expected):
        patterns = case_selection.parse_filter(spec)
        self.assertEqual([c for c in IDS if case_selection.matches(c, patterns)], expected)

    def test_prefix_of_a_class_name_does_not_match(self):
        self.assertFalse(case_selection.matches("AB.test_x", ["A"]))


class SelectTest(parameterized.TestCase):

    @parameterized.parameters(1, 2, 3, 7)
    def test_shards_partition_the_cases(self, total):
        shards = [case_selection.select(IDS, (), i, total) for i in range(total)]
        flat = [c for s in shards for c in s]
        self.assertCountEqual(flat, IDS, "every case exactly once across shards")
        self.assertLessEqual(max(map(len, shards)) - min(map(len, shards)), 1, "balanced")

    def test_filter_applies_before_sharding(self):
        shards = [case_selection.select(IDS, ["B"], i, 2) for i in range(2)]
        self.assertEqual(shards, [["B.test_x"], ["B.test_z_slow"]])

    @parameterized.parameters((0, 0), (2, 2), (-1, 2))
    def test_bad_shard_raises(self, index, total):
        with self.assertRaises(ValueError):
            case_selection.select(IDS, (), index, total)


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
        self.assertEqual(list(case_selection.discover(module)),
                         ["Alpha.test_only", "Zeta.test_a", "Zeta.test_b"])


if __name__ == "__main__":
    absltest.main()
