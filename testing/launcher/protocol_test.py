"""Unit tests of the protocol: merging ranks' outcomes, merging phases, records, JUnit XML."""

import xml.etree.ElementTree as ET

from absl.testing import absltest

from testing.launcher import protocol
from testing.launcher.protocol import Result
from testing.launcher.protocol import Status


def end(status, detail="", duration=0.5):
    return {"status": status.value, "detail": detail, "duration": duration}


PASS = end(Status.PASSED, duration=1.0)


class MergeUnitTest(absltest.TestCase):

    def test_all_pass(self):
        r = protocol.merge_unit("A.t", {0: PASS, 1: end(Status.PASSED, duration=2.0)})
        self.assertEqual((r.status, r.duration, r.kind), (Status.PASSED, 2.0, protocol.CASE))

    def test_an_assertion_on_one_rank_fails_the_case_and_names_the_rank(self):
        r = protocol.merge_unit("A.t", {0: PASS, 1: end(Status.FAILED, "Traceback ...\nAssertionError: x != y\n")})
        self.assertEqual(r.status, Status.FAILED)
        self.assertIn("rank(s) [1]", r.message)
        self.assertIn("AssertionError: x != y", r.message)
        self.assertIn("--- rank 1 (failed) ---", r.detail)

    def test_an_exception_anywhere_makes_it_an_error(self):
        r = protocol.merge_unit("A.t", {0: end(Status.FAILED, "AssertionError"), 1: end(Status.ERROR, "KeyError")})
        self.assertEqual((r.status, r.message), (Status.ERROR, "failed on rank(s) [0, 1]: AssertionError"))

    def test_all_skip(self):
        r = protocol.merge_unit("A.t", {0: end(Status.SKIPPED, "needs CUDA: x"), 1: end(Status.SKIPPED, "needs CUDA: x")})
        self.assertEqual((r.status, r.message), (Status.SKIPPED, "needs CUDA: x"))

    def test_an_expected_failure_is_its_own_status(self):
        xfail = end(Status.XFAILED, "known bug: b\nsymptom: s")
        r = protocol.merge_unit("A.t", {0: xfail, 1: xfail})
        self.assertEqual((r.status, r.message), (Status.XFAILED, "known bug: b"))

    def test_the_known_bug_on_one_rank_only_is_a_failure_with_both_stories(self):
        r = protocol.merge_unit("A.t", {0: end(Status.XFAILED, "known bug: b\nsymptom: s"), 1: PASS})
        self.assertEqual(r.status, Status.FAILED)
        self.assertIn("disagree", r.message)
        self.assertIn("--- rank 0 (xfailed) ---\nknown bug: b", r.detail)
        self.assertIn("--- rank 1 (passed) ---", r.detail)

    def test_a_failure_on_one_rank_tells_what_the_others_did(self):
        r = protocol.merge_unit("A.t", {0: end(Status.SKIPPED, "needs CUDA: x"), 1: end(Status.ERROR, "KeyError: 3")})
        self.assertEqual((r.status, r.message), (Status.ERROR, "failed on rank(s) [1]: KeyError: 3"))
        self.assertIn("--- the other ranks ---\n--- rank 0 (skipped) ---\nneeds CUDA: x", r.detail)

    def test_ranks_disagreeing_on_a_skip_is_a_failure(self):
        r = protocol.merge_unit("A.t", {0: PASS, 1: end(Status.SKIPPED, "only on rank 1")})
        self.assertEqual(r.status, Status.FAILED)
        self.assertIn("disagree", r.message)

    def test_kind_is_kept(self):
        self.assertEqual(protocol.merge_unit("A.setUpClass", {0: PASS}, protocol.FIXTURE).kind, protocol.FIXTURE)


class RecordsTest(absltest.TestCase):

    def test_written_records_read_back_and_a_torn_last_line_is_dropped(self):
        path = self.create_tempdir().full_path + "/rank0.jsonl"
        protocol.RecordWriter(path).emit("plan", cases=["A.t"])
        with open(path, "a") as f:
            f.write('{"event": "sta')
        (record,) = protocol.read_records(path)
        self.assertEqual((record["event"], record["cases"]), ("plan", ["A.t"]))

    def test_missing_file_is_empty(self):
        self.assertEqual(protocol.read_records("/nonexistent/rank0.jsonl"), [])

    def test_launch_spec_round_trips(self):
        path = self.create_tempdir().full_path + "/spec.json"
        spec = protocol.LaunchSpec("m", "cpu", "/a", "/s", test_filter="x", done=["A.t"], phase_world_sizes=[4, 2])
        spec.write(path)
        self.assertEqual(protocol.LaunchSpec.read(path), spec)


