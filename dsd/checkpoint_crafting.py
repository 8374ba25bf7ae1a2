"""Crafting fixtures for hostile checkpoints (dsd/hostile_checkpoint_test.py).

Everything here works on files under a case's own scratch directory and nothing else:

  MarkerPayload(marker)        pickles to a call that creates an empty marker file named for the
                               rank that unpickles it (and nothing else); pickling it never runs
                               it, unpickling does; marker_ranks lists the ranks that ran it
  rewrite_safetensors_header   edits the JSON header of a safetensors file, keeping its data
  ReadGuard                    records the read sizes a reader asks for and refuses (GuardRefused,
                               a MemoryError) a read above its limit, so a case can show that torch
                               would allocate what a corrupted file declares without letting it do so
  AllocationGuard              the same for torch.empty
  tolerating_guard_refusals    lets a guard's refusal (alone) end the guarded call
  tree_digest                  what lies under a directory (content digests, symlink targets), to
                               show that nothing outside a checkpoint directory changed
  torch_error(e)               the error torch raised, out of a CheckpointException
  refused_by_torch(e)          REFUSED if torch's own code raised `e` (every failure it wraps),
                               else a description of an unexpected error (one of ours)
"""

import contextlib
import glob
import hashlib
import json
import math
import os
import pathlib
import struct
import sysconfig
import traceback
from unittest import mock

import torch
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.filesystem import FileSystem

REFUSED = "refused"
_REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep
_TORCH = os.path.dirname(os.path.realpath(torch.__file__)) + os.sep
_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep


class GuardRefused(MemoryError):
    """A guard (ReadGuard, AllocationGuard) refused a request above its limit: the only
    MemoryError a case expects, and only where it says so."""


def marker_path(marker, rank):
    return f"{marker}.rank{rank}"


def touch_rank_marker(marker):
    """The payload: creates the empty file marker_path(marker, RANK), RANK being the environment of
    the process that runs it ('unknown' outside a rank), and returns None."""
    pathlib.Path(marker_path(marker, os.environ.get("RANK", "unknown"))).touch()


class MarkerPayload:
    """A hostile object: unpickling it calls touch_rank_marker(marker), which creates an empty file
    named for the rank that unpickled it and returns None. It stands for any code a checkpoint
    could run; it only ever touches `marker`.rank<N>, beside a path the case chose outside the
    checkpoint directory."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return touch_rank_marker, (self.marker,)


def marker_ranks(marker):
    """Sorted ranks that ran a MarkerPayload(marker): ints, or the raw suffix of a marker file named
    otherwise (which no expected list contains)."""
    suffixes = [path[len(marker_path(marker, "")):] for path in glob.glob(glob.escape(marker) + ".rank*")]
    ranks = [int(s) if s.isdigit() else s for s in suffixes]
    return sorted(ranks, key=lambda r: (isinstance(r, str), r))


def failures(error):
    """[(exception, traceback summary or None)] behind `error`: every rank's failure a
    CheckpointException carries (by rank), else `error` with its own traceback."""
    if isinstance(error, CheckpointException):
        return [error.failures[rank] for rank in sorted(error.failures)]
    return [(error, traceback.extract_tb(error.__traceback__))]


def _in_stdlib(filename):
    """True for Python's standard library, but for unittest (a mock raising is a test's doing)."""
    real = os.path.realpath(filename)
    return filename.startswith("<frozen ") or (
        real.startswith(_STDLIB) and not real.startswith(_STDLIB + "unittest" + os.sep)
        and "site-packages" not in real and "dist-packages" not in real)


def raising_frame(summary):
    """The frame that raised: the innermost frame of `summary` outside Python's standard library
    (json, pickle, pathlib ... raise for their caller; unittest.mock does not); None without one."""
    frames = [f for f in summary or () if not _in_stdlib(f.filename)]
    return frames[-1] if frames else None


def in_torch(frame, at=None):
    """True if `frame` lies in torch's installed package (never in this repository) and, with `at`
    ('path inside torch:function', e.g. 'serialization.py:load'), in that file and function."""
    real = os.path.realpath(frame.filename) if frame else ""
    if not real.startswith(_TORCH) or real.startswith(_REPO):
        return False
    if at is None:
        return True
    path, _, function = at.partition(":")
    return real[len(_TORCH):] == path and frame.name == function


def where(frame):
    return f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else "no traceback"


def raised_at(error):
    """Where the (first) failure behind `error` was raised: 'file:line in function'."""
    return where(raising_frame(failures(error)[0][1]))


def refused_by_torch(error, at=None):
    """REFUSED if torch raised `error`: the raising frame of every failure behind it (see
    failures, raising_frame) lies in torch's installed package (with `at`, in that function, see
    in_torch). Else 'unexpected error: ...' with the error and where it was raised (this
    repository, a guard, a payload, Python itself), which is neither a known wrong result nor a
    correct one."""
    outside = [(exc, raising_frame(summary)) for exc, summary in failures(error)
               if not in_torch(raising_frame(summary), at)]
    if not outside:
        return REFUSED
    return "unexpected error: " + "; ".join(f"{type(exc).__name__}: {exc} (raised at {where(frame)})"
                                            for exc, frame in outside)[:1000]


def guard_refusal(error):
    """True if `error` is a guard's refusal: a GuardRefused, or a CheckpointException whose every
    failure is one."""
    found = failures(error)
    return bool(found) and all(isinstance(exc, GuardRefused) for exc, _ in found)


@contextlib.contextmanager
def tolerating_guard_refusals():
    """Ends the block quietly where a guard refused (GuardRefused, alone or as every failure of a
    CheckpointException); any other error propagates."""
    try:
        yield
    except (Exception, CheckpointException) as e:  # noqa: BLE001 (re-raised unless the guard's)
        if not guard_refusal(e):
            raise


def torch_error(error):
    """`error` itself, or for a CheckpointException (DCP's wrapper, a BaseException) the error of
    its lowest failing rank (every rank's CheckpointException carries every rank's failure)."""
    if isinstance(error, CheckpointException):
        rank = min(error.failures)
        return error.failures[rank][0]
    return error


def describe(error, limit=500):
    """'Type: message' of the error torch raised (first `limit` characters; None: all)."""
    inner = torch_error(error)
    return f"{type(inner).__name__}: {inner}"[:limit]


def read_safetensors_header(path):
    """(header dict, header length in bytes, data bytes) of a safetensors file."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        return header, length, f.read()


def rewrite_safetensors_header(path, edit):
    """Calls edit(header) on the parsed JSON header of the safetensors file at `path` and writes
    the file back with the edited header (padded to 8 bytes) and the same data section."""
    header, _, data = read_safetensors_header(path)
    edit(header)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + data)


