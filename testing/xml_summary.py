"""Totals the test cases of every JUnit XML under bazel-testlogs (one line per target, then
'N passed, N failed, N skipped'). Stdlib only: runs with any python3.

    python3 testing/xml_summary.py [bazel-testlogs] [--skipped]

--skipped also lists every skipped case with its reason. Exit status 1 if any case failed.
"""

import os
import sys
import xml.etree.ElementTree as ET


def summarize(root):
    rows = []
    for dirpath, _, files in sorted(os.walk(root, followlinks=True)):
        if "test.xml" not in files:
            continue
        target = os.path.relpath(dirpath, root)
        passed = failed = skipped = 0
        skips = []
        for case in ET.parse(os.path.join(dirpath, "test.xml")).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None or case.get("result") == "suppressed":
                skipped += 1
                reason = case.find("skipped")
                skips.append((f"{case.get('classname')}.{case.get('name')}",
                               reason.get("message", "") if reason is not None else ""))
            else:
                passed += 1
        rows.append((target, passed, failed, skipped, skips))
    return rows


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    root = args[0] if args else "bazel-testlogs"
    rows = summarize(root)
    for target, p, f, s, _ in rows:
        print(f"{target:70} {p:4} passed {f:3} failed {s:3} skipped")
    if "--skipped" in argv:
        for target, *_, skips in rows:
            for case, reason in skips:
                print(f"skipped: {target}: {case}: {reason}")
    totals = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    print(f"{len(rows)} test targets with JUnit XML")
    print(f"cases: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