class MergePhasesTest(absltest.TestCase):

    def test_a_case_fails_if_any_phase_fails_and_names_it(self):
        per_phase = [[Result("A.t", Status.PASSED, duration=1.0)], [Result("A.t", Status.FAILED, "boom", "trace", 2.0)]]
        (merged,) = protocol.merge_phases(per_phase, [4, 2])
        self.assertEqual((merged.status, merged.duration), (Status.FAILED, 3.0))
        self.assertIn("phase 1 (world size 2): boom", merged.message)

    def test_a_case_missing_from_a_phase_fails(self):
        (merged,) = protocol.merge_phases([[Result("A.t", Status.PASSED)], []], [2, 1])
        self.assertEqual(merged.status, Status.FAILED)
        self.assertIn("phase 1 (world size 1): did not run", merged.message)

    def test_a_launcher_entry_of_one_phase_is_kept_as_is(self):
        shutdown = Result("launcher.shutdown", Status.ERROR, "hung", kind=protocol.LAUNCHER)
        (merged,) = protocol.merge_phases([[], [shutdown]], [2, 1])
        self.assertEqual((merged.id, merged.status), ("launcher.shutdown", Status.ERROR))
        self.assertIn("phase 1 (world size 1): hung", merged.message)
        self.assertNotIn("did not run", merged.message)

    def test_passed_skipped_and_expected_failures(self):
        per_phase = [[Result("A.t", Status.PASSED), Result("B.t", Status.PASSED), Result("C.t", Status.PASSED)],
                     [Result("A.t", Status.PASSED), Result("B.t", Status.SKIPPED, "why"),
                      Result("C.t", Status.XFAILED, "known bug: b")]]
        a, b, c = protocol.merge_phases(per_phase, [1, 2])
        self.assertEqual(a.status, Status.PASSED)
        self.assertEqual((b.status, b.message), (Status.SKIPPED, "phase 1 (world size 2): why"))
        self.assertEqual(c.status, Status.XFAILED)


class JunitXmlTest(absltest.TestCase):

    def test_counts_elements_and_properties(self):
        path = self.create_tempdir().full_path + "/out/test.xml"
        results = [
            Result("A.test_ok", Status.PASSED, duration=0.25),
            Result("A.test_bad", Status.FAILED, "failed on rank(s) [1]: boom", "trace <&>"),
            Result("A.test_raises", Status.ERROR, "failed on rank(s) [0]: KeyError", "trace"),
            Result("B.test_skip", Status.SKIPPED, "needs CUDA: pinned memory"),
            Result("B.test_known", Status.XFAILED, "known bug: b", "symptom"),
            Result("launcher.shutdown", Status.ERROR, "hung", kind=protocol.LAUNCHER),
        ]
        protocol.write_junit(path, "//dsd:mod_gpu2", results, 3.5, {"device": "cpu"}, "a note")
        suite = ET.parse(path).getroot().find("testsuite")
        self.assertEqual(suite.get("name"), "//dsd:mod_gpu2")
        self.assertEqual([suite.get(k) for k in ("tests", "failures", "errors", "skipped")], ["6", "1", "2", "2"])
        self.assertEqual({p.get("name"): p.get("value") for p in suite.iter("property")}, {"device": "cpu"})
        cases = suite.findall("testcase")
        self.assertEqual([(c.get("classname"), c.get("name")) for c in cases][-1],
                         ("//dsd:mod_gpu2.launcher", "shutdown"))
        self.assertEqual(cases[1].find("failure").text, "trace <&>")
        self.assertIsNotNone(cases[2].find("error"))
        self.assertEqual(cases[3].find("skipped").get("message"), "needs CUDA: pinned memory")
        self.assertEqual(cases[4].find("skipped").get("type"), "pytest.xfail")
        self.assertEqual(suite.find("system-out").text, "a note")


if __name__ == "__main__":
    absltest.main()
