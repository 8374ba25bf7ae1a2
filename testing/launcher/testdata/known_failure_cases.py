"""Launcher fixture: expected failures (known torch bugs) and the ways a mark can go wrong.

Which cases run is chosen by the test filter; each mark pins something torch does, where it
does it.
"""

import torch

from testing.dist_test_case import DistributedTestCase
from testing.known_failures import known_failure
from testing.known_failures import known_wrong_result

MISSING = r"Module has no attribute `missing`"
GET_SUBMODULE = "torch/nn/modules/module.py:get_submodule"


def _torch_raises():
    return torch.nn.Module().get_submodule("missing")  # AttributeError raised by torch's Python code


class MarksTest(DistributedTestCase):

    @known_failure(AttributeError, MISSING, "a torch error, pinned", raised_in=GET_SUBMODULE)
    def test_torch_error_reproduces(self):
        _torch_raises()

    @known_wrong_result("a torch result, pinned", wrong=[2], right=[3])
    def test_wrong_result_reproduces(self):
        return list(torch.zeros(2).shape)

    @known_failure(AttributeError, MISSING, "fixed upstream", raised_in=GET_SUBMODULE)
    def test_bug_fixed(self):
        torch.nn.Module().add_module("missing", torch.nn.Identity())

    @known_failure(AssertionError, r"deliberate", "pins the test's own assertion",
                   raised_in="torch/testing/_comparison.py:assert_close")
    def test_own_assertion_cannot_be_pinned(self):
        self.assertEqual(1, 2, "deliberate")

    @known_failure(KeyError, r"^KeyError: 'step'$", "pins a KeyError of the test's own code",
                   raised_in="torch/distributed/checkpoint/state_dict.py:_get_optim_state_dict")
    def test_own_key_error_cannot_be_pinned(self):
        state = {"exp_avg": torch.zeros(1)}
        state["step"]  # an ordinary line of this repository, not a raise statement

    @known_failure(AttributeError, MISSING, "pinned in another function of torch",
                   raised_in="torch/nn/modules/module.py:get_parameter")
    def test_torch_error_from_elsewhere_in_torch_is_not_the_known_bug(self):
        _torch_raises()
