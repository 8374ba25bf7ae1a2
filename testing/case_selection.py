"""Which test cases a launch runs: discovery order, --test_filter, and Bazel sharding.

Pure functions, shared by every rank (each rank must compute the same plan) and unit-tested
in case_selection_test.py.
"""

import fnmatch
import unittest


def discover(module):
    """All test cases of `module`, as {case_id: TestCase}, in a deterministic order.

    The order is by class name, then method name (unittest's loader order), so every rank and
    every shard sees the same sequence. case_id is "Class.method". Classes imported from other
    modules and classes whose name starts with "_" (helpers, fixtures) are not collected.
    """
    loader = unittest.TestLoader()
    cases = {}
    classes = sorted(
        (obj for obj in vars(module).values()
         if isinstance(obj, type) and issubclass(obj, unittest.TestCase)
         and obj.__module__ == module.__name__ and not obj.__name__.startswith("_")),
        key=lambda cls: cls.__name__,
    )
    for cls in classes:
        for name in loader.getTestCaseNames(cls):
            cases[f"{cls.__name__}.{name}"] = cls(name)
    return cases


def parse_filter(spec):
    """Splits a --test_filter / TESTBRIDGE_TEST_ONLY value into patterns (',' or space separated)."""
    if not spec:
        return []
    return [p for p in spec.replace(",", " ").split() if p]


def matches(case_id, patterns):
    """True if `case_id` is selected by any pattern: exact id, its class, a method name, or a glob.

    A leading '-' excludes (e.g. "-*slow*"); a filter of only exclusions keeps the rest.
    """
    include = [p for p in patterns if not p.startswith("-")]
    exclude = [p[1:] for p in patterns if p.startswith("-")]

    def hit(pattern):
        cls, _, method = case_id.partition(".")
        return (case_id == pattern or cls == pattern or method == pattern
                or fnmatch.fnmatchcase(case_id, pattern))

    if any(hit(p) for p in exclude):
        return False
    return not include or any(hit(p) for p in include)


def select(case_ids, patterns=(), shard_index=0, total_shards=1):
    """Filters, then takes this shard's cases round-robin (shards partition the filtered list)."""
    if total_shards < 1 or not 0 <= shard_index < total_shards:
        raise ValueError(f"bad shard {shard_index} of {total_shards}")
    chosen = [c for c in case_ids if matches(c, patterns)]
    return [c for i, c in enumerate(chosen) if i % total_shards == shard_index]
