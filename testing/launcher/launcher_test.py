"""The launcher end to end: each fault fails the target where it happened, the verdict rules,
Bazel's test protocol, known-failure marks, parallel launches, signals and cleanup.

Runs `python -m testing.launcher` as a subprocess on the fixture modules in testdata/, with
the environment Bazel would give it, and checks exit codes, the JUnit XML and that no process
of the launch survives it.
"""

import concurrent.futures
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized

from testing.launcher import gpu_slots
from testing.launcher import flight_recorder
from testing.launcher import launcher
from testing.launcher import processes
from testing.launcher.protocol import Status
from third_party.envs import probe

TESTDATA = "testing.launcher.testdata."
SAMPLE_CASES = [
    "CollectivesTest.test_all_reduce",
    "CollectivesTest.test_broadcast_one",
    "CollectivesTest.test_broadcast_three",
    "CollectivesTest.test_skipped",
    "ScratchDirTest.test_checkpoint_dir_is_shared",
]
FAULT_CASES = ["AFaultsTest.test_a", "AFaultsTest.test_b", "BAfterTest.test_c"]
# The one limit a hanging fault waits out, made short. Every other limit of a fault row stays at
# its default: a slow but healthy moment on a loaded machine (a spawned rank's interpreter teardown
# with torch, which no gc.freeze shortens) must not become a second, false fault.
HANG_LIMIT = {"setup_class_hang": "--fixture_timeout=6", "teardown_class_hang": "--fixture_timeout=6",
              "between_hang": "--idle_timeout=6", "shutdown_hang": "--shutdown_timeout=6",
              "exit_hang": "--exit_timeout=6", "interpreter_hang": "--exit_timeout=6",
              "interpreter_thread": "--exit_timeout=6"}
SHORT_LIMITS = sorted(set(HANG_LIMIT.values()))  # the four limits at once, for the fault-free row
_XML_STATUS = {"failure": Status.FAILED, "error": Status.ERROR, "skipped": Status.SKIPPED,
               "flakyFailure": Status.FLAKY, "flakyError": Status.FLAKY}


class Run:
    """One launcher subprocess and what it left behind."""

    def __init__(self, test, module, world_size=2, env=None, flags=()):
        self.test = test
        self.tmp = test.create_tempdir().full_path
        self.xml = os.path.join(self.tmp, "test.xml")
        self.outputs = os.path.join(self.tmp, "outputs")
        self.warnings = os.path.join(self.tmp, "warnings.txt")
        self.token = ("DSD_LEAK_TOKEN", uuid.uuid4().hex)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TEST_", "TESTBRIDGE_", "XML_OUTPUT", "DSD_"))}
        self.premature_exit = os.path.join(self.tmp, "premature_exit")
        self.env.update(PYTHONPATH=os.pathsep.join(sys.path), TEST_TMPDIR=self.tmp, XML_OUTPUT_FILE=self.xml,
                        TEST_PREMATURE_EXIT_FILE=self.premature_exit,
                        TEST_UNDECLARED_OUTPUTS_DIR=self.outputs, TEST_WARNINGS_OUTPUT_FILE=self.warnings,
                        DSD_DEVICE="cpu", **dict([self.token]))
        self.env.update(env or {})
        self.cmd = [sys.executable, "-m", "testing.launcher", f"--test_module={TESTDATA}{module}",
                    f"--world_size={world_size}", *flags]
        self.proc = None

    def start(self):
        # stdin never a terminal: a --debug_rank rank would otherwise wait on it
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        return self

    def wait(self, timeout=300):
        self.output, _ = self.proc.communicate(timeout=timeout)
        self.returncode = self.proc.returncode
        return self

    def run(self):
        return self.start().wait()

    def suite(self):
        return ET.parse(self.xml).getroot().find("testsuite")

    def results(self):
        """{id: (Status, message, text)} from the XML, in XML order."""
        out, suite = {}, self.suite().get("name")
        for case in self.suite().iter("testcase"):
            cls = case.get("classname")[len(suite) + 1:]
            status, message, text = Status.PASSED, "", ""
            for element in case:
                if element.tag in _XML_STATUS:
                    status = _XML_STATUS[element.tag]
                    if element.get("type") == "pytest.xfail":
                        status = Status.XFAILED
                    message, text = element.get("message", ""), element.text or ""
            out[f"{cls}.{case.get('name')}" if cls else case.get("name")] = (status, message, text)
        return out

    def statuses(self):
        return {rid: r[0] for rid, r in self.results().items()}

    def assert_no_leftovers(self, within=10.0):
        deadline = time.monotonic() + within
        while processes.processes_with_env(*self.token) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.test.assertEmpty(processes.processes_with_env(*self.token), "processes of the launch outlived it")


