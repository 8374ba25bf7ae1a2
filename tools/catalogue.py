"""Generates the README's catalogue: the scenario table (targets, variants, cases), the
known-bugs table (every known-failure mark in the scenario modules), the compatibility matrix
and the upstream coverage table (tools/upstream_coverage.py, checked against the modules).

    python3 tools/catalogue.py            print the tables
    python3 tools/catalogue.py --write    rewrite them in README.md (between their markers)
    python3 tools/catalogue.py --check    exit 1 if README.md is stale or a target has no case

Targets come from `bazel query` over //dsd/...; case counts from the launcher's own plan
function, run by the project's interpreter (`./bazelw python`); marks from the modules' source
(ast), so the tables cannot drift from the code.
"""

import ast
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from third_party.envs import catalog as env_catalog  # noqa: E402
from tools import readme  # noqa: E402
from tools import upstream_coverage_check as coverage_check  # noqa: E402
MARKS = {  # the marks of testing/known_failures.py and their parameters, in order
    "known_failure": ("exc_type", "symptom", "why", "raised_in", "torch_versions"),
    "known_wrong_result": ("why", "wrong", "right", "torch_versions"),
    "known_crash": ("why", "signal", "exit_code", "message", "frame", "at_exit", "torch_versions"),
    "known_hang": ("why", "frames", "torch_versions"),
}
GOLDEN_MANIFEST = os.path.join(ROOT, "dsd", "testdata", "golden", "manifest.json")


def bazel():
    return os.environ.get("BAZEL") or os.path.join(ROOT, "bazelw")


def query_targets(pattern="//dsd/..."):
    """{(package, base name, module): [variant suffix]} of the distributed targets under `pattern`
    (the dist_py_test calls, read from the generated test_suites and their variants' args)."""
    out = subprocess.run([bazel(), "query", f"attr(args, '--test_module=', tests({pattern}))", "--output=xml"],
                         cwd=ROOT, check=True, capture_output=True).stdout
    rows = {}
    for rule in ET.fromstring(out).iter("rule"):
        args = [v.get("value") for el in rule if el.tag == "list" and el.get("name") == "args" for v in el]
        module = next(a.split("=", 1)[1] for a in args if "--test_module=" in a)
        package, _, name = rule.get("name").lstrip("/").partition(":")
        base = module.rpartition(".")[2]
        rows.setdefault((package, base, module), []).append(name[len(base) + 1:])
    return rows


def environments():
    """[name] of the scenario environments, the default first (third_party/envs/envs.bzl)."""
    default = env_catalog.default()
    names = [e.name for e in env_catalog.environments().values() if e.role == "scenarios"]
    return [default] + [n for n in names if n != default]


