"""Unit tests of the per-case merge of rank outcomes and of the JUnit XML."""

import xml.etree.ElementTree as ET

from absl.testing import absltest

from testing import results

PASS = {"status": "pass", "duration": 1.0}


def end(status, detail="", duration=0.5):
    return {"status": status, "detail": detail, "duration": duration}


class MergeTest(absltest.TestCase):

    def test_all_pass(self):
        r = results.merge_case("A.t", {0: PASS, 1: end("pass", duration=2.0)})
        self.assertEqual((r.status, r.duration), (results.PASSED, 2.0))

    def test_one_rank_failing_fails_the_case_and_names_the_rank(self):
        r = results.merge_case("A.t", {0: PASS, 1: end("fail", "Traceback ...\nAssertionError: x != y\n")})
        self.assertEqual(r.status, results.FAILED)
        self.assertIn("rank(s) [1]", r.message)
        self.assertIn("AssertionError: x != y", r.message)
        self.assertIn("--- rank 1 (fail) ---", r.detail)

    def test_unexpected_success_fails(self):
        r = results.merge_case("A.t", {0: end("xpass", "unexpected success"), 1: end("xpass", "unexpected success")})
        self.assertEqual(r.status, results.FAILED)

    def test_all_skip(self):
        r = results.merge_case("A.t", {0: end("skip", "needs CUDA: x"), 1: end("skip", "needs CUDA: x")})
        self.assertEqual((r.status, r.message), (results.SKIPPED, "needs CUDA: x"))

    def test_expected_failure_passes_with_its_traceback(self):
        r = results.merge_case("A.t", {0: end("xfail", "Known bug"), 1: end("xfail", "Known bug")})
        self.assertEqual((r.status, r.message), (results.PASSED, "expected failure"))

    def test_ranks_disagreeing_on_skip_is_a_failure(self):
        r = results.merge_case("A.t", {0: PASS, 1: end("skip", "only on rank 1")})
        self.assertEqual(r.status, results.FAILED)
        self.assertIn("disagree", r.message)


class RecordsTest(absltest.TestCase):

    def test_torn_last_line_is_dropped(self):
        f = self.create_tempfile(content='{"event": "plan", "cases": []}\n{"event": "sta')
        self.assertEqual(results.rank_records(f.full_path), [{"event": "plan", "cases": []}])

    def test_missing_file_is_empty(self):
        self.assertEqual(results.rank_records("/nonexistent/rank0.jsonl"), [])


class MergePhasesTest(absltest.TestCase):

    def test_case_fails_if_any_phase_fails_and_names_it(self):
        per_phase = [[results.CaseResult("A.t", results.PASSED, duration=1.0)],
                     [results.CaseResult("A.t", results.FAILED, "boom", "trace", 2.0)]]
        (merged,) = results.merge_phases(per_phase, [4, 2])
        self.assertEqual((merged.status, merged.duration), (results.FAILED, 3.0))
        self.assertIn("phase 1 (world size 2): boom", merged.message)

    def test_case_missing_from_a_phase_fails(self):
        per_phase = [[results.CaseResult("A.t", results.PASSED)], []]
        (merged,) = results.merge_phases(per_phase, [2, 1])
        self.assertEqual(merged.status, results.FAILED)
        self.assertIn("phase 1 (world size 1): did not run", merged.message)

    def test_passed_and_skipped(self):
        per_phase = [[results.CaseResult("A.t", results.PASSED), results.CaseResult("B.t", results.PASSED)],
                     [results.CaseResult("A.t", results.PASSED), results.CaseResult("B.t", results.SKIPPED, "why")]]
        a, b = results.merge_phases(per_phase, [1, 2])
        self.assertEqual(a.status, results.PASSED)
        self.assertEqual((b.status, b.message), (results.SKIPPED, "phase 1 (world size 2): why"))


class JunitXmlTest(absltest.TestCase):

    def test_counts_and_elements(self):
        path = self.create_tempdir().full_path + "/out/test.xml"
        res = [
            results.CaseResult("A.test_ok", results.PASSED, duration=0.25),
            results.CaseResult("A.test_bad", results.FAILED, "failed on rank(s) [1]: boom", "trace <&>"),
            results.CaseResult("B.test_skip", results.SKIPPED, "needs CUDA: pinned memory"),
        ]
        results.write_junit_xml(path, "dsd.mod", res, 3.5)
        root = ET.parse(path).getroot()
        suite = root.find("testsuite")
        self.assertEqual((suite.get("tests"), suite.get("failures"), suite.get("skipped")), ("3", "1", "1"))
        cases = suite.findall("testcase")
        self.assertEqual([(c.get("classname"), c.get("name")) for c in cases],
                         [("dsd.mod.A", "test_ok"), ("dsd.mod.A", "test_bad"), ("dsd.mod.B", "test_skip")])
        self.assertEqual(cases[1].find("failure").text, "trace <&>")
        self.assertEqual(cases[2].find("skipped").get("message"), "needs CUDA: pinned memory")


if __name__ == "__main__":
    absltest.main()
