"""Hugging Face safetensors interchange through DCP: an FSDP2- or TP-sharded model saved with
HuggingFaceStorageWriter (one shard file per rank under sharded/), consolidated into full
safetensors files on rank 0 (the writer's enable_consolidation) or on every rank
(consolidate_safetensors_files_on_every_rank), and read back with the `safetensors` package and
into an unsharded model: the values are the reference's. Files written by the safetensors
package, and shard files saved at another world size, load into a sharded model through
HuggingFaceStorageReader. Empty shards, bf16/fp16 files, loads into another dtype, and the
full-state-dict (rank 0) path; where torch mishandles one, the case pins it, reading only the
error it expects (any other error fails the case).
"""

import copy
import glob
import inspect
import json
import os
import re

import safetensors.torch
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from absl.testing import parameterized
from torch.distributed.checkpoint import HuggingFaceStorageReader
from torch.distributed.checkpoint import HuggingFaceStorageWriter
from torch.distributed.checkpoint._consolidate_hf_safetensors import consolidate_safetensors_files_on_every_rank
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import StateDictOptions
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from torch.distributed.checkpoint.state_dict import set_model_state_dict
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard

from dsd.checkpoint_crafting import REFUSED
from dsd.checkpoint_crafting import refused_by_torch
from models.dummy_models import EvenDummyModel
from models.dummy_models import UnevenDummyModel
from testing import parallelisms
from testing.dist_test_case import DistributedTestCase
from testing.known_failures import known_failure
from testing.known_failures import known_wrong_result
from testing.known_failures import raised_elsewhere
from testing.state_dict_verify import VerifyStateDictMixin
from testing.state_dict_verify import gather_full

HF_FILE = "model-00001-of-00001.safetensors"
INDEX = "model.safetensors.index.json"
# The TP plan needs hidden widths that divide by the world size (the even MLP); FSDP2 takes the
# uneven one, whose shards differ in size (and at 4 ranks include empty ones).
MODELS = {"fsdp2": UnevenDummyModel, "tp": EvenDummyModel}
LAYOUTS = (("fsdp2", "fsdp2"), ("tp", "tp"))
UNEVEN_FQNS = sorted(UnevenDummyModel().state_dict())
# What safetensors (0.8.0) says of a file whose header does not describe its bytes: a torn file.
# Observed (torch 2.13 and 2.14, 2 and 4 ranks): "incomplete metadata, file not fully covered"; the
# others are the same check's words for the other ways two writers can interleave.
TORN_FILE = (r"^Error while deserializing header: (incomplete metadata, file not fully covered|header too large|"
             r"header too small|invalid header length|invalid JSON in header: .*|invalid offset for tensor `.*`|"
             r"invalid shape, data type, or offset for tensor .*)$")


