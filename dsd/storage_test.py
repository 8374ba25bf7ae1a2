"""Where and how a transformer checkpoint is stored: fsspec storage (FsspecWriter / FsspecReader on
a local path and a file:// URL, overwrite, a failed stream leaves no file; an FSDP1 model and its
optimizer read back with load_sharded_optimizer_state_dict through FsspecReader), no_dist saves and loads
(one process exports a consolidated checkpoint; plain and sharded models load it), and what a
stored checkpoint says about itself (FileSystemReader.read_metadata(): every key, global shape,
dtype and chunks; single keys read without a model).

Spec: PyTorch's test_fsspec.py, test_save_load_api.py (no_dist), test_list_stored_state_dict.py /
test_list_state_dict.py (stored metadata) and e2e/test_e2e_save_and_load.py
(_load_state_dict_from_keys).
"""

import math
import os

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from absl.testing import parameterized
from torch.distributed._shard.sharded_tensor import ShardedTensor
from torch.distributed.checkpoint._fsspec_filesystem import FileSystem
from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader
from torch.distributed.checkpoint._fsspec_filesystem import FsspecWriter
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.metadata import BytesStorageMetadata
from torch.distributed.checkpoint.metadata import TensorStorageMetadata
from torch.distributed.checkpoint.optimizer import load_sharded_optimizer_state_dict
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import set_model_state_dict
from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import StateDictType

from dsd import transformer_checks
from dsd.transformer_checks import FULL
from dsd.transformer_checks import SHARDED
from models import transformer
from models.dummy_models import UnevenDummyModel
from testing import checkpointing
from testing.state_dict_verify import fqn_by_param_id
from testing.state_dict_verify import gather_full


