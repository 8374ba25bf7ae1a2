"""DistributedTestCase helpers and the known-failure marks: skips with reasons, marks that pin
torch's errors, results and crashes, shared checkpoint dirs, meshes.

Inner cases run through the rank worker's own run_case, so the statuses checked here are
the ones the launcher reports.
"""

import os

import torch
import torch.distributed as dist

from testing import dist_test_case
from testing import known_failures
from testing.dist_test_case import DistributedTestCase
from testing.launcher.protocol import Status
from testing.launcher.rank_worker import run_case
from testing.repro import Outcome
from testing.repro import RankOutcome


def _torch_error(message):
    """A NotImplementedError raised from torch's code (torch.nn.functional.pad validates its mode)."""
    torch.nn.functional.pad(torch.zeros(1), (1,), mode=message)


PAD = "torch/nn/functional.py:pad"
SEGFAULT_FRAME = "torch/distributed/fsdp/_state_dict_utils.py:param_hook"
TORCH_DIR = os.path.dirname(os.path.dirname(torch.__file__))  # where torch is installed (site-packages)


def _frame(path, function, root=TORCH_DIR):
    return f'  File "{os.path.join(root, path)}", line 7 in {function}\n'


def _outcome(*ranks, hung=False):
    """A repro Outcome of ranks given as (return code, output)."""
    return Outcome("repro.py", [RankOutcome(r, code, out) for r, (code, out) in enumerate(ranks)], hung)


STARTED, OK = "REPRO START rank 0\n", "REPRO OK rank 0\n"
SEGFAULT = STARTED + "Fatal Python error: Segmentation fault\n" + _frame("torch/distributed/fsdp/_state_dict_utils.py",
                                                                        "param_hook")
OTHER = (-15, "REPRO START rank 1\n")


