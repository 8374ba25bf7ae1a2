"""python -m tools.history record|report|migrate|flaky: the run history's command line.

    record   after `./bazelw test ...`: every target and case of that invocation (its build
             event file, bazel-events.json) into the history; recording it again adds nothing
    report   the report page (HTML) of the last --runs runs, of one (--invocation), or of a
             build event file without a database (--events)
    migrate  brings the database to this tool's schema version (record and report refuse an
             older one rather than change a shared database behind its users' backs)
    flaky    the flaky cases and their rates; exit 1 only when asked (--fail_above)
    budget   the last run against the one before it: CI wall time, test time, and the targets
             that got slower or faster (a benchmark to read, not a timed test: exit 0)
    durations  the recorded case durations that sharded targets balance their shards by
             (--write: testing/durations.json)
    quarantine  exit 1 if a quarantined case (testing/quarantine.json) passed in each of the last
             --runs recorded runs: it leaves quarantine

Exit status: 0 done; 1 only for a check asked for (flaky --fail_above); 2 the history could not
be read or written (one line on stderr says why). Test failures never change it, and the
command is separate from `bazel test`, so a broken database never changes a test result.
"""

import argparse
import json
import os
import sys
import time

import sqlalchemy as sa

from tools.history import events
from tools.history import known_bugs
from tools.history import migrations
from tools.history import queries
from tools.history import report
from tools.history import runs
from tools.history import store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="database URL or SQLite path (default: $DSD_HISTORY_DB, else "
                                     "${DSD_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/dsd-bazel}/history.sqlite)")
    common.add_argument("--lock_timeout", type=float, default=10.0, help="seconds to wait for a locked SQLite file")
    p = argparse.ArgumentParser(prog="python -m tools.history", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", parents=[common], help="record the last bazel test invocation")
    rec.add_argument("--events", default=os.path.join(ROOT, "bazel-events.json"), help="build event JSON file")
    rec.add_argument("--wall_seconds", type=float, help="the CI job's wall time of the run (.ci/run passes it)")
    rec.add_argument("--commit", help="the tested commit (default: --build_metadata COMMIT_SHA, else git HEAD)")
    rep = sub.add_parser("report", parents=[common], help="write the HTML report")
    rep.add_argument("--runs", type=int, default=20, help="how many recent runs (default 20)")
    rep.add_argument("--invocation", help="one run: its invocation id, or `latest`")
    rep.add_argument("--events", help="one run from its build event file, without a database")
    rep.add_argument("--out", default=os.path.join(ROOT, "bazel-history.html"), help="the HTML file to write")
    rep.add_argument("--modules", default=os.path.join(ROOT, "dsd"), help="scenario modules (known-bug marks)")
    sub.add_parser("migrate", parents=[common], help="bring the database to the current schema version")
    fl = sub.add_parser("flaky", parents=[common], help="list flaky cases and their rates")
    fl.add_argument("--runs", type=int, default=20, help="how many recent runs (default 20)")
    fl.add_argument("--fail_above", type=float, help="exit 1 if a case's flaky rate is above this (0..1)")
    bu = sub.add_parser("budget", parents=[common], help="compare the last run with the previous one")
    bu.add_argument("--top", type=int, default=10, help="how many targets that changed most (default 10)")
    du = sub.add_parser("durations", parents=[common], help="case durations of the modules with sharded targets")
    du.add_argument("--runs", type=int, default=20, help="how many recent runs (default 20)")
    du.add_argument("--write", action="store_true", help="write them into testing/durations.json")
    qu = sub.add_parser("quarantine", parents=[common], help="fail when a quarantined case passes again")
    qu.add_argument("--runs", type=int, default=5, help="passed in each of this many recent runs (default 5)")
    qu.add_argument("--file", default=os.path.join(ROOT, "testing", "quarantine.json"))
    return p


def cmd_record(args, url, engine):
    started = time.monotonic()
    invocation = runs.load(args.events, commit=args.commit, wall_seconds=args.wall_seconds)
    try:
        with store.transaction(engine, url) as conn:
            migrations.require_current(conn, url, create_empty=True)
            added = store.record(conn, invocation)
    except store.HistoryError as e:
        if not isinstance(e.__cause__, sa.exc.IntegrityError) or "invocation_id" not in str(e):
            raise
        added = None  # recorded by a concurrent `record` of the same invocation
    for label, problem in [(t.label, a.problem) for t in invocation.targets for a in t.attempts if a.problem][:10]:
        print(f"warning: {label}: {problem}", file=sys.stderr)
    if added is None:
        print(f"invocation {invocation.invocation_id} is already in {store.shown(url)}: nothing added")
    else:
        print(f"recorded invocation {invocation.invocation_id}: {len(invocation.targets)} targets, {added} cases "
              f"into {store.shown(url)} in {time.monotonic() - started:.1f}s")
    return 0


def cmd_report(args, url, engine):
    started = time.monotonic()
    if args.events:  # one run, without a database: an in-memory one
        with store.transaction(engine, url) as conn:
            migrations.create(conn)
            store.record(conn, runs.load(args.events))
    with store.transaction(engine, url) as conn:
        migrations.require_current(conn, url, create_empty=False)
        data = queries.report_data(conn, runs=args.runs, invocation=args.invocation)
    if args.invocation and not data["runs"]:
        raise store.HistoryError(f"no invocation {args.invocation} in {store.shown(url)}")
    source = args.events or store.shown(url)
    path = report.write(args.out, report.render(data, known_bugs.marks(args.modules), source))
    print(f"report of {len(data['runs'])} run(s) written in {time.monotonic() - started:.1f}s: file://{path}")
    return 0


def cmd_migrate(args, url, engine):
    with store.transaction(engine, url) as conn:
        before = migrations.version(conn)
        done = migrations.migrate(conn)
    if not done:
        print(f"{store.shown(url)} is at schema version {before}: nothing to do")
    for number, description in done:
        print(f"{store.shown(url)}: schema version {number}: {description}")
    return 0


def cmd_flaky(args, url, engine):
    with store.transaction(engine, url) as conn:
        migrations.require_current(conn, url, create_empty=False)
        data = queries.report_data(conn, runs=args.runs)
    for f in data["flaky"]:
        print(f"{f['rate'] * 100:5.1f}%  {f['flaky']}/{f['executed']}  {f['label']}  {f['case_id']}  "
              f"{f['last_message'] or ''}")
    print(f"{len(data['flaky'])} flaky case(s) in the last {len(data['runs'])} run(s)")
    over = [f for f in data["flaky"] if args.fail_above is not None and f["rate"] > args.fail_above]
    if over:
        print(f"{len(over)} case(s) flaky in more than {args.fail_above * 100:.0f}% of their runs", file=sys.stderr)
        return 1
    return 0


def cmd_budget(args, url, engine):
    with store.transaction(engine, url) as conn:
        migrations.require_current(conn, url, create_empty=False)
        data = queries.report_data(conn, runs=2)
    for line in queries.budget_lines(data, args.top):
        print(line)
    return 0


def cmd_durations(args, url, engine):
    with store.transaction(engine, url) as conn:
        migrations.require_current(conn, url, create_empty=False)
        found = queries.durations(conn, runs=args.runs)
    text = json.dumps({"_doc": DURATIONS_DOC, "modules": found}, indent=1, sort_keys=True) + "\n"
    if not args.write:
        print(text, end="")
        return 0
    with open(os.path.join(ROOT, "testing", "durations.json"), "w") as f:
        f.write(text)
    print(f"testing/durations.json: {sum(len(c) for c in found.values())} cases of {len(found)} module(s)")
    return 0


def cmd_quarantine(args, url, engine):
    with open(args.file) as f:
        entries = json.load(f).get("quarantine", [])
    with store.transaction(engine, url) as conn:
        migrations.require_current(conn, url, create_empty=False)
        passing = queries.quarantine_passes(conn, entries, runs=args.runs)
    for entry, labels in passing:
        print(f"{entry['module']} {entry['case']} passed in each of the last {args.runs} runs of {', '.join(labels)}: "
              f"remove it from {os.path.relpath(args.file, ROOT)} ({entry['reason']}, {entry['link']})")
    print(f"{len(entries)} quarantined case(s); {len(passing)} passing again")
    return 1 if passing else 0


DURATIONS_DOC = ("Recorded case durations (seconds) of the modules with sharded targets, which balance their shards "
                 "by them (testing/launcher/plan.py). Regenerated from the run history: "
                 "./bazelw python --env tools -m tools.history durations --write")
COMMANDS = {"record": cmd_record, "report": cmd_report, "migrate": cmd_migrate, "flaky": cmd_flaky,
            "budget": cmd_budget, "durations": cmd_durations, "quarantine": cmd_quarantine}


def main(argv=None):
    args = parser().parse_args(argv)
    url = "sqlite://" if args.command == "report" and args.events else store.resolve_url(args.db)
    try:
        engine = store.connect(url, lock_timeout=args.lock_timeout, create=args.command in ("record", "migrate"))
        try:
            return COMMANDS[args.command](args, url, engine)
        finally:
            engine.dispose()
    except (store.HistoryError, events.EventsError) as e:
        print(f"tools.history {args.command}: {e}", file=sys.stderr)
        return 2
