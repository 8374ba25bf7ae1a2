"""Hostile checkpoints: a checkpoint crosses a trust boundary, and loading one must give a clear
error (or a documented safe result) on every rank, without a hang, and run or write nothing
outside its directory. Each case crafts one hostile input from a genuine checkpoint and loads
it on every rank: a .metadata (global or rank-local) or a non-tensor entry whose pickle runs code,
storage paths escaping the directory ('../', absolute, symlinks), a save into a directory with
planted symlinks (sync and async), a shard swapped in from another checkpoint, a dtype, shape or
chunk list changed in .metadata, absurd declared sizes, offsets and lengths, a truncated
.metadata, and for the HF safetensors path a pickle .metadata, an edited index, corrupted,
retyped, reshaped or out-of-range safetensors headers, swapped, stray and symlinked files.
Where torch accepts the hostile input, the case pins what it does (testing/known_failures.py).

Hostile payloads only ever create an empty marker file (checkpoint_crafting.MarkerPayload);
absurd sizes are observed through guards that refuse the allocation (ReadGuard,
AllocationGuard), never allocated. Every path a case touches lies under its own scratch
directory: the checkpoint and, beside it, `outside` (where nothing may appear or change).
"""

import contextlib
import datetime
import glob
import json
import os
import pickle
import re
import shutil
from unittest import mock

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.distributed.checkpoint._consolidate_hf_safetensors as hf_consolidation
from torch.distributed.checkpoint import HuggingFaceStorageReader
from torch.distributed.checkpoint import HuggingFaceStorageWriter
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from torch.distributed.checkpoint.staging import DefaultStager
from torch.distributed.checkpoint.staging import StagingOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict

from dsd import checkpoint_crafting as crafting
from models.dummy_models import dummy_model
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.known_failures import known_wrong_result
from testing.state_dict_verify import VerifyStateDictMixin
from testing.state_dict_verify import gather_full

# The FQNs of the uneven MLP every case saves (seed 0) and loads into (seed 1).
ALL_FQNS = sorted(dummy_model(False).state_dict())
REFUSED = "refused"
WITHIN_THE_FILES = "no larger than the files"
HF_FILE = "model-00001-of-00001.safetensors"
TERABYTE = 1 << 40


