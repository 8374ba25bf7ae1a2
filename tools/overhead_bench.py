"""Per-target overhead of two launchers, side by side in one run: this checkout's and another
commit's (default: the commit before the launcher was split and torchrun left the CPU path).

    python3 tools/overhead_bench.py [--base 2b55f0d] [--head HEAD] [--targets //dsd/...] [--repeats 1]

Runs `./bazelw test --config=cpu --nocache_test_results` of the same targets in a git worktree of
the base commit and in this checkout (or a worktree of --head, so that the checkout can change
meanwhile), alternately, on this machine, and prints per target the
overhead = the test action's duration (the build event file's testAttemptDurationMillis) minus
the time inside its cases (the JUnit XML's case times), beside the action's whole time (a cost that
moves from a case into start-up shows in both), with medians and sums over targets. Nothing is
asserted: speed goals live in benchmarks like this one, not in timed tests. Stdlib only.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools import xml_summary  # noqa: E402


def worktree(base):
    cache = os.environ.get("DSD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dsd-bazel")
    commit = subprocess.run(["git", "rev-parse", "--short", base], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    path = os.path.join(cache, "overhead-bench", commit)
    if not os.path.isdir(path):
        subprocess.run(["git", "worktree", "add", "--detach", path, commit], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return path


def case_seconds(xml_paths):
    return sum(float(case.get("time", 0)) for path in xml_paths if os.path.exists(path)
               for case in ET.parse(path).getroot().iter("testcase"))


def bazel_test(tree, args, events):
    """xml_summary.read_events of one `bazel test --config=cpu --nocache_test_results` of `args` in
    `tree`, its build event file written to `events` (the benchmarks' shared run)."""
    cmd = [os.path.join(tree, "bazelw"), "test", "--config=cpu", "--nocache_test_results", "--keep_going",
           f"--build_event_json_file={events}", *args]
    subprocess.run(cmd, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return xml_summary.read_events(events)


def run(tree, targets, events):
    """{label: (action seconds, seconds inside cases)} of one `bazel test` in `tree`."""
    return {label: (t["seconds"], case_seconds(t["xmls"]))
            for label, t in bazel_test(tree, ["--local_test_jobs=2", *targets], events).items() if t["status"] == "PASSED"}


def overhead_and_whole(action):
    """(overhead, whole) seconds of one target's (action seconds, seconds inside cases)."""
    whole, cases = action
    return whole - cases, whole


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="2b55f0d", help="the other launcher's commit")
    p.add_argument("--head", default="", help="a commit to measure instead of this checkout")
    p.add_argument("--targets", default="//dsd/...", help="space-separated target patterns")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args(argv)
    trees = {"base " + args.base: worktree(args.base),
             ("head " + args.head if args.head else "this checkout"): worktree(args.head) if args.head else ROOT}
    runs = {name: [] for name in trees}
    for repeat in range(args.repeats):
        for name, tree in trees.items():
            events = os.path.join(tempfile.mkdtemp(prefix="overhead-bench-"), "events.json")
            runs[name].append(run(tree, args.targets.split(), events))
    labels = sorted(set.intersection(*(set(r) for rs in runs.values() for r in rs)))
    best = {name: {label: overhead_and_whole(min(r[label] for r in rs)) for label in labels}
            for name, rs in runs.items()}
    names = list(trees)
    print(f"| target | {' | '.join(f'{n}: overhead / whole (s)' for n in names)} |\n|---|" + "---|" * len(names))
    for label in labels:
        print(f"| `{label}` | " + " | ".join("{:.1f} / {:.1f}".format(*best[n][label]) for n in names) + " |")
    for what, agg, fmt in (("median", statistics.median, "{:.1f}"), ("sum", sum, "{:.0f}")):
        print(f"| **{what}** | " + " | ".join(
            "**" + " / ".join(fmt.format(agg([pair[i] for pair in best[n].values()])) for i in (0, 1)) + "**"
            for n in names) + " |")
    print(f"{len(labels)} targets passing in every run; whole = the test action's time, overhead = whole - time "
          f"inside cases (the run with the shortest action, of {args.repeats}); machine: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
