"""Shards balanced by recorded durations against round-robin, on real sharded targets: the
slowest shard of each, both ways, side by side.

    python3 tools/shard_bench.py [--targets //dsd:checkpoint_migration_test_gpu2 ...] [--repeats 1]

Runs `./bazelw test --config=cpu --nocache_test_results` of the targets twice per repeat: as
committed (their shards balanced by testing/durations.json) and with `--test_arg=--durations=`
(no durations: round-robin). Prints per target each shard's time inside cases (from its XML)
and its wall time (timing.wall), and the slowest shard of each split. A benchmark to read, not
a timed test: nothing is asserted. Stdlib only.
"""

import argparse
import os
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools import overhead_bench  # noqa: E402

DEFAULT_TARGETS = ("//dsd:checkpoint_migration_test_gpu2", "//dsd:dsd_wrappers_test_gpu4")
SPLITS = {"balanced": [], "round-robin": ["--test_arg=--durations="]}


def shard_times(xml):
    """(seconds inside cases, wall seconds) of one shard's XML."""
    wall = next((float(p.get("value")) for p in ET.parse(xml).getroot().iter("property")
                 if p.get("name") == "timing.wall"), 0.0)
    return overhead_bench.case_seconds([xml]), wall


def run(targets, extra, events):
    return {label: sorted(shard_times(x) for x in t["xmls"] if os.path.exists(x))
            for label, t in overhead_bench.bazel_test(ROOT, [*extra, *targets], events).items()}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS))
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args(argv)
    best = {}
    for repeat in range(args.repeats):
        for split, extra in SPLITS.items():
            events = os.path.join(tempfile.mkdtemp(prefix=f"shard-bench-{split}-"), "events.json")
            for label, shards in run(args.targets, extra, events).items():
                slowest = max(shards, key=lambda s: s[1], default=(0.0, 0.0))
                if (label, split) not in best or slowest[1] < best[(label, split)][0][1]:
                    best[(label, split)] = (slowest, shards)
    print("| target | split | shards: cases / wall (s) | slowest shard wall (s) |\n|---|---|---|---|")
    for (label, split), (slowest, shards) in sorted(best.items()):
        cells = ", ".join(f"{c:.1f} / {w:.1f}" for c, w in shards)
        print(f"| `{label}` | {split} | {cells} | {slowest[1]:.1f} |")
    print(f"best of {args.repeats}; balanced by testing/durations.json, round-robin with --test_arg=--durations=")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
