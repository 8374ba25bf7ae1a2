"""DistributedTestCase: the base class of every scenario test.

The launcher's rank worker has already initialised the default process group (once per
launch) and calls configure(); test methods use self.rank, self.world_size, self.device,
self.mesh() and self.checkpoint_dir(). absl's parameterized.TestCase is the in-rank framework.
Known torch bugs are marked with testing.known_failures.
"""

import functools
import os
import shutil

import torch
import torch.distributed as dist
from absl.testing import parameterized
from torch.distributed.device_mesh import init_device_mesh

from testing.launcher.protocol import case_dir_name

_ENV = {}


def configure(device, backend, scratch_dir, phase=0, phase_world_sizes=None, random_seed=0):
    """Called by the rank worker after init_process_group."""
    _ENV.update(device=device, backend=backend, scratch_dir=scratch_dir, phase=phase,
                phase_world_sizes=phase_world_sizes or [dist.get_world_size()], random_seed=random_seed)


def requires_world_size(n):
    """Skips a case (with that reason) below world size n, e.g. a scenario needing 4 ranks."""
    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            if self.world_size < n:
                self.skipTest(f"needs world size >= {n}, launched with {self.world_size}")
            return fn(self, *args, **kwargs)
        return wrapper
    return decorator


def requires_torch(versions, why):
    """Skips a case unless torch is one of `versions` (prefixes, e.g. "2.14"), with `why`;
    tools/catalogue.py shows such a case as skipped on the other releases."""
    versions = (versions,) if isinstance(versions, str) else tuple(versions)

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            if not any(torch.__version__ == v or torch.__version__.startswith((v + ".", v + "+")) for v in versions):
                self.skipTest(f"needs torch {' or '.join(versions)} (this is {torch.__version__}): {why}")
            return fn(self, *args, **kwargs)
        return wrapper
    return decorator


def requires_cuda(why):
    """Skips a case on CPU ranks with a reason that starts with 'needs CUDA'."""
    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            if self.device_type != "cuda":
                self.skipTest(f"needs CUDA: {why}")
            return fn(self, *args, **kwargs)
        return wrapper
    return decorator


class DistributedTestCase(parameterized.TestCase):
    """A test case that runs on every rank of a launch, in lock step."""

    def setUp(self):
        super().setUp()
        if not dist.is_initialized():
            raise RuntimeError("DistributedTestCase runs under testing/launcher.py (one process per rank)")
        torch.manual_seed(_ENV.get("random_seed", 0))  # TEST_RANDOM_SEED, the same on every rank

    @property
    def rank(self):
        return dist.get_rank()

    @property
    def world_size(self):
        return dist.get_world_size()

    @property
    def device_type(self):
        return _ENV["device"]

    @property
    def device(self):
        if self.device_type == "cuda":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    @property
    def backend(self):
        return _ENV["backend"]

    @property
    def phase(self):
        """Index of this launch among the target's phases (0 unless the target changes world size)."""
        return _ENV["phase"]

    @property
    def phase_world_sizes(self):
        """World size of every phase, e.g. [4, 2] for a save-at-4, load-at-2 target."""
        return _ENV["phase_world_sizes"]

    def nonempty(self, collection, what):
        """`collection`, after asserting it is not empty (a loop over nothing checks nothing)."""
        self.assertTrue(len(collection) > 0, f"{what} is empty")
        return collection

    def mesh(self, shape=None, names=None):
        """A DeviceMesh over every rank on this launch's device: 1-D by default, or `shape`
        (e.g. (2, 2) with names ("dp_shard", "tp")), like upstream's build_device_mesh."""
        return init_device_mesh(self.device_type, tuple(shape or (self.world_size,)), mesh_dim_names=names)

    def checkpoint_dir(self, name="checkpoint"):
        """A directory for this case, the same path on every rank, under TEST_TMPDIR; fresh in
        phase 0, kept for later phases (which load what phase 0 saved). When the case fails, the
        launcher keeps what it wrote there in the target's outputs (failures/<case>/checkpoint/)."""
        case = case_dir_name(f"{type(self).__name__}.{self._testMethodName}")
        path = os.path.join(_ENV["scratch_dir"], case, name)
        if self.rank == 0 and self.phase == 0:
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
        elif self.rank == 0:
            os.makedirs(path, exist_ok=True)
        dist.barrier()
        return path