class HostileCheckpointCase(VerifyStateDictMixin, DistributedTestCase):
    """A genuine DCP checkpoint of the seed-0 uneven MLP (FSDP2) at self.path, which a case makes
    hostile and loads on every rank into a seed-1 model's state dict; self.outside is a sibling
    directory in the case's scratch area, which the checkpoint must not reach."""

    def setUp(self):
        super().setUp()
        self.path = self.checkpoint_dir()
        self.outside = self.checkpoint_dir("outside")
        self.scratch = os.path.dirname(self.path)
        self.marker = os.path.join(self.outside, "marker")
        self.source = self.fsdp2(seed=0)
        self.saved = self.full(get_model_state_dict(self.source))

    def fsdp2(self, seed):
        return parallelisms.wrap(dummy_model(False, seed), "fsdp2", self.device)

    @staticmethod
    def full(state_dict):
        return {fqn: gather_full(v).detach().clone() for fqn, v in state_dict.items() if fqn in ALL_FQNS}

    def target(self):
        """The state dict of a fresh seed-1 model, whose every value differs from the checkpoint's."""
        state_dict = get_model_state_dict(self.fsdp2(seed=1))
        self.assertEqual(self.fqns_equal_to(state_dict, self.saved), [], "the seed-1 target must differ from the checkpoint")
        return state_dict

    def save_genuine(self, path=None, extra=None, source=None):
        state_dict = dict(get_model_state_dict(source or self.source), **(extra or {}))
        dcp.save(state_dict, checkpoint_id=path or self.path)

    def on_rank0(self, fn, *args):
        """Crafting happens once, on rank 0, before any rank goes on; if it fails, every rank fails
        (rather than waiting for rank 0)."""
        error = [None]
        if self.rank == 0:
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 (reported on every rank below)
                error = [f"{type(e).__name__}: {e}"]
        dist.broadcast_object_list(error, src=0)
        if error[0] is not None:
            self.fail(f"crafting the hostile checkpoint failed on rank 0: {error[0]}")

    def plant(self, name, data):
        """Writes `data` (bytes) as `name` in the checkpoint directory."""
        def write():
            with open(os.path.join(self.path, name), "wb") as f:
                f.write(data)
        self.on_rank0(write)

    def edit_metadata(self, edit):
        """Rewrites the checkpoint's .metadata after edit(metadata). The test reads its own,
        genuine .metadata, just saved, with pickle: the only trusted unpickling here."""
        def rewrite():
            path = os.path.join(self.path, ".metadata")
            with open(path, "rb") as f:
                metadata = pickle.load(f)
            edit(metadata)
            with open(path, "wb") as f:
                pickle.dump(metadata, f)
        self.on_rank0(rewrite)

    def storage_entries(self, metadata, fqn):
        return self.nonempty([info for index, info in metadata.storage_data.items() if index.fqn == fqn],
                             f"{fqn}: storage entries in .metadata")

    def same_everywhere(self, value, what):
        """`value` after checking that every rank observed the same."""
        values = [None] * self.world_size
        dist.all_gather_object(values, value)
        self.assertEqual(values, [values[0]] * self.world_size, f"{what} differs between ranks: {values}")
        return value

    def hostile_load(self, state_dict, **kwargs):
        """dcp.load on every rank: None if every rank loaded, else the error torch raised ('Type:
        message'), which must be the same on every rank (each rank failed, none hung)."""
        if "storage_reader" not in kwargs:
            kwargs.setdefault("checkpoint_id", self.path)
        try:
            dcp.load(state_dict, **kwargs)
            error = None
        except (Exception, CheckpointException) as e:  # noqa: BLE001
            error = crafting.describe(e)
        return self.same_everywhere(error, "the outcome of the load")

    def assert_refused(self, error, pattern):
        self.assertIsNotNone(error, "the hostile checkpoint loaded without an error")
        self.assertRegex(error, pattern)

    def fqns_equal_to(self, state_dict, expected):
        """Sorted FQNs whose (gathered) values in `state_dict` equal `expected`'s."""
        return sorted(fqn for fqn in self.nonempty(ALL_FQNS, "FQNs")
                      if torch.equal(gather_full(state_dict[fqn]), expected[fqn]))

    def fqns_differing_from(self, state_dict, expected):
        return sorted(set(ALL_FQNS) - set(self.fqns_equal_to(state_dict, expected)))

    def assert_loaded_checkpoint(self, state_dict, expected=None):
        for fqn in self.nonempty(ALL_FQNS, "FQNs"):
            self.assert_tensor_matches((expected or self.saved)[fqn], state_dict[fqn], f"{fqn} after the load")

    def outside_state(self):
        """What lies in the case's scratch area outside the checkpoint directory."""
        return crafting.tree_digest(self.scratch, exclude=[self.path])

    def outside_changes(self, before):
        """Paths (relative to the scratch area) outside the checkpoint directory that changed since
        `before`, the same as every rank sees them."""
        return self.same_everywhere(crafting.changed_paths(before, self.outside_state()), "changes outside")

    def assert_nothing_outside(self, before):
        self.assertEqual(self.outside_changes(before), [], "files outside the checkpoint directory changed")
        self.assertFalse(self.same_everywhere(os.path.exists(self.marker), "the marker"), "the payload ran")

    @staticmethod
    def read_size(largest, files_size):
        """The largest read (or allocation) asked for, in bytes, when it exceeds what the files hold
        (the reader trusted a declared size); else WITHIN_THE_FILES."""
        return largest if largest > files_size else WITHIN_THE_FILES

    def marker_exists(self, marker=None):
        return self.same_everywhere(os.path.exists(marker or self.marker), "the marker's existence")


