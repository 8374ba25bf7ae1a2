"""Unit tests of the verdict rule: merging ranks' outcomes of a unit, and phases of a target."""

from absl.testing import absltest

from testing.launcher import protocol
from testing.launcher import verdict
from testing.launcher.protocol import Status
from testing.launcher.verdict import Result


def end(status, detail="", duration=0.5):
    return {"status": status.value, "detail": detail, "duration": duration}


PASS = end(Status.PASSED, duration=1.0)


class MergeUnitTest(absltest.TestCase):

    def test_all_pass(self):
        r = verdict.merge_unit("A.t", {0: PASS, 1: end(Status.PASSED, duration=2.0)})
        self.assertEqual((r.status, r.duration, r.kind), (Status.PASSED, 2.0, protocol.CASE))

    def test_an_assertion_on_one_rank_fails_the_case_and_names_the_rank(self):
        r = verdict.merge_unit("A.t", {0: PASS, 1: end(Status.FAILED, "Traceback ...\nAssertionError: x != y\n")})
        self.assertEqual(r.status, Status.FAILED)
        self.assertIn("rank(s) [1]", r.message)
        self.assertIn("AssertionError: x != y", r.message)
        self.assertIn("--- rank 1 (failed) ---", r.detail)

    def test_an_exception_anywhere_makes_it_an_error(self):
        r = verdict.merge_unit("A.t", {0: end(Status.FAILED, "AssertionError"), 1: end(Status.ERROR, "KeyError")})
        self.assertEqual((r.status, r.message), (Status.ERROR, "failed on rank(s) [0, 1]: AssertionError"))

    def test_all_skip(self):
        r = verdict.merge_unit("A.t", {0: end(Status.SKIPPED, "needs CUDA: x"), 1: end(Status.SKIPPED, "needs CUDA: x")})
        self.assertEqual((r.status, r.message), (Status.SKIPPED, "needs CUDA: x"))

    def test_an_expected_failure_is_its_own_status(self):
        xfail = end(Status.XFAILED, "known bug: b\nsymptom: s")
        r = verdict.merge_unit("A.t", {0: xfail, 1: xfail})
        self.assertEqual((r.status, r.message), (Status.XFAILED, "known bug: b"))

    def test_the_known_bug_on_one_rank_only_is_a_failure_with_both_stories(self):
        r = verdict.merge_unit("A.t", {0: end(Status.XFAILED, "known bug: b\nsymptom: s"), 1: PASS})
        self.assertEqual(r.status, Status.FAILED)
        self.assertIn("disagree", r.message)
        self.assertIn("--- rank 0 (xfailed) ---\nknown bug: b", r.detail)
        self.assertIn("--- rank 1 (passed) ---", r.detail)

    def test_a_failure_on_one_rank_tells_what_the_others_did(self):
        r = verdict.merge_unit("A.t", {0: end(Status.SKIPPED, "needs CUDA: x"), 1: end(Status.ERROR, "KeyError: 3")})
        self.assertEqual((r.status, r.message), (Status.ERROR, "failed on rank(s) [1]: KeyError: 3"))
        self.assertIn("--- the other ranks ---\n--- rank 0 (skipped) ---\nneeds CUDA: x", r.detail)

    def test_ranks_disagreeing_on_a_skip_is_a_failure(self):
        r = verdict.merge_unit("A.t", {0: PASS, 1: end(Status.SKIPPED, "only on rank 1")})
        self.assertEqual(r.status, Status.FAILED)
        self.assertIn("disagree", r.message)

    def test_kind_is_kept(self):
        self.assertEqual(verdict.merge_unit("A.setUpClass", {0: PASS}, protocol.FIXTURE).kind, protocol.FIXTURE)


class MergePhasesTest(absltest.TestCase):

    def test_a_case_fails_if_any_phase_fails_and_names_it(self):
        per_phase = [[Result("A.t", Status.PASSED, duration=1.0)], [Result("A.t", Status.FAILED, "boom", "trace", 2.0)]]
        (merged,) = verdict.merge_phases(per_phase, [4, 2])
        self.assertEqual((merged.status, merged.duration), (Status.FAILED, 3.0))
        self.assertIn("phase 1 (world size 2): boom", merged.message)

    def test_a_case_missing_from_a_phase_fails(self):
        (merged,) = verdict.merge_phases([[Result("A.t", Status.PASSED)], []], [2, 1])
        self.assertEqual(merged.status, Status.FAILED)
        self.assertIn("phase 1 (world size 1): did not run", merged.message)

    def test_a_launcher_entry_of_one_phase_is_kept_as_is(self):
        shutdown = Result("launcher.shutdown", Status.ERROR, "hung", kind=protocol.LAUNCHER)
        (merged,) = verdict.merge_phases([[], [shutdown]], [2, 1])
        self.assertEqual((merged.id, merged.status), ("launcher.shutdown", Status.ERROR))
        self.assertIn("phase 1 (world size 1): hung", merged.message)
        self.assertNotIn("did not run", merged.message)

    def test_passed_skipped_and_expected_failures(self):
        per_phase = [[Result("A.t", Status.PASSED), Result("B.t", Status.PASSED), Result("C.t", Status.PASSED)],
                     [Result("A.t", Status.PASSED), Result("B.t", Status.SKIPPED, "why"),
                      Result("C.t", Status.XFAILED, "known bug: b")]]
        a, b, c = verdict.merge_phases(per_phase, [1, 2])
        self.assertEqual(a.status, Status.PASSED)
        self.assertEqual((b.status, b.message), (Status.SKIPPED, "phase 1 (world size 2): why"))
        self.assertEqual(c.status, Status.XFAILED)



class TargetChecksTest(absltest.TestCase):

    def test_a_module_without_cases_and_a_filter_matching_none_fail_and_an_empty_shard_passes(self):
        from testing.launcher.plan import Plan
        (error,), _ = verdict.target_checks("m", "", Plan([], 0, 0), 0, 1)
        self.assertEqual((error.id, error.status), ("launcher.plan", Status.ERROR))
        (error,), _ = verdict.target_checks("m", "nothing", Plan([], 3, 0), 0, 1)
        self.assertEqual(error.id, "launcher.test_filter")
        self.assertEqual(verdict.target_checks("m", "", Plan([], 3, 1), 1, 2), ([], ["shard 2 of 2 has no case: 1 case(s) over 2 shards"]))


if __name__ == "__main__":
    absltest.main()
