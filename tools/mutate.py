"""Mutation testing of the scenario suite: does it notice when DCP/DSD are silently wrong?

    python3 tools/mutate.py                      every mutation against the gpu2 suite
    python3 tools/mutate.py --mutations a,b --targets //dsd:reshard_test --tag_filters=
    python3 tools/mutate.py --list

For each mutation of tools/mutations/catalog.py it runs `./bazelw test` on the targets with
DSD_MUTATION set and tools/mutations on the tests' PYTHONPATH (its sitecustomize applies the
mutation inside rank processes only), results never taken from or counted as the normal
cache (the mutation is part of the test environment, and --nocache_test_results). A mutation
is killed when at least one target fails. First a run without a mutation must be green.
Prints a table; exit status 1 if any mutation survived. Stdlib only.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTATIONS_DIR = os.path.join(ROOT, "tools", "mutations")
sys.path.insert(0, ROOT)
from tools import xml_summary  # noqa: E402


def catalog():
    spec = importlib.util.spec_from_file_location("catalog", os.path.join(MUTATIONS_DIR, "catalog.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTATIONS


def run_suite(targets, tag_filters, events, mutation=None):
    """(seconds, {label: status}) of one `bazel test` run."""
    cmd = [os.path.join(ROOT, "bazelw"), "test", *targets, "--config=cpu", "--keep_going", "--test_runner_fail_fast",
           f"--test_tag_filters={tag_filters}", f"--build_event_json_file={events}", "--test_output=summary"]
    if mutation:
        cmd += ["--nocache_test_results", f"--test_env=DSD_MUTATION={mutation}",
                f"--test_env=PYTHONPATH={MUTATIONS_DIR}"]
    started = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started, {label: t["status"] for label, t in xml_summary.read_events(events).items()}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default="//dsd/...", help="space-separated target patterns")
    p.add_argument("--tag_filters", default="gpu2", help="--test_tag_filters of every run (default: the gpu2 suite)")
    p.add_argument("--mutations", default="", help="comma-separated names (default: all)")
    p.add_argument("--list", action="store_true")
    args = p.parse_args(argv)
    mutations = catalog()
    if args.list:
        for name, fn in mutations.items():
            print(f"{name:38} {fn.__doc__.strip()}")
        return 0
    chosen = [m for m in args.mutations.split(",") if m] or list(mutations)
    targets = args.targets.split()
    tmp = tempfile.mkdtemp(prefix="dsd-mutate-")
    seconds, baseline = run_suite(targets, args.tag_filters, os.path.join(tmp, "baseline.json"))
    red = sorted(label for label, status in baseline.items() if status not in ("PASSED", "FLAKY"))
    print(f"baseline: {len(baseline)} targets, {len(red)} not passing ({seconds:.0f}s)")
    if red or not baseline:
        print("the suite must be green without a mutation first: " + ", ".join(red or ["no targets"]))
        return 1
    rows = []
    for name in chosen:
        seconds, statuses = run_suite(targets, args.tag_filters, os.path.join(tmp, f"{name}.json"), name)
        failed = sorted(label for label, status in statuses.items() if status not in ("PASSED", "FLAKY"))
        rows.append((name, failed, seconds))
        print(f"{name:38} {'killed' if failed else 'SURVIVED':8} {len(failed):3} of {len(statuses)} targets failed "
              f"({seconds:.0f}s): {', '.join(f.split(':')[-1] for f in failed[:6])}{' ...' if len(failed) > 6 else ''}",
              flush=True)
    killed = sum(1 for _, failed, _ in rows if failed)
    print(f"\nmutation score: {killed}/{len(rows)} killed")
    print("\n| mutation | what it breaks | targets failed |\n| --- | --- | --- |")
    for name, failed, _ in rows:
        print(f"| `{name}` | {' '.join(mutations[name].__doc__.split())} | {len(failed)} of {len(baseline)} |")
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