class MetadataPickleTest(HostileCheckpointCase):
    """.metadata is a pickle; so are non-tensor entries of the shard files."""

    @known_wrong_result("DCP reads .metadata with plain pickle.load on every rank: a checkpoint's .metadata runs any "
                        "code it carries (here it creates a marker file outside the checkpoint)",
                        wrong=True, right=False)
    def test_metadata_pickle_runs_code(self):
        self.save_genuine()
        self.plant(".metadata", pickle.dumps(crafting.MarkerPayload(self.marker)))
        self.assertNotEqual(self.hostile_load(self.target()), None, "a .metadata that is not Metadata loaded")
        return self.marker_exists()

    @known_wrong_result("without .metadata, DCP falls back to the rank-local __<rank>.metadata (written by "
                        "use_collectives=False saves), also read with pickle.load: every rank runs its own file's code",
                        wrong=[0, 1], right=[])
    def test_rank_local_metadata_pickle_runs_code(self):
        self.save_genuine()
        self.on_rank0(os.remove, os.path.join(self.path, ".metadata"))
        for rank in range(self.world_size):
            self.plant(f"__{rank}.metadata", pickle.dumps(crafting.MarkerPayload(f"{self.marker}.rank{rank}")))
        self.assertNotEqual(self.hostile_load(self.target()), None, "a __<rank>.metadata that is not Metadata loaded")
        return [rank for rank in range(self.world_size) if self.marker_exists(f"{self.marker}.rank{rank}")]

    @known_wrong_result("TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 makes torch.load safe, but DCP unpickles .metadata with "
                        "pickle.load, which the variable does not reach: the payload still runs",
                        wrong=True, right=False)
    def test_weights_only_env_does_not_cover_metadata(self):
        self.save_genuine()
        self.plant(".metadata", pickle.dumps(crafting.MarkerPayload(self.marker)))
        with mock.patch.dict(os.environ, {"TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"}):
            self.assertNotEqual(self.hostile_load(self.target()), None, "a .metadata that is not Metadata loaded")
        return self.marker_exists()

    def test_truncated_metadata_is_refused(self):
        self.save_genuine()
        def truncate():
            path = os.path.join(self.path, ".metadata")
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
        self.on_rank0(truncate)
        before = self.outside_state()
        state_dict = self.target()
        self.assert_refused(self.hostile_load(state_dict), r"pickle data was truncated")
        self.assertEqual(self.fqns_equal_to(state_dict, self.saved), [], "a refused load changed the state dict")
        self.assert_nothing_outside(before)

    @known_wrong_result("DCP reads non-tensor entries (Stateful extras, any object saved beside the tensors) with "
                        "torch.load(weights_only=False): a shard file runs any code it carries, on every rank",
                        wrong=True, right=False)
    def test_non_tensor_entry_runs_code(self):
        self.save_genuine(extra={"extra": crafting.MarkerPayload(self.marker)})
        self.assertFalse(self.marker_exists(), "saving the payload must not run it")
        state_dict = self.target()
        state_dict["extra"] = None  # a non-tensor entry to load into
        self.hostile_load(state_dict)  # loads on a torch with this bug, refuses on a fixed one
        return self.marker_exists()

    def test_weights_only_env_refuses_a_non_tensor_payload(self):
        """TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 reaches the torch.load of non-tensor entries: refused."""
        self.save_genuine(extra={"extra": crafting.MarkerPayload(self.marker)})
        before = self.outside_state()
        state_dict = self.target()
        state_dict["extra"] = None
        with mock.patch.dict(os.environ, {"TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"}):
            self.assert_refused(self.hostile_load(state_dict), r"UnpicklingError: Weights only load failed")
        self.assert_nothing_outside(before)


class StoragePathTest(HostileCheckpointCase):
    """Storage paths in .metadata, and symlinks in the directory, point outside the checkpoint."""

    def move_shards_outside(self):
        for shard in self.nonempty(sorted(glob.glob(os.path.join(self.path, "*.distcp"))), "shard files"):
            shutil.move(shard, os.path.join(self.outside, os.path.basename(shard)))

    def load_from_outside(self):
        """The checkpoint's shards now lie only outside its directory: 'refused', or the FQNs the
        load took from there (those now equal to the checkpoint's values)."""
        state_dict = self.target()
        error = self.hostile_load(state_dict)
        return REFUSED if error else self.fqns_equal_to(state_dict, self.saved)

    @known_wrong_result("FileSystemReader joins the storage paths of .metadata to the checkpoint directory "
                        "unchecked: '../' escapes it and the load reads files outside", wrong=ALL_FQNS, right=REFUSED)
    def test_dotdot_storage_paths(self):
        self.save_genuine()
        self.on_rank0(self.move_shards_outside)
        self.edit_metadata(lambda md: [setattr(info, "relative_path", "../outside/" + info.relative_path)
                                       for info in md.storage_data.values()])
        return self.load_from_outside()

    @known_wrong_result("FileSystemReader accepts absolute storage paths in .metadata (Path / '/abs' is '/abs'): "
                        "the load reads any file the process can read", wrong=ALL_FQNS, right=REFUSED)
    def test_absolute_storage_paths(self):
        self.save_genuine()
        self.on_rank0(self.move_shards_outside)
        self.edit_metadata(lambda md: [setattr(info, "relative_path", os.path.join(self.outside, info.relative_path))
                                       for info in md.storage_data.values()])
        return self.load_from_outside()

    @known_wrong_result("FileSystemReader follows symlinks in the checkpoint directory: a shard file linked to a "
                        "file outside is read from there", wrong=ALL_FQNS, right=REFUSED)
    def test_symlinked_shard_files(self):
        self.save_genuine()
        def link():
            self.move_shards_outside()
            for shard in glob.glob(os.path.join(self.outside, "*.distcp")):
                os.symlink(shard, os.path.join(self.path, os.path.basename(shard)))
        self.on_rank0(link)
        return self.load_from_outside()

    @known_wrong_result("dcp.save opens its shard files with open(path, 'wb'), following a symlink planted in the "
                        "checkpoint directory: it overwrites the file outside that the link points to",
                        wrong=["outside/victim"], right=[])
    def test_save_writes_through_a_planted_symlink(self):
        victim = os.path.join(self.outside, "victim")
        def plant():
            with open(victim, "wb") as f:
                f.write(b"a file outside the checkpoint")
            os.symlink(victim, os.path.join(self.path, "__0_0.distcp"))  # rank 0's first shard file
        self.on_rank0(plant)
        before = self.outside_state()
        self.save_genuine()
        return self.outside_changes(before)

    def test_save_replaces_a_planted_metadata_symlink(self):
        """Safe: .metadata is written to a temporary file and renamed over the link, which is replaced,
        not followed; the checkpoint then loads."""
        victim = os.path.join(self.outside, "victim")
        def plant():
            with open(victim, "wb") as f:
                f.write(b"a file outside the checkpoint")
            os.symlink(victim, os.path.join(self.path, ".metadata"))
        self.on_rank0(plant)
        before = self.outside_state()
        self.save_genuine()
        self.assertFalse(os.path.islink(os.path.join(self.path, ".metadata")), ".metadata is still the planted link")
        self.assert_nothing_outside(before)
        state_dict = self.target()
        self.assertIsNone(self.hostile_load(state_dict), "the saved checkpoint did not load")
        self.assert_loaded_checkpoint(state_dict)


