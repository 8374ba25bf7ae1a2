"""The CI examples users copy (examples/github-actions/*.yml) are well-formed workflows that run
what this repository has: strict YAML (a subset parser, below: PyYAML is not in the locked
environments; where it is importable the two must agree), GitHub Actions' structure, and every
`./bazelw ... --config=X` naming a config of .bazelrc, every tools/*.py existing with the flags
it is given. Stdlib unittest: also runs under pytest."""

import glob
import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples", "github-actions")


class YamlError(ValueError):
    pass


class _Parser:
    """Block mappings and sequences, plain / quoted / flow-sequence scalars and literal or folded
    block scalars; refuses tabs, bad indentation, duplicate keys, anchors, tags and multi-line
    plain scalars. Keys stay strings (`on` is not a boolean, as for GitHub)."""

    def __init__(self, text, name):
        self.lines, self.name, self.i = text.split("\n"), name, 0

    def error(self, message, line=None):
        return YamlError(f"{self.name}:{(self.i if line is None else line) + 1}: {message}")

    def meaningful(self):
        """(indent, content) of the next non-blank, non-comment line, or None."""
        while self.i < len(self.lines):
            line = self.lines[self.i]
            stripped = line.strip()
            if stripped and not stripped.startswith("#") and stripped != "---":
                head = line[:len(line) - len(line.lstrip(" \t"))]
                if "\t" in head:
                    raise self.error("tab in indentation")
                return len(head), line.strip()
            self.i += 1
        return None

    def document(self):
        node = self.block(0)
        if self.meaningful() is not None:
            raise self.error("unexpected content (bad indentation?)")
        return node

    def block(self, indent):
        here = self.meaningful()
        if here is None:
            return None
        if here[0] != indent:
            raise self.error(f"expected indentation {indent}, got {here[0]}")
        return self.sequence(indent) if _is_item(here[1]) else self.mapping(indent)

    def mapping(self, indent):
        out = {}
        while True:
            here = self.meaningful()
            if here is None or here[0] < indent:
                return out
            if here[0] > indent:
                raise self.error("bad indentation")
            if _is_item(here[1]):
                raise self.error("a sequence item where a mapping key was expected")
            key, rest = self.split_key(here[1])
            if key in out:
                raise self.error(f"duplicate key {key!r}")
            line = self.i
            self.i += 1
            if rest == "":
                nxt = self.meaningful()
                if nxt is not None and nxt[0] > indent:
                    out[key] = self.block(nxt[0])
                elif nxt is not None and nxt[0] == indent and _is_item(nxt[1]):
                    out[key] = self.sequence(indent)
                else:
                    out[key] = None
            elif rest[0] in "|>":
                out[key] = self.block_scalar(rest, indent, line)
            else:
                out[key] = self.scalar(rest, line)

    def sequence(self, indent):
        out = []
        while True:
            here = self.meaningful()
            if here is None or here[0] < indent:
                return out
            if here[0] > indent or not _is_item(here[1]):
                raise self.error("bad indentation in a sequence")
            rest = here[1][1:].lstrip(" ")
            if rest == "" or rest.startswith("#"):
                self.i += 1
                nxt = self.meaningful()
                out.append(self.block(nxt[0]) if nxt is not None and nxt[0] > indent else None)
            elif self.is_mapping_entry(rest):
                # "- key: value": a mapping whose keys line up with `key`
                column = indent + len(here[1]) - len(rest)
                self.lines[self.i] = " " * column + rest
                out.append(self.mapping(column))
            else:
                line = self.i
                self.i += 1
                out.append(self.block_scalar(rest, indent, line) if rest[0] in "|>" else self.scalar(rest, line))

    def is_mapping_entry(self, text):
        try:
            self.split_key(text)
            return True
        except YamlError:
            return False

    def split_key(self, text):
        if text[0] in "\"'":
            end = _closing_quote(text)
            if end is None:
                raise self.error("unterminated quoted key")
            key, rest = _unquote(text[:end + 1]), text[end + 1:]
            if not rest.startswith(":") or (len(rest) > 1 and rest[1] != " "):
                raise self.error("expected ': ' after a quoted key")
            return key, _strip_comment(rest[1:]).strip()
        m = re.match(r"([^\s:#&*!|>'\"{}\[\],][^:]*?)\s*:(?:\s+|$)(.*)$", text)
        if not m:
            raise self.error(f"expected 'key: value', got {text!r}")
        return m.group(1), _strip_comment(m.group(2)).strip()

    def scalar(self, text, line):
        text = _strip_comment(text).strip()
        if text[0] in "&*!":
            raise self.error("anchors, aliases and tags are not used in these files", line)
        if text[0] in "\"'":
            end = _closing_quote(text)
            if end is None:
                raise self.error("unterminated quoted scalar (quoted scalars stay on one line)", line)
            if text[end + 1:].strip():
                raise self.error(f"text after a quoted scalar: {text[end + 1:]!r}", line)
            return _unquote(text)
        if text[0] == "[":
            if not text.endswith("]") or re.search(r"[\[\]{}]", text[1:-1]):
                raise self.error("flow sequences are one line of plain or quoted scalars", line)
            return [self.scalar(item, line) for item in _split_flow(text[1:-1], self.error) if item.strip()]
        if text[0] in "{@`%" or text[0] in "]}":
            raise self.error(f"a plain scalar cannot start with {text[0]!r}", line)
        if ": " in text or text.endswith(":"):
            raise self.error(f"mapping values are not allowed here: {text!r}", line)
        nxt = self.meaningful()
        if nxt is not None and nxt[0] > self.current_indent(line):
            raise self.error("bad indentation (a plain scalar continued on the next line?)")
        return _plain(text)

    def current_indent(self, line):
        raw = self.lines[line]
        return len(raw) - len(raw.lstrip(" "))

    def block_scalar(self, header, indent, line):
        m = re.fullmatch(r"([|>])([-+]?)\s*(#.*)?", header)
        if not m:
            raise self.error(f"bad block scalar header {header!r}", line)
        body, content_indent = [], None
        while self.i < len(self.lines):
            raw = self.lines[self.i]
            if raw.strip() == "":
                body.append("")
                self.i += 1
                continue
            lead = len(raw) - len(raw.lstrip(" "))
            if content_indent is None:
                if lead <= indent:
                    break
                content_indent = lead
            if lead < content_indent:
                if lead > indent:
                    raise self.error("bad indentation in a block scalar")
                break
            body.append(raw[content_indent:])
            self.i += 1
        while body and body[-1] == "":
            body.pop()
        if m.group(1) == "|":
            text = "\n".join(body)
        else:
            text = re.sub(r"(?<!\n)\n(?!\n)", " ", "\n".join(body)).replace("\n\n", "\n")
        return text if m.group(2) == "-" else text + "\n"


