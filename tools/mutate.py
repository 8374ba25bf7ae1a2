"""Mutation testing of the scenario suite: does it notice when DCP/DSD are silently wrong?

    python3 tools/mutate.py                      every mutation against the gpu2 suite
    python3 tools/mutate.py --write              ... and record the score (tools/mutations/score.json)
                                                 and its table in README.md
    python3 tools/mutate.py --mutations a,b --targets //dsd:reshard_test --tag_filters=
    python3 tools/mutate.py --list

Each run is `./bazelw test` of the targets with tools/mutations on the tests' PYTHONPATH and
DSD_MUTATION set (its sitecustomize applies the mutation in the ranks; tools/mutations/catalog.py),
--nocache_test_results, so results never come from or go to the normal cache. First a control
run with the harness on and DSD_MUTATION=none must be green. A mutation is killed by a case
that fails (FAILED or ERROR) in its run while it passed in the control, with a failure that is
not the harness's: cases reported `not run: ...`, launcher entries (start-up, environment,
exits) and fixtures do not count, nor a failure raised by the mutation's own code (its traceback
runs through tools/mutations/catalog.py), nor a known-bug mark that now fails (those cases did
not pass in the control). Bazel's output and build event file of every run are kept in --out.
Exit status 1 if any mutation survived; 2 for an unknown mutation name. Stdlib only.
"""

import argparse
import datetime
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTATIONS_DIR = os.path.join(ROOT, "tools", "mutations")
SCORE = os.path.join(MUTATIONS_DIR, "score.json")
sys.path.insert(0, ROOT)
from tools import readme  # noqa: E402
from tools import xml_summary  # noqa: E402

PASSING = ("passed",)
MUTATIONS_FRAME = os.path.join("tools", "mutations", "catalog.py")  # in a traceback: the patch raised
FAILING = ("failed", "errors")


