"""The report page: one self-contained HTML file (Jinja2 template, Plotly charts, plotly.js
inlined once) that a person opens in a browser, offline.

It shows the scenario x torch release x world size matrix (a click on a cell opens its cases
and their messages), the known bugs (tools/catalogue.py's marks with their latest statuses),
the security table (hostile_checkpoint_test's cases), durations and their trend, the slowest
targets, flaky cases with their rates and the time of each run.
"""

import datetime
import os

import jinja2
import markupsafe

from tools.history import charts
from tools.history import known_bugs

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
SECURITY_SCENARIO = "hostile_checkpoint_test"
STATUS_NAMES = {"passed": "passed", "xfailed": "expected failure", "skipped": "skipped", "failed": "failed",
                "error": "error", "flaky": "flaky"}


def environment():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2")))
    env.filters["status_name"] = lambda status: STATUS_NAMES.get(status, status)
    env.filters["seconds"] = lambda value: "" if value is None else f"{value:.2f}"
    env.filters["percent"] = lambda value: "" if value is None else f"{value * 100:+.0f}%"
    return env


def matrix_rows(matrix):
    """[{scenario, cells: [cell or None per column]}]; each cell gets `index`, its dialog's number."""
    where = {(c["scenario"], c["release"], c["world_size"]): c for c in matrix["cells"]}
    for index, cell in enumerate(matrix["cells"]):
        cell["index"] = index
    return [{"scenario": s, "cells": [where.get((s, release, ws)) for release, ws in matrix["columns"]]}
            for s in matrix["scenarios"]]


def release_groups(columns):
    """[(release, number of world-size columns)] for the matrix's two-row header."""
    groups = []
    for release, _ in columns:
        if groups and groups[-1][0] == release:
            groups[-1] = (release, groups[-1][1] + 1)
        else:
            groups.append((release, 1))
    return groups


def security_table(matrix, scenario=SECURITY_SCENARIO):
    """{"columns": [[release, world size]], "rows": [{case_id, results: [case or None per column]}]}
    of the scenario's cells."""
    cells = [c for c in matrix["cells"] if c["scenario"] == scenario]
    columns = [(c["release"], c["world_size"]) for c in cells]
    case_ids = sorted({case["case_id"] for c in cells for case in c["cases"]})
    by_cell = [{case["case_id"]: case for case in c["cases"]} for c in cells]
    return {"columns": columns, "rows": [{"case_id": case_id, "results": [cases.get(case_id) for cases in by_cell]}
                                         for case_id in case_ids]}


def context(data, marks, source):
    """The template's variables for report data (queries.report_data) and marks (known_bugs.marks)."""
    runs = data["runs"]
    return {
        "source": source, "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": runs, "matrix": data["matrix"], "matrix_rows": matrix_rows(data["matrix"]),
        "release_groups": release_groups(data["matrix"]["columns"]), "other_targets": data["other_targets"],
        "known_bugs": known_bugs.with_results(marks, data["matrix"]), "security": security_table(data["matrix"]),
        "flaky": data["flaky"], "slowest_targets": data["slowest_targets"], "case_durations": data["case_durations"],
        "run_names": charts.run_names(runs), "statuses": list(charts.STATUS_COLOURS),
        "charts": {name: markupsafe.Markup(html) for name, html in _charts(data).items()},
        "plotly_js": markupsafe.Markup(charts.plotly_js()),
    }


def _charts(data):
    if not data["runs"]:
        return {}
    return {"wall_time": charts.wall_time(data["runs"]), "case_statuses": charts.case_statuses(data["runs"]),
            "slowest_targets": charts.slowest_targets(data["slowest_targets"]),
            "case_trends": charts.case_trends(data["case_durations"], data["runs"])}


def render(data, marks, source):
    """The page's HTML."""
    return environment().get_template("report.html.j2").render(context(data, marks, source))


def write(path, html):
    """Writes the page atomically (a reader never sees half a page); returns its absolute path."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(path + ".tmp", path)
    return path
