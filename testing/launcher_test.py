"""The launcher end to end: each failure mode, Bazel's test protocol, parallel launches, cleanup.

Runs `python -m testing.launcher` as a subprocess on the fixture modules in testdata/, with
the environment Bazel would give it, and checks exit codes, the JUnit XML and that no
process of the launch survives it.
"""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET

from absl.testing import absltest

from testing import launcher
from testing import results

SAMPLE = "testing.testdata.sample_cases"
FAILING = "testing.testdata.failing_cases"
SAMPLE_CASES = [
    "CollectivesTest.test_all_reduce",
    "CollectivesTest.test_broadcast_one",
    "CollectivesTest.test_broadcast_three",
    "CollectivesTest.test_skipped",
    "ScratchDirTest.test_checkpoint_dir_is_shared",
]


def _processes_with(token):
    return launcher.processes_with_env("DSD_LEAK_TOKEN=" + token)


class Run:
    """One launcher subprocess and what it left behind."""

    def __init__(self, test, module, world_size=2, env=None, flags=()):
        self.test = test
        self.tmp = test.create_tempdir().full_path
        self.xml = os.path.join(self.tmp, "test.xml")
        self.outputs = os.path.join(self.tmp, "outputs")
        self.token = uuid.uuid4().hex
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TEST_", "TESTBRIDGE_", "XML_OUTPUT", "DSD_"))}
        self.env.update(PYTHONPATH=os.pathsep.join(sys.path), TEST_TMPDIR=self.tmp,
                        XML_OUTPUT_FILE=self.xml, TEST_UNDECLARED_OUTPUTS_DIR=self.outputs,
                        DSD_DEVICE="cpu", DSD_LEAK_TOKEN=self.token)
        self.env.update(env or {})
        self.cmd = [sys.executable, "-m", "testing.launcher", f"--test_module={module}",
                    f"--world_size={world_size}", *flags]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        return self

    def wait(self, timeout=240):
        self.output, _ = self.proc.communicate(timeout=timeout)
        self.returncode = self.proc.returncode
        return self

    def run(self):
        return self.start().wait()

    def cases(self):
        """{case id: (status, message, text)} from the XML."""
        out = {}
        for case in ET.parse(self.xml).getroot().iter("testcase"):
            cls = case.get("classname").rsplit(".", 1)[-1]
            status, message, text = results.PASSED, "", ""
            for kind, status_ in (("failure", results.FAILED), ("skipped", results.SKIPPED)):
                el = case.find(kind)
                if el is not None:
                    status, message, text = status_, el.get("message", ""), el.text or ""
            out[f"{cls}.{case.get('name')}"] = (status, message, text)
        return out

    def assert_no_leftovers(self, within=10.0):
        deadline = time.monotonic() + within
        while _processes_with(self.token) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.test.assertEmpty(_processes_with(self.token), "processes of the launch outlived it")


class PassingModuleTest(absltest.TestCase):

    def test_all_cases_run_in_one_launch_and_xml_matches(self):
        run = Run(self, SAMPLE).run()
        self.assertEqual(run.returncode, 0, run.output)
        cases = run.cases()
        self.assertEqual(list(cases), SAMPLE_CASES)
        self.assertEqual(cases["CollectivesTest.test_skipped"][0], results.SKIPPED)
        suite = ET.parse(run.xml).getroot().find("testsuite")
        self.assertEqual((suite.get("tests"), suite.get("failures"), suite.get("skipped")), ("5", "0", "1"))
        self.assertEqual(sorted(os.listdir(run.outputs)), ["attempt0"], "one launch for the whole module")
        for rank in (0, 1):
            self.assertTrue(os.path.exists(os.path.join(run.outputs, "attempt0", f"rank{rank}.log")))
        self.assertIn("4 passed, 0 failed, 1 skipped", run.output)
        run.assert_no_leftovers()

    def test_world_size_four(self):
        run = Run(self, SAMPLE, world_size=4).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertLen(run.cases(), 5)


