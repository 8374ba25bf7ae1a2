"""What the rank group imports before it forks the ranks (rank_group.preimport_names), read in
this test's runfiles tree, where every repository file is a symlink into the source tree."""

from absl.testing import absltest

from testing.launcher import rank_group

CHECKPOINTING = "testing.launcher.testdata.checkpoint_failure_cases"  # imports torch.distributed.checkpoint
NOT_CHECKPOINTING = "testing.launcher.testdata.fault_cases"
OWN_PACKAGES = ("testing", "dsd", "models", "tools", "third_party")


class PreimportNamesTest(absltest.TestCase):

    def test_the_scan_follows_repository_modules_and_names_only_outside_ones(self):
        names = rank_group.preimport_names([NOT_CHECKPOINTING, "testing.launcher.rank_worker"])
        self.assertEqual([n for n in names if n.split(".")[0] in OWN_PACKAGES], [],
                         "a repository module would run in the rank group before the fork")
        # Reached only through testing.dist_test_case, a repository module the scan must read.
        self.assertIn("torch.distributed.device_mesh", names)

    def test_imports_inside_functions_are_found(self):
        # testing/launcher/rank_worker.py imports coverage inside the function that starts it.
        self.assertIn("coverage", rank_group.preimport_names(["testing.launcher.rank_worker"]))

    def test_a_checkpointing_program_gets_torchs_lazy_imports(self):
        names = rank_group.preimport_names([CHECKPOINTING])
        for lazy in rank_group.CHECKPOINTING_LAZY_IMPORTS:
            self.assertIn(lazy, names)
        self.assertNotIn("torch._dynamo", rank_group.preimport_names([NOT_CHECKPOINTING]))


if __name__ == "__main__":
    absltest.main()
