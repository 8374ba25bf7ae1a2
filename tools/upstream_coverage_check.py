"""The upstream-coverage table's data checked against what the cases really do: every covered
entry of tools/upstream_coverage.py cites cases that exist and whose code (the test method and,
transitively, the repository helpers it calls) uses the identifiers the entry names; and the
README table, computed per upstream test function. Stdlib only (ast)."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _strip_docstrings(tree):
    """`tree` (a copy) without docstrings: a case's code, not what it says about itself."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


class _Module:
    """A parsed Python file of this repository: its functions, classes and imported names."""

    def __init__(self, root, path):
        self.root, self.path = root, path
        with open(path) as f:
            self.tree = _strip_docstrings(ast.parse(f.read(), path))
        self.functions = {n.name: n for n in self.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self.classes = {n.name: n for n in self.tree.body if isinstance(n, ast.ClassDef)}
        self.imports = {}  # local name -> (dotted module, attribute or None)
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.partition(".")[0]] = (alias.asname and alias.name
                                                                                  or alias.name.partition(".")[0], None)


class _CaseCode:
    """The code of scenario cases as --check reads it: a test method (with its decorators) and,
    transitively, what it calls or names in this repository: methods of its class and base classes
    (self.x, super().x), functions and classes of its module and of the dsd/*_checks.py,
    dsd/*_test.py and testing/*.py modules it imports (a class: all of its methods). Fixtures
    (models/) and torch are not its code. Each piece is ast-unparsed, so docstrings are dropped
    and comments are gone."""

    def __init__(self, root):
        self.root, self._modules = root, {}

    def module(self, dotted):
        """The _Module of `dotted` if it is one whose helpers count (or the scenario itself), else None."""
        package, _, name = dotted.rpartition(".")
        helper = (package == "testing" or package == "dsd.frameworks"  # a framework family: all its modules
                  or (package == "dsd" and (name.endswith("_checks") or name.endswith("_test"))))
        path = os.path.join(self.root, *dotted.split(".")) + ".py"
        if not helper or not os.path.isfile(path):
            return None
        if dotted not in self._modules:
            self._modules[dotted] = _Module(self.root, path)
        return self._modules[dotted]

    def resolve(self, module, name):
        """What `name` means in `module`: ("function"|"class", module, node), ("module", module), or None."""
        if name in module.functions:
            return ("function", module, module.functions[name])
        if name in module.classes:
            return ("class", module, module.classes[name])
        if name in module.imports:
            dotted, attr = module.imports[name]
            if attr is None:
                target = self.module(dotted)
                return ("module", target) if target else None
            target = self.module(f"{dotted}.{attr}")
            if target:
                return ("module", target)
            target = self.module(dotted)
            return self.resolve(target, attr) if target else None
        return None

    def resolve_expr(self, module, expr):
        """A Name or module.attribute expression -> resolve()'s answer."""
        if isinstance(expr, ast.Name):
            return self.resolve(module, expr.id)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            found = self.resolve(module, expr.value.id)
            if found and found[0] == "module":
                return self.resolve(found[1], expr.attr)
        return None

    def mro(self, module, cls):
        """[(module, ClassDef)] of `cls` and its resolvable base classes, depth first."""
        order = [(module, cls)]
        for base in cls.bases:
            found = self.resolve_expr(module, base)
            if found and found[0] == "class":
                order += [c for c in self.mro(found[1], found[2]) if c not in order]
        return order

    def method(self, mro, name, after=None):
        """(module, FunctionDef) of the first definition of `name` along `mro` (after class `after`)."""
        skipping = after is not None
        for module, cls in mro:
            if skipping:
                skipping = cls is not after
                continue
            for node in cls.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                    return module, node
        return None

    def find_case(self, case_id):
        """(module, mro, FunctionDef) of `module.Class.test_method` under dsd/ (the module relative
        to it: `frameworks.torchtitan_checkpoint_test.ResumeTest.test_x` for a framework family), or None."""
        parts = case_id.split(".")
        if len(parts) < 3:
            return None
        module = self.module("dsd." + ".".join(parts[:-2]))
        parts = [None, *parts[-2:]]
        cls = module and module.classes.get(parts[1])
        if cls is None:
            return None
        mro = self.mro(module, cls)
        found = self.method(mro, parts[2])
        return (found[0], mro, found[1]) if found and parts[2].startswith("test") else None

    def code(self, case_id):
        """The unparsed code of the case and of everything it reaches, or None if there is no such case."""
        found = self.find_case(case_id)
        if found is None:
            return None
        module, mro, node = found
        seen, texts = set(), []
        todo = [(module, mro, None, node)]  # (module, the self-class's mro, defining class, node)
        while todo:
            module, mro, owner, node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            texts.append(ast.unparse(node))
            if isinstance(node, ast.ClassDef):  # a helper class the case uses: all of its methods
                class_mro = self.mro(module, node)
                todo += [(module, class_mro, node, n) for n in node.body
                         if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id in ("self",
                                                                                                         "cls"):
                    target = self.method(mro, sub.attr) if mro else None
                elif (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Call)
                      and isinstance(sub.value.func, ast.Name) and sub.value.func.id == "super"):
                    target = self.method(mro, sub.attr, after=owner) if mro else None
                elif isinstance(sub, (ast.Name, ast.Attribute)):
                    found = self.resolve_expr(module, sub)
                    target = (found[1], found[2]) if found and found[0] in ("function", "class") else None
                else:
                    continue
                if target is not None:
                    target_module, target_node = target
                    owner_of = next((c for m, c in (mro or []) if target_node in c.body), None)
                    keep_mro = mro if owner_of is not None else None
                    todo.append((target_module, keep_mro, owner_of, target_node))
        return "\n".join(texts)