def _is_item(content):
    return content == "-" or content.startswith("- ")


def _closing_quote(text):
    quote, i = text[0], 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1:i + 2] == "'":
                i += 2
                continue
            return i
        i += 1
    return None


def _unquote(text):
    if text[0] == "'":
        return text[1:-1].replace("''", "'")
    return re.sub(r'\\(["\\/nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text[1:-1])


def _strip_comment(text):
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'" and (i == 0 or text[i - 1] in " [,"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] == " "):
            return text[:i]
    return text


def _split_flow(text, error):
    items, quote, start = [], None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            items.append(text[start:i])
            start = i + 1
    if quote:
        raise error("unterminated quote in a flow sequence")
    return items + [text[start:]]


def _plain(text):
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in ("null", "~", "Null", "NULL"):
        return None
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return text


def parse_yaml(text, name="<yaml>"):
    return _Parser(text, name).document()


# ---- GitHub Actions workflows ----------------------------------------------------------------

_WORKFLOW_KEYS = {"name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs"}
_EVENTS = {"pull_request", "push", "schedule", "workflow_dispatch", "workflow_call", "merge_group", "release"}
_JOB_KEYS = {"name", "runs-on", "steps", "timeout-minutes", "needs", "if", "env", "strategy", "concurrency",
             "permissions", "defaults", "continue-on-error", "services", "container", "outputs", "environment"}
_STEP_KEYS = {"name", "id", "if", "uses", "run", "with", "env", "shell", "working-directory", "continue-on-error",
              "timeout-minutes"}


def _bazelrc_configs():
    with open(os.path.join(ROOT, ".bazelrc")) as f:
        return set(re.findall(r"^\s*\w+:([\w-]+)\s", f.read(), re.M))


def _flags_of(script):
    """The flags a script knows: its quoted "--flag" literals (argparse's add_argument or by hand)."""
    with open(os.path.join(ROOT, script)) as f:
        return set(re.findall(r"[\"'](--[\w-]+)[\"'=]", f.read()))


def workflow_problems(workflow, name):
    """Structural problems of one workflow, as readable lines (empty: none)."""
    problems = []
    if not isinstance(workflow, dict):
        return [f"{name}: not a mapping"]
    problems += [f"{name}: unknown top-level key {k!r}" for k in workflow if k not in _WORKFLOW_KEYS]
    on = workflow.get("on")
    events = on if isinstance(on, (list, dict)) else [on] if on else []
    if not events:
        problems.append(f"{name}: no 'on' trigger")
    problems += [f"{name}: unknown event {e!r}" for e in events if e not in _EVENTS]
    jobs = workflow.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        return problems + [f"{name}: no jobs"]
    for job_id, job in jobs.items():
        where = f"{name}: job {job_id}"
        if not isinstance(job, dict):
            problems.append(f"{where}: not a mapping")
            continue
        problems += [f"{where}: unknown key {k!r}" for k in job if k not in _JOB_KEYS]
        if not job.get("runs-on"):
            problems.append(f"{where}: no runs-on")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            problems.append(f"{where}: no steps")
            continue
        for n, step in enumerate(steps):
            at = f"{where}: step {n + 1}"
            if not isinstance(step, dict):
                problems.append(f"{at}: not a mapping")
                continue
            problems += [f"{at}: unknown key {k!r}" for k in step if k not in _STEP_KEYS]
            if ("uses" in step) == ("run" in step):
                problems.append(f"{at}: needs exactly one of uses / run")
            if "uses" in step and not re.fullmatch(r"[\w.-]+/[\w./-]+@[\w.-]+", str(step["uses"])):
                problems.append(f"{at}: uses {step['uses']!r} is not owner/repo@ref")
            if "run" in step:
                problems += [f"{at}: {p}" for p in command_problems(str(step["run"]))]
    return problems


def command_problems(script):
    """What a run: script uses of this repository must exist: ./bazelw configs, tools and their flags."""
    problems = []
    if script.count("${{") != script.count("}}"):
        problems.append("unbalanced ${{ }} expression")
    configs = _bazelrc_configs()
    for config in re.findall(r"--config=([\w-]+)", script):
        if config not in configs:
            problems.append(f"--config={config} is not defined in .bazelrc")
    for tool, args in re.findall(r"((?:tools|testing)/[\w/]+\.py)([^\n;&|]*)", script):
        if not os.path.exists(os.path.join(ROOT, tool)):
            problems.append(f"{tool} does not exist")
            continue
        known = _flags_of(tool)
        problems += [f"{tool} has no flag {flag}" for flag in re.findall(r"\s(--[\w-]+)", args) if flag not in known]
    if re.search(r"(^|\s)\./bazelw\b", script) and not os.path.exists(os.path.join(ROOT, "bazelw")):
        problems.append("./bazelw does not exist")
    return problems


def load(path):
    with open(path) as f:
        return parse_yaml(f.read(), os.path.relpath(path, ROOT))


class YamlSubsetTest(unittest.TestCase):

    def test_what_the_examples_use(self):
        doc = parse_yaml('name: "a # b"\non:\n  push:\n    branches: [main, "x"]\njobs:\n  j:\n    steps:\n'
                         "      - uses: a/b@v1 # c\n        with:\n          k: 'it''s'\n"
                         "      - run: |\n          one\n\n          two\n      - run: >-\n          a\n          b\n")
        self.assertEqual(doc, {"name": "a # b", "on": {"push": {"branches": ["main", "x"]}}, "jobs": {"j": {"steps": [
            {"uses": "a/b@v1", "with": {"k": "it's"}}, {"run": "one\n\ntwo\n"}, {"run": "a b"}]}}})

    def test_broken_yaml_fails(self):
        for text, message in (
                ("a:\n  b: 1\n   c: 2\n", "indentation"),
                ("a:\n\tb: 1\n", "tab"),
                ("a: 1\na: 2\n", "duplicate key"),
                ('a: "open\n', "unterminated"),
                ("a: b: c\n", "mapping values are not allowed"),
                ("a:\n  - x\n  y: 1\n", "sequence"),
                ("a: [x, [y]]\n", "flow sequences"),
                ("a: &anchor x\n", "anchors"),
                ("a: plain\n  continued\n", "indentation"),
        ):
            with self.subTest(text=text):
                with self.assertRaisesRegex(YamlError, message):
                    parse_yaml(text)


class BazelrcConfigsTest(unittest.TestCase):
    """--config=cpu|gpu (used by the examples and the README) choose the device for `bazel run` as
    for `bazel test`: the device flag sits under build: (which run and test inherit) or common:."""

    def test_device_configs_apply_to_run(self):
        with open(os.path.join(ROOT, ".bazelrc")) as f:
            lines = re.findall(r"^(\w+):(cpu|gpu)\s+(.*)$", f.read(), re.M)
        for config, device in (("cpu", "cpu"), ("gpu", "cuda")):
            commands = {command for command, name, option in lines
                        if name == config and option.strip() == f"--//testing:device={device}"}
            self.assertTrue(commands, f"--config={config} does not set --//testing:device={device}")
            self.assertLessEqual(commands, {"build", "common"}, f"--config={config} would not apply to bazel run")


class GithubActionsExamplesTest(unittest.TestCase):

    def setUp(self):
        self.files = {os.path.basename(p): p for p in sorted(glob.glob(os.path.join(EXAMPLES, "*.yml")))}
        self.assertEqual(sorted(self.files), ["affected.yml", "cpu.yml", "gpu.yml"])

    def test_every_example_is_a_well_formed_workflow_of_this_repository(self):
        for name, path in self.files.items():
            with self.subTest(name):
                self.assertEqual(workflow_problems(load(path), name), [])

    def test_the_three_jobs(self):
        cpu, gpu, affected = (load(self.files[n]) for n in ("cpu.yml", "gpu.yml", "affected.yml"))
        runs = lambda wf: "\n".join(s.get("run", "") for job in wf["jobs"].values() for s in job["steps"])  # noqa: E731
        self.assertIn("pull_request", cpu["on"])
        self.assertIn("./bazelw test --config=ci", runs(cpu))
        self.assertIn("self-hosted", gpu["jobs"]["gpu"]["runs-on"])
        self.assertNotIn("pull_request", gpu["on"], "a self-hosted runner must not run pull requests' code")
        self.assertIn("--config=gpu", runs(gpu))
        self.assertIn("pull_request", affected["on"])
        self.assertIn("tools/affected.py --base", runs(affected))
        test_step = next(s for s in affected["jobs"]["affected"]["steps"] if "--target_pattern_file" in s.get("run", "")
                         and "bazelw" in s.get("run", ""))
        self.assertIn("if", test_step, "an empty selection must not run `bazel test` without targets")

    def test_checks_catch_drift(self):
        self.assertIn("--config=no-such-config is not defined in .bazelrc",
                      command_problems("./bazelw test --config=no-such-config //..."))
        self.assertIn("tools/affected.py has no flag --since",
                      command_problems("python3 tools/affected.py --since origin/main"))
        self.assertIn("tools/gone.py does not exist", command_problems("python3 tools/gone.py"))
        self.assertIn("job j: no runs-on", "\n".join(workflow_problems({"on": "push", "jobs": {"j": {"steps": [
            {"run": "true"}]}}}, "w")))

    def test_pyyaml_agrees_where_it_is_installed(self):
        try:
            import yaml
        except ImportError:
            self.skipTest("PyYAML is not installed in this interpreter (the subset parser alone checks)")
        for name, path in self.files.items():
            with open(path) as f:
                theirs = yaml.safe_load(f)
            theirs = {("on" if k is True else k): v for k, v in theirs.items()}  # YAML 1.1: on is a boolean
            self.assertEqual(load(path), theirs, name)


if __name__ == "__main__":
    unittest.main()