class TamperedCheckpointTest(HostileCheckpointCase):
    """Shards and .metadata that disagree: swapped files, edited dtypes, shapes, chunks, sizes, offsets."""

    def test_dtype_changed_in_metadata_is_ignored(self):
        """Safe: DCP reads a tensor's dtype from the shard's own data (torch.load), not from .metadata,
        and copies it into the model's tensor; the values and the model's dtype are right."""
        self.save_genuine()
        def retype(md):
            md.state_dict_metadata["net3.weight"].properties.dtype = torch.float64
        self.edit_metadata(retype)
        before = self.outside_state()
        state_dict = self.target()
        self.assertIsNone(self.hostile_load(state_dict), "the load with an edited dtype failed")
        self.assert_loaded_checkpoint(state_dict)
        self.assertEqual(state_dict["net3.weight"].dtype, torch.float32, "net3.weight: dtype after the load")
        self.assert_nothing_outside(before)

    def test_shape_changed_in_metadata_is_refused(self):
        self.save_genuine()
        def reshape(md):
            md.state_dict_metadata["net3.weight"].size = torch.Size([31, 15])
        self.edit_metadata(reshape)
        before = self.outside_state()
        state_dict = self.target()
        self.assert_refused(self.hostile_load(state_dict), r"Size mismatch between saved torch.Size\(\[31, 15\]\) and "
                            r"current: torch.Size\(\[30, 15\]\) for net3\.weight")
        self.assertEqual(self.fqns_equal_to(state_dict, self.saved), [], "a refused load changed the state dict")
        self.assert_nothing_outside(before)

    @known_wrong_result("DCP does not check that the chunks in .metadata cover a tensor: with a chunk dropped, the "
                        "load succeeds and the uncovered rows keep the model's previous values",
                        wrong=["net3.weight"], right=REFUSED)
    def test_chunks_not_covering_a_tensor(self):
        self.save_genuine()
        def drop_chunk(md):
            del md.state_dict_metadata["net3.weight"].chunks[1]
        self.edit_metadata(drop_chunk)
        state_dict = self.target()
        error = self.hostile_load(state_dict)
        return REFUSED if error else self.fqns_differing_from(state_dict, self.saved)

    @known_wrong_result("DCP loads a shard file swapped in from another checkpoint of the same layout without a "
                        "check (no checksum or checkpoint id in the shards): the rows it holds are silently "
                        "the other checkpoint's", wrong=ALL_FQNS, right=REFUSED)
    def test_shard_swapped_from_a_checkpoint_with_the_same_layout(self):
        other_path = self.checkpoint_dir("other")
        other_model = self.fsdp2(seed=2)
        other = self.full(get_model_state_dict(other_model))
        self.save_genuine(path=other_path, source=other_model)
        self.save_genuine()
        self.on_rank0(shutil.copy, os.path.join(other_path, "__0_0.distcp"), os.path.join(self.path, "__0_0.distcp"))
        state_dict = self.target()
        if self.hostile_load(state_dict):
            return REFUSED
        return sorted(fqn for fqn in ALL_FQNS  # FQNs holding some element of the other checkpoint's
                      if ((gather_full(state_dict[fqn]) == other[fqn]) & (other[fqn] != self.saved[fqn])).any())

    def test_shard_swapped_from_a_checkpoint_with_another_layout_is_refused(self):
        """A shard file of a 1-rank checkpoint (whole tensors) at rank 0's name: its records are not
        where .metadata says, and reading them fails."""
        other_path = self.checkpoint_dir("other")
        def save_other():
            dcp.save(dummy_model(False, seed=2).state_dict(), checkpoint_id=other_path, no_dist=True)
            shutil.copy(os.path.join(other_path, "__0_0.distcp"), os.path.join(self.path, "__0_0.distcp"))
        self.save_genuine()
        self.on_rank0(save_other)
        before = self.outside_state()
        # torch 2.13 / 2.14: "IndexError: pop from empty list" (torch.load of a record cut at the wrong
        # place): refused, but not a clear message; any error decoding the record counts as refused.
        self.assert_refused(self.hostile_load(self.target()),
                            r"IndexError: pop from empty list|UnpicklingError|PytorchStreamReader|Ran out of input")
        self.assert_nothing_outside(before)

    def test_absurd_declared_size_is_refused_before_allocating(self):
        self.save_genuine()
        def enlarge(md):
            md.state_dict_metadata["net3.weight"].size = torch.Size([TERABYTE, 15])
        self.edit_metadata(enlarge)
        before = self.outside_state()
        state_dict = self.target()
        with crafting.AllocationGuard().on_torch_empty() as guard:
            error = self.hostile_load(state_dict)
        self.assert_refused(error, rf"Size mismatch between saved torch.Size\(\[{TERABYTE}, 15\]\) and current: "
                                   r"torch.Size\(\[30, 15\]\) for net3\.weight")
        self.assertLessEqual(guard.largest, guard.limit, "the load asked torch.empty for the declared size")
        self.assertEqual(self.fqns_equal_to(state_dict, self.saved), [], "a refused load changed the state dict")
        self.assert_nothing_outside(before)

    @known_wrong_result("dcp_to_torch_save (format_utils) allocates every tensor with torch.empty at the size "
                        ".metadata declares before reading anything: an absurd size is an allocation of that size",
                        wrong=TERABYTE * 15 * 4, right=WITHIN_THE_FILES)
    def test_absurd_declared_size_in_an_offline_conversion(self):
        self.save_genuine()
        declared = [TERABYTE, 15]
        def enlarge(md):
            md.state_dict_metadata["net3.weight"].size = torch.Size(declared)
        self.edit_metadata(enlarge)
        converted = os.path.join(self.checkpoint_dir("converted"), f"rank{self.rank}.pt")
        with crafting.AllocationGuard().on_torch_empty() as guard:
            try:
                dcp_to_torch_save(self.path, converted)
            except (Exception, CheckpointException):  # noqa: BLE001 (the guard refused the allocation)
                pass
        checkpoint_size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(self.path, "*")))
        return self.same_everywhere(self.read_size(guard.largest, checkpoint_size), "the largest allocation")

    def _edit_storage(self, fqn, **fields):
        def edit(md):
            for info in self.storage_entries(md, fqn):
                for name, value in fields.items():
                    setattr(info, name, value)
        self.edit_metadata(edit)

    def _guarded_hostile_load(self, state_dict):
        """(error, largest read asked for) of a load whose reads are guarded."""
        with crafting.ReadGuard().on_dcp_reader() as guard:
            error = self.hostile_load(state_dict)
        return error, self.same_everywhere(guard.largest, "the largest read")

    def _largest_shard(self):
        return max(os.path.getsize(p) for p in glob.glob(os.path.join(self.path, "*.distcp")))

    def test_absurd_tensor_offset_is_refused(self):
        """The read past the end of the shard fails (the seek itself on ext4: EINVAL); nothing larger
        than the file is read. DCP reads in place, so the tensors read before may have changed."""
        self.save_genuine()
        self._edit_storage("net3.weight", offset=1 << 50)
        before = self.outside_state()
        error, largest = self._guarded_hostile_load(self.target())
        self.assert_refused(error, r"OSError: \[Errno 22\] Invalid argument|PytorchStreamReader|Ran out of input")
        self.assertLessEqual(largest, self._largest_shard(), "a read larger than the shard file")
        self.assert_nothing_outside(before)

    def test_absurd_tensor_length_is_refused(self):
        self.save_genuine()
        self._edit_storage("net3.weight", length=1 << 50)
        before = self.outside_state()
        error, largest = self._guarded_hostile_load(self.target())
        self.assert_refused(error, r"OSError: \[Errno 22\] Invalid argument|PytorchStreamReader|Ran out of input")
        self.assertLessEqual(largest, self._largest_shard(), "a read larger than the shard file")
        self.assert_nothing_outside(before)

    @known_wrong_result("DCP reads a non-tensor entry with read() of the length .metadata declares, and CPython "
                        "allocates that buffer before reading: an absurd length is an allocation of that size",
                        wrong=TERABYTE, right=WITHIN_THE_FILES)
    def test_absurd_non_tensor_length(self):
        self.save_genuine(extra={"extra": {"step": 3}})
        self._edit_storage("extra.step", length=TERABYTE)
        state_dict = self.target()
        state_dict["extra"] = {"step": 0}
        _, largest = self._guarded_hostile_load(state_dict)
        return self.read_size(largest, self._largest_shard())

    def test_absurd_non_tensor_offset_is_refused(self):
        self.save_genuine(extra={"extra": {"step": 3}})
        self._edit_storage("extra.step", offset=TERABYTE)
        before = self.outside_state()
        state_dict = self.target()
        state_dict["extra"] = {"step": 0}
        error, largest = self._guarded_hostile_load(state_dict)
        self.assert_refused(error, r"EOFError: Ran out of input")
        self.assertLessEqual(largest, self._largest_shard(), "a read larger than the shard file")
        self.assertEqual(state_dict["extra"], {"step": 0}, "extra: changed by a refused load")
        self.assert_nothing_outside(before)


