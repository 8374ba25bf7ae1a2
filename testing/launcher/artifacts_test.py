"""Unit tests of failure artefacts: log slices and the size-capped copy of a case's scratch dir
(end to end in launcher_test.FailureArtifactsTest)."""

import os

from absl.testing import absltest

from testing.launcher import artifacts
from testing.launcher.verdict import Result
from testing.launcher.protocol import Status


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class LogSliceTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.log = os.path.join(self.create_tempdir().full_path, "rank0.log")
        write(self.log, b"before\nduring 1\nduring 2\nafter\n")

    def test_between_offsets(self):
        self.assertEqual(artifacts.log_slice(self.log, 7, 25), b"during 1\nduring 2\n")

    def test_without_an_end_to_the_end_of_the_log(self):
        self.assertEqual(artifacts.log_slice(self.log, 25), b"after\n")

    def test_a_long_slice_keeps_its_tail_and_says_so(self):
        sliced = artifacts.log_slice(self.log, 0, None, limit=6)
        self.assertTrue(sliced.endswith(b"after\n"))
        self.assertIn(b"(25 bytes cut; the last 6 bytes follow)", sliced)

    def test_a_missing_log_says_so(self):
        self.assertIn(b"no log", artifacts.log_slice(self.log + ".missing", 0))


class SaveTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        tmp = self.create_tempdir().full_path
        self.scratch, self.dest = os.path.join(tmp, "scratch", "A.test"), os.path.join(tmp, "failures", "A.test")
        write(os.path.join(self.scratch, "checkpoint", ".metadata"), b"m" * 10)
        write(os.path.join(self.scratch, "checkpoint", "__0_0.distcp"), b"0" * 100)
        write(os.path.join(self.scratch, "checkpoint", "__1_0.distcp"), b"1" * 100)
        write(os.path.join(self.scratch, "big", "blob.bin"), b"b" * 1000)
        os.makedirs(os.path.join(self.scratch, "empty"))
        self.log = os.path.join(tmp, "rank0.log")
        write(self.log, b"other case\nthis case\n")
        self.result = Result("A.test", Status.FAILED, "failed on rank(s) [0]: boom", "--- rank 0 ---\nTraceback: boom")

    def save(self, limit):
        artifacts.save(self.dest, self.result, {0: (self.log, 11, None)}, self.scratch, limit)

    def test_everything_within_the_limit_is_kept_without_a_note(self):
        self.save(limit=10_000)
        kept = os.path.join(self.dest, "checkpoint")
        self.assertEqual(read(os.path.join(kept, "big", "blob.bin")), b"b" * 1000)
        self.assertEqual(read(os.path.join(kept, "checkpoint", ".metadata")), b"m" * 10)
        self.assertTrue(os.path.isdir(os.path.join(kept, "empty")))
        self.assertFalse(os.path.exists(os.path.join(self.dest, "NOTE.txt")))
        self.assertEqual(read(os.path.join(self.dest, "rank0.log")), b"this case\n")
        self.assertIn(b"Traceback: boom", read(os.path.join(self.dest, "result.txt")))

    def test_over_the_limit_smallest_files_first_and_a_note_lists_the_rest(self):
        self.save(limit=1100)  # the blob alone would fit: smallest first keeps the rest instead
        kept = os.path.join(self.dest, "checkpoint")
        self.assertTrue(os.path.exists(os.path.join(kept, "checkpoint", ".metadata")))
        self.assertTrue(os.path.exists(os.path.join(kept, "checkpoint", "__0_0.distcp")))
        self.assertTrue(os.path.exists(os.path.join(kept, "checkpoint", "__1_0.distcp")))
        self.assertFalse(os.path.exists(os.path.join(kept, "big", "blob.bin")))
        note = read(os.path.join(self.dest, "NOTE.txt")).decode()
        self.assertIn("more than the 1100 bytes", note)
        self.assertIn("1 file(s) left out", note)
        self.assertIn("big/blob.bin  1000 bytes", note)

    def test_a_fixture_has_no_scratch_directory(self):
        artifacts.save(self.dest, self.result, {0: (self.log, 0, 11)}, None)
        self.assertEqual(sorted(os.listdir(self.dest)), ["rank0.log", "result.txt"])
        self.assertEqual(read(os.path.join(self.dest, "rank0.log")), b"other case\n")


if __name__ == "__main__":
    absltest.main()
