"""tools/dcp_coverage.py on hand-made per-rank data files in outputs.zip files of two targets,
measured in two environment directories: the report merges them onto the one that exists here.
(Runs in the default environment, for coverage.py; also under pytest.)"""

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import unittest
import zipfile

import coverage

from tools import dcp_coverage

MODULE = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"


class DcpCoverageTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.events = []

    def env(self, name):
        torch = os.path.join(self.tmp, name, "lib", "python3.11", "site-packages", "torch")
        for module in ("distributed/checkpoint/state_dict.py", "distributed/other.py"):
            os.makedirs(os.path.dirname(os.path.join(torch, module)), exist_ok=True)
            with open(os.path.join(torch, module), "w") as f:
                f.write(MODULE)
        return os.path.join(torch, "distributed", "checkpoint")

    def rank_data(self, pkg, call, rank):
        """One rank's data file, as rank_worker names it, having run `call` of the module (data
        measured outside the checkpoint package, here other.py, is left out of the report)."""
        path = os.path.join(self.tmp, "data", f"coverage.torch-9.9.0+cpu.rank{rank}.{1000 + rank}.abcdef")
        cov = coverage.Coverage(data_file=path, source=[os.path.dirname(pkg)])
        cov.start()
        spec = importlib.util.spec_from_file_location(f"fake_state_dict_{rank}", os.path.join(pkg, "state_dict.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        getattr(module, call)()
        cov.stop()
        cov.save()
        return path

    def target(self, label, *data_files):
        path = os.path.join(self.tmp, label.strip("/").replace("/", "_").replace(":", "_"), "outputs.zip")
        os.makedirs(os.path.dirname(path))
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("attempt0/rank0.log", "")
            for data in data_files:
                z.write(data, "coverage/" + os.path.basename(data))
        self.events.append({"id": {"testResult": {"label": label, "run": 1, "shard": 1, "attempt": 1}},
                            "testResult": {"testActionOutput": [{"name": "test.outputs__outputs.zip",
                                                                 "uri": "file://" + path}]}})

    def run_tool(self):
        events = os.path.join(self.tmp, "events.json")
        with open(events, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in self.events)
        out = os.path.join(self.tmp, "report")
        rc = dcp_coverage.main(["--events", events, "--output_dir", out, "--coverage", f"{sys.executable} -m coverage"])
        return rc, out

    def test_ranks_of_several_targets_and_environment_dirs_merge_into_one_report(self):
        here, elsewhere = self.env("env-a"), self.env("env-b")
        self.target("//dsd:a_test_gpu2", self.rank_data(here, "f", 0))
        self.target("//dsd:b_test_gpu2", self.rank_data(elsewhere, "g", 1))
        shutil.rmtree(os.path.join(self.tmp, "env-b"))  # measured on another machine, or a replaced env
        rc, out = self.run_tool()
        self.assertEqual(rc, 0)
        html = os.path.join(out, "torch-9.9.0+cpu")
        self.assertTrue(os.path.exists(os.path.join(html, "index.html")))
        with open(os.path.join(html, "report.txt")) as f:
            table = f.read()
        # f ran on one rank, g on the other: merged, every statement of the one file ran.
        self.assertIn(os.path.join(here, "state_dict.py"), table)
        self.assertNotIn("env-b", table)
        self.assertNotIn("other.py", table)
        self.assertRegex(table, r"TOTAL\s+4\s+0\s+100\.0%")

    def test_no_data_fails(self):
        self.target("//models:models_test")
        rc, _ = self.run_tool()
        self.assertEqual(rc, 1)


if __name__ == "__main__":
    unittest.main()