class _Inner(DistributedTestCase):
    """Not collected (defined with a leading underscore and run by hand below)."""

    @known_failures.known_failure(NotImplementedError, "bad_mode", "a recorded torch bug", raised_in=PAD)
    def test_symptom_matches(self):
        _torch_error("bad_mode")

    @known_failures.known_failure(NotImplementedError, "bad_mode", "a recorded torch bug", raised_in=PAD)
    def test_bug_fixed(self):
        pass

    @known_failures.known_failure(NotImplementedError, "bad_mode", "a recorded torch bug", raised_in=PAD)
    def test_other_message(self):
        _torch_error("other")

    @known_failures.known_failure(NotImplementedError, "bad_mode", "a recorded torch bug", raised_in=PAD)
    def test_other_type(self):
        raise KeyError("bad_mode")

    @known_failures.known_failure(NotImplementedError, "bad_mode", "a recorded torch bug", raised_in=PAD)
    def test_raised_by_the_test(self):
        raise NotImplementedError("bad_mode")

    @known_failures.known_failure(NotImplementedError, "bad_mode", "a recorded torch bug",
                                  raised_in="torch/nn/functional.py:interpolate")
    def test_raised_elsewhere_in_torch(self):
        _torch_error("bad_mode")

    @known_failures.known_failure(NotImplementedError, "bad_mode", "a recorded torch bug", raised_in=PAD,
                                  torch_versions="0.1")
    def test_other_release_must_pass(self):
        _torch_error("bad_mode")

    @known_failures.known_wrong_result("a wrong torch result", wrong=[1], right=[2])
    def test_wrong_result(self):
        return [1]

    @known_failures.known_wrong_result("a wrong torch result", wrong=[1], right=[2])
    def test_right_result(self):
        return [2]

    @known_failures.known_wrong_result("a wrong torch result", wrong=[1], right=[2])
    def test_another_result(self):
        return [3]

    @known_failures.known_crash("a crash", signal="SIGSEGV", frame=SEGFAULT_FRAME)
    def test_crash_before_success(self):
        return _outcome((-11, SEGFAULT), OTHER)

    @known_failures.known_crash("a crash", signal="SIGSEGV", frame=SEGFAULT_FRAME)
    def test_crash_after_success(self):
        return _outcome((-11, OK + SEGFAULT), OTHER)

    @known_failures.known_crash("a crash at exit", signal="SIGSEGV", frame=SEGFAULT_FRAME, at_exit=True)
    def test_crash_at_exit(self):
        return _outcome((-11, SEGFAULT + OK), (0, "REPRO START rank 1\nREPRO OK rank 1\n"))

    @known_failures.known_crash("a crash", signal="SIGABRT", frame=SEGFAULT_FRAME)
    def test_crash_with_another_signal(self):
        return _outcome((-11, SEGFAULT), OTHER)

    @known_failures.known_crash("a crash", signal="SIGSEGV", frame=SEGFAULT_FRAME)
    def test_crash_in_a_frame_of_this_repository(self):
        in_repo = STARTED + _frame("torch/distributed/fsdp/_state_dict_utils.py", "param_hook", root=os.getcwd())
        return _outcome((-11, in_repo), OTHER)

    @known_failures.known_crash("a crash", signal="SIGSEGV", frame=SEGFAULT_FRAME)
    def test_crash_before_start(self):
        return _outcome((-11, SEGFAULT.replace(STARTED, "")), OTHER)

    @known_failures.known_crash("a crash", signal="SIGSEGV", frame=SEGFAULT_FRAME)
    def test_repro_completes(self):
        return _outcome((0, STARTED + OK), (0, "REPRO START rank 1\nREPRO OK rank 1\n"))

    @known_failures.known_hang("a hang", frames=["torch/distributed/distributed_c10d.py:all_gather"])
    def test_hang_where_pinned(self):
        stack = STARTED + _frame("torch/distributed/distributed_c10d.py", "all_gather")
        return _outcome((None, stack), (None, "REPRO START rank 1\n"), hung=True)

    @known_failures.known_hang("a hang", frames=["torch/distributed/distributed_c10d.py:all_gather"])
    def test_hang_elsewhere(self):
        stack = STARTED + _frame("torch/distributed/distributed_c10d.py", "barrier")
        return _outcome((None, stack), (None, "REPRO START rank 1\n"), hung=True)

    @known_failures.known_crash("a race", signal="SIGABRT", message="size doesn't match",
                                or_hang=["torch/distributed/distributed_c10d.py:all_gather"])
    def test_race_ending_in_a_hang_where_pinned(self):
        stack = STARTED + _frame("torch/distributed/distributed_c10d.py", "all_gather")
        return _outcome((None, stack), (None, "REPRO START rank 1\n"), hung=True)

    @known_failures.known_crash("a race", signal="SIGABRT", message="size doesn't match",
                                or_hang=["torch/distributed/distributed_c10d.py:all_gather"])
    def test_race_ending_in_a_hang_elsewhere(self):
        stack = STARTED + _frame("torch/distributed/distributed_c10d.py", "barrier")
        return _outcome((None, stack), (None, "REPRO START rank 1\n"), hung=True)

    @dist_test_case.requires_world_size(64)
    def test_needs_64(self):
        pass

    @dist_test_case.requires_cuda("pinned-memory staging")
    def test_needs_cuda(self):
        pass