class PassingModuleTest(parameterized.TestCase):

    @parameterized.parameters(2, 4)
    def test_all_cases_run_in_one_launch_and_the_xml_matches(self, world_size):
        run = Run(self, "sample_cases", world_size=world_size).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(list(run.statuses()), SAMPLE_CASES)
        self.assertEqual(run.statuses()["CollectivesTest.test_skipped"], Status.SKIPPED)
        suite = run.suite()
        self.assertEqual((suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")),
                         ("5", "0", "0", "1"))
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        self.assertEqual((props["device"], props["world_sizes"], props["launches"]), ("cpu", str(world_size), "1"))
        for name in ("torch.version", "torch.git_version", "torch.python", "environments", "device.why", "shard"):
            self.assertTrue(props.get(name), name)
        self.assertEqual(sorted(os.listdir(run.outputs)), ["attempt0"], "one launch for the whole module")
        for rank in range(world_size):
            self.assertTrue(os.path.exists(os.path.join(run.outputs, "attempt0", f"rank{rank}.log")))
        self.assertIn("4 passed, 0 failed, 0 errors, 1 skipped", run.output)
        run.assert_no_leftovers()


class FaultsInCasesTest(absltest.TestCase):
    """A case that fails on one rank, crashes or hangs fails alone; the next case runs."""

    def test_assertion_on_one_rank_fails_the_case_everywhere(self):
        start = time.monotonic()
        results = self.run_mode("fail", "--failure_grace=3")
        status, message, text = results["FailureModesTest.test_a_assert_on_last_rank_only"]
        self.assertEqual(status, Status.FAILED)
        self.assertIn("rank(s) [1]", message)
        self.assertIn("deliberate failure on the last rank", text)
        self.assertIn("in all_reduce", text, "the stuck rank's stack is reported")
        self.assertEqual(results["FailureModesTest.test_b_after_assert"][0], Status.PASSED)
        self.assertLess(time.monotonic() - start, 90, "no wait for the process-group timeout")

    def test_crashing_rank_fails_the_case_with_its_exit_code(self):
        results = self.run_mode("crash")
        status, message, text = results["FailureModesTest.test_c_rank_crashes"]
        self.assertEqual(status, Status.ERROR)
        self.assertIn("rank 1: exit code 3", message)
        self.assertRegex(text, r"--- exits ---\n(.*\n)*rank 1: exit code 3\n", "how each rank ended is attached")
        self.assertEqual(results["FailureModesTest.test_d_after_crash"][0], Status.PASSED)

    def test_hung_collective_times_out_with_stacks(self):
        results = self.run_mode("hang", "--case_timeout=8")
        status, message, text = results["FailureModesTest.test_e_rank_skips_collective"]
        self.assertEqual(status, Status.ERROR)
        self.assertIn("timed out after 8s (--case_timeout)", message)
        self.assertIn("in all_reduce", text, "faulthandler stacks of the hung rank")
        self.assertEqual(results["FailureModesTest.test_f_after_hang"][0], Status.PASSED)
        # The hung rank's log slice runs to the end of its log: the stacks dumped before the kill.
        self.assertIn("failures/FailureModesTest.test_e_rank_skips_collective/", text)
        self.assertIn("in all_reduce", read(self.outputs, "failures", "FailureModesTest.test_e_rank_skips_collective",
                                            "rank0.log"))

    def run_mode(self, mode, *flags):
        run = Run(self, "failing_cases", env={"DSD_FIXTURE_MODES": mode}, flags=flags).run()
        self.assertEqual(run.returncode, 1, run.output)
        run.assert_no_leftovers()
        self.outputs = run.outputs
        return run.results()


def fault_limits(fault):
    return [HANG_LIMIT[fault]] if fault in HANG_LIMIT else []


# fault -> (the failing entry, the words its message must contain, status of each case)
OK, NOT_RUN = Status.PASSED, Status.ERROR
FAULTS = {
    "setup_module_raise": ("setUpModule", "deliberate setUpModule error", [NOT_RUN] * 3),
    "teardown_module_raise": ("tearDownModule", "deliberate tearDownModule error", [OK] * 3),
    "setup_class_raise": ("AFaultsTest.setUpClass", "deliberate setUpClass error", [NOT_RUN, NOT_RUN, OK]),
    "setup_class_hang": ("AFaultsTest.setUpClass", "timed out after 6s (--fixture_timeout)", [NOT_RUN, NOT_RUN, OK]),
    "setup_class_crash": ("AFaultsTest.setUpClass", "rank 1: exit code 4", [NOT_RUN, NOT_RUN, OK]),
    "teardown_class_raise": ("AFaultsTest.tearDownClass", "deliberate tearDownClass error", [OK] * 3),
    "teardown_class_hang": ("AFaultsTest.tearDownClass", "timed out after 6s (--fixture_timeout)", [OK] * 3),
    "teardown_class_crash": ("AFaultsTest.tearDownClass", "rank 1: exit code 5", [OK] * 3),
    "class_cleanup_raise": ("AFaultsTest.tearDownClass", "deliberate class cleanup error", [OK] * 3),
    "between_crash": ("launcher.between_units", "after AFaultsTest.test_a, before their next unit", [OK] * 3),
    "between_hang": ("launcher.between_units", "recorded nothing for 6s (--idle_timeout)", [OK] * 3),
    "shutdown_raise": ("launcher.shutdown", "deliberate error in destroy_process_group", [OK] * 3),
    "shutdown_hang": ("launcher.shutdown", "shutdown timed out after 6s (--shutdown_timeout)", [OK] * 3),
    "shutdown_crash": ("launcher.shutdown", "rank 1: exit code 7", [OK] * 3),
    "exit_crash": ("launcher.exit", "rank 1: exit code 9", [OK] * 3),
    "exit_hang": ("launcher.exit", "did not exit within 6s (--exit_timeout)", [OK] * 3),
    "interpreter_abort": ("launcher.exit", "rank 1: signal SIGABRT", [OK] * 3),
    "interpreter_hang": ("launcher.exit", "did not exit within 6s (--exit_timeout)", [OK] * 3),
    "interpreter_status": ("launcher.exit", "rank 1: exit code 3", [OK] * 3),
    "interpreter_thread": ("launcher.exit", "did not exit within 6s (--exit_timeout)", [OK] * 3),
}


class FaultsOutsideCasesTest(parameterized.TestCase):
    """Faults in fixtures, between units, in shutdown and after the last record: each fails the
    target with an entry named where it happened; no case takes the blame for it."""

    @parameterized.named_parameters(*((name, name, *expected) for name, expected in FAULTS.items()))
    def test_fault(self, fault, entry, words, case_statuses):
        run = Run(self, "fault_cases", env={"DSD_FAULT": fault}, flags=fault_limits(fault)).run()
        self.assertEqual(run.returncode, 1, run.output)
        results = run.results()
        self.assertIn(entry, results, run.output)
        status, message, text = results[entry]
        self.assertEqual(status, Status.ERROR, message)
        self.assertIn(words, message + text)
        self.assertEqual([results[c][0] for c in FAULT_CASES], case_statuses, run.output)
        failing = [rid for rid, (s, _, _) in results.items() if s.failing and rid not in FAULT_CASES]
        self.assertEqual(failing, [entry], "exactly one entry names the fault:\n" + run.output)
        run.assert_no_leftovers()

    @parameterized.product(starter=["torchrun", "spawn"],
                           fault=["setup_class_crash", "between_crash", "shutdown_hang", "exit_crash",
                                  "interpreter_abort"])
    def test_fault_under_another_rank_starter(self, starter, fault):
        """The verdict does not depend on how the ranks start (starters.py)."""
        entry, words, case_statuses = FAULTS[fault]
        run = Run(self, "fault_cases", env={"DSD_FAULT": fault},
                  flags=fault_limits(fault) + [f"--rank_starter={starter}"])
        run.run()
        self.assertEqual(run.returncode, 1, run.output)
        results = run.results()
        self.assertIn(words, results[entry][1] + results[entry][2])
        self.assertEqual([results[c][0] for c in FAULT_CASES], case_statuses, run.output)
        failing = [rid for rid, (s, _, _) in results.items() if s.failing and rid not in FAULT_CASES]
        self.assertEqual(failing, [entry], "exactly one entry names the fault:\n" + run.output)
        run.assert_no_leftovers()

    def test_without_a_fault_everything_passes(self):
        """Every short limit at once does not trip the healthy fixture (fork starter)."""
        run = Run(self, "fault_cases", flags=SHORT_LIMITS).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(run.statuses(), {c: Status.PASSED for c in FAULT_CASES})


def read(*path):
    with open(os.path.join(*path), errors="replace") as f:
        return f.read()


def tree_size(path):
    return sum(os.path.getsize(os.path.join(root, n)) for root, _, names in os.walk(path) for n in names)


FAILED_CASE = "CheckpointThenFailTest.test_b_saves_then_fails"


class FailureArtifactsTest(absltest.TestCase):
    """A failed case leaves what a maintainer needs in the outputs (Bazel's outputs.zip): its
    checkpoint and what each rank logged during it; passing cases leave nothing."""

    def test_a_failed_case_keeps_its_checkpoint_and_rank_log_slices(self):
        run = Run(self, "checkpoint_failure_cases", flags=["--tee_rank=1"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        self.assertEqual(run.statuses(), {"CheckpointThenFailTest.test_a_passes": Status.PASSED,
                                          FAILED_CASE: Status.FAILED, "CheckpointThenFailTest.test_c_passes": Status.PASSED})
        self.assertEqual(os.listdir(os.path.join(run.outputs, "failures")), [FAILED_CASE], "passing cases leave nothing")
        dest = os.path.join(run.outputs, "failures", FAILED_CASE)
        self.assertEqual(sorted(os.listdir(dest)), ["checkpoint", "rank0.log", "rank1.log", "result.txt"])
        self.assertIn(f"failures/{FAILED_CASE}/", run.results()[FAILED_CASE][2], "the XML entry names them")
        self.assertIn("deliberate failure after saving a checkpoint", read(dest, "result.txt"))
        for rank in (0, 1):
            log = read(dest, f"rank{rank}.log")
            self.assertIn(f"rank {rank}: saving a checkpoint", log)
            self.assertIn(f"rank {rank}: saved, now failing", log)
            self.assertNotIn("marker of test_", log, "only the lines of the failed case")
        # The checkpoint is complete: torch reads back what every rank saved.
        from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
        import torch

        saved = os.path.join(self.create_tempdir().full_path, "saved.pt")
        dcp_to_torch_save(os.path.join(dest, "checkpoint", "checkpoint"), saved)
        state = torch.load(saved)
        self.assertEqual(sorted(state), ["rank0", "rank1", "weight"])
        self.assertEqual(state["rank1"].tolist(), [1.0] * 4)
        # --tee_rank=1: rank 1's output, live and labelled, and no other rank's.
        self.assertIn("[rank1] marker of test_a_passes on rank 1", run.output)
        self.assertIn("[rank1] rank 1: saved, now failing", run.output)
        self.assertNotIn("[rank0]", run.output)
        run.assert_no_leftovers()

    def test_the_checkpoint_kept_is_capped_and_a_note_says_what_was_left_out(self):
        run = Run(self, "checkpoint_failure_cases", env={"DSD_FIXTURE_BLOB_BYTES": str(600 * 1024)},
                  flags=["--failure_artifacts_mb=1", f"--test_filter={FAILED_CASE}"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        dest = os.path.join(run.outputs, "failures", FAILED_CASE)
        self.assertLessEqual(tree_size(os.path.join(dest, "checkpoint")), 2**20)
        self.assertTrue(os.path.exists(os.path.join(dest, "checkpoint", "checkpoint", ".metadata")), "small files first")
        note = read(dest, "NOTE.txt")
        self.assertIn("1 file(s) left out", note)
        self.assertRegex(note, r"blobs/blob[01]\.bin  614400 bytes")

    def test_coverage_of_the_checkpoint_code_per_rank(self):
        run = Run(self, "checkpoint_failure_cases", flags=["--coverage", f"--test_filter={FAILED_CASE}"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        import coverage
        import torch

        files = sorted(glob.glob(os.path.join(run.outputs, "coverage", "coverage.*")))
        self.assertEqual([re.sub(r"\.\d+\.[0-9a-f]+$", "", os.path.basename(f)) for f in files],
                         [f"coverage.torch-{torch.__version__}.rank{r}" for r in (0, 1)])
        for path in files:
            data = coverage.CoverageData(path)
            data.read()
            measured = data.measured_files()
            self.assertTrue(measured)
            self.assertEqual([f for f in measured if "/torch/distributed/checkpoint/" not in f], [],
                             "only torch.distributed.checkpoint is measured")
            saver = [f for f in measured if f.endswith("/torch/distributed/checkpoint/state_dict_saver.py")]
            self.assertTrue(saver and data.lines(saver[0]), "dcp.save ran under coverage")


class FlightRecorderTest(absltest.TestCase):
    """The launcher's half of NCCL's flight recorder on CUDA; torch's half (the watchdog reading
    its pipe, the dump) needs a GPU and is not verified here: a stand-in plays it."""

    def test_a_cuda_launch_arms_it_and_asks_stuck_ranks_for_a_dump(self):
        tmp = self.create_tempdir().full_path
        attempt = os.path.join(tmp, "out", "attempt0")
        recorder = flight_recorder.FlightRecorder(attempt, os.path.join(tmp, "pipes", "attempt0"))
        unset = {k: v for k, v in os.environ.items() if not k.startswith(("TORCH_NCCL_", "TORCH_FR_"))}
        with mock.patch.dict(os.environ, unset, clear=True):
            env = recorder.env()
        self.assertEqual((env["TORCH_NCCL_TRACE_BUFFER_SIZE"], env["TORCH_NCCL_DUMP_ON_TIMEOUT"]), ("2000", "1"))
        dump = env["TORCH_NCCL_DEBUG_INFO_TEMP_FILE"]
        self.assertEqual(dump, os.path.join(attempt, "nccl_flight_recorder", "rank_"), "in the outputs")
        self.assertFalse(env["TORCH_NCCL_DEBUG_INFO_PIPE_FILE"].startswith(os.path.join(tmp, "out")),
                         "FIFOs stay out of the outputs")
        pipe = env["TORCH_NCCL_DEBUG_INFO_PIPE_FILE"] + "1.pipe"  # torch: <prefix><global rank>.pipe
        os.mkfifo(pipe)
        fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        asked = []

        def watchdog():  # rank 1's NCCL watchdog: a read on its pipe makes it dump
            while not asked:
                try:
                    data = os.read(fd, 128)
                except BlockingIOError:
                    data = b""
                if data:
                    asked.append(data)
                else:
                    time.sleep(0.05)
            with open(dump + "1", "w") as f:
                f.write("flight recorder entries of rank 1")

        threading.Thread(target=watchdog, daemon=True).start()
        started = time.monotonic()
        recorder.dump([0, 1])  # rank 0 has no pipe (NCCL not initialised): not waited for
        self.assertEqual(asked, [b"1\n"])
        self.assertTrue(os.path.exists(dump + "1"))
        self.assertLess(time.monotonic() - started, 5)


class DebugRankTest(absltest.TestCase):

    def test_the_debugged_rank_waits_in_pdb_at_the_start_of_the_case(self):
        run = Run(self, "sample_cases", env={"DSD_DEBUG_RANK": "1"},
                  flags=["--test_filter=CollectivesTest.test_all_reduce"]).start()
        port = None
        for line in run.proc.stdout:
            m = re.search(r"rank 1 waits for a debugger: nc 127.0.0.1 (\d+)", line)
            if m:
                port = int(m.group(1))
                break
        self.assertIsNotNone(port, "rank 1 announces its debugger (teed from its log)")
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:

            def command(line=None):
                if line:
                    conn.sendall(line.encode() + b"\n")
                text = b""
                while not text.endswith(b"(Pdb) "):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    text += chunk
                return text.decode()

            where = command()
            self.assertIn("sample_cases.py(13)test_all_reduce()", where, "stopped in the case's own code")
            self.assertIn("-> t = torch.tensor([float(self.rank + 1)]", where)
            self.assertEqual(command("p self.rank"), "1\n(Pdb) ")
            time.sleep(3)  # the other rank waits in its collective meanwhile; nothing times it out
            conn.sendall(b"c\n")
        run.wait()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(run.statuses(), {"CollectivesTest.test_all_reduce": Status.PASSED})
        run.assert_no_leftovers()


class VerdictRulesTest(absltest.TestCase):

    def test_a_module_without_cases_fails(self):
        run = Run(self, "empty_module").run()
        self.assertEqual(run.returncode, 1, run.output)
        self.assertEqual(run.results()["launcher.plan"][0], Status.ERROR)
        self.assertIn("defines no test case", run.results()["launcher.plan"][1])

    def test_a_filter_matching_nothing_fails(self):
        run = Run(self, "sample_cases", flags=["--test_filter=NoSuchTest"]).run()
        self.assertEqual(run.returncode, 1)
        self.assertIn("matched none of the 5 cases", run.results()["launcher.test_filter"][1])

    def test_an_empty_shard_passes_and_says_so(self):
        run = Run(self, "sample_cases", env={"TEST_SHARD_INDEX": "5", "TEST_TOTAL_SHARDS": "6"}).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(run.results(), {})
        self.assertIn("shard 6 of 6 has no case: 5 case(s) over 6 shards", run.suite().find("system-out").text)

    def test_known_failures(self):
        run = Run(self, "known_failure_cases").run()
        self.assertEqual(run.returncode, 1, run.output)
        results = run.results()
        for case in ("MarksTest.test_torch_error_reproduces", "MarksTest.test_wrong_result_reproduces"):
            status, message, text = results[case]
            self.assertEqual(status, Status.XFAILED, run.output)
            self.assertIn("known bug: a torch", message + text)
        status, message, _ = results["MarksTest.test_bug_fixed"]
        self.assertEqual(status, Status.FAILED)
        self.assertIn("unexpected success", message)
        for case in ("MarksTest.test_own_assertion_cannot_be_pinned", "MarksTest.test_own_key_error_cannot_be_pinned",
                     "MarksTest.test_torch_error_from_elsewhere_in_torch_is_not_the_known_bug"):
            status, message, _ = results[case]
            self.assertEqual(status, Status.FAILED, case)
            self.assertRegex(message, r"@known_failure pins \w+ raised in torch/\S+; this one was raised at ", case)
        self.assertIn("known_failure_cases.py", results["MarksTest.test_own_key_error_cannot_be_pinned"][1])
        self.assertIn("in get_submodule",
                      results["MarksTest.test_torch_error_from_elsewhere_in_torch_is_not_the_known_bug"][1])
        self.assertIn("2 expected failures (known torch bugs)", run.output)
        self.assertEqual(run.suite().get("skipped"), "2", "expected failures are <skipped type=pytest.xfail>")


class EnvironmentCheckTest(absltest.TestCase):

    def test_an_environment_that_is_not_what_its_key_says_fails(self):
        info = self.create_tempfile(content=json.dumps(dict(probe.describe(), python="2.7"))).full_path
        run = Run(self, "sample_cases", flags=["--phases=2@x", f"--env=x={sys.executable}:{info}"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        status, message, _ = run.results()["launcher.environment"]
        self.assertEqual(status, Status.ERROR)
        self.assertIn("python: recorded '2.7', found '3.11'", message)
        self.assertIn("run ./bazelw env", message)

    def test_the_recorded_environment_runs(self):
        info = self.create_tempfile(content=json.dumps(probe.describe())).full_path
        run = Run(self, "sample_cases", flags=["--phases=2@x", f"--env=x={sys.executable}:{info}"]).run()
        self.assertEqual(run.returncode, 0, run.output)


class BazelProtocolTest(absltest.TestCase):

    def test_three_shards_cover_every_case_exactly_once(self):
        runs = []
        for index in range(3):
            status_file = os.path.join(self.create_tempdir().full_path, "shard_status")
            runs.append((Run(self, "sample_cases", env={"TEST_SHARD_INDEX": str(index), "TEST_TOTAL_SHARDS": "3",
                                                          "TEST_SHARD_STATUS_FILE": status_file}), status_file))
        seen = []
        for run, status_file in runs:
            run.run()
            self.assertEqual(run.returncode, 0, run.output)
            self.assertTrue(os.path.exists(status_file), "TEST_SHARD_STATUS_FILE touched")
            seen += list(run.statuses())
        self.assertCountEqual(seen, SAMPLE_CASES)

    def test_testbridge_filter_selects_one_case(self):
        run = Run(self, "sample_cases", env={"TESTBRIDGE_TEST_ONLY": "CollectivesTest.test_broadcast_three"}).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(list(run.statuses()), ["CollectivesTest.test_broadcast_three"])

    def test_a_plain_word_selects_parameterized_variants_and_exclusions_apply(self):
        run = Run(self, "sample_cases", env={"TESTBRIDGE_TEST_ONLY": "test_broadcast,-*three"}).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(list(run.statuses()), ["CollectivesTest.test_broadcast_one"])

    def test_fail_fast_stops_after_the_first_failure(self):
        run = Run(self, "failing_cases", env={"DSD_FIXTURE_MODES": "fail", "TESTBRIDGE_TEST_RUNNER_FAIL_FAST": "1"},
                  flags=["--failure_grace=3"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        results = run.results()
        self.assertEqual(results["FailureModesTest.test_a_assert_on_last_rank_only"][0], Status.FAILED)
        self.assertEqual(results["FailureModesTest.test_b_after_assert"][0], Status.SKIPPED)
        self.assertIn("--test_runner_fail_fast", results["FailureModesTest.test_b_after_assert"][1])

    def test_the_premature_exit_file_exists_while_the_launcher_runs(self):
        marker = os.path.join(self.create_tempdir().full_path, "premature_exit")
        run = Run(self, "sample_cases", env={"TEST_PREMATURE_EXIT_FILE": marker},
                  flags=["--test_filter=CollectivesTest.test_all_reduce"]).start()
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and run.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(marker), "created at start")
        run.wait()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertFalse(os.path.exists(marker), "removed when the launcher returns")

    def test_cpu_ranks_chosen_by_bazel_for_lack_of_gpus_warn_and_requested_ones_do_not(self):
        why = "auto: ./bazelw saw 0 GPU(s), 2 needed"
        run = Run(self, "sample_cases", env={"DSD_DEVICE": "cpu", "DSD_DEVICE_WHY": why},
                  flags=["--test_filter=CollectivesTest.test_all_reduce"]).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertIn(f"ranks ran on CPU with gloo, not CUDA ({why})", read(run.warnings))
        run = Run(self, "sample_cases", flags=["--test_filter=CollectivesTest.test_all_reduce"]).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertFalse(os.path.exists(run.warnings), "--config=cpu asked for CPU ranks: nothing to warn about")

    def test_no_cuda_when_cuda_is_required_is_an_infrastructure_failure(self):
        infra = os.path.join(self.create_tempdir().full_path, "test.infrastructure_failure")
        run = Run(self, "sample_cases", env={"DSD_DEVICE": "cuda", "CUDA_VISIBLE_DEVICES": "",
                                             "TEST_INFRASTRUCTURE_FAILURE_FILE": infra}).run()
        self.assertEqual(run.returncode, 1, run.output)
        status, message, _ = run.results()["launcher.device"]
        self.assertEqual(status, Status.ERROR)
        self.assertEqual(read(infra), f"dsd launcher: {message}\n")

    def test_gpu_slots_not_free_in_time_are_an_infrastructure_failure(self):
        tmp = self.create_tempdir().full_path
        locks, infra, xml = (os.path.join(tmp, name) for name in ("locks", "infra", "test.xml"))
        holder = gpu_slots.GpuSlots(["0", "1"], 2, locks, timeout=1).__enter__()  # another target holds both
        self.addCleanup(holder.close)
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.addCleanup(lambda: [signal.signal(sig, h) for sig, h in handlers.items()])
        env = {"CUDA_VISIBLE_DEVICES": "0,1", "TEST_INFRASTRUCTURE_FAILURE_FILE": infra, "TEST_TMPDIR": tmp}
        with mock.patch.object(gpu_slots, "torch_has_cuda", return_value=True), mock.patch.dict(os.environ, env):
            rc = launcher.main([f"--test_module={TESTDATA}sample_cases", "--world_size=2", "--device=cuda",
                                f"--gpu_lock_dir={locks}", "--gpu_lock_timeout=1", f"--xml_output={xml}"])
        self.assertEqual(rc, 1)
        self.assertIn("no 2 free GPU slots", read(infra))
        (case,) = ET.parse(xml).getroot().iter("testcase")
        self.assertEqual((case.get("name"), case.find("error").get("message")),
                         ("device", read(infra)[len("dsd launcher: "):].strip()))

    def test_eight_parallel_launches_do_not_collide(self):
        runs = [Run(self, "sample_cases", flags=["--test_filter=CollectivesTest.test_all_reduce"]) for _ in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda r: r.start().wait(), runs))
        for run in runs:
            self.assertEqual(run.returncode, 0, run.output)
            self.assertEqual(run.statuses()["CollectivesTest.test_all_reduce"], Status.PASSED)
            run.assert_no_leftovers()


class SignalsTest(absltest.TestCase):

    def wait_for_start(self, run, case, timeout=120):
        path = os.path.join(run.outputs, "attempt0", "rank0.jsonl")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    if any(json.loads(line).get("unit") == case for line in f if line.endswith("\n")):
                        return
            time.sleep(0.2)
        self.fail(f"{case} did not start")

    def test_sigterm_reports_the_running_case_and_kills_every_rank(self):
        run = Run(self, "failing_cases", env={"DSD_FIXTURE_MODES": "hang"}, flags=["--case_timeout=300"]).start()
        self.wait_for_start(run, "FailureModesTest.test_e_rank_skips_collective")
        run.proc.send_signal(signal.SIGTERM)
        run.wait(60)
        self.assertEqual(run.returncode, 143, run.output)
        results = run.results()
        self.assertEqual(results["FailureModesTest.test_e_rank_skips_collective"][0], Status.ERROR)
        self.assertIn("interrupted", results["FailureModesTest.test_e_rank_skips_collective"][1])
        self.assertIn("interrupted", results["FailureModesTest.test_f_after_hang"][1])
        run.assert_no_leftovers()

    def test_sigkill_of_the_launcher_leaves_no_rank_behind(self):
        run = Run(self, "failing_cases", env={"DSD_FIXTURE_MODES": "hang"}, flags=["--case_timeout=300"]).start()
        self.wait_for_start(run, "FailureModesTest.test_e_rank_skips_collective")
        self.assertGreaterEqual(len(processes.processes_with_env(*run.token)), 4, "launcher, rank group and 2 ranks")
        run.proc.kill()
        run.wait(30)
        run.assert_no_leftovers()
        self.assertTrue(os.path.exists(run.premature_exit), "Bazel learns that the launcher did not return")


class FlakyAndQuarantineTest(absltest.TestCase):
    """A case that fails, then passes when rerun in a fresh launch, is FLAKY (never PASSED, never
    hidden); a quarantined case runs and is reported skipped with its reason and this run's outcome."""

    FLAKY, ALWAYS, PASSES = "FlakyTest.test_fails_the_first_time", "FlakyTest.test_always_fails", "FlakyTest.test_passes"

    def test_without_reruns_a_flaky_case_fails(self):
        run = Run(self, "flaky_cases", flags=[f"--test_filter={self.FLAKY}"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        self.assertEqual(run.statuses(), {self.FLAKY: Status.FAILED})

    def test_a_case_that_passes_on_a_rerun_is_flaky(self):
        run = Run(self, "flaky_cases", flags=["--flaky_reruns=2", f"--test_filter={self.FLAKY},{self.PASSES}"]).run()
        self.assertEqual(run.returncode, 0, run.output)
        self.assertEqual(run.statuses(), {self.FLAKY: Status.FLAKY, self.PASSES: Status.PASSED})
        self.assertIn("failed, then passed on rerun 1 in a fresh launch: failed on rank(s)", run.results()[self.FLAKY][1])
        self.assertIn("deliberately flaky", run.results()[self.FLAKY][2], "the first failure is kept")
        self.assertIn("1 flaky", run.output)
        # a failed case ends its launch (the cases after it run in attempt1), the rerun has its own
        self.assertEqual(sorted(os.listdir(run.outputs)), ["attempt0", "attempt1", "failures", "rerun1"])
        run.assert_no_leftovers()

    def test_a_case_that_fails_every_rerun_stays_failed(self):
        run = Run(self, "flaky_cases", flags=["--flaky_reruns=2", f"--test_filter={self.ALWAYS}"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        self.assertEqual(run.statuses(), {self.ALWAYS: Status.FAILED})
        self.assertIn("rerun 2 of 2", run.output)

    def test_a_quarantined_case_runs_and_is_skipped_with_why(self):
        path = self.create_tempfile(content=json.dumps({"quarantine": [
            {"module": f"{TESTDATA}flaky_cases", "case": self.ALWAYS, "reason": "broken on purpose",
             "link": "https://example.org/issues/1"},
            {"module": f"{TESTDATA}flaky_cases", "case": self.PASSES, "reason": "was flaky", "link": "#2",
             "targets": ["//testing/launcher:another_target"]}]})).full_path
        run = Run(self, "flaky_cases", env={"TEST_TARGET": "//testing/launcher:flaky_cases_gpu2"},
                  flags=[f"--quarantine={path}", f"--test_filter={self.ALWAYS},{self.PASSES}"]).run()
        self.assertEqual(run.returncode, 0, run.output)
        status, message, _ = run.results()[self.ALWAYS]
        self.assertEqual(status, Status.SKIPPED)
        self.assertRegex(message, r"^quarantined: broken on purpose \(https://example.org/issues/1\); this run: "
                                  r"failed: failed on rank\(s\) \[0, 1\]")
        self.assertEqual(run.results()[self.PASSES][0], Status.PASSED, "quarantined for another target only")


class RandomSeedTest(absltest.TestCase):
    """Every case starts from torch.manual_seed(TEST_RANDOM_SEED), 0 without it (Bazel sets it to
    the run number under --runs_per_test)."""

    def test_cases_start_from_bazels_seed(self):
        for given, expected, returncode in (("7", "7", 0), (None, "0", 0), ("7", "0", 1)):
            env = {"EXPECTED_SEED": expected, **({"TEST_RANDOM_SEED": given} if given else {})}
            run = Run(self, "seed_cases", env=env).run()
            self.assertEqual(run.returncode, returncode, run.output)


class PhasesTest(absltest.TestCase):

    def test_phases_share_tmpdir_and_merge_per_case(self):
        run = Run(self, "phased_cases", flags=["--phases=2,1"]).run()
        self.assertEqual(run.returncode, 1, run.output)
        results = run.results()
        self.assertEqual(results["PhasedTest.test_later_phase_reads_what_phase_0_wrote"][0], Status.PASSED)
        status, message, _ = results["PhasedTest.test_fails_only_in_phase_1"]
        self.assertEqual(status, Status.FAILED)
        self.assertIn("phase 1 (world size 1)", message)
        self.assertEqual(sorted(os.listdir(run.outputs)), ["phase0", "phase1"])
        run.assert_no_leftovers()


if __name__ == "__main__":
    absltest.main()
