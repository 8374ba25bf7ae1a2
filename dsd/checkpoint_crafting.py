"""Crafting fixtures for hostile checkpoints (dsd/hostile_checkpoint_test.py).

Everything here works on files under a case's own scratch directory and nothing else:

  MarkerPayload(path)          pickles to a call that creates an empty marker file (and nothing
                               else); pickling it never runs it, unpickling does
  rewrite_safetensors_header   edits the JSON header of a safetensors file, keeping its data
  ReadGuard                    records the read sizes a reader asks for and refuses (MemoryError)
                               a read above its limit, so a case can show that torch would allocate
                               what a corrupted file declares without letting it do so
  AllocationGuard              the same for torch.empty
  tree_digest                  what lies under a directory (content digests, symlink targets), to
                               show that nothing outside a checkpoint directory changed
  torch_error(e)               the error torch raised, out of a CheckpointException
"""

import contextlib
import hashlib
import json
import math
import os
import pathlib
import struct
from unittest import mock

import torch
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.filesystem import FileSystem


class MarkerPayload:
    """A hostile object: unpickling it calls pathlib.Path(marker).touch(), which creates an empty
    file and returns None. It stands for any code a checkpoint could run; it only ever touches
    `marker`, a path the case chose outside the checkpoint directory."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def torch_error(error):
    """`error` itself, or for a CheckpointException (DCP's wrapper, a BaseException) the error of
    its lowest failing rank (every rank's CheckpointException carries every rank's failure)."""
    if isinstance(error, CheckpointException):
        rank = min(error.failures)
        return error.failures[rank][0]
    return error


def describe(error):
    """'Type: message' of the error torch raised (first 500 characters)."""
    inner = torch_error(error)
    return f"{type(inner).__name__}: {inner}"[:500]


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
    `limit` bytes with MemoryError before it reaches the file: CPython's read(n) allocates an
    n-byte buffer first, so a reader that trusts a declared length would otherwise allocate it."""

    def __init__(self, limit=64 << 20):
        self.limit, self.requests = limit, []

    def check(self, size):
        if size is not None and size >= 0:
            self.requests.append(size)
            if size > self.limit:
                raise MemoryError(f"ReadGuard: refused a read of {size} bytes (limit {self.limit})")

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
    """Patches torch.empty: records the bytes of every request and refuses (MemoryError) one above
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
                raise MemoryError(f"AllocationGuard: refused torch.empty of {nbytes} bytes (limit {self.limit})")
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