def catalog():
    spec = importlib.util.spec_from_file_location("catalog", os.path.join(MUTATIONS_DIR, "catalog.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def case_results(xml_paths):
    """{case id: (status, first line of the message)} of the test cases in a target's XMLs."""
    results = {}
    for path in xml_paths:
        if not os.path.exists(path):
            continue
        for case in ET.parse(path).getroot().iter("testcase"):
            cls = case.get("classname", "").rpartition(".")[2]
            element = next((el for el in case if el.tag in ("failure", "error", "skipped")), None)
            message = (element.get("message", "") if element is not None else "").strip().splitlines()
            why = message[0] if message else ""
            if element is not None and MUTATIONS_FRAME in (element.text or ""):
                why = "not run: the mutation itself raised: " + why  # the harness's failure, not the suite's
            results[f"{cls}.{case.get('name')}"] = (xml_summary.case_status(case), why)
    return results


def run_suite(args, out_dir, mutation):
    """{"seconds", "targets": {label: {"status", "cases": {id: (status, why)}}}} of one run."""
    events = os.path.join(out_dir, f"{mutation}.events.json")
    cmd = [os.path.join(ROOT, "bazelw"), "test", *args.targets.split(), "--config=cpu", "--keep_going",
           "--test_runner_fail_fast", f"--test_tag_filters={args.tag_filters}", f"--build_event_json_file={events}",
           "--test_output=summary", "--nocache_test_results", f"--test_env=DSD_MUTATION={mutation}",
           f"--test_env=PYTHONPATH={MUTATIONS_DIR}"]
    started = time.monotonic()
    with open(os.path.join(out_dir, f"{mutation}.bazel.log"), "w") as log:
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    events = xml_summary.read_events(events)
    targets = {label: {"status": t["status"], "cases": case_results(t["xmls"])} for label, t in events.items()}
    return {"seconds": round(time.monotonic() - started, 1), "targets": targets,
            "torch": sorted({v for t in events.values() for v in xml_properties(t["xmls"], "torch.version")})}


def xml_properties(xml_paths, name):
    """The values of property `name` in a target's XMLs."""
    return [prop.get("value") for path in xml_paths if os.path.exists(path)
            for prop in ET.parse(path).getroot().iter("property") if prop.get("name") == name]


def kills(control, run):
    """[(target, case, why)] of the cases the mutation killed (see the module docstring)."""
    found = []
    for label, target in sorted(run["targets"].items()):
        before = control["targets"].get(label, {}).get("cases", {})
        for case, (status, why) in sorted(target["cases"].items()):
            harness = case.startswith("launcher.") or why.startswith("not run:") or ".test" not in "." + case
            if status in FAILING and before.get(case, ("",))[0] in PASSING and not harness:
                found.append((label, case, why))
    return found


def suite_fingerprint(targets):
    """The suite a score was measured on: its targets and their case ids (sha256, 16 hex)."""
    lines = sorted(f"{label} {case}" for label, t in targets.items() for case in t["cases"])
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def render(score):
    """The README's mutation section from a score (tools/catalogue.py checks README against it)."""
    rows = score["mutations"]
    killed = sum(1 for row in rows if row["kills"])
    lines = [f"Last run: {killed} of {len(rows)} mutations killed (torch {score['torch']}, gpu2 suite of "
             f"{score['targets']} targets and {score['cases']} cases, suite {score['suite']}, at commit "
             f"{score['commit']}, {score['minutes']} min on 2 cores; control run green in {score['control_seconds']}s):",
             "", "| mutation | what it breaks | killed by (first failing case per target, and why) |",
             "| --- | --- | --- |"]
    for row in rows:
        cases = "; ".join(f"`{t.split(':')[-1]}` {c}: {w[:120]}" for t, c, w in row["kills"][:4])
        more = f" (+{len(row['kills']) - 4} more)" if len(row["kills"]) > 4 else ""
        lines.append(f"| `{row['name']}` | {row['doc']} | "
                     + ((cases + more) if row["kills"] else "**survived**").replace("|", "\\|") + " |")
    return "\n".join(lines)


def git_commit():
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default="//dsd/...", help="space-separated target patterns")
    p.add_argument("--tag_filters", default="gpu2", help="--test_tag_filters of every run (default: the gpu2 suite)")
    p.add_argument("--mutations", default="", help="comma-separated names (default: all)")
    p.add_argument("--out", default="", help="where Bazel's output of every run is kept (default: a new directory)")
    p.add_argument("--write", action="store_true", help="record the score and rewrite README.md's table")
    p.add_argument("--list", action="store_true")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    cat = catalog()
    if args.list:
        for name, fn in cat.MUTATIONS.items():
            print(f"{name:38} {' '.join(fn.__doc__.split())}")
        return 0
    chosen = [m for m in args.mutations.split(",") if m] or list(cat.MUTATIONS)
    unknown = [m for m in chosen if m not in cat.MUTATIONS]
    if unknown:
        print(f"unknown mutation(s) {unknown}; known: {', '.join(cat.MUTATIONS)}")
        return 2
    out = args.out or os.path.join(os.environ.get("TMPDIR", "/tmp"), "dsd-mutate-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    started = time.monotonic()
    control = run_suite(args, out, cat.CONTROL)
    red = sorted(label for label, t in control["targets"].items() if t["status"] not in ("PASSED", "FLAKY"))
    print(f"control (harness on, no mutation): {len(control['targets'])} targets, {len(red)} not passing "
          f"({control['seconds']:.0f}s); Bazel's output in {out}")
    if red or not control["targets"]:
        print("the suite must be green with the harness on and no mutation: " + ", ".join(red or ["no targets"]))
        return 1
    rows = [mutation_row(args, out, cat, name, control) for name in chosen]
    score = dict(commit=git_commit(), date=datetime.date.today().isoformat(), torch=", ".join(control["torch"]) or "unknown",
                 targets=len(control["targets"]), cases=sum(len(t["cases"]) for t in control["targets"].values()),
                 suite=suite_fingerprint(control["targets"]), control_seconds=control["seconds"],
                 minutes=round((time.monotonic() - started) / 60), mutations=rows)
    print("\n" + render(score))
    if args.write:
        write_score(score)
    return 0 if all(row["kills"] for row in rows) else 1


def mutation_row(args, out, cat, name, control):
    run = run_suite(args, out, name)
    found = kills(control, run)
    other = sorted(label for label, t in run["targets"].items() if t["status"] not in ("PASSED", "FLAKY"))
    print(f"{name:38} {'killed' if found else 'SURVIVED':8} by {len(found)} case(s) in "
          f"{len({t for t, _, _ in found})} target(s); {len(other)} target(s) red ({run['seconds']:.0f}s)", flush=True)
    return {"name": name, "doc": " ".join(cat.MUTATIONS[name].__doc__.split()), "kills": found,
            "red_targets": len(other), "seconds": run["seconds"]}


def write_score(score):
    with open(SCORE, "w") as f:
        json.dump(score, f, indent=1)
        f.write("\n")
    readme.write({"mutation-score": render(score)})
    print(f"wrote {os.path.relpath(SCORE, ROOT)} and README.md's mutation table")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
