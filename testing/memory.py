"""What a checkpoint operation costs a rank in memory, from the process's own counters.

    with memory.Peak(device) as peak:          # resets the high-water marks at entry
        dcp.save(state, checkpoint_id=path)
    peak.added                                  # host bytes above the RSS at entry (GPU: .device_added)
    memory.local_bytes(state)                   # this rank's share of the state (DTensors' local shards)
    memory.after_each(lambda: dcp.save(...), 20)  # RSS after each call: a leak grows linearly

Host memory is the resident set: its high-water mark (VmHWM), reset by writing 5 to
/proc/self/clear_refs (psutil reads RSS but has no peak, and a sampling thread misses short
peaks). The figures are those of the live tensors only because enable() makes glibc serve every
block of 64 KiB or more with mmap: a freed tensor then goes back to the kernel at once, instead
of staying in malloc's free lists (where RSS would keep the first peak and hide a leak, and a
reuse would hide a copy). On a GPU rank, torch.cuda's peak allocated bytes are read as well.
"""

import ctypes
import gc
import re

import psutil
import torch

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter; setting it also stops glibc moving it
_MMAP_THRESHOLD = 64 * 1024
MB = 1 << 20


def enable():
    """Every allocation of 64 KiB or more is mmapped from now on (this process)."""
    if not ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD):
        raise RuntimeError("mallopt(M_MMAP_THRESHOLD) refused: host memory figures would not be precise")


def rss():
    gc.collect()
    return psutil.Process().memory_info().rss


def _high_water_mark():
    with open("/proc/self/status") as f:
        return int(re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024


def _reset_high_water_mark():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class Peak:
    """The peak memory added while the block runs: .added (host RSS), .device_added (CUDA)."""

    def __init__(self, device=torch.device("cpu")):
        self.cuda = device.type == "cuda"
        self.added = self.device_added = 0

    def __enter__(self):
        self.base = rss()
        _reset_high_water_mark()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.device_base = torch.cuda.memory_allocated()
        return self

    def __exit__(self, *exc):
        self.added = max(0, _high_water_mark() - self.base)
        if self.cuda:
            torch.cuda.synchronize()
            self.device_added = max(0, torch.cuda.max_memory_allocated() - self.device_base)
        return False


def local_bytes(state):
    """Bytes of the tensors in a (nested) state dict that live on this rank: a DTensor's local
    shard, a ShardedTensor's local shards; storage shared by two entries counted once."""
    seen, total = set(), 0
    for tensor in _local_tensors(state):
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tensor.numel())
        if key not in seen:
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total


def _local_tensors(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _local_tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _local_tensors(v)
    elif hasattr(value, "to_local"):
        yield value.to_local()
    elif hasattr(value, "local_shards"):
        yield from (shard.tensor for shard in value.local_shards())
    elif isinstance(value, torch.Tensor):
        yield value


def after_each(fn, times):
    """[RSS after call 1, ..., after call `times`] of `fn()`, each after a garbage collection."""
    out = []
    for _ in range(times):
        fn()
        out.append(rss())
    return out


def mb(n):
    return f"{n / MB:.1f} MB"