class HelpersTest(DistributedTestCase):

    def status(self, name):
        return run_case(_Inner(name))

    def test_known_failure_with_its_symptom_is_an_expected_failure(self):
        status, detail = self.status("test_symptom_matches")
        self.assertEqual(status, Status.XFAILED, detail)
        self.assertIn("a recorded torch bug", detail)
        self.assertIn("NotImplementedError", detail)

    def test_known_failure_that_no_longer_fails_is_a_failure(self):
        status, detail = self.status("test_bug_fixed")
        self.assertEqual(status, Status.FAILED)
        self.assertIn("unexpected success", detail)

    def test_known_failure_with_another_symptom_is_an_error(self):
        self.assertEqual(self.status("test_other_message")[0], Status.ERROR)
        self.assertEqual(self.status("test_other_type")[0], Status.ERROR)

    def test_known_failure_pins_where_torch_raised_it(self):
        for case in ("test_raised_by_the_test", "test_raised_elsewhere_in_torch"):
            status, detail = self.status(case)
            self.assertEqual(status, Status.FAILED, case)
            self.assertIn("@known_failure pins NotImplementedError raised in torch/nn/", detail)

    def test_a_mark_for_other_releases_requires_a_pass_here(self):
        self.assertEqual(self.status("test_other_release_must_pass")[0], Status.ERROR)
        self.assertTrue(known_failures.affects(("2.13", "2.14"), "2.13.0+cpu"))
        self.assertFalse(known_failures.affects("2.1", "2.13.0"))

    def test_known_wrong_result(self):
        self.assertEqual(self.status("test_wrong_result")[0], Status.XFAILED)
        status, detail = self.status("test_right_result")
        self.assertEqual(status, Status.FAILED)
        self.assertIn("unexpected success", detail)
        status, detail = self.status("test_another_result")
        self.assertEqual(status, Status.FAILED)
        self.assertIn("neither the known wrong result", detail)

    def test_known_crash(self):
        for case in ("test_crash_before_success", "test_crash_at_exit"):
            self.assertEqual(self.status(case)[0], Status.XFAILED, case)
        for case, why in (("test_crash_after_success", "finished its work"),
                          ("test_crash_with_another_signal", "not -6"),
                          ("test_crash_in_a_frame_of_this_repository", "shows no frame"),
                          ("test_crash_before_start", "shows no frame")):
            status, detail = self.status(case)
            self.assertEqual(status, Status.FAILED, case)
            self.assertIn("no rank died as recorded", detail)
            self.assertIn(why, detail, case)
        status, detail = self.status("test_repro_completes")
        self.assertEqual(status, Status.FAILED)
        self.assertIn("unexpected success", detail)

    def test_known_crash_of_a_race_that_can_hang(self):
        status, detail = self.status("test_race_ending_in_a_hang_where_pinned")
        self.assertEqual(status, Status.XFAILED, detail)
        self.assertIn("the race's other ending", detail)
        status, detail = self.status("test_race_ending_in_a_hang_elsewhere")
        self.assertEqual(status, Status.FAILED)
        self.assertIn("no rank died as recorded", detail)

    def test_known_hang(self):
        self.assertEqual(self.status("test_hang_where_pinned")[0], Status.XFAILED)
        status, detail = self.status("test_hang_elsewhere")
        self.assertEqual(status, Status.FAILED)
        self.assertIn("no rank waits in", detail)

    def test_mesh(self):
        mesh = self.mesh()
        self.assertEqual((mesh.device_type, tuple(mesh.shape)), (self.device_type, (self.world_size,)))

    def test_requires_world_size_skips_with_reason(self):
        self.assertEqual(self.status("test_needs_64"),
                         (Status.SKIPPED, f"needs world size >= 64, launched with {self.world_size}"))

    def test_requires_cuda_skips_on_cpu_only(self):
        status, detail = self.status("test_needs_cuda")
        if self.device_type == "cuda":
            self.assertEqual(status, Status.PASSED)
        else:
            self.assertEqual((status, detail), (Status.SKIPPED, "needs CUDA: pinned-memory staging"))

    def test_checkpoint_dir_is_fresh_and_shared(self):
        path = self.checkpoint_dir()
        self.assertEqual(os.listdir(path), [])
        paths = [None] * self.world_size
        dist.all_gather_object(paths, path)
        self.assertEqual(len(set(paths)), 1, paths)
        self.assertTrue(path.startswith(os.environ["TEST_TMPDIR"]), path)