class FsspecStorageTest(transformer_checks.TransformerCase):

    @parameterized.named_parameters(("local_path", ""), ("file_url", "file://"))
    def test_fsspec_round_trip(self, scheme):
        path = scheme + self.checkpoint_dir()
        trained = self.trained("fsdp2")
        checkpointing.save(trained.model, trained.optim, None, storage_writer=FsspecWriter(path))
        self.assertTrue(os.path.exists(os.path.join(path.removeprefix("file://"), ".metadata")), ".metadata written")

        target = self.model("fsdp2", seed=1)
        target_optim = transformer.adamw(target.parameters())
        checkpointing.load(target, target_optim, None, storage_reader=FsspecReader(path))
        loaded = trained._replace(model=target, optim=target_optim)
        self.verify_state(loaded, f"saved and loaded through fsspec ({scheme or 'a plain path'})")
        self.continue_training(loaded)

    def test_fsspec_overwrite(self):
        path = self.checkpoint_dir()
        first, second = self.trained("fsdp2"), self.trained("fsdp2", steps=3)
        dcp.save(get_model_state_dict(first.model), storage_writer=FsspecWriter(path, overwrite=False))
        dcp.save(get_model_state_dict(second.model), storage_writer=FsspecWriter(path, overwrite=True))
        refused = None
        try:
            dcp.save(get_model_state_dict(first.model), storage_writer=FsspecWriter(path, overwrite=False))
        except CheckpointException as e:
            refused = str(e)
        self.assertRegex(refused or "", r"Checkpoint already exists", "overwrite=False over a checkpoint")

        target = self.model("fsdp2", seed=1)
        msd = get_model_state_dict(target)
        dcp.load(msd, storage_reader=FsspecReader(path))
        self.verify_msd(second.reference, msd, SHARDED, target)

    def fsdp1_sharded(self, seed):
        """UnevenDummyModel under FSDP1 without a DeviceMesh (ShardedTensor state dicts, uneven
        shards) in SHARDED_STATE_DICT mode, with a fresh Adam."""
        model = FSDP(UnevenDummyModel(seed).to(self.device), device_id=self.device)
        FSDP.set_state_dict_type(model, StateDictType.SHARDED_STATE_DICT)
        return model, torch.optim.Adam(model.parameters(), lr=0.1)

    def test_fsdp1_optimizer_loaded_with_load_sharded_optimizer_state_dict_through_fsspec(self):
        """Upstream's TestFSSpec.test_fsspec: an FSDP1 model and FSDP.optim_state_dict saved with
        FsspecWriter; the model read back through FsspecReader, the optimizer through
        load_sharded_optimizer_state_dict(storage_reader=FsspecReader) + optim_state_dict_to_load."""
        path = self.checkpoint_dir()
        model, optim = self.fsdp1_sharded(seed=0)
        for step in range(2):
            optim.zero_grad()
            model(model.get_input(self.device, seed=step)).sum().backward()
            optim.step()
        saved_msd = {fqn: gather_full(v) for fqn, v in model.state_dict().items()}
        saved_osd = FSDP.optim_state_dict(model, optim)
        dcp.save({"model": model.state_dict(), "optim": saved_osd}, storage_writer=FsspecWriter(path))

        target, target_optim = self.fsdp1_sharded(seed=1)
        state_dict = {"model": target.state_dict()}
        dcp.load(state_dict, storage_reader=FsspecReader(path))
        target.load_state_dict(state_dict["model"])
        optim_state = load_sharded_optimizer_state_dict(model_state_dict=state_dict["model"], optimizer_key="optim",
                                                        storage_reader=FsspecReader(path))
        for fqn, state in self.nonempty(optim_state["optim"]["state"], "the optimizer state read back").items():
            for key in ("exp_avg", "exp_avg_sq"):
                self.assertIsInstance(state[key], ShardedTensor, f"{fqn}.{key}: read back as a ShardedTensor")
        target_optim.load_state_dict(FSDP.optim_state_dict_to_load(target, target_optim, optim_state["optim"]))

        loaded_msd = target.state_dict()
        self.assertEqual(sorted(loaded_msd), sorted(saved_msd), "model state dict FQNs")
        for fqn, value in self.nonempty(saved_msd, "the saved model state").items():
            self.assert_tensor_matches(value, loaded_msd[fqn], f"{fqn} (model, loaded through FsspecReader)")
        saved, loaded = saved_osd["state"], FSDP.optim_state_dict(target, target_optim)["state"]
        self.assertEqual(sorted(loaded), sorted(saved), "FQNs with optimizer state")
        for fqn, state in self.nonempty(saved, "the saved optimizer state").items():
            self.assertEqual(sorted(loaded[fqn]), sorted(state), f"{fqn}: optimizer state keys")
            for key, value in state.items():
                self.assert_tensor_matches(value, loaded[fqn][key], f"{fqn}.{key} (optimizer, loaded through "
                                           "load_sharded_optimizer_state_dict and FsspecReader)")
        self.assertEqual(target_optim.param_groups[0]["lr"], 0.1, "lr")

    def test_fsspec_stream_failure_removes_the_partial_file(self):
        """A write that fails mid-stream leaves no partial file; a failing read keeps the file."""
        fs = FileSystem()
        path = os.path.join(self.checkpoint_dir(), f"rank{self.rank}")
        os.makedirs(path)
        path = fs.init_path(path)
        partial = fs.concat_path(path, "partial")
        with self.assertRaises(OSError):
            with fs.create_stream(partial, "wb") as stream:
                stream.write(b"half a shard")
                raise OSError("disk full")
        self.assertFalse(fs.exists(partial), "a partial file was left behind")
        kept = fs.concat_path(path, "kept")
        with fs.create_stream(kept, "wb") as stream:
            stream.write(b"a shard")
        with self.assertRaises(OSError):
            with fs.create_stream(kept, "rb"):
                raise OSError("read error")
        self.assertTrue(fs.exists(kept), "a failed read removed the file")


