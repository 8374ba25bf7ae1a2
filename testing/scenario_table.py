"""Generates the README's table of scenario families x world sizes x targets from `bazel query`.

    python3 testing/scenario_table.py            print the table
    python3 testing/scenario_table.py --write    rewrite it in README.md (between the markers)
    python3 testing/scenario_table.py --check    exit 1 if README.md's table is stale

Stdlib only. Runs ./bazelw (or $BAZEL) query over //dsd/...
"""

import ast
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- scenario-table:begin -->", "<!-- scenario-table:end -->"


def query_tests():
    bazel = os.environ.get("BAZEL") or os.path.join(ROOT, "bazelw")
    out = subprocess.run([bazel, "query", "kind(py_test, //dsd/...)", "--output=xml"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    rows = {}
    for rule in ET.fromstring(out).iter("rule"):
        label = rule.get("name")
        attrs = {el.get("name"): [v.get("value") for v in el] for el in rule if el.tag == "list"}
        module = next(a.split("=", 1)[1] for a in attrs.get("args", []) if a.startswith("--test_module="))
        select = next((a.split("=", 1)[1] for a in attrs.get("args", []) if a.startswith("--select=")), "")
        base, _, variant = label.rpartition("_gpu")
        rows.setdefault((base, module, select), []).append((variant, label))
    return rows


def summary(module, select):
    """First sentence of the module's (or the selected class's) docstring."""
    path = os.path.join(ROOT, *module.split(".")) + ".py"
    tree = ast.parse(open(path).read())
    doc = ast.get_docstring(tree) or ""
    if select:
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == select and ast.get_docstring(node):
                doc = ast.get_docstring(node)
    first = " ".join(doc.split("\n\n")[0].split())
    return re.split(r"(?<=[.])\s", first)[0].rstrip(":.")


def _variant_key(variant):
    return [int(n) for n in re.findall(r"\d+", variant)]


def table():
    lines = ["| target (`//dsd:`) | scenarios | variants (ranks) |", "| --- | --- | --- |"]
    for (base, module, select), variants in sorted(query_tests().items()):
        names = ", ".join(f"`_gpu{v}`" for v, _ in sorted(variants, key=lambda x: _variant_key(x[0])))
        lines.append(f"| `{base.split(':')[-1]}` | {summary(module, select)} | {names} |")
    return "\n".join(lines)


def main(argv):
    generated = table()
    if not {"--check", "--write"} & set(argv):
        print(generated)
        return 0
    readme_path = os.path.join(ROOT, "README.md")
    readme = open(readme_path).read()
    current = readme[readme.index(BEGIN) + len(BEGIN):readme.index(END)].strip()
    if "--check" in argv:
        if current != generated:
            print("README.md's scenario table is stale: run python3 testing/scenario_table.py --write")
            return 1
        print("README.md's scenario table matches bazel query")
        return 0
    head, tail = readme[:readme.index(BEGIN) + len(BEGIN)], readme[readme.index(END):]
    with open(readme_path, "w") as f:
        f.write(f"{head}\n{generated}\n{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
