"""The known-bugs table of the report: every known-failure mark of the scenario modules
(tools/catalogue.py's marks(), read from their source with ast) with the statuses its cases
had in the history's matrix.
"""

import ast
import glob
import os

from tools import catalogue


def marks(modules_dir):
    """[{module, case, mark, torch_releases, why}] of the marks in `modules_dir`/*_test.py,
    by module then source order."""
    rows = []
    for path in sorted(glob.glob(os.path.join(modules_dir, "*_test.py"))):
        module = os.path.basename(path)[:-len(".py")]
        for cls, method, mark, params in catalogue.marks(path):
            versions = params.get("torch_versions") or "all"
            rows.append({"module": module, "case": f"{cls}.{method}", "mark": mark, "why": params.get("why", ""),
                         "torch_releases": ", ".join(versions) if isinstance(versions, tuple) else str(versions),
                         "methods": sorted(_methods(path))})
    return rows


def _methods(path):
    """{"Class.test_name"} defined in the module at `path`."""
    with open(path) as f:
        tree = ast.parse(f.read())
    return {f"{c.name}.{m.name}" for c in tree.body if isinstance(c, ast.ClassDef)
            for m in c.body if isinstance(m, ast.FunctionDef) and m.name.startswith("test")}


def method_of(case_id, methods):
    """The defined method a case id runs: itself, or the longest method it extends with
    `_<suffix>` (a parameterized variant); None if none."""
    if case_id in methods:
        return case_id
    prefixes = [m for m in methods if case_id.startswith(m + "_")]
    return max(prefixes, key=len, default=None)


def with_results(rows, matrix):
    """`rows` with "results": [{release, world_size, case_id, status, message}] of their cases
    in the matrix's cells of their module."""
    out = []
    for row in rows:
        methods = set(row["methods"])
        results = [{"release": cell["release"], "world_size": cell["world_size"], "case_id": case["case_id"],
                    "status": case["status"], "message": case["message"]}
                   for cell in matrix["cells"] if cell["scenario"] == row["module"]
                   for case in cell["cases"] if method_of(case["case_id"], methods) == row["case"]]
        out.append({k: v for k, v in row.items() if k != "methods"} | {"results": results})
    return out
