"""Failure artefacts: what a maintainer needs from a case that failed, kept in the target's
undeclared outputs (Bazel zips them into bazel-testlogs/<target>/test.outputs/outputs.zip):

    failures/<Class.method>/
        result.txt       the verdict: message and per-rank detail (tracebacks, stacks)
        rank<R>.log      what rank R logged between the case's start and its end; to the end of
                         its log when it never ended (a crash, or a hang: then with the Python
                         stacks the launcher had it dump before the kill)
        checkpoint/      what the case wrote under its scratch directory (every
                         DistributedTestCase.checkpoint_dir(name) of the case), smallest files
                         first, up to the per-case limit (--failure_artifacts_mb)
        NOTE.txt         what was left out, when the limit was reached

A failing fixture (setUpClass, tearDownModule, ...) gets result.txt and the log slices.
"""

import os
import shutil

LOG_SLICE_LIMIT = 2 * 1024 * 1024  # bytes of one rank's log slice; the tail is kept


def log_slice(path, start, end=None, limit=LOG_SLICE_LIMIT):
    """Bytes [start, end) of a log (end None: to its end), at most `limit` of them (the last)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            end = size if end is None else min(end, size)
            start = max(0, min(start, end))
            cut = max(0, end - start - limit)
            f.seek(start + cut)
            data = f.read(end - start - cut)
    except OSError as e:
        return f"(no log: {e})\n".encode()
    if cut:
        data = f"... ({cut} bytes cut; the last {limit} bytes follow)\n".encode() + data
    return data


def copy_capped(src, dest, limit):
    """Copies the files under `src` into `dest`, smallest first, while their total stays within
    `limit` bytes. Returns [(relative path, size)] of the files left out."""
    files = []
    for root, dirs, names in os.walk(src):
        dirs.sort()
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                files.append((os.path.getsize(path), os.path.relpath(path, src)))
        for d in dirs:  # keep the layout, empty directories included
            os.makedirs(os.path.join(dest, os.path.relpath(os.path.join(root, d), src)), exist_ok=True)
    os.makedirs(dest, exist_ok=True)
    total, left_out = 0, []
    for size, rel in sorted(files):
        if total + size > limit:
            left_out.append((rel, size))
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copyfile(os.path.join(src, rel), os.path.join(dest, rel))
        total += size
    return left_out


def save(dest, result, logs, scratch=None, limit=20 * 1024 * 1024):
    """Writes the artefacts of one failed unit into `dest`.

    result: its verdict.Result; logs: {rank: (log path, start offset, end offset or None)};
    scratch: the case's scratch directory (None for a fixture); limit: bytes of it to keep.
    """
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "result.txt"), "w") as f:
        f.write(f"{result.id}: {result.status.value}\n{result.message}\n\n{result.detail}\n")
    for rank, (path, start, end) in sorted(logs.items()):
        with open(os.path.join(dest, f"rank{rank}.log"), "wb") as f:
            f.write(log_slice(path, start, end))
    if scratch and os.path.isdir(scratch):
        left_out = copy_capped(scratch, os.path.join(dest, "checkpoint"), limit)
        if left_out:
            with open(os.path.join(dest, "NOTE.txt"), "w") as f:
                f.write(f"checkpoint/ is truncated: the case wrote more than the {limit} bytes kept per failed "
                        f"case (--failure_artifacts_mb); {len(left_out)} file(s) left out, largest last:\n")
                f.writelines(f"  {rel}  {size} bytes\n" for rel, size in left_out)