class AsyncSaveHostileDirectoryTest(HostileCheckpointCase):
    """async_save into a directory someone else prepared."""

    _async_group = None

    def async_save(self, state_dict):
        if AsyncSaveHostileDirectoryTest._async_group is None:  # created once, collectively
            AsyncSaveHostileDirectoryTest._async_group = dist.new_group(backend="gloo")
        dcp.async_save(state_dict, checkpoint_id=self.path, process_group=self._async_group,
                       async_stager=DefaultStager(StagingOptions(False, False, False, False))).result()

    def test_async_save_over_a_pickle_metadata(self):
        """Safe: async_save never reads the directory's .metadata; it replaces it."""
        self.save_genuine()
        self.plant(".metadata", pickle.dumps(crafting.MarkerPayload(self.marker)))
        before = self.outside_state()
        newer = self.fsdp2(seed=2)
        self.async_save(get_model_state_dict(newer))
        self.assert_nothing_outside(before)
        state_dict = self.target()
        self.assertIsNone(self.hostile_load(state_dict), "the async-saved checkpoint did not load")
        self.assert_loaded_checkpoint(state_dict, self.full(get_model_state_dict(newer)))
        self.assert_nothing_outside(before)

    @known_wrong_result("async_save writes its shard files with open(path, 'wb') like dcp.save, following a "
                        "symlink planted in the checkpoint directory to overwrite the file outside",
                        wrong=["outside/victim"], right=[])
    def test_async_save_writes_through_a_planted_symlink(self):
        victim = os.path.join(self.outside, "victim")
        def plant():
            with open(victim, "wb") as f:
                f.write(b"a file outside the checkpoint")
            os.symlink(victim, os.path.join(self.path, f"__{self.world_size - 1}_0.distcp"))  # the last rank's
        self.on_rank0(plant)
        before = self.outside_state()
        self.async_save(get_model_state_dict(self.source))
        return self.outside_changes(before)