class FailureModesTest(absltest.TestCase):

    def run_mode(self, mode, *flags):
        run = Run(self, FAILING, env={"DSD_FIXTURE_MODES": mode}, flags=flags).run()
        self.assertEqual(run.returncode, 1, run.output)
        run.assert_no_leftovers()
        return run.cases()

    def test_assertion_on_one_rank_fails_the_case_everywhere_and_the_next_case_runs(self):
        start = time.monotonic()
        cases = self.run_mode("fail", "--failure_grace=3")
        status, message, text = cases["FailureModesTest.test_a_assert_on_last_rank_only"]
        self.assertEqual(status, results.FAILED)
        self.assertIn("rank(s) [1]", message)
        self.assertIn("deliberate failure on the last rank", text)
        self.assertIn("in all_reduce", text, "the stuck rank's stack is reported")
        self.assertEqual(cases["FailureModesTest.test_b_after_assert"][0], results.PASSED)
        self.assertLess(time.monotonic() - start, 60, "no wait for the process-group timeout")

    def test_crashing_rank_fails_the_case_and_the_next_case_runs(self):
        cases = self.run_mode("crash")
        status, message, text = cases["FailureModesTest.test_c_rank_crashes"]
        self.assertEqual(status, results.FAILED)
        self.assertIn("exited during the case", message)
        self.assertIn("exitcode  : 3", text, "torchrun's report of the crashed rank is attached")
        self.assertEqual(cases["FailureModesTest.test_d_after_crash"][0], results.PASSED)

    def test_hung_collective_times_out_with_stacks_and_the_next_case_runs(self):
        cases = self.run_mode("hang", "--case_timeout=8")
        status, message, text = cases["FailureModesTest.test_e_rank_skips_collective"]
        self.assertEqual(status, results.FAILED)
        self.assertIn("timed out after 8s", message)
        self.assertIn("test_e_rank_skips_collective", text)
        self.assertIn("in all_reduce", text, "faulthandler stacks of the hung rank")
        self.assertEqual(cases["FailureModesTest.test_f_after_hang"][0], results.PASSED)

    def test_sigterm_reports_the_running_case_and_kills_every_rank(self):
        run = Run(self, FAILING, env={"DSD_FIXTURE_MODES": "hang"}, flags=["--case_timeout=300"]).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not os.path.exists(
                os.path.join(run.outputs, "attempt0", "rank0.jsonl")):
            time.sleep(0.2)
        time.sleep(4)  # into the hanging case
        run.proc.send_signal(signal.SIGTERM)
        run.wait(60)
        self.assertEqual(run.returncode, 143, run.output)
        cases = run.cases()
        self.assertEqual(cases["FailureModesTest.test_e_rank_skips_collective"][0], results.FAILED)
        self.assertIn("interrupted", cases["FailureModesTest.test_f_after_hang"][1])
        run.assert_no_leftovers()

    def test_sigkill_of_the_launcher_leaves_no_rank_behind(self):
        run = Run(self, FAILING, env={"DSD_FIXTURE_MODES": "hang"}, flags=["--case_timeout=300"]).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_processes_with(run.token)) < 4:
            time.sleep(0.2)
        self.assertGreaterEqual(len(_processes_with(run.token)), 4, "launcher, torchrun and 2 ranks")
        run.proc.kill()
        run.wait(30)
        run.assert_no_leftovers()