class NoDistTest(transformer_checks.TransformerCase):

    def test_rank0_exports_with_no_dist_then_plain_and_sharded_models_load_it(self):
        path = self.checkpoint_dir()
        trained = self.trained("fsdp2")
        full = get_model_state_dict(trained.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if self.rank == 0:  # a single-process export, e.g. for inference
            dcp.save(full, checkpoint_id=path, no_dist=True)
            stored = dcp.FileSystemReader(path).read_metadata()
            files = sorted(f for f in os.listdir(path) if f.endswith(".distcp"))
            self.assertEqual(files, ["__0_0.distcp"], "one process writes one data file")
            expected = {k for k in trained.reference.state_dict() if k != "softcap._extra_state"}
            expected.add("softcap._extra_state.cap")  # DCP stores a dict-valued extra state item by item
            self.assertEqual(sorted(stored.state_dict_metadata), sorted(expected), "keys of the exported checkpoint")
        dist.barrier()

        plain = self.model("plain", seed=1)  # every rank, on its own
        msd = plain.state_dict()
        dcp.load(msd, checkpoint_id=path, no_dist=True)
        plain.load_state_dict(msd)
        self.verify_msd(trained.reference, plain.state_dict(), FULL)

        sharded = self.model("fsdp2", seed=1)  # all ranks together, resharding the single file
        msd = get_model_state_dict(sharded)
        dcp.load(msd, checkpoint_id=path)
        set_model_state_dict(sharded, msd)
        self.verify_msd(trained.reference, get_model_state_dict(sharded), SHARDED, sharded)

    def test_every_rank_saves_its_own_no_dist_checkpoint(self):
        """no_dist on every rank at once: independent checkpoints, no collectives, no clash."""
        path = os.path.join(self.checkpoint_dir(), f"rank{self.rank}")
        model = self.model("plain", seed=self.rank)
        dcp.save(model.state_dict(), checkpoint_id=path, no_dist=True)
        target = self.model("plain", seed=10 + self.rank)
        msd = target.state_dict()
        dcp.load(msd, checkpoint_id=path, no_dist=True)
        target.load_state_dict(msd)
        self.verify_msd(model, target.state_dict(), FULL)


class StoredMetadataTest(transformer_checks.TransformerCase):

    @parameterized.named_parameters(("fsdp2", "fsdp2"), ("fsdp1", "fsdp1"), ("tp", "tp"))
    def test_stored_keys_shapes_dtypes_and_chunks(self, layout):
        path = self.checkpoint_dir()
        trained = self.trained(layout)
        checkpointing.save(trained.model, trained.optim, path)
        metadata = dcp.FileSystemReader(path).read_metadata()
        stored = metadata.state_dict_metadata

        reference_sd = trained.reference.state_dict()
        expected_model = {f"app.model.{k}" for k in reference_sd if k != "softcap._extra_state"}
        expected_model.add("app.model.softcap._extra_state.cap")
        self.assertEqual(sorted(k for k in stored if k.startswith("app.model.")), sorted(expected_model),
                         "stored model keys")
        fqn_of = fqn_by_param_id(trained.reference, trained.ref_optim)
        ref_osd = trained.ref_optim.state_dict()
        expected_optim = {f"app.optim.state.{fqn_of[pid]}.{k}" for pid, s in ref_osd["state"].items() for k in s}
        self.assertEqual(sorted(k for k in stored if k.startswith("app.optim.state.")), sorted(expected_optim),
                         "stored optimizer state keys")

        stored_chunks = {(i.fqn, tuple(i.offset)) for i in metadata.storage_data if i.offset is not None}  # tensors
        for fqn, value in self.nonempty(reference_sd, "the reference state dict").items():
            key = f"app.model.{fqn}"
            if not isinstance(value, torch.Tensor):
                self.assertIsInstance(stored[f"{key}.cap"], BytesStorageMetadata, f"{fqn}: stored as bytes")
                continue
            meta = stored[key]
            self.assertIsInstance(meta, TensorStorageMetadata, f"{fqn}: stored as a tensor")
            self.assertEqual(tuple(meta.size), tuple(value.shape), f"{fqn}: stored global shape")
            self.assertEqual(meta.properties.dtype, value.dtype, f"{fqn}: stored dtype")
            self.assert_chunks_tile(meta, fqn)
            for chunk in meta.chunks:
                self.assertIn((key, tuple(chunk.offsets)), stored_chunks, f"{fqn}: chunk at {tuple(chunk.offsets)} "
                              "has no storage entry")
        data_files = {d.relative_path for d in metadata.storage_data.values()}
        missing = sorted(f for f in data_files if not os.path.exists(os.path.join(path, f)))
        self.assertEqual(missing, [], "data files the metadata names but the directory lacks")

        # One key read without a model (e.g. to inspect a checkpoint): a full tensor, in the
        # nesting the saver used ({"app": {"model": {fqn: ...}}}).
        fqn = "layers.1.feed_forward.w2.weight"
        read = _load_state_dict_from_keys({f"app.model.{fqn}"}, checkpoint_id=path)
        self.assertEqual(read.keys(), {"app"}, "keys read")
        self.assertEqual(read["app"].keys(), {"model"}, "keys read under app")
        self.assertEqual(read["app"]["model"].keys(), {fqn}, "keys read under app.model")
        self.assert_tensor_matches(reference_sd[fqn], read["app"]["model"][fqn], f"{fqn} read by key")

    def assert_chunks_tile(self, meta, fqn):
        """The stored chunks cover the global tensor exactly once (each element in one chunk)."""
        covered = torch.zeros(tuple(meta.size), dtype=torch.int32)
        for chunk in self.nonempty(meta.chunks, f"{fqn}: chunks"):
            index = tuple(slice(o, o + s) for o, s in zip(chunk.offsets, chunk.sizes))
            covered[index] += 1
        self.assertTrue(bool((covered == 1).all()),
                        f"{fqn}: chunks {[(tuple(c.offsets), tuple(c.sizes)) for c in meta.chunks]} do not tile "
                        f"{tuple(meta.size)} exactly once")
        self.assertEqual(sum(math.prod(c.sizes) for c in meta.chunks), math.prod(meta.size), f"{fqn}: chunk volume")