class HfHostileTest(HostileCheckpointCase):
    """The HF safetensors path: a consolidated checkpoint (HF_FILE, the index and sharded/) at self.path."""

    def setUp(self):
        super().setUp()
        self.hf_save(self.source, self.path)
        self.hf_file = os.path.join(self.path, HF_FILE)

    def hf_save(self, model, path):
        dcp.save(get_model_state_dict(model),
                 storage_writer=HuggingFaceStorageWriter(path, save_distributed=True, enable_consolidation=True))

    def hf_load(self, state_dict, path=None):
        return self.hostile_load(state_dict, storage_reader=HuggingFaceStorageReader(path or self.path))

    def other_checkpoint(self):
        """A consolidated HF checkpoint of the seed-2 model, beside this one: (its file, its values)."""
        other = self.fsdp2(seed=2)
        path = self.checkpoint_dir("other")
        self.hf_save(other, path)
        return os.path.join(path, HF_FILE), self.full(get_model_state_dict(other))

    def test_hf_reader_never_unpickles_metadata(self):
        """Safe: the HF reader builds its metadata from the safetensors headers; a .metadata is ignored."""
        self.plant(".metadata", pickle.dumps(crafting.MarkerPayload(self.marker)))
        before = self.outside_state()
        state_dict = self.target()
        self.assertIsNone(self.hf_load(state_dict), "the HF checkpoint did not load")
        self.assert_loaded_checkpoint(state_dict)
        self.assert_nothing_outside(before)

    def test_hf_reader_ignores_the_index(self):
        """Safe: the reader lists the directory's *.safetensors; an index pointing outside is not read."""
        other_file, _ = self.other_checkpoint()
        self.on_rank0(shutil.copy, other_file, os.path.join(self.outside, "foreign.safetensors"))
        index_path = os.path.join(self.path, "model.safetensors.index.json")
        def redirect():
            with open(index_path) as f:
                index = f.read()
            with open(index_path, "w") as f:
                f.write(index.replace(HF_FILE, "../outside/foreign.safetensors"))
        self.on_rank0(redirect)
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
        self.assertEqual(weight_map, dict.fromkeys(ALL_FQNS, "../outside/foreign.safetensors"), "the edited index")
        before = self.outside_state()
        state_dict = self.target()
        self.assertIsNone(self.hf_load(state_dict), "the HF checkpoint did not load")
        self.assert_loaded_checkpoint(state_dict)
        self.assert_nothing_outside(before)

    def test_corrupted_header_is_refused_by_the_reader(self):
        self.on_rank0(crafting.declare_header_length, self.hf_file, TERABYTE)
        before = self.outside_state()
        state_dict = self.target()
        self.assert_refused(self.hf_load(state_dict), r"Error while deserializing header: header too large")
        self.assertEqual(self.fqns_equal_to(state_dict, self.saved), [], "a refused load changed the state dict")
        self.assert_nothing_outside(before)

    @known_wrong_result("consolidate_safetensors_files reads each input's header with read(<declared length>), "
                        "which CPython allocates before reading: a corrupted header length is an allocation of "
                        "that size (the safetensors reader refuses the same file: 'header too large')",
                        wrong=TERABYTE, right=WITHIN_THE_FILES)
    def test_consolidation_trusts_a_corrupted_header(self):
        shards = self.nonempty(sorted(glob.glob(os.path.join(self.path, "sharded", "*.safetensors"))), "shard files")
        self.on_rank0(lambda: [crafting.declare_header_length(shard, TERABYTE) for shard in shards])
        output = self.checkpoint_dir("consolidated")
        largest = [0]
        if self.rank == 0:
            with crafting.ReadGuard().on_module_open(hf_consolidation) as guard:
                with contextlib.suppress(Exception):  # the guard refused the read
                    hf_consolidation.consolidate_safetensors_files(
                        os.path.join(self.path, "sharded"), output, dict.fromkeys(ALL_FQNS, 1))
            largest = [guard.largest]
        dist.broadcast_object_list(largest, src=0)
        return self.read_size(largest[0], max(map(os.path.getsize, shards)))

    @known_wrong_result("consolidate_safetensors_files_on_every_rank: a rank whose input fails (a corrupted header) "
                        "raises before the final gather_object, and the ranks with no output file to write wait "
                        "in it until the process group times out",
                        wrong=["timed out", "refused"], right=["refused", "refused"])
    def test_consolidation_on_every_rank_waits_out_a_failed_rank(self):
        shards = self.nonempty(sorted(glob.glob(os.path.join(self.path, "sharded", "*.safetensors"))), "shard files")
        # 1 MiB: more than the file holds (the header read comes back short), not an absurd allocation.
        self.on_rank0(lambda: [crafting.declare_header_length(shard, 1 << 20) for shard in shards])
        output = self.checkpoint_dir("consolidated")
        group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=5))
        try:  # one output file (index 1): rank 1 % world_size writes it, the others have nothing to do
            hf_consolidation.consolidate_safetensors_files_on_every_rank(
                os.path.join(self.path, "sharded"), output, dict.fromkeys(ALL_FQNS, 1), process_group=group)
            outcome = "completed"
        except Exception as e:  # noqa: BLE001
            outcome = "timed out" if re.search(r"Timed out", str(e)) else REFUSED
        outcomes = [None] * self.world_size
        dist.all_gather_object(outcomes, outcome)  # on the default group: waits for the waiting ranks
        dist.destroy_process_group(group)  # only now: a peer leaving the group early would end the wait
        return outcomes

    @known_wrong_result("the HF reader converts whatever dtype a safetensors header declares into the model's "
                        "dtype without a check: a header retyped F32 -> I32 loads reinterpreted bits as values",
                        wrong=["net3.weight"], right=REFUSED)
    def test_hf_dtype_changed_in_the_header(self):
        def retype(header):
            header["net3.weight"]["dtype"] = "I32"
        self.on_rank0(crafting.rewrite_safetensors_header, self.hf_file, retype)
        state_dict = self.target()
        return REFUSED if self.hf_load(state_dict) else self.fqns_differing_from(state_dict, self.saved)

    def test_hf_shape_changed_in_the_header_is_refused(self):
        def reshape(header):
            header["net3.weight"]["shape"] = [15, 30]  # the same number of elements, transposed
        self.on_rank0(crafting.rewrite_safetensors_header, self.hf_file, reshape)
        before = self.outside_state()
        state_dict = self.target()
        self.assert_refused(self.hf_load(state_dict), r"Size mismatch between saved torch.Size\(\[15, 30\]\) and "
                                                      r"current: torch.Size\(\[30, 15\]\) for net3\.weight")
        self.assertEqual(self.fqns_equal_to(state_dict, self.saved), [], "a refused load changed the state dict")
        self.assert_nothing_outside(before)

    def test_hf_data_offsets_beyond_the_file_are_refused(self):
        def stretch(header):
            header["net3.weight"]["data_offsets"] = [0, TERABYTE]
        self.on_rank0(crafting.rewrite_safetensors_header, self.hf_file, stretch)
        before = self.outside_state()
        state_dict = self.target()
        self.assert_refused(self.hf_load(state_dict), r"invalid offset for tensor `net3\.weight`")
        self.assertEqual(self.fqns_equal_to(state_dict, self.saved), [], "a refused load changed the state dict")
        self.assert_nothing_outside(before)

    def test_hf_absurd_sharding_offset_is_refused(self):
        """Sharded HF files place each shard by DCP_SHARDING_INFO offsets; an absurd offset makes an
        absurd declared size, refused while planning (nothing allocated)."""
        shards = self.nonempty(sorted(glob.glob(os.path.join(self.path, "sharded", "*.safetensors"))), "shard files")
        def move(header):
            info = json.loads(header["__metadata__"]["DCP_SHARDING_INFO"])
            info["net3.weight"]["saved_offsets"][0] += TERABYTE
            header["__metadata__"]["DCP_SHARDING_INFO"] = json.dumps(info)
        self.on_rank0(lambda: [crafting.rewrite_safetensors_header(shard, move) for shard in shards])
        before = self.outside_state()
        state_dict = self.target()
        with crafting.AllocationGuard().on_torch_empty() as guard:
            error = self.hf_load(state_dict, os.path.join(self.path, "sharded"))
        self.assert_refused(error, rf"Size mismatch between saved torch.Size\(\[{TERABYTE + 30}, 15\]\) and "
                                   r"current: torch.Size\(\[30, 15\]\) for net3\.weight")
        self.assertLessEqual(guard.largest, guard.limit, "the load asked torch.empty for the declared size")
        self.assert_nothing_outside(before)

    @known_wrong_result("the HF reader loads a safetensors file swapped in from another checkpoint without a check: "
                        "every value is silently the other checkpoint's", wrong=ALL_FQNS, right=REFUSED)
    def test_hf_file_swapped_from_another_checkpoint(self):
        other_file, _ = self.other_checkpoint()
        self.on_rank0(shutil.copy, other_file, self.hf_file)
        state_dict = self.target()
        return REFUSED if self.hf_load(state_dict) else self.fqns_differing_from(state_dict, self.saved)

    @known_wrong_result("the HF reader reads every *.safetensors in the directory: a stray file holding the same "
                        "tensors is loaded without an error, and one of the two files (by directory listing "
                        "order) silently provides the values", wrong="loaded", right=REFUSED)
    def test_hf_stray_file_with_the_same_tensors(self):
        other_file, other = self.other_checkpoint()
        self.on_rank0(shutil.copy, other_file, os.path.join(self.path, "model-stray.safetensors"))
        state_dict = self.target()
        if self.hf_load(state_dict):
            return REFUSED
        from_this = self.fqns_equal_to(state_dict, self.saved)
        from_other = self.fqns_equal_to(state_dict, other)
        self.assertIn(ALL_FQNS, (from_this, from_other), f"values from neither file: this {from_this}, other {from_other}")
        return "loaded"

    @known_wrong_result("the HF reader follows symlinks: a safetensors file linked to a file outside the "
                        "checkpoint directory is read from there", wrong=ALL_FQNS, right=REFUSED)
    def test_hf_symlinked_file_outside(self):
        def link():
            moved = os.path.join(self.outside, HF_FILE)
            shutil.move(self.hf_file, moved)
            os.symlink(moved, self.hf_file)
        self.on_rank0(link)
        state_dict = self.target()
        return REFUSED if self.hf_load(state_dict) else self.fqns_equal_to(state_dict, self.saved)
