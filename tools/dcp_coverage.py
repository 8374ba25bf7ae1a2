"""Coverage of torch's checkpointing code (torch.distributed.checkpoint: DCP, and DSD in its
state_dict.py) by the suite: one merged HTML report and a percentage per torch version.

    python3 tools/dcp_coverage.py                                  # //dsd/..., default environment
    python3 tools/dcp_coverage.py //dsd:reshard_test -- --config=all-envs   # targets, -- bazel flags
    python3 tools/dcp_coverage.py --no_test                        # report again on the last run

1. `./bazelw test TARGETS --test_env=DSD_COVERAGE=1`: every rank runs under coverage.py
   (testing/launcher/rank_worker.py) and leaves its data file in its target's outputs.zip
   (coverage/). Results are cached like any test's, under keys of their own.
2. The data files of exactly that invocation's targets (its build event file) are taken from
   their outputs.zip.
3. Per torch version (the data file names say which): `coverage combine` with a [paths] mapping
   of any .../site-packages/torch onto one that exists here (so data from other environment
   directories, checkouts or remote workers merges), `coverage html` and `coverage report`.

Not measured: sub-launches of crash repros (testing/repro.py), async_save's background process,
ranks that crash or are killed before their last record. Stdlib only; coverage itself runs in the
default environment (`./bazelw python -m coverage`, pinned in third_party/envs/*.lock).
Exit status 1 if no data was found or a test failed (the report is written all the same).
"""

import argparse
import collections
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "/torch/distributed/checkpoint/"
_NAME = re.compile(r"^coverage\.torch-(?P<version>.+)\.rank(?P<rank>\d+)\.\d+\.[0-9a-f]+$")


def log(message):
    print(f"dcp_coverage: {message}", file=sys.stderr, flush=True)


def outputs_zips(events):
    """{label: [outputs.zip of each shard / run]} from a build event file."""
    zips = collections.defaultdict(list)
    with open(events) as f:
        for line in f:
            event = json.loads(line)
            if "testResult" not in event.get("id", {}):
                continue
            for output in event.get("testResult", {}).get("testActionOutput", []):
                if output["name"] == "test.outputs__outputs.zip":
                    path = urllib.parse.unquote(urllib.parse.urlparse(output["uri"]).path)
                    zips[event["id"]["testResult"]["label"]].append(path)
    return zips


def extract(zips, into):
    """Extracts every coverage data file; returns {torch version: [paths]}."""
    groups = collections.defaultdict(list)
    for label, paths in sorted(zips.items()):
        for n, path in enumerate(paths):
            if not os.path.exists(path):
                continue
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    m = _NAME.match(os.path.basename(name))
                    if not m or not name.split("/")[-2:-1] == ["coverage"]:
                        continue
                    dest = os.path.join(into, m["version"], f"{label.strip('/').replace('/', '_').replace(':', '.')}"
                                        f".{n}.{os.path.basename(name)}")
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    with z.open(name) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
                    groups[m["version"]].append(dest)
    return groups


def torch_roots(data_files):
    """The .../torch directories the data files measured (coverage's data is SQLite)."""
    roots = set()
    for path in data_files:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            for (measured,) in db.execute("select path from file"):
                if PACKAGE in measured:
                    roots.add(measured[:measured.index(PACKAGE) + len("/torch")])
    return sorted(roots)


def rcfile(path, canonical):
    """coverage's configuration: every torch directory maps onto `canonical` (it must exist here:
    the HTML report shows its sources)."""
    with open(path, "w") as f:
        f.write(f"[paths]\ntorch =\n    {canonical}/\n    */site-packages/torch/\n    */torch/\n\n"
                f"[report]\nprecision = 1\ninclude = *{PACKAGE}*\n\n"
                "[html]\ntitle = torch.distributed.checkpoint coverage\n")
    return path


def report(version, data_files, out_dir, coverage_cmd):
    """Combines one torch version's data files, writes its HTML report; returns the total percentage."""
    roots = torch_roots(data_files)
    here = [r for r in roots if os.path.isdir(os.path.join(r, "distributed", "checkpoint"))]
    if not here:
        raise SystemExit(f"dcp_coverage: the sources of torch {version} are not on this machine (the data "
                         f"measured {roots}); install its environment (./bazelw env NAME) and run with --no_test")
    work = os.path.dirname(data_files[0])
    rc = rcfile(os.path.join(work, "coveragerc"), here[0])
    combined = os.path.join(work, "combined")
    html = os.path.join(out_dir, f"torch-{version}")
    def run(command, *args):
        proc = subprocess.run([*coverage_cmd, command, f"--rcfile={rc}", f"--data-file={combined}", *args],
                              capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"dcp_coverage: coverage {command} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    run("combine", "--keep", "--quiet", *data_files)
    shutil.rmtree(html, ignore_errors=True)
    run("html", "-d", html)
    table = run("report", "--sort=-miss")
    with open(os.path.join(html, "report.txt"), "w") as f:
        f.write(table)
    total = float(run("report", "--format=total", "--precision=1").strip())
    return total, html, table


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    bazel_flags = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("targets", nargs="*", default=["//dsd/..."], help="test targets (default //dsd/...)")
    p.add_argument("--output_dir", default=os.path.join(ROOT, "dcp-coverage"),
                   help="where the reports go: <output_dir>/torch-<version>/index.html (default ./dcp-coverage)")
    p.add_argument("--no_test", action="store_true", help="do not run the tests; report on <output_dir>/events.json")
    p.add_argument("--events", help="a build event file to take the outputs from (implies --no_test)")
    p.add_argument("--coverage", default=f"{os.path.join(ROOT, 'bazelw')} python -m coverage",
                   help="the coverage command (default: the default environment's)")
    args = p.parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    events = args.events or os.path.join(args.output_dir, "events.json")
    tests_rc = 0
    if not (args.no_test or args.events):
        cmd = [os.path.join(ROOT, "bazelw"), "test", *args.targets, "--test_env=DSD_COVERAGE=1",
               f"--build_event_json_file={events}", *bazel_flags]
        log("running " + " ".join(cmd))
        tests_rc = subprocess.run(cmd, cwd=ROOT).returncode
        if tests_rc:
            log(f"bazel test exited with {tests_rc}: some targets failed; reporting on what ran")
    if not os.path.exists(events):
        log(f"no build event file {events}: run without --no_test first")
        return 1
    zips = outputs_zips(events)
    with tempfile.TemporaryDirectory(prefix="dcp-coverage-") as tmp:
        groups = extract(zips, tmp)
        if not groups:
            log(f"no coverage data in the outputs of the {len(zips)} test target(s) of {events}")
            return 1
        for version, files in sorted(groups.items()):
            total, html, table = report(version, files, args.output_dir, shlex.split(args.coverage))
            print(table.rstrip())
            print(f"torch {version}: {total:.1f}% of torch.distributed.checkpoint's statements ran, in "
                  f"{len(files)} rank(s) of {len(zips)} target(s); report: {os.path.join(html, 'index.html')}")
    return 1 if tests_rc else 0


if __name__ == "__main__":
    sys.exit(main())
