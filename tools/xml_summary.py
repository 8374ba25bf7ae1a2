"""Case totals of the last `bazel test` invocation, per target and in all. Stdlib only.

    python3 tools/xml_summary.py [--events bazel-events.json] [--skipped] [--slowest N]

Reads the build event file of that invocation (./bazelw makes `bazel test` write it), so only
its targets count, never a stale XML left in bazel-testlogs. For each target it reads the
test.xml of every shard (last attempt) and counts passed, failed (assertions), errors,
skipped, expected failures (<skipped type="pytest.xfail">, known torch bugs) and flaky cases
(a passing <testcase> with a <flakyFailure>/<flakyError>: it failed, then passed on a rerun),
which are always listed by name.

Exit status 1 if any target did not pass, any case failed, a shard's XML is missing, or any
target executed no case (nothing planned, or everything skipped): a target that tests nothing is
not green. Where the executed targets' time went outside their cases (the launcher's timing.*
properties) is summarised: the median overhead per target, the five largest parts, the five
targets with the most.
--skipped also lists every skip and expected failure with its reason. The targets' warnings
(Bazel's test.warnings, e.g. CPU ranks where GPUs were wanted) are listed once per text.
"""

import argparse
import collections
import json
import os
import statistics
import sys
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from third_party.envs import catalog  # noqa: E402

STATUSES = ("passed", "failed", "errors", "skipped", "xfailed", "flaky")
_OK = ("PASSED", "FLAKY")


def case_status(case):
    """The status of one JUnit <testcase> (ours, absltest's or pytest's)."""
    if case.find("failure") is not None:
        return "failed"
    if case.find("flakyFailure") is not None or case.find("flakyError") is not None:
        return "flaky"  # failed, then passed on a rerun (Maven Surefire's convention, the launcher's)
    if case.find("error") is not None:
        return "errors"
    skipped = case.find("skipped")
    if skipped is not None and skipped.get("type") == "pytest.xfail":
        return "xfailed"
    if skipped is not None or case.get("result") in ("suppressed", "skipped") or case.get("status") == "notrun":
        return "skipped"
    return "passed"


def read_events(path):
    """{label: {"status": overall status, "cached": bool, "xmls": [path per shard],
    "warnings": [test.warnings path per shard], "seconds": test time over every shard and attempt}}."""
    results, summaries, seconds = collections.defaultdict(dict), {}, collections.Counter()
    with open(path) as f:
        for line in f:
            event = json.loads(line)
            kind = next(iter(event["id"]))
            if kind == "testResult":
                rid = event["id"]["testResult"]
                outputs = {o["name"]: o["uri"] for o in event.get("testResult", {}).get("testActionOutput", [])}
                shard = (rid.get("shard", 1), rid.get("run", 1))
                previous = results[rid["label"]].get(shard)
                result = event.get("testResult", {})
                if previous is None or rid.get("attempt", 1) >= previous[0]:
                    cached = result.get("cachedLocally", False) or \
                        result.get("executionInfo", {}).get("cachedRemotely", False)
                    results[rid["label"]][shard] = (rid.get("attempt", 1), outputs.get("test.xml"), cached,
                                                    outputs.get("test.warnings"))
                seconds[rid["label"]] += int(result.get("testAttemptDurationMillis", 0) or 0) / 1000
            elif kind == "testSummary":
                summaries[event["id"]["testSummary"]["label"]] = event.get("testSummary", {}).get("overallStatus", "?")
    targets = {}
    for label in sorted(set(results) | set(summaries)):
        shards = results.get(label, {})
        targets[label] = {
            "status": summaries.get(label, "NO_SUMMARY"),
            "cached": bool(shards) and all(cached for _, _, cached, _ in shards.values()),
            "xmls": [_path(uri) for _, uri, _, _ in shards.values() if uri],
            "warnings": [_path(uri) for *_, uri in shards.values() if uri],
            "seconds": round(seconds[label], 1),
        }
    return targets


def left_out(path):
    """{label: tags} of the test targets Bazel skipped as incompatible in that invocation (the
    variants of disabled environments), from the build event file."""
    tags, skipped = {}, []
    with open(path) as f:
        for line in f:
            event = json.loads(line)
            kind = next(iter(event["id"]))
            if kind == "targetConfigured" and "configured" in event:
                tags[event["id"]["targetConfigured"]["label"]] = event["configured"].get("tag", [])
            elif kind == "targetCompleted" and event.get("aborted", {}).get("reason") == "SKIPPED":
                skipped.append(event["id"]["targetCompleted"]["label"])
    return {label: tags.get(label, []) for label in skipped}


def left_out_line(skipped):
    """One line for the variants of disabled environments (Bazel's terse summary counts them)."""
    if not skipped:
        return None
    envs = catalog.environments()
    per_env = collections.Counter(next((t for t in tags if t in envs), "other") for tags in skipped.values())
    hints = {"local": "--config=local-torch with DSD_LOCAL_PYTHON=/path/to/python"}
    how = sorted({hints.get(env, "--config=all-envs") for env in per_env if env != "other"})
    return (f"left out: {len(skipped)} test targets of disabled environments ("
            + ", ".join(f"{env}: {n}" for env, n in sorted(per_env.items())) + ")"
            + (f"; enable them with {' or '.join(how)}" if how else ""))


def _path(uri):
    return urllib.parse.unquote(urllib.parse.urlparse(uri).path)


