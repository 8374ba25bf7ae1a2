"""Which cases a launch runs: discovery order, the test filter, and Bazel's sharding.

One function, plan(), serves the launcher's --list and every rank (all ranks must compute the
same plan). Filter semantics are those of absltest / pytest -k: a plain word selects every case
id containing it (so `test_round_trip` selects its parameterized variants), a pattern with
*, ? or [ is a glob over the whole id, and a leading '-' excludes.

Shards are balanced by the cases' recorded durations when a durations file is given
(testing/durations.json, regenerated from the run history by `python -m tools.history
durations --write`): the longest case first onto the least loaded shard, a case without a
record counted at the median of the recorded ones. The split is a function of the file and the
case list alone, so it is the same on every rank and under the same cache key.
"""

import dataclasses
import fnmatch
import json
import statistics
import unittest

_GLOB = set("*?[")


@dataclasses.dataclass
class Plan:
    cases: list      # this shard's case ids, in run order
    total: int       # cases the module defines
    matched: int     # cases the filter selects, over all shards


def discover(module):
    """All test cases of `module`, as {case_id: TestCase}, in a deterministic order.

    By class name, then method name (unittest's loader order), so every rank and every shard
    sees the same sequence. case_id is "Class.method". Classes imported from other modules and
    classes whose name starts with "_" (helpers, fixtures) are not collected.
    """
    loader = unittest.TestLoader()
    classes = sorted(
        (obj for obj in vars(module).values()
         if isinstance(obj, type) and issubclass(obj, unittest.TestCase)
         and obj.__module__ == module.__name__ and not obj.__name__.startswith("_")),
        key=lambda cls: cls.__name__,
    )
    return {f"{cls.__name__}.{name}": cls(name) for cls in classes for name in loader.getTestCaseNames(cls)}


def parse_filter(spec):
    """Patterns of a --test_filter / TESTBRIDGE_TEST_ONLY value (',' or space separated)."""
    return [p for p in (spec or "").replace(",", " ").split() if p]


def _hit(case_id, pattern):
    if _GLOB & set(pattern):
        return fnmatch.fnmatchcase(case_id, pattern)
    return pattern in case_id


def matches(case_id, patterns):
    """True if some include pattern selects `case_id` (or there are none) and no exclusion does."""
    include = [p for p in patterns if not p.startswith("-")]
    exclude = [p[1:] for p in patterns if p.startswith("-")]
    if any(_hit(case_id, p) for p in exclude):
        return False
    return not include or any(_hit(case_id, p) for p in include)


def plan(case_ids, test_filter="", shard_index=0, total_shards=1, durations=None):
    """Filters, then takes this shard's cases: balanced by `durations` ({case id: seconds}) when
    given, else round-robin; each shard keeps discovery order (a class's cases stay together)."""
    if total_shards < 1 or not 0 <= shard_index < total_shards:
        raise ValueError(f"bad shard {shard_index} of {total_shards}")
    patterns = parse_filter(test_filter)
    chosen = [c for c in case_ids if matches(c, patterns)]
    if durations:
        mine = set(balanced(chosen, total_shards, durations)[shard_index])
        return Plan([c for c in chosen if c in mine], len(case_ids), len(chosen))
    return Plan([c for i, c in enumerate(chosen) if i % total_shards == shard_index], len(case_ids), len(chosen))


def balanced(case_ids, total_shards, durations):
    """[[case id] per shard]: the longest first onto the least loaded shard (ties: the lower
    shard, then discovery order), unknown cases at the median recorded duration."""
    default = statistics.median(durations.values())
    loads, shards = [0.0] * total_shards, [[] for _ in range(total_shards)]
    order = sorted(range(len(case_ids)), key=lambda i: (-durations.get(case_ids[i], default), i))
    for i in order:
        target = min(range(total_shards), key=lambda s: (loads[s], s))
        shards[target].append(case_ids[i])
        loads[target] += durations.get(case_ids[i], default)
    return shards


def load_durations(path, module):
    """{case id: seconds} recorded for `module` in the durations file at `path` ({} if none)."""
    if not path:
        return {}
    with open(path) as f:
        return {case: float(seconds) for case, seconds in json.load(f).get("modules", {}).get(module, {}).items()}
