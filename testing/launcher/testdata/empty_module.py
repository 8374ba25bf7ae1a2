"""Launcher fixture: a scenario module that defines no test case (the target must fail)."""

from testing.dist_test_case import DistributedTestCase


class _NotCollected(DistributedTestCase):
    """Helper classes with a leading underscore are not collected."""

    def test_helper(self):
        pass