def declare_header_length(path, length):
    """Overwrites the 8-byte header length of a safetensors file with `length` (a corrupted header)."""
    with open(path, "r+b") as f:
        f.write(struct.pack("<Q", length))


class _GuardedStream:
    """A file object whose read(n) goes through a ReadGuard; everything else is the file's own."""

    def __init__(self, stream, guard):
        self._stream, self._guard = stream, guard

    def read(self, size=-1):
        self._guard.check(size)
        return self._stream.read(size)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self._stream.__exit__(*exc_info)

    def __iter__(self):
        return iter(self._stream)


class ReadGuard:
    """Records the size of every read(n) through the streams it wraps and refuses one above
    `limit` bytes with GuardRefused before it reaches the file: CPython's read(n) allocates an
    n-byte buffer first, so a reader that trusts a declared length would otherwise allocate it."""

    def __init__(self, limit=64 << 20):
        self.limit, self.requests = limit, []

    def check(self, size):
        if size is not None and size >= 0:
            self.requests.append(size)
            if size > self.limit:
                raise GuardRefused(f"ReadGuard: refused a read of {size} bytes (limit {self.limit})")

    @property
    def largest(self):
        return max(self.requests, default=0)

    @contextlib.contextmanager
    def on_dcp_reader(self):
        """Guards the streams DCP's FileSystemReader (and writer) open."""
        create_stream = FileSystem.create_stream

        @contextlib.contextmanager
        def guarded(fs, path, mode):
            with create_stream(fs, path, mode) as stream:
                yield _GuardedStream(stream, self)

        with mock.patch.object(FileSystem, "create_stream", guarded):
            yield self

    @contextlib.contextmanager
    def on_module_open(self, module):
        """Guards the files `module` opens with the builtin open (shadowed in its namespace only)."""
        def guarded_open(*args, **kwargs):
            return _GuardedStream(open(*args, **kwargs), self)

        with mock.patch.object(module, "open", guarded_open, create=True):
            yield self


class AllocationGuard:
    """Patches torch.empty: records the bytes of every request and refuses (GuardRefused) one above
    `limit` bytes, so a case can show what a loader would allocate without allocating it."""

    def __init__(self, limit=256 << 20):
        self.limit, self.requests = limit, []

    @property
    def largest(self):
        return max(self.requests, default=0)

    @contextlib.contextmanager
    def on_torch_empty(self):
        empty = torch.empty

        def guarded_empty(*size, dtype=None, **kwargs):
            shape = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
            if "size" in kwargs:
                shape = kwargs["size"]
            itemsize = (dtype or torch.get_default_dtype()).itemsize
            nbytes = math.prod(int(s) for s in shape) * itemsize
            self.requests.append(nbytes)
            if nbytes > self.limit:
                raise GuardRefused(f"AllocationGuard: refused torch.empty of {nbytes} bytes (limit {self.limit})")
            return empty(*size, dtype=dtype, **kwargs)

        with mock.patch.object(torch, "empty", guarded_empty):
            yield self


def tree_digest(root, exclude=()):
    """{relative path: sha256 of the content, 'symlink -> target', or 'dir'} of everything under
    `root`, skipping the directories in `exclude` (absolute paths) and what lies under them."""
    excluded = {os.path.realpath(p) for p in exclude}
    found = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(directory, d)) not in excluded]
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = f"symlink -> {os.readlink(path)}"
            elif os.path.isdir(path):
                found[rel] = "dir"
            else:
                with open(path, "rb") as f:
                    found[rel] = hashlib.sha256(f.read()).hexdigest()
    return found


def changed_paths(before, after):
    """Sorted relative paths added, removed or changed between two tree_digest results."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