class BazelProtocolTest(absltest.TestCase):

    def test_three_shards_cover_every_case_exactly_once(self):
        runs = []
        for index in range(3):
            status_file = os.path.join(self.create_tempdir().full_path, "shard_status")
            runs.append((Run(self, SAMPLE, env={"TEST_SHARD_INDEX": str(index), "TEST_TOTAL_SHARDS": "3",
                                                "TEST_SHARD_STATUS_FILE": status_file}), status_file))
        for run, _ in runs:
            run.run()
        seen = []
        for run, status_file in runs:
            self.assertEqual(run.returncode, 0, run.output)
            self.assertTrue(os.path.exists(status_file), "TEST_SHARD_STATUS_FILE touched")
            seen += list(run.cases())
        self.assertCountEqual(seen, SAMPLE_CASES)

    def test_testbridge_filter_selects_one_case(self):
        run = Run(self, SAMPLE, env={"TESTBRIDGE_TEST_ONLY": "CollectivesTest.test_broadcast_three"}).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(list(run.cases()), ["CollectivesTest.test_broadcast_three"])

    def test_select_from_build_and_test_filter_intersect(self):
        run = Run(self, SAMPLE, flags=["--select=CollectivesTest"],
                  env={"TESTBRIDGE_TEST_ONLY": "*broadcast*,ScratchDirTest"}).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(list(run.cases()), ["CollectivesTest.test_broadcast_one", "CollectivesTest.test_broadcast_three"])

    def test_filter_matching_nothing_fails(self):
        run = Run(self, SAMPLE, flags=["--test_filter=NoSuchTest"]).run()
        self.assertEqual(run.returncode, 1)
        self.assertIn("matched none of the 5 cases", run.output)

    def test_eight_parallel_launches_do_not_collide(self):
        runs = [Run(self, SAMPLE, flags=["--test_filter=CollectivesTest.test_all_reduce"]) for _ in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda r: r.start().wait(), runs))
        for run in runs:
            self.assertEqual(run.returncode, 0, run.output)
            self.assertEqual(run.cases()["CollectivesTest.test_all_reduce"][0], results.PASSED)
            run.assert_no_leftovers()


class PhasesTest(absltest.TestCase):

    def test_phases_share_tmpdir_and_merge_per_case(self):
        run = Run(self, "testing.testdata.phased_cases", flags=["--phases=2,1"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        cases = run.cases()
        self.assertEqual(cases["PhasedTest.test_later_phase_reads_what_phase_0_wrote"][0], results.PASSED)
        status, message, _ = cases["PhasedTest.test_fails_only_in_phase_1"]
        self.assertEqual(status, results.FAILED)
        self.assertIn("phase 1 (world size 1)", message)
        self.assertEqual(sorted(os.listdir(run.outputs)), ["phase0", "phase1"])
        run.assert_no_leftovers()


class ExitTimeAbortTest(absltest.TestCase):
    """torchrun failing *after* every rank reported every case must not turn the run red."""

    def setUp(self):
        super().setUp()
        launcher.FLAGS.test_filter = ""
        self.out = self.create_tempdir().full_path

    def collect(self, rank_records, rc):
        runner = launcher.Runner("cpu", 2, self.out, self.out, 0, 1, {})
        launch = launcher.Launch(runner, 0, skip=[])
        for rank, records in rank_records.items():
            with open(launch.rank_file(rank, "jsonl"), "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in records)
        launch.read()
        runner._collect(launch, rc)
        return runner

    @staticmethod
    def records(pid, finished=True):
        recs = [{"event": "plan", "cases": ["A.test_x"], "pid": pid, "matched": 1, "total": 1},
                {"event": "start", "case": "A.test_x", "t": 1.0}]
        if finished:
            recs.append({"event": "end", "case": "A.test_x", "status": "pass", "detail": "", "duration": 0.1, "t": 2.0})
        return recs

    def test_abort_after_all_results_passes_with_a_warning(self):
        runner = self.collect({0: self.records(10), 1: self.records(11)}, rc=-6)
        self.assertEqual([r.status for r in runner.results], [results.PASSED])
        self.assertLen(runner.warnings, 1)
        self.assertIn("exit-time abort", runner.warnings[0])

    def test_abort_mid_case_fails_the_case(self):
        runner = self.collect({0: self.records(10), 1: self.records(11, finished=False)}, rc=-6)
        self.assertEqual([r.status for r in runner.results], [results.FAILED])
        self.assertIn("rank(s) [1] exited during the case", runner.results[0].message)
        self.assertEmpty(runner.warnings)


if __name__ == "__main__":
    absltest.main()
