"""The device check of a launch, and exclusive GPU slots for parallel tests on one host.

Nothing here imports torch: a CPU-only run must not pay for CUDA initialisation, and the
launcher checks before any rank starts.
"""

import contextlib
import errno
import fcntl
import glob
import importlib.util
import os
import re
import time

DEVICES = ("cpu", "cuda")
DEFAULT_LOCK_DIR = "/var/tmp/dsd-gpu-slots"  # outside /tmp, which newer Bazel sandboxes make private


class DeviceError(RuntimeError):
    """The requested device cannot serve this world size (a failure, never a skip)."""


def torch_has_cuda():
    """Whether the installed torch build ships CUDA kernels (libtorch_cuda.so)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(glob.glob(os.path.join(d, "lib", "libtorch_cuda*.so*"))
               for d in spec.submodule_search_locations)


def visible_gpus(environ=None, dev_dir="/dev"):
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else /dev/nvidiaN nodes."""
    environ = os.environ if environ is None else environ
    cvd = environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        ids = []
        for item in (s.strip() for s in cvd.split(",")):
            if not item or item.startswith("-"):
                break  # CUDA stops at the first invalid entry
            ids.append(item)
        return ids
    nodes = [os.path.basename(p) for p in glob.glob(os.path.join(dev_dir, "nvidia*"))]
    return sorted((n[len("nvidia"):] for n in nodes if re.fullmatch(r"nvidia\d+", n)), key=int)


def check_device(device, world_size, gpus, has_cuda):
    """Raises DeviceError unless `device` can serve `world_size` ranks. Which device a target uses
    is decided in one place, at analysis time (testing/defs.bzl: --config=cpu|gpu, the GPU count
    ./bazelw found, the environment's torch build); here it is only checked, so a CUDA target
    without its GPUs fails instead of falling back."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if device != "cuda":
        return
    if not has_cuda:
        raise DeviceError("--device=cuda but the installed torch has no CUDA support "
                          "(CPU build); install a CUDA build of the pinned torch")
    if len(gpus) < world_size:
        raise DeviceError(f"--device=cuda needs {world_size} GPUs for world size {world_size}, "
                          f"{len(gpus)} visible ({', '.join(gpus) or 'none'})")


class GpuSlots(contextlib.AbstractContextManager):
    """Holds exclusive flocks on `count` of `gpus` until closed.

    Slots are lock files in `lock_dir` shared by every test on the host (locks die with the
    process, so a killed test never leaks a GPU). Waits up to `timeout` seconds for enough free
    slots, taking none until all are free, so two tests never deadlock holding half each.
    """

    def __init__(self, gpus, count, lock_dir, timeout=3600.0, poll=0.5):
        self.gpus, self.count, self.lock_dir = list(gpus), count, lock_dir
        self.timeout, self.poll = timeout, poll
        self.acquired = []  # GPU ids, in the order handed to CUDA_VISIBLE_DEVICES
        self._files = []

    def __enter__(self):
        if self.count > len(self.gpus):
            raise DeviceError(f"needs {self.count} GPU slots, only {len(self.gpus)} GPUs visible")
        os.makedirs(self.lock_dir, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        while True:
            if self._try_acquire():
                return self
            if time.monotonic() > deadline:
                raise DeviceError(f"no {self.count} free GPU slots in {self.lock_dir} after {self.timeout:.0f}s")
            time.sleep(self.poll)

    def _try_acquire(self):
        for gpu in self.gpus:
            path = os.path.join(self.lock_dir, "gpu-%s.lock" % re.sub(r"[^\w.-]", "_", gpu))
            f = open(path, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                f.close()
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                continue
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}\n")
            f.flush()
            self._files.append(f)
            self.acquired.append(gpu)
            if len(self.acquired) == self.count:
                return True
        self.close()
        return False

    def close(self):
        for f in self._files:
            f.close()  # closing drops the flock
        self._files, self.acquired = [], []

    def __exit__(self, *exc):
        self.close()