def count_cases(modules):
    """{module: number of cases}, from testing.launcher.plan run by the project's interpreter."""
    out = subprocess.run([bazel(), "python", os.path.abspath(__file__), "--count-cases", *modules], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _count_cases_here(modules):
    import importlib

    from testing.launcher import plan
    print(json.dumps({m: len(plan.discover(importlib.import_module(m))) for m in modules}))


def case_ids(modules):
    """{module: [case id]} from the launcher's discovery, run by the project's interpreter."""
    out = subprocess.run([bazel(), "python", os.path.abspath(__file__), "--case-ids", *modules], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _case_ids_here(modules):
    import importlib

    from testing.launcher import plan
    print(json.dumps({m: sorted(plan.discover(importlib.import_module(m))) for m in modules}))


def summary(module):
    """First sentence of the module's docstring."""
    with open(os.path.join(ROOT, *module.split(".")) + ".py") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return re.split(r"(?<=[.])\s", first)[0].rstrip(":.")


def _variant_key(variant):
    return [int(n) for n in re.findall(r"\d+", variant)]


def scenario_table(targets, cases):
    """One row per scenario module: its variants of the default environment (each has one per
    other environment too, suffixed _<env>), or its cross-version variants."""
    envs = environments()
    lines = ["| target (`//dsd:`) | scenarios | variants (ranks) | cases |", "| --- | --- | --- | --- |"]
    for (package, base, module), variants in sorted(targets.items()):
        if package != "dsd":
            continue
        own = [v for v in variants if not any(v.endswith("_" + e) for e in envs[1:])] or variants
        names = ", ".join(f"`_{v}`" for v in sorted(own, key=_variant_key))
        lines.append(f"| `{base}` | {summary(module)} | {names} | {cases[module]} |")
    return "\n".join(lines)


def compat_matrix(targets, cases):
    """Saved with (rows) x loaded with (columns): what the suite checks and what it expects."""
    envs = [e for e in environments() if os.path.exists(os.path.join(ROOT, "third_party", "envs", e + ".lock"))]
    with open(GOLDEN_MANIFEST) as f:
        goldens = json.load(f)["goldens"]
    torch_of = {e.name: _torch_version(e.name) for e in env_catalog.environments().values() if e.lock}
    cross = {}  # (torch saved with, torch loaded with): the cross-version targets, framework ones too
    for (package, base, module), variants in targets.items():
        for v in variants:
            m = re.fullmatch(r"(\w+?)_gpu(\d+)_to_(\w+?)_gpu(\d+)", v)
            if m:
                cross.setdefault((torch_of[m.group(1)], torch_of[m.group(3)]), []).append(
                    (base, module, f"{m.group(1)} {m.group(2)}→{m.group(3)} {m.group(4)} ranks"))

    def known(modules, loaded):
        """Symptoms of marks in `modules` that apply to the loading environment's torch."""
        found = []
        for module in modules:
            for cls, method, mark, p in marks(os.path.join(ROOT, *module.split(".")) + ".py"):
                versions = p.get("torch_versions")
                versions = (versions,) if isinstance(versions, str) else versions
                if versions is None or any(torch_of[loaded].startswith(v) for v in versions):
                    found.append(f"`{cls}.{method}` ({symptom(mark, p)})")
        return found

    header = "| saved with ↓ loaded with → | " + " | ".join(f"`{e}`" for e in envs) + " |"
    lines = [header, "| --- |" + " --- |" * len(envs)]
    for saved in envs:
        row = [f"`{saved}`"]
        for loaded in envs:
            checks = []
            if saved == loaded:
                checks.append("the whole catalogue")
            modules = {"dsd.golden_corpus_test"}
            for base, module, sizes in sorted(cross.get((torch_of[saved], torch_of[loaded]), [])):
                checks.append(f"`{base}` {sizes}: {cases[module]} cases")
                modules.add(module)
            n = sum(1 for g in goldens if g.startswith(saved + "_"))
            checks.append(f"{n} goldens")
            failures = known(sorted(modules), loaded) if saved != loaded else []
            row.append("; ".join(checks) + (" — known failures: " + ", ".join(failures) if failures else " — pass"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _value(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)  # e.g. an exception class


def marks(path):
    """[(class, method, mark, {parameter: value})] of the known-failure marks in a module."""
    with open(path) as f:
        source = f.read()
    found = []
    for cls in ast.parse(source).body:
        for fn in getattr(cls, "body", []) if isinstance(cls, ast.ClassDef) else []:
            for deco in getattr(fn, "decorator_list", []):
                func = getattr(deco, "func", None)
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                if name in MARKS:
                    params = dict(zip(MARKS[name], map(_value, deco.args)))
                    params.update({k.arg: _value(k.value) for k in deco.keywords})
                    found.append((cls.name, fn.name, name, params))
    return found


def _frames(where):
    return " <- ".join(f"`{w}`" for w in reversed((where,) if isinstance(where, str) else where))


def symptom(mark, p):
    """The pinned behaviour in words, with where in torch it happens."""
    if mark == "known_failure":
        return f"`{p['exc_type']}` matching `{p['symptom']}`, raised in {_frames(p['raised_in'])}"
    if mark == "known_wrong_result":
        return f"returns `{p['wrong']!r}`, correct is `{p['right']!r}`"
    if mark == "known_hang":
        return f"a sub-launch's ranks wait in {_frames(p['frames'])}"
    ending = p.get("signal") or f"exit code {p.get('exit_code')}"
    parts = [f"a sub-launch's rank ends with {ending}" + (" in interpreter teardown" if p.get("at_exit") else "")]
    if p.get("message"):
        parts.append(f"output matching `{p['message']}`")
    if p.get("frame"):
        parts.append(f"frame `{p['frame']}`")
    return ", ".join(parts)


SCENARIO_PACKAGES = ("dsd", "dsd/frameworks")


def project(mark, p):
    """Whose bug a mark pins: the package of the code it locates (torch unless it names another)."""
    where = p.get("raised_in") or p.get("frame") or p.get("frames") or "torch/"
    first = where if isinstance(where, str) else where[-1 if mark == "known_failure" else 0]
    return first.split("/")[0] if "/" in first else "torch"


def known_bugs_table(targets):
    modules = {module: (package, base) for (package, base, module) in targets if package in SCENARIO_PACKAGES}
    lines = ["| project | target | case | torch releases | symptom | why |", "| --- | --- | --- | --- | --- | --- |"]
    for module, (package, base) in sorted(modules.items(), key=lambda kv: kv[1]):
        for cls, method, mark, p in marks(os.path.join(ROOT, *module.split(".")) + ".py"):
            versions = p.get("torch_versions") or "all"
            versions = ", ".join(versions) if isinstance(versions, tuple) else versions
            cells = [project(mark, p), f"`//{package}:{base}`", f"`{cls}.{method}`", versions, symptom(mark, p), p["why"]]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def framework_matrix(targets):
    """Framework x torch release x scenario: per case of the framework families (dsd/frameworks),
    per framework environment, what the target asserts (CI runs it): that it passes, or the
    framework's or torch's bug its mark pins on that release."""
    envs = [e.name for e in env_catalog.environments().values() if e.role == "frameworks"]
    torch_of = {e: _torch_version(e) for e in envs}
    modules = sorted({(base, module) for (package, base, module) in targets if package == "dsd/frameworks"})
    ids = case_ids([m for _, m in modules])
    lines = ["| target (`//dsd/frameworks:`) | case | " + " | ".join(f"`{e}` (torch {torch_of[e]})" for e in envs) + " |",
             "| --- | --- |" + " --- |" * len(envs)]
    for base, module in modules:
        path = os.path.join(ROOT, *module.split(".")) + ".py"
        pinned = {f"{cls}.{method}": (mark, p) for cls, method, mark, p in marks(path) + torch_requirements(path)}
        for case in ids[module]:
            mark = next((m for name, m in pinned.items() if case == name or case.startswith(name + "_")), None)
            cells = [_expected(mark, torch_of[e]) for e in envs]
            lines.append(f"| `{base}` | `{case}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _torch_version(env):
    """The torch an environment's lock pins (None: it has none, e.g. the tools environment)."""
    with open(os.path.join(ROOT, "third_party", "envs", env + ".lock")) as f:
        found = re.search(r"^torch==(\S+)", f.read(), re.M)
    return found and found.group(1)


def torch_requirements(path):
    """[(class, method, "requires_torch", {"versions", "why"})] of a module's requires_torch cases."""
    with open(path) as f:
        tree = ast.parse(f.read())
    return [(cls.name, fn.name, "requires_torch", dict(zip(("versions", "why"), map(_value, deco.args))))
            for cls in tree.body if isinstance(cls, ast.ClassDef) for fn in cls.body
            for deco in getattr(fn, "decorator_list", []) if getattr(getattr(deco, "func", None), "id", "") == "requires_torch"]


def _expected(mark, torch_version):
    if mark is None:
        return "passes"
    name, p = mark
    if name == "requires_torch":
        wanted = (p["versions"],) if isinstance(p["versions"], str) else p["versions"]
        return "passes" if any(torch_version.startswith(v) for v in wanted) else f"skipped: {p['why']}"
    versions = p.get("torch_versions")
    versions = (versions,) if isinstance(versions, str) else versions
    if versions is not None and not any(torch_version.startswith(v) for v in versions):
        return "passes"
    return f"known {project(name, p)} bug: `{p.get('exc_type', name)}`"


def generate():
    targets = query_targets()
    cases = count_cases(sorted({m for (_, _, m) in targets}))
    empty = sorted(m for m, n in cases.items() if n == 0)
    problems = [f"scenario module {m} defines no test case" for m in empty] + coverage_check.coverage_problems(targets)
    return {"scenario-table": scenario_table(targets, cases), "known-bugs": known_bugs_table(targets),
            "compat-matrix": compat_matrix(targets, cases), "upstream-coverage": coverage_check.coverage_table(),
            "framework-matrix": framework_matrix(targets)}, problems


def mutation_problems(targets):
    """Why README's mutation table is not tools/mutate.py's latest output: it must be the
    rendering of tools/mutations/score.json, which names the commit and suite it was measured on
    (a run takes hours on 2 cores, so the figure is labelled rather than remeasured per commit).
    A note, not a problem, when this commit's gpu2 suite differs from the score's."""
    from tools import mutate
    if not os.path.exists(mutate.SCORE):
        return ["no mutation score (tools/mutations/score.json): run python3 tools/mutate.py --write"]
    with open(mutate.SCORE) as f:
        score = json.load(f)
    problems = []
    if readme.stale({"mutation-score": mutate.render(score)}):
        problems.append("README.md's mutation table is not tools/mutations/score.json's: run python3 tools/mutate.py --write")
    suite = {label: {"cases": cases} for label, cases in gpu2_suite(targets).items()}
    if mutate.suite_fingerprint(suite) != score["suite"]:
        print(f"note: the mutation score (commit {score['commit']}, suite {score['suite']}) was measured on another "
              f"gpu2 suite than this commit's ({mutate.suite_fingerprint(suite)}); the README says which")
    return problems


def cost_problems():
    """Why README's checkpoint-cost table is not tools/checkpoint_bench.py's recorded results."""
    from tools import checkpoint_bench
    if not os.path.exists(checkpoint_bench.RESULTS):
        return ["no checkpoint cost results (tools/checkpoint_cost.json): run python3 tools/checkpoint_bench.py --write"]
    with open(checkpoint_bench.RESULTS) as f:
        results = json.load(f)
    if readme.stale({"checkpoint-cost": checkpoint_bench.render(results)}):
        return ["README.md's checkpoint-cost table is not tools/checkpoint_cost.json's: run python3 "
                "tools/checkpoint_bench.py --write"]
    return []


def gpu2_suite(targets):
    """{label: [case id]} of the default environment's scenario targets tagged gpu2 (at most 2
    ranks in any phase): the suite tools/mutate.py runs."""
    labels = {f"//{package}:{base}_{variant}": module for (package, base, module), variants in targets.items()
              if package == "dsd" for variant in variants if re.fullmatch(r"gpu\d+(to\d+)*", variant)
              and max(map(int, re.findall(r"\d+", variant))) == 2}
    ids = case_ids(sorted(set(labels.values())))
    return {label: ids[module] for label, module in labels.items()}


def main(argv):
    if argv[:1] == ["--count-cases"]:
        return _count_cases_here(argv[1:])
    if argv[:1] == ["--case-ids"]:
        return _case_ids_here(argv[1:])
    tables, problems = generate()
    if "--check" in argv:
        problems += mutation_problems(query_targets()) + cost_problems()
    if problems:
        print("\n".join(problems))
        return 1
    if not {"--check", "--write"} & set(argv):
        print("\n\n".join(tables.values()))
        return 0
    if "--check" in argv:
        stale = readme.stale(tables)
        if stale:
            print(f"README.md is stale ({', '.join(stale)}): run python3 tools/catalogue.py --write")
            return 1
        print("README.md's catalogue matches bazel query and the code; its mutation table is tools/mutate.py's recorded "
              "score")
        return 0
    readme.write(tables)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
