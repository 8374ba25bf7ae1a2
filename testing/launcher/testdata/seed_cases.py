"""Launcher fixture: a case that checks the seed every case starts from (TEST_RANDOM_SEED)."""

import os

import torch

from testing.dist_test_case import DistributedTestCase


class SeedTest(DistributedTestCase):

    def test_starts_from_the_seed(self):
        self.assertEqual(torch.initial_seed(), int(os.environ["EXPECTED_SEED"]))