def timing(xml_paths):
    """{part: seconds} summed over the shards' XMLs: the launcher's timing.* properties (where the
    target's time went, testing/launcher/timing.py); {} for targets that do not write them."""
    parts = collections.Counter()
    for path in xml_paths:
        if os.path.exists(path):
            for prop in ET.parse(path).getroot().iter("property"):
                if prop.get("name", "").startswith("timing."):
                    parts[prop.get("name")[len("timing."):]] += float(prop.get("value"))
    return dict(parts)


def count(xml_paths):
    """{status: n} over the XMLs, [(status, case id, reason)] of skips and expected failures, and
    the XMLs the build event file names that do not exist (a shard's results missing)."""
    counts, notes, missing = dict.fromkeys(STATUSES, 0), [], []
    for path in xml_paths:
        if not os.path.exists(path):
            missing.append(path)
            continue
        for case in ET.parse(path).getroot().iter("testcase"):
            status = case_status(case)
            counts[status] += 1
            if status in ("skipped", "xfailed", "flaky"):
                reason = next((el.get("message", "") for el in case
                               if el.tag in ("skipped", "flakyFailure", "flakyError")), "")
                notes.append((status, f"{case.get('classname')}.{case.get('name')}", reason))
    return counts, notes, missing


def warnings(targets):
    """{warning text: [labels]} from the targets' test.warnings files."""
    out = collections.defaultdict(list)
    for label, target in targets.items():
        for path in target.get("warnings", []):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    for line in dict.fromkeys(line.strip() for line in f if line.strip()):
                        if label not in out[line]:
                            out[line].append(label)
    return out


def summarize(events_path):
    rows = []
    for label, target in read_events(events_path).items():
        counts, notes, missing = count(target["xmls"])
        problems = []
        if target["status"] not in _OK:
            problems.append(f"status {target['status']}")
        if not target["xmls"]:
            problems.append("no test.xml")
        problems += [f"missing {os.path.relpath(path)}" for path in missing]
        if sum(counts[s] for s in ("passed", "failed", "errors", "xfailed", "flaky")) == 0:
            problems.append("executed no case")
        rows.append((label, target, counts, notes, problems))
    return rows


def overheads(rows, top=5):
    """Lines on where the executed targets' time went outside their cases: the median overhead
    per target, the `top` largest parts summed over targets, and the `top` targets with most."""
    executed = {label: timing(target["xmls"]) for label, target, *_ in rows if not target["cached"]}
    executed = {label: parts for label, parts in executed.items() if "overhead" in parts}
    if not executed:
        return []
    per_target = sorted(parts["overhead"] for parts in executed.values())
    totals = collections.Counter()
    for parts in executed.values():
        totals.update({k: v for k, v in parts.items() if k not in ("wall", "overhead", "cases", "fixtures")})
    worst = sorted(executed.items(), key=lambda kv: -kv[1]["overhead"])[:top]
    return [f"overhead outside cases: {len(executed)} executed targets, median {statistics.median(per_target):.2f}s, "
            f"max {per_target[-1]:.2f}s per target",
            "largest overheads: " + ", ".join(f"{part} {seconds:.1f}s" for part, seconds in totals.most_common(top)),
            "targets with the most: " + ", ".join(f"{label} {parts['overhead']:.1f}s" for label, parts in worst)]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                   "bazel-events.json"))
    p.add_argument("--skipped", action="store_true")
    p.add_argument("--slowest", type=int, default=0, metavar="N", help="list the N targets that took longest")
    args = p.parse_args(argv)
    if not os.path.exists(args.events):
        print(f"xml_summary: no build event file {args.events}: run the tests with ./bazelw test "
              "(or pass bazel test --build_event_json_file=... and --events)")
        return 1
    rows = summarize(args.events)
    width = max((len(label) for label, *_ in rows), default=20)
    for label, target, counts, _, problems in rows:
        status = target["status"] + (" (cached)" if target["cached"] else "")
        print(f"{label:{width}} {status:16} " + " ".join(f"{counts[s]:4} {s}" for s in STATUSES)
              + (f"   <-- {'; '.join(problems)}" if problems else ""))
    names = {"skipped": "skipped", "xfailed": "expected failure", "flaky": "flaky"}
    for label, _, _, notes, _ in rows:
        for status, case, reason in notes:
            if args.skipped or status == "flaky":  # a flaky case is always named, never hidden among the passes
                print(f"{names[status]}: {label}: {case}: {reason}")
    for text, labels in sorted(warnings({label: target for label, target, *_ in rows}).items()):
        shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
        print(f"warning ({len(labels)} target{'s' if len(labels) > 1 else ''}: {shown}): {text}")
    if args.slowest:
        ran = sorted(((t["seconds"], label) for label, t, *_ in rows if not t["cached"]), reverse=True)
        print(f"slowest {min(args.slowest, len(ran))} targets (test time, every shard): "
              + ", ".join(f"{label} {s:.0f}s" for s, label in ran[:args.slowest]))
    for line in overheads(rows) + [left_out_line(left_out(args.events))]:
        if line:
            print(line)
    totals = {s: sum(r[2][s] for r in rows) for s in STATUSES}
    bad = [label for label, *_, problems in rows if problems]
    print(f"{len(rows)} test targets in the last invocation ({os.path.basename(args.events)})")
    print("cases: " + ", ".join(f"{totals[s]} {s if s != 'xfailed' else 'expected failures'}" for s in STATUSES))
    if bad:
        print(f"{len(bad)} target(s) not green: " + ", ".join(bad))
    return 1 if bad or totals["failed"] or totals["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
