"""tools/history/runs.py (events.py, junit.py): a build event file and its test.xml files become
one Invocation with every target, attempt and case, and the right status for each."""

import json
import os

from absl.testing import absltest

from tools.history import events
from tools.history import fixture
from tools.history import runs

LABEL = "//dsd:fsdp_model_state_test_gpu2"
PROPS = {"test_module": "dsd.fsdp_model_state_test", "world_sizes": "2", "environments": "torch2_13",
         "torch.version": "2.13.0+cpu", "device": "cpu", "shard": "1/1", "timing.wall": "5.00"}


class EventsTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.lines = [{"id": {"started": {}}, "started": {"uuid": "inv-1", "startTimeMillis": "1767261600000",
                                                          "command": "test", "workspaceDirectory": self.dir}}]

    def xml(self, name, cases, properties=PROPS, label=LABEL):
        path = os.path.join(self.dir, name)
        fixture.write_xml(path, label, cases, properties)
        return path

    def result(self, path, status="PASSED", attempt=1, shard=1, label=LABEL, uri=None):
        self.lines.append({"id": {"testResult": {"label": label, "run": 1, "shard": shard, "attempt": attempt}},
                           "testResult": {"testActionOutput": [{"name": "test.xml", "uri": uri or "file://" + path}],
                                          "status": status, "testAttemptDurationMillis": "2500"}})

    def summary(self, status, label=LABEL):
        self.lines.append({"id": {"testSummary": {"label": label}},
                           "testSummary": {"overallStatus": status, "totalRunDurationMillis": "5000"}})

    def load(self, **kwargs):
        path = os.path.join(self.dir, "events.json")
        with open(path, "w") as f:
            f.writelines(json.dumps(line) + "\n" for line in self.lines)
        return runs.load(path, **kwargs)

    def test_every_case_status_and_its_first_message_line(self):
        cases = [("C", "t_pass", "passed", 0.5, None), ("C", "t_fail", "failed", 1, "AssertionError: x\nmore"),
                 ("C", "t_error", "error", 1, "RuntimeError: y"), ("C", "t_skip", "skipped", 0, "needs CUDA"),
                 ("C", "t_xfail", "xfailed", 1, "known bug: z"), ("C", "t_flaky", "flaky", 1, "timed out\nstack")]
        path = self.xml("test.xml", cases)
        with open(path) as f:  # Surefire's other flaky child
            text = f.read().replace("</testsuite>", '<testcase classname="//dsd:fsdp_model_state_test_gpu2.C" '
                                    'name="t_flaky_error"><flakyError message="ConnectionError: w" /></testcase>'
                                    "</testsuite>")
        with open(path, "w") as f:
            f.write(text)
        self.result(path, "FAILED")
        self.summary("FAILED")
        got = {c.case_id: (c.status, c.message) for c in self.load().targets[0].attempts[0].cases}
        self.assertEqual(got, {
            "C.t_pass": ("passed", None), "C.t_fail": ("failed", "AssertionError: x"),
            "C.t_error": ("error", "RuntimeError: y"), "C.t_skip": ("skipped", "needs CUDA"),
            "C.t_xfail": ("xfailed", "known bug: z"), "C.t_flaky": ("flaky", "timed out"),
            "C.t_flaky_error": ("flaky", "ConnectionError: w")})

    def test_target_fields_come_from_the_launchers_properties(self):
        self.result(self.xml("test.xml", [("C", "t", "passed", 0.5, None)]))
        self.summary("PASSED")
        target = self.load().targets[0]
        self.assertEqual((target.scenario, target.torch_release, target.environments, target.world_sizes,
                          target.device, target.status, target.duration_s, target.shard_count),
                         ("fsdp_model_state_test", "2.13.0+cpu", "torch2_13", "2", "cpu", "PASSED", 5.0, 1))
        self.assertEqual(target.attempts[0].properties["timing.wall"], "5.00")

    def test_a_cross_version_target_is_named_by_its_environments(self):
        props = dict(PROPS, environments="torch2_13 -> torch2_14", world_sizes="2 -> 2")
        self.result(self.xml("test.xml", [("C", "t", "passed", 0.5, None)], props))
        self.assertEqual(self.load().targets[0].torch_release, "torch2_13 -> torch2_14")

    def test_a_plain_absltest_xml_records_its_cases(self):
        label = "//tools:xml_summary_test"
        path = self.xml("absl.xml", [("XmlSummaryTest", "test_a", "passed", 0.1, None),
                                     ("XmlSummaryTest", "test_b", "absl_skip", 0, None)], None, label)
        self.result(path, label=label)
        self.summary("PASSED", label=label)
        target = self.load().targets[0]
        self.assertEqual((target.scenario, target.test_module, target.torch_release), (label, None, None))
        self.assertEqual([(c.case_id, c.status) for c in target.attempts[0].cases],
                         [("XmlSummaryTest.test_a", "passed"), ("XmlSummaryTest.test_b", "skipped")])

    def test_a_case_bazel_reran_into_a_pass_is_flaky(self):
        first = self.xml("attempt_1.xml", [("C", "t", "failed", 1, "AssertionError: first"),
                                           ("C", "u", "passed", 1, None)])
        last = self.xml("test.xml", [("C", "t", "passed", 1, None), ("C", "u", "passed", 1, None)])
        self.result(last, "PASSED", attempt=2)  # events may come in any order
        self.result(first, "FAILED", attempt=1)
        self.summary("FLAKY")
        target = self.load().targets[0]
        self.assertEqual((target.status, target.attempt_count), ("FLAKY", 2))
        self.assertEqual([(a.attempt, a.is_last) for a in target.attempts], [(1, False), (2, True)])
        self.assertEqual([(c.case_id, c.status, c.message) for c in target.attempts[1].cases],
                         [("C.t", "flaky", "AssertionError: first"), ("C.u", "passed", None)])
        self.assertEqual(target.attempts[0].cases[0].status, "failed")

    def test_only_the_invocations_targets_are_read(self):
        self.xml("stale.xml", [("C", "t", "failed", 1, "from an earlier run")], label="//dsd:stale_test_gpu2")
        self.result(self.xml("test.xml", [("C", "t", "passed", 1, None)]))
        self.summary("PASSED")
        self.summary("NO_STATUS", label="//dsd:not_run_test_gpu2")
        invocation = self.load()
        self.assertEqual([t.label for t in invocation.targets], [LABEL, "//dsd:not_run_test_gpu2"])
        self.assertEqual(invocation.targets[1].attempts, [])

    def test_a_missing_remote_or_broken_xml_is_a_problem_not_a_crash(self):
        broken = os.path.join(self.dir, "broken.xml")
        with open(broken, "w") as f:
            f.write("<testsuites><testsuite")
        self.result(broken, "FAILED", shard=1)
        self.result(None, "FAILED", shard=2, uri="bytestream://cache/blobs/abc/12")
        self.result(os.path.join(self.dir, "gone.xml"), "FAILED", shard=3)
        problems = [a.problem for a in self.load().targets[0].attempts]
        self.assertIn("unreadable test.xml", problems[0])
        self.assertIn("not a local file: bytestream://", problems[1])
        self.assertIn("unreadable test.xml", problems[2])

    def test_the_invocation_itself(self):
        self.lines.append({"id": {"structuredCommandLine": {"commandLineLabel": "original"}},
                           "structuredCommandLine": {"commandLineLabel": "original", "sections": [
                               {"sectionLabel": "executable", "chunkList": {"chunk": ["bazel"]}},
                               {"sectionLabel": "command", "chunkList": {"chunk": ["test"]}},
                               {"sectionLabel": "command options", "optionList": {"option": [
                                   {"combinedForm": "--client_env=HOME=/root", "metadataTags": ["HIDDEN"]},
                                   {"combinedForm": "--config=ci"}]}},
                               {"sectionLabel": "residual", "chunkList": {"chunk": ["//dsd/..."]}}]}})
        self.lines.append({"id": {"buildMetadata": {}}, "buildMetadata": {"metadata": {"COMMIT_SHA": "abc123"}}})
        self.lines.append({"id": {"workspaceStatus": {}}, "workspaceStatus": {"item": [
            {"key": "BUILD_HOST", "value": "ci-7"}, {"key": "BUILD_USER", "value": "runner"}]}})
        self.lines.append({"id": {"buildFinished": {}}, "finished": {"finishTimeMillis": "1767261700000",
                                                                     "exitCode": {"name": "TESTS_FAILED"}}})
        inv = self.load(wall_seconds=130.5)
        self.assertEqual((inv.invocation_id, inv.command_line, inv.patterns, inv.exit_code, inv.commit, inv.host,
                          inv.user, inv.wall_seconds),
                         ("inv-1", "bazel test --config=ci //dsd/...", "//dsd/...", "TESTS_FAILED", "abc123", "ci-7",
                          "runner", 130.5))
        self.assertEqual((inv.finished_at - inv.started_at).total_seconds(), 100)

    def test_not_a_build_event_file(self):
        path = os.path.join(self.dir, "events.json")
        for text, why in (("not json\n", "not JSON lines"), ('{"id": {"progress": {}}}\n', "no `started` event")):
            with open(path, "w") as f:
                f.write(text)
            with self.assertRaisesRegex(events.EventsError, why):
                runs.load(path)
        with self.assertRaisesRegex(events.EventsError, "cannot read build event file"):
            runs.load(os.path.join(self.dir, "absent.json"))


if __name__ == "__main__":
    absltest.main()