class OneRowHead(nn.Module):
    """Fixture: an MLP whose last layer has one output, so head.weight (1, 8) and head.bias (1,)
    have one row: FSDP2 gives every rank but rank 0 an empty shard of them, at any world size.
    Initialised from `seed` without touching the global RNG, like models/dummy_models.py."""

    in_features = 8

    def __init__(self, seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
            self.head = nn.Linear(16, 1)

    def forward(self, x):
        return self.head(self.body(x))

    def get_input(self, device="cpu", seed=0):
        g = torch.Generator().manual_seed(seed)
        return torch.rand(4, self.in_features, generator=g).to(device)


class HfCase(VerifyStateDictMixin, DistributedTestCase):
    """Helpers: save with the HF writer, read safetensors files, verify them against a reference."""

    def setUp(self):
        super().setUp()
        self.path = self.checkpoint_dir()

    def trained(self, layout, make_model=None):
        """(reference, wrapped model): an unsharded reference and a `layout` copy, trained alike."""
        trained = parallelisms.reference_and_wrapped(make_model or MODELS[layout], layout, self.device)
        return trained.reference, trained.model

    def fresh(self, layout, make_model=None, seed=1):
        """A differently initialised `layout` model to load into."""
        return parallelisms.parallelize((make_model or MODELS[layout])(seed), layout, self.device)

    def save_hf(self, model_or_state_dict, path=None, **writer_options):
        state_dict = model_or_state_dict
        if isinstance(model_or_state_dict, nn.Module):
            state_dict = get_model_state_dict(model_or_state_dict)
        dcp.save(state_dict, storage_writer=HuggingFaceStorageWriter(path or self.path, **writer_options))

    def load_hf(self, model, path=None):
        """Loads the HF files at `path` into `model` (any layout) through DCP and DSD."""
        state_dict = get_model_state_dict(model)
        dcp.load(state_dict, storage_reader=HuggingFaceStorageReader(path or self.path))
        set_model_state_dict(model, state_dict)

    def safetensors_files(self, path=None):
        return sorted(os.path.basename(f) for f in glob.glob(os.path.join(path or self.path, "*.safetensors")))

    def read_files(self, path=None):
        """{fqn: (tensor, file name)} of every *.safetensors in `path`, read with the safetensors package."""
        path = path or self.path
        found = {}
        for name in self.nonempty(self.safetensors_files(path), f"safetensors files in {path}"):
            for fqn, tensor in safetensors.torch.load_file(os.path.join(path, name)).items():
                self.assertNotIn(fqn, found, f"{fqn} is in two files: {found.get(fqn, (None, ''))[1]} and {name}")
                found[fqn] = (tensor, name)
        return found

    def assert_files_hold(self, expected, files, path=None):
        """The safetensors files in `path` are exactly `files` and hold `expected` ({fqn: tensor},
        same dtype, full values), and the index maps every FQN to the file that holds it."""
        path = path or self.path
        self.assertEqual(self.safetensors_files(path), sorted(files), f"safetensors files in {path}")
        found = self.read_files(path)
        self.assertEqual(sorted(found), sorted(expected), "FQNs in the safetensors files")
        for fqn, value in self.nonempty(expected, "the expected state").items():  # files are read to CPU
            self.assert_tensor_matches(gather_full(value).cpu(), found[fqn][0], f"{fqn} in {found[fqn][1]}")
        with open(os.path.join(path, INDEX)) as f:
            weight_map = json.load(f)["weight_map"]
        self.assertEqual(weight_map, {fqn: name for fqn, (_, name) in found.items()}, f"the weight map of {INDEX}")

    def assert_unsharded_model_loads(self, reference, make_model, path=None):
        """The files load (strict) into a fresh unsharded model, which then equals the reference."""
        model = make_model(seed=1).to(self.device)
        tensors = {fqn: tensor for fqn, (tensor, _) in self.read_files(path).items()}
        model.load_state_dict(tensors, strict=True)
        self.verify_msd(reference, model.state_dict(), StateDictOptions(full_state_dict=True))


class HfSaveTest(HfCase):
    """Saving sharded models as HF safetensors, consolidated on rank 0 or on every rank."""

    @parameterized.named_parameters(*LAYOUTS)
    def test_save_distributed_then_consolidate_on_rank0(self, layout):
        reference, model = self.trained(layout)
        self.save_hf(model, save_distributed=True, enable_consolidation=True)
        shards = [f"shard-{rank + 1:05d}-model-00001-of-00001.safetensors" for rank in range(self.world_size)]
        self.assertEqual(self.safetensors_files(os.path.join(self.path, "sharded")), shards, "one shard file per rank")
        self.assert_files_hold(reference.state_dict(), [HF_FILE])
        self.assert_unsharded_model_loads(reference, MODELS[layout])

    @parameterized.named_parameters(*LAYOUTS)
    def test_consolidate_into_one_file_per_rank_on_every_rank(self, layout):
        """Shard files only (no consolidation by the writer), then consolidated with one output file
        per rank, each rank writing one (file k by rank k % world size), rank 0 the index."""
        reference, model = self.trained(layout)
        sharded = os.path.join(self.path, "sharded")
        self.save_hf(model, sharded, save_distributed=True)
        self.assertFalse(os.path.exists(os.path.join(sharded, INDEX)), "save_distributed alone writes no index")
        fqns = sorted(reference.state_dict())
        mapping = {fqn: i % self.world_size + 1 for i, fqn in enumerate(fqns)}
        consolidate_safetensors_files_on_every_rank(sharded, self.path, mapping)
        dist.barrier()
        files = [f"model-{k:05d}-of-{self.world_size:05d}.safetensors" for k in range(1, self.world_size + 1)]
        self.assert_files_hold(reference.state_dict(), files)
        for fqn, (_, name) in self.read_files().items():
            self.assertEqual(name, files[mapping[fqn] - 1], f"{fqn}: in the file the mapping names")
        self.assert_unsharded_model_loads(reference, MODELS[layout])

    def test_fqn_to_index_mapping_splits_the_consolidated_files(self):
        reference, model = self.trained("fsdp2")
        mapping = {fqn: 1 if fqn.startswith(("net1.", "net2.")) else 2 for fqn in UNEVEN_FQNS}
        self.save_hf(model, save_distributed=True, enable_consolidation=True, fqn_to_index_mapping=mapping)
        files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        self.assert_files_hold(reference.state_dict(), files)
        for fqn, (_, name) in self.read_files().items():
            self.assertEqual(name, files[mapping[fqn] - 1], f"{fqn}: in the file the mapping names")

    @parameterized.named_parameters(*LAYOUTS)
    def test_full_state_dict_saved_from_rank0(self, layout):
        """save_distributed=False is rank-0 checkpointing: a full, CPU-offloaded state dict lives on
        rank 0 only, and the writer puts it in one file with its index."""
        reference, model = self.trained(layout)
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        self.assertEqual(bool(full), self.rank == 0, "a full cpu_offload state dict lives on rank 0 only")
        self.save_hf(full)
        self.assert_files_hold(reference.state_dict(), [HF_FILE])
        self.assert_unsharded_model_loads(reference, MODELS[layout])

    @known_wrong_result("HuggingFaceStorageWriter(save_distributed=False) given the full state dict on every rank: "
                        "DCP deduplicates the replicated tensors across ranks and every rank writes its share to the "
                        "same file name, so the file lacks tensors (or is torn) while the index lists them all",
                        wrong=False, right=True)
    def test_full_state_dict_on_every_rank(self):
        _, model = self.trained("fsdp2")
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
        self.assertEqual(sorted(full), UNEVEN_FQNS, "every rank holds the full state dict")
        self.save_hf(full)
        with open(os.path.join(self.path, INDEX)) as f:
            listed = sorted(json.load(f)["weight_map"])
        self.assertEqual(listed, UNEVEN_FQNS, "the index lists every FQN")
        return self.tensors_readable(os.path.join(self.path, HF_FILE)) == listed

    def tensors_readable(self, path):
        """Sorted FQNs the safetensors package reads from `path`; [] for a torn file (its
        SafetensorError TORN_FILE, raised by safetensors' load_file). Any other error propagates."""
        try:
            return sorted(safetensors.torch.load_file(path))
        except safetensors.SafetensorError as e:
            if not re.search(TORN_FILE, str(e)) or raised_elsewhere(e, "safetensors/torch.py:load_file"):
                raise
            return []


class HfLoadTest(HfCase):
    """Loading HF files into sharded models with HuggingFaceStorageReader."""

    @parameterized.named_parameters(*LAYOUTS)
    def test_load_a_file_written_by_the_safetensors_package(self, layout):
        """A plain HF file (safetensors.torch.save_file of an unsharded model: no DCP metadata) loads
        into a model sharded over every rank."""
        reference, _ = self.trained(layout)
        if self.rank == 0:
            safetensors.torch.save_file({k: v.detach().cpu().contiguous() for k, v in reference.state_dict().items()},
                                        os.path.join(self.path, HF_FILE))
        dist.barrier()
        model = self.fresh(layout)
        self.load_hf(model)
        self.verify_msd(reference, get_model_state_dict(model), model=model)

    @parameterized.named_parameters(*LAYOUTS)
    def test_load_shard_files_saved_at_another_world_size(self, layout):
        """Shard files saved by FSDP2 over the first half of the ranks (1 rank of 2, 2 of 4), with
        their DCP sharding offsets, load into a `layout` model over every rank."""
        reference, _ = self.trained(layout)
        savers = list(range(max(self.world_size // 2, 1)))
        group = dist.new_group(savers)
        if self.rank in savers:
            saver = fully_shard(copy.deepcopy(reference), mesh=DeviceMesh.from_group(group, self.device_type))
            dcp.save(get_model_state_dict(saver), process_group=group,
                     storage_writer=HuggingFaceStorageWriter(self.path, save_distributed=True))
        dist.barrier()
        self.assertEqual(self.safetensors_files(), [f"shard-{r + 1:05d}-model-00001-of-00001.safetensors" for r in savers],
                         f"one shard file per saving rank ({len(savers)} of {self.world_size})")
        model = self.fresh(layout)
        self.load_hf(model)
        self.verify_msd(reference, get_model_state_dict(model), model=model)

    def test_empty_shards(self):
        """head.weight and head.bias have one row: ranks 1.. hold empty shards, one of them writes a
        zero-row entry of each to its shard file, and consolidation and loading back still give the
        reference."""
        reference, model = self.trained("fsdp2", OneRowHead)
        msd = get_model_state_dict(model)
        local_rows = [None] * self.world_size
        dist.all_gather_object(local_rows, msd["head.weight"].to_local().shape[0])
        self.assertEqual(local_rows, [1] + [0] * (self.world_size - 1), "head.weight: rows held by each rank")
        self.save_hf(model, save_distributed=True, enable_consolidation=True)
        empty_rows = {"head.weight": [], "head.bias": []}
        for rank in range(1, self.world_size):
            shard = os.path.join(self.path, "sharded", f"shard-{rank + 1:05d}-model-00001-of-00001.safetensors")
            for fqn, tensor in safetensors.torch.load_file(shard).items():
                if fqn in empty_rows:
                    empty_rows[fqn].append(tensor.shape[0])
        # The empty shards all sit at offset 1 (one chunk key): DCP saves that chunk once, from one rank.
        self.assertEqual(empty_rows, {"head.weight": [0], "head.bias": [0]},
                         "entries of head.weight / head.bias (rows) in the shard files of ranks 1..")
        self.assert_files_hold(reference.state_dict(), [HF_FILE])
        self.assert_unsharded_model_loads(reference, OneRowHead)
        fresh = self.fresh("fsdp2", OneRowHead)
        self.load_hf(fresh)
        self.verify_msd(reference, get_model_state_dict(fresh), model=fresh)


class HfDtypeTest(HfCase):
    """Dtypes through the HF path: the writer keeps each tensor's dtype; loads convert."""

    def test_writer_has_no_dtype_option(self):
        """The writer stores every tensor in its own dtype and offers no conversion (so a torch that
        adds one fails here, and gets a case)."""
        options = sorted(inspect.signature(HuggingFaceStorageWriter.__init__).parameters)
        self.assertEqual([o for o in options if "dtype" in o], [], f"HuggingFaceStorageWriter options: {options}")

    def half_model(self, dtype, seed=0):
        return parallelisms.parallelize(UnevenDummyModel(seed).to(dtype), "fsdp2", self.device)

    @parameterized.named_parameters(("bf16", torch.bfloat16), ("fp16", torch.float16))
    def test_half_precision_round_trip(self, dtype):
        model = self.half_model(dtype)
        expected = {fqn: gather_full(v) for fqn, v in get_model_state_dict(model).items()}
        self.save_hf(model, save_distributed=True, enable_consolidation=True)
        self.assert_files_hold(expected, [HF_FILE])  # same dtype, same values
        fresh = self.half_model(dtype, seed=1)
        self.load_hf(fresh)
        for fqn, value in self.nonempty(get_model_state_dict(fresh), "the loaded state dict").items():
            self.assert_tensor_matches(expected[fqn], value, f"{fqn} loaded from the {dtype} file")

    def test_bf16_file_into_an_fp32_model(self):
        """Widening is exact: an fp32 model loaded from a bf16 file holds the bf16 values."""
        model = self.half_model(torch.bfloat16)
        expected = {fqn: gather_full(v).float() for fqn, v in get_model_state_dict(model).items()}
        self.save_hf(model, save_distributed=True, enable_consolidation=True)
        fresh = self.fresh("fsdp2")
        self.load_hf(fresh)
        for fqn, value in self.nonempty(get_model_state_dict(fresh), "the loaded state dict").items():
            self.assert_tensor_matches(expected[fqn], value, f"{fqn}: fp32 loaded from bf16")

    @known_wrong_result("the HF reader copies a file's tensors into the target's dtype without a check: float "
                        "weights loaded into int32 tensors are silently truncated (to 0 here)",
                        wrong=UNEVEN_FQNS, right=REFUSED)
    def test_float_file_into_int_tensors(self):
        reference, model = self.trained("fsdp2")
        self.save_hf(model, save_distributed=True, enable_consolidation=True)
        ints = {fqn: torch.full_like(v, 7, dtype=torch.int32) for fqn, v in reference.state_dict().items()}
        try:
            dcp.load(ints, storage_reader=HuggingFaceStorageReader(self.path))
        except (Exception, CheckpointException) as e:  # noqa: BLE001 (REFUSED only if torch raised it)
            return refused_by_torch(e)
        return sorted(fqn for fqn, value in ints.items() if not torch.equal(value.float(), reference.state_dict()[fqn]))

    @known_failure(CheckpointException, r"TypeError: torch\.finfo\(\) requires a floating point input type",
                   "consolidation sizes every tensor with torch.finfo(dtype).bits, which raises for integer dtypes: "
                   "a model with an integer tensor (BatchNorm's num_batches_tracked, a step counter) cannot be "
                   "consolidated",
                   raised_in="torch/distributed/checkpoint/_consolidate_hf_safetensors.py:_parse_input_metadata")
    def test_consolidate_an_integer_tensor(self):
        model = parallelisms.parallelize(nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8)), "fsdp2", self.device)
        state_dict = get_model_state_dict(model)
        self.assertEqual(state_dict["1.num_batches_tracked"].dtype, torch.int64, "BatchNorm's counter is int64")
        self.save_hf(state_dict, save_distributed=True, enable_consolidation=True)
