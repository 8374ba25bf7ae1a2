"""Launcher fixture: expected failures (known torch bugs) and the ways a mark can go wrong.

Which cases run is chosen by the test filter; each mark pins something torch does.
"""

import torch

from testing.dist_test_case import DistributedTestCase
from testing.known_failures import known_failure
from testing.known_failures import known_wrong_result


def _torch_raises():
    return torch.zeros(2) + torch.zeros(3)  # RuntimeError raised inside torch


class MarksTest(DistributedTestCase):

    @known_failure(RuntimeError, r"size of tensor a \(2\) must match", "a torch error, pinned")
    def test_torch_error_reproduces(self):
        _torch_raises()

    @known_wrong_result("a torch result, pinned", wrong=[2], right=[3])
    def test_wrong_result_reproduces(self):
        return list(torch.zeros(2).shape)

    @known_failure(RuntimeError, r"size of tensor a", "fixed upstream")
    def test_bug_fixed(self):
        torch.zeros(2) + torch.zeros(2)

    @known_failure(AssertionError, r"deliberate", "pins the test's own assertion")
    def test_own_assertion_cannot_be_pinned(self):
        self.assertEqual(1, 2, "deliberate")
