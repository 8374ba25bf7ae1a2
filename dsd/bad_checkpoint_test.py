"""Loading a bad checkpoint fails loudly on every rank, without a hang: a missing key, a wrong
shape and corrupted metadata fail while planning and leave the model untouched; a truncated shard
fails while reading, after DCP (which loads in place) may have written part of the model, so the
safe pattern is to load into a copy; a directory without a checkpoint fails too.
"""

import copy
import glob
import os

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import set_model_state_dict

from models.dummy_models import dummy_model
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.state_dict_verify import VerifyStateDictMixin
from testing.state_dict_verify import gather_full


class BadCheckpointTest(VerifyStateDictMixin, DistributedTestCase):

    def setUp(self):
        super().setUp()
        self.path = self.checkpoint_dir()
        source = parallelisms.parallelize(dummy_model(False), "fsdp2", self.device)
        dcp.save(get_model_state_dict(source), checkpoint_id=self.path)
        self.model = parallelisms.parallelize(dummy_model(False, seed=1), "fsdp2", self.device)
        self.before = self.full_state(self.model)

    @staticmethod
    def full_state(model):
        return {k: gather_full(v).clone() for k, v in get_model_state_dict(model).items()}

    def assert_load_fails_everywhere(self, state_dict, pattern, **load_kwargs):
        """dcp.load raises on every rank (CheckpointException derives from BaseException) with `pattern`."""
        error = None
        try:
            dcp.load(state_dict, **load_kwargs)
        except (Exception, CheckpointException) as e:  # noqa: BLE001
            error = f"{type(e).__name__}: {e}"
        errors = [None] * self.world_size
        dist.all_gather_object(errors, error)
        failed = [r for r, e in enumerate(errors) if e is not None]
        self.assertEqual(failed, list(range(self.world_size)), f"ranks that raised: {failed}; errors: {errors}")
        self.assertRegex(error, pattern)

    def assert_model_unchanged(self, model=None, before=None):
        model, before = model or self.model, before or self.before
        for fqn, value in self.nonempty(get_model_state_dict(model), "the model state dict").items():
            self.assert_tensor_matches(before[fqn], value, f"{fqn} changed by a failed load")

    def test_missing_key(self):
        msd = get_model_state_dict(self.model)
        msd["net5.weight"] = torch.zeros(3)  # the model grew a layer the checkpoint lacks
        self.assert_load_fails_everywhere(msd, r"net5\.weight", checkpoint_id=self.path)
        self.assert_model_unchanged()

    def test_wrong_shape(self):
        """The model's first layer is wider than the checkpoint's: the load into it fails."""
        wider = dummy_model(False, seed=1)
        wider.net1[0], wider.net2[0] = nn.Linear(5, 12), nn.Linear(12, 15)
        wider = parallelisms.parallelize(wider, "fsdp2", self.device)
        before = self.full_state(wider)
        self.assert_load_fails_everywhere(get_model_state_dict(wider), r"Size mismatch between saved torch.Size\(\[10\]\) and current: torch.Size\(\[12\]\) for net1\.0\.bias",
                                          checkpoint_id=self.path)
        self.assert_model_unchanged(wider, before)

    def test_corrupted_metadata(self):
        if self.rank == 0:
            with open(os.path.join(self.path, ".metadata"), "wb") as f:
                f.write(b"\x80\x04 this is not a pickle")
        dist.barrier()
        self.assert_load_fails_everywhere(get_model_state_dict(self.model),
                                          r"global metadata read failed: invalid load key", checkpoint_id=self.path)
        self.assert_model_unchanged()

    def _truncate_shards(self):
        if self.rank == 0:
            for shard in self.nonempty(glob.glob(os.path.join(self.path, "*.distcp")), "shard files"):
                with open(shard, "r+b") as f:
                    f.truncate(os.path.getsize(shard) // 2)
        dist.barrier()

    def test_truncated_shard_file_fails_on_every_rank(self):
        """The read fails everywhere. DCP reads into the given tensors in place, item by item, so
        the model may now hold part of the checkpoint: that is DCP's documented behaviour."""
        self._truncate_shards()
        self.assert_load_fails_everywhere(get_model_state_dict(self.model), r"EOFError|unexpected end",
                                          checkpoint_id=self.path)

    def test_truncated_shard_file_loaded_into_a_copy_keeps_the_model(self):
        """The safe pattern: load into a copy, apply it only if the load succeeded."""
        self._truncate_shards()
        staging = copy.deepcopy(get_model_state_dict(self.model))
        self.assert_load_fails_everywhere(staging, r"EOFError|unexpected end", checkpoint_id=self.path)
        self.assert_model_unchanged()

    def test_directory_without_a_checkpoint(self):
        empty = self.checkpoint_dir("empty")
        self.assert_load_fails_everywhere(get_model_state_dict(self.model), r"(?i)\.metadata|no such file|not found",
                                          checkpoint_id=empty)
        self.assert_model_unchanged()

    def test_valid_checkpoint_still_loads(self):
        """Control: the same set-up without damage loads, so the failures above are the damage."""
        msd = get_model_state_dict(self.model)
        dcp.load(msd, checkpoint_id=self.path)
        set_model_state_dict(self.model, msd)
        changed = [k for k, v in get_model_state_dict(self.model).items()
                   if not torch.equal(gather_full(v), self.before[k])]
        self.assertNotEqual(changed, [], "loading the saved checkpoint must change the seed-1 model")