def _uses(code, use):
    """`use` (an identifier, or a code fragment as the code writes it) occurs in `code`, not as a part
    of a longer name."""
    forms = {use}
    try:
        forms.add(ast.unparse(ast.parse(use, mode="eval")))
    except SyntaxError:
        pass
    for form in forms:
        pattern = re.escape(form)
        if re.match(r"\w", form):
            pattern = r"(?<!\w)" + pattern
        if re.search(r"\w$", form):
            pattern += r"(?!\w)"
        if re.search(pattern, code):
            return True
    return False


def coverage_problems(targets, functions=None, root=ROOT):
    """Why tools/upstream_coverage.py disagrees with the scenarios (empty when it agrees), one line each:
    malformed entries, cited cases that do not exist, and `uses` a cited case's code does not contain."""
    from tools import upstream_coverage as uc
    functions = uc.FUNCTIONS if functions is None else functions
    modules = {module[len("dsd."):] for (package, base, module) in targets if package in ("dsd", "dsd/frameworks")}
    reader, problems = _CaseCode(root), []
    for upstream, entries in sorted(functions.items()):
        if isinstance(entries, uc.Entry):
            if entries.status != "not applicable" or not entries.functions:
                problems.append(f"{upstream}: a whole-file entry must be not_applicable(why, functions=(...))")
            entries = {fid: entries._replace(functions=()) for fid in entries.functions}
        for fid, entry in entries.items():
            where = f"{upstream} {fid}"
            if entry.status not in uc.STATUSES:
                problems.append(f"{where}: unknown status {entry.status!r}")
            elif entry.status == "not applicable" and not entry.what.startswith(uc.NOT_APPLICABLE_KINDS):
                problems.append(f"{where}: not_applicable's reason must start with one of {uc.NOT_APPLICABLE_KINDS}")
            elif entry.status == "not covered" and "missing:" not in entry.what:
                problems.append(f"{where}: not_covered needs 'what it checks; missing: ...'")
            elif entry.status == "covered" and not (entry.cases and entry.uses and entry.what):
                problems.append(f"{where}: covered needs cases, uses and what")
            for case in entry.cases:
                base = case.rsplit(".", 2)[0]
                if base not in modules:
                    problems.append(f"{where}: {case}: no scenario module {base} in //dsd/...")
                    continue
                code = reader.code(case)
                if code is None:
                    problems.append(f"{where}: {case}: no such case (module.Class.test_method)")
                    continue
                for use in entry.uses:
                    if not _uses(code, use):
                        problems.append(f"{where}: {case} does not use {use!r} (nor do the helpers it calls)")
    return problems


def _md(text):
    return text.replace("|", "\\|")


def _short(fid):
    """TestClass.test_name[sub-case] -> test_name[sub-case]."""
    name, bracket, sub = fid.partition("[")
    return name.rpartition(".")[2] + bracket + sub


def coverage_table():
    """Upstream DCP test file -> computed verdict, functions covered, the covering cases and, for
    each uncovered function, what is missing."""
    from tools import upstream_coverage as uc
    by_function, by_file = uc.counts()
    applicable = by_function["covered"] + by_function["not covered"]
    files_applicable = len(uc.FUNCTIONS) - by_file["not applicable"]
    lines = [f"{len(uc.FUNCTIONS)} upstream files, {sum(by_function.values())} test functions. Functions: of the "
             f"{applicable} that apply on CPU ranks, {by_function['covered']} covered, {by_function['not covered']} "
             f"not covered ({by_function['not applicable']} not applicable). Files, computed from their functions: "
             f"of the {files_applicable} that apply, {by_file['covered']} covered, {by_file['partly']} partly, "
             f"{by_file['not covered']} not covered ({by_file['not applicable']} not applicable).", "",
             "| upstream file | verdict | functions covered | cases (`//dsd/...`) | not covered: why |",
             "| --- | --- | --- | --- | --- |"]
    for upstream in sorted(uc.FUNCTIONS):
        entries = uc.functions(upstream)
        verdict = uc.verdict(upstream)
        n_applicable = sum(e.status != "not applicable" for e in entries.values())
        n_covered = sum(e.status == "covered" for e in entries.values())
        n_na = len(entries) - n_applicable
        tally = f"{n_covered} of {n_applicable}" + (f" ({n_na} n/a)" if n_na else "")
        cases = []
        for e in entries.values():
            cases += [c for c in e.cases if c not in cases]
        if verdict == "not applicable":
            why = "; ".join(dict.fromkeys(e.what for e in entries.values()))
        else:
            why = "; ".join(f"`{_short(fid)}`: {uc.missing(e)}" for fid, e in entries.items()
                            if e.status == "not covered")
        lines.append(f"| `{upstream}` | {verdict} | {tally} | {', '.join(f'`{c}`' for c in cases)} | {_md(why)} |")
    return "\n".join(lines)
