"""Launcher fixture: a case that writes a DCP checkpoint, logs, then fails on every rank, between
two cases that pass and log lines of their own (which must not appear in its log slices).

DSD_FIXTURE_BLOB_BYTES (default 0): each rank also writes a file of that many bytes into the
failing case's checkpoint_dir("blobs"), to exceed the launcher's --failure_artifacts_mb.
Also the demo target //testing/launcher:failure_artifacts_demo (manual; it fails on purpose).
"""

import os

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp

from testing.dist_test_case import DistributedTestCase

BLOB = int(os.environ.get("DSD_FIXTURE_BLOB_BYTES", "0"))


class CheckpointThenFailTest(DistributedTestCase):

    def test_a_passes(self):
        self.checkpoint_dir()
        print(f"marker of test_a_passes on rank {self.rank}", flush=True)

    def test_b_saves_then_fails(self):
        path = self.checkpoint_dir()
        print(f"rank {self.rank}: saving a checkpoint to {path}", flush=True)
        dcp.save({"weight": torch.arange(8.0), f"rank{self.rank}": torch.full((4,), float(self.rank))},
                 checkpoint_id=path)
        if BLOB:
            blobs = self.checkpoint_dir("blobs")
            with open(os.path.join(blobs, f"blob{self.rank}.bin"), "wb") as f:
                f.write(b"\0" * BLOB)
        dist.barrier()
        print(f"rank {self.rank}: saved, now failing", flush=True)
        self.assertEqual(self.rank, -1, "deliberate failure after saving a checkpoint")

    def test_c_passes(self):
        print(f"marker of test_c_passes on rank {self.rank}", flush=True)
