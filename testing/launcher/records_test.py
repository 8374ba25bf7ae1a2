"""Unit tests of the launcher's incremental view of a launch's records."""

import os

from absl.testing import absltest

from testing.launcher import protocol
from testing.launcher.records import LaunchRecords


class LaunchRecordsTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.writers = [protocol.RecordWriter(os.path.join(self.dir, f"rank{r}.jsonl")) for r in range(2)]
        self.view = LaunchRecords(self.dir, 2)

    def test_each_update_reads_only_what_was_appended(self):
        for rank, writer in enumerate(self.writers):
            writer.emit("plan", cases=["A.t"], pid=rank)
        self.view.update()
        self.assertTrue(self.view.all_planned())
        self.writers[0].emit("start", unit="A.t", kind=protocol.CASE)
        self.view.update()
        self.assertEqual(list(self.view.units), ["A.t"])
        self.assertEqual(list(self.view.open_units()), ["A.t"])
        for writer in self.writers:
            writer.emit("end", unit="A.t", kind=protocol.CASE, status="passed")
        self.view.update()
        self.assertEqual(self.view.open_units(), {})
        self.assertEqual(set(self.view.units["A.t"].ends), {0, 1})
        self.assertEqual(self.view.last_unit(1), "A.t")
        self.writers[1].emit("done")
        self.assertEqual(self.view.update().finished, {1})

    def test_a_torn_line_is_parsed_once_it_is_complete(self):
        path = os.path.join(self.dir, "rank0.jsonl")
        with open(path, "a") as f:
            f.write('{"event": "plan", "t": 1.0, "cas')
        self.view.update()
        self.assertFalse(self.view.plans[0])
        with open(path, "a") as f:
            f.write('es": []}\n')
        self.view.update()
        self.assertEqual(self.view.plans[0]["cases"], [])

    def test_missing_files_are_empty(self):
        view = LaunchRecords(os.path.join(self.dir, "nowhere"), 2).update()
        self.assertFalse(view.all_planned())
        self.assertIsNone(view.last_time)


if __name__ == "__main__":
    absltest.main()
