"""The CI examples (examples/github-actions/*.yml) are workflows GitHub would accept, and they name
only what this repository has: YAML parsed by PyYAML, the structure checked against GitHub's
workflow schema (the copy check-jsonschema vendors, with the jsonschema library), and each
`run:` script's ./bazelw configs, tools and tool flags checked against .bazelrc and the tools.
Runs in the tools environment (PyYAML, check-jsonschema)."""

import glob
import importlib.resources
import json
import os
import re
import unittest

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples", "github-actions")
SCHEMA = json.loads(importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
                    .joinpath("github-workflows.json").read_text())


def load(path):
    """A workflow file, as GitHub reads it (YAML 1.1 makes the key `on` a boolean: it is `on`)."""
    with open(path) as f:
        workflow = yaml.safe_load(f)
    return {("on" if key is True else key): value for key, value in workflow.items()}


def schema_problems(workflow, name):
    """Where `workflow` breaks GitHub's workflow schema, one line each (empty: none), each naming
    the deepest reason jsonschema found (inside oneOf/anyOf alternatives)."""
    problems = []
    for error in jsonschema.Draft7Validator(SCHEMA).iter_errors(workflow):
        while error.context:
            error = jsonschema.exceptions.best_match(error.context)
        problems.append(f"{name}: {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message[:200]}")
    return sorted(problems)


def run_scripts(workflow):
    return [str(step["run"]) for job in workflow.get("jobs", {}).values() for step in job.get("steps", [])
            if "run" in step]


def _bazelrc_configs():
    with open(os.path.join(ROOT, ".bazelrc")) as f:
        return set(re.findall(r"^\s*\w+:([\w-]+)\s", f.read(), re.M))


def _flags_of(script):
    """The flags a script knows: its quoted "--flag" literals (argparse's add_argument or by hand)."""
    with open(os.path.join(ROOT, script)) as f:
        return set(re.findall(r"[\"'](--[\w-]+)[\"'=]", f.read()))


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

    def test_every_example_is_a_workflow_github_accepts_and_names_only_what_exists(self):
        for name, path in self.files.items():
            with self.subTest(name):
                workflow = load(path)
                self.assertEqual(schema_problems(workflow, name), [])
                self.assertEqual([p for script in run_scripts(workflow) for p in command_problems(script)], [])

    def test_the_three_jobs(self):
        cpu, gpu, affected = (load(self.files[n]) for n in ("cpu.yml", "gpu.yml", "affected.yml"))
        runs = lambda wf: "\n".join(run_scripts(wf))  # noqa: E731
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
        no_runner = schema_problems({"on": "push", "jobs": {"j": {"steps": [{"run": "true"}]}}}, "w")
        self.assertTrue(any("jobs/j" in p and "runs-on" in p for p in no_runner), no_runner)
        bad_step = schema_problems({"on": "push", "jobs": {"j": {"runs-on": "x", "steps": [{"rnu": "true"}]}}}, "w")
        self.assertTrue(bad_step, "a step with a misspelt key is refused")

    def test_broken_yaml_fails(self):
        for text in ("a:\n  b: 1\n   c: 2\n", "a:\n\tb: 1\n", 'a: "open\n', "a: b: c\n"):
            with self.subTest(text=text):
                with self.assertRaises(yaml.YAMLError):
                    yaml.safe_load(text)


if __name__ == "__main__":
    unittest.main()
