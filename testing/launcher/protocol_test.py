"""Unit tests of the launcher <-> rank contract: the launch spec and the record writer."""

import json

from absl.testing import absltest

from testing.launcher import protocol


class RecordWriterTest(absltest.TestCase):

    def test_written_records_read_back_with_their_time(self):
        path = self.create_tempdir().full_path + "/rank0.jsonl"
        protocol.RecordWriter(path).emit("plan", cases=["A.t"])
        with open(path) as f:
            (record,) = [json.loads(line) for line in f]
        self.assertEqual((record["event"], record["cases"]), ("plan", ["A.t"]))
        self.assertIn("t", record)

    def test_launch_spec_round_trips(self):
        path = self.create_tempdir().full_path + "/spec.json"
        spec = protocol.LaunchSpec("m", "cpu", "/a", "/s", test_filter="x", already_run=["A.t"], phase_world_sizes=[4, 2])
        spec.write(path)
        self.assertEqual(protocol.LaunchSpec.read(path), spec)

    def test_case_dir_names_are_file_names(self):
        self.assertEqual(protocol.case_dir_name("A.test_x (y/z)"), "A.test_x__y_z_")


if __name__ == "__main__":
    absltest.main()
