"""Marks for regression cases that pin a known bug of torch (or of a framework built on it).

A marked case is an expected failure (XFAIL) while torch behaves as recorded, and fails the
day torch changes: when the bug is fixed (drop or narrow the mark) or when it fails another
way. Each mark pins an observable behaviour located in torch's code, never this project's own
code, its assertion text or its harness's words:

    @known_failure(RuntimeError, r"Missing optimizer state for", why,
                   raised_in="torch/distributed/checkpoint/state_dict.py:_load_optim_state_dict")
        the case raises exc_type, matching the pattern, from that file (and function) of torch
    @known_wrong_result(why, wrong=[...], right=[...])
        the case returns what torch computed, and torch computes `wrong`
    @known_crash(why, signal="SIGSEGV", frame="torch/distributed/fsdp/_state_dict_utils.py:...")
        a rank of a sub-launch (testing/repro.py) dies by that signal, its output showing that
        frame (a Python frame path:function, or a C++ symbol) and/or matching `message`
    @known_hang(why, frames=["torch/distributed/distributed_c10d.py:all_gather", ...])
        the sub-launch does not complete, and a rank's stack shows where it waits

`torch_versions="2.13"` (or a tuple of such prefixes) limits a mark to the torch releases it
affects; on other releases the case must pass as written. tools/catalogue.py lists every mark
in the README's known-bugs table.
"""

import functools
import os
import re
import signal as signals
import traceback

import torch

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where a pinned frame may be: torch, or a framework built on it (installed, never this repository).
PACKAGES = ("torch/", "torchtitan/", "accelerate/", "torchft/", "torchdata/", "safetensors/", "transformers/")


class KnownFailure(Exception):
    """Raised by a mark when torch behaved as recorded; the rank reports it as XFAILED."""


def affects(versions, version=None):
    """True if `version` (default: this torch) starts with one of `versions` (None: every release)."""
    if versions is None:
        return True
    version = version or torch.__version__
    return any(version == v or version.startswith(v + ".") or version.startswith(v + "+")
               for v in ((versions,) if isinstance(versions, str) else versions))


def _location(spec):
    """(path suffix, function or None) of a 'path[:function]' location inside an installed package."""
    path, _, function = spec.partition(":")
    if not path.startswith(PACKAGES):
        raise ValueError(f"a mark pins a location in {', '.join(PACKAGES)}, not {spec!r}")
    return path, function or None


def _in_package(filename, path):
    real = os.path.realpath(filename)
    return real.endswith(os.sep + path) and not real.startswith(_REPO + os.sep)


def raising_frames(error):
    """The innermost frame of `error` and, for DCP's CheckpointException, of each rank's failure
    it carries: the frames that raised."""
    frames = []
    tb = traceback.extract_tb(error.__traceback__)
    if tb:
        frames.append(tb[-1])
    for _, summary in getattr(error, "failures", {}).values() if hasattr(error, "failures") else ():
        if summary:
            frames.append(summary[-1])
    return frames


def raised_elsewhere(error, specs):
    """None if `error` was raised where `specs` say (one 'path[:function]' inside torch or a
    framework, or a tuple of them: the last is the frame that raised, the others its callers,
    outermost first, in the same traceback); else where it was raised ('file:line in function')."""
    specs = (specs,) if isinstance(specs, str) else tuple(specs)
    locations = [_location(spec) for spec in specs]
    traces = [traceback.extract_tb(error.__traceback__)]
    traces += [summary for _, summary in getattr(error, "failures", {}).values()] if hasattr(error, "failures") else []
    for trace in (t for t in traces if t):
        if _in_order(trace, locations):
            return None
    return "; ".join(f"{t[-1].filename}:{t[-1].lineno} in {t[-1].name}" for t in traces if t) or "no traceback"


def _in_order(trace, locations):
    """True if the last of `locations` is the innermost frame of `trace` and the others are
    frames of it, in order."""
    *callers, (path, function) = locations
    if not (_in_package(trace[-1].filename, path) and function in (None, trace[-1].name)):
        return False
    frames = iter(trace[:-1])
    return all(any(_in_package(f.filename, p) and fn in (None, f.name) for f in frames) for p, fn in callers)


def _known(why, symptom, detail=""):
    return KnownFailure(f"known bug: {why}\nsymptom: {symptom}\ntorch: {torch.__version__}\n{detail}")


def _unexpected_success(why):
    return AssertionError(f"unexpected success: the known bug no longer reproduces on torch {torch.__version__} "
                          f"({why}); remove the mark or narrow it with torch_versions=...")


def known_failure(exc_type, symptom, why, raised_in, torch_versions=None):
    """The case raises `exc_type` whose text matches the regex `symptom`, from `raised_in`
    ('torch/.../file.py:function' inside torch or a framework; or a tuple, its callers first)."""
    for spec in (raised_in,) if isinstance(raised_in, str) else raised_in:
        _location(spec)

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            if not affects(torch_versions):
                return fn(self, *args, **kwargs)
            try:
                fn(self, *args, **kwargs)
            except exc_type as e:
                text = f"{type(e).__name__}: {e}"
                if not re.search(symptom, text):
                    raise
                elsewhere = raised_elsewhere(e, raised_in)
                if elsewhere:
                    raise AssertionError(f"@known_failure pins {type(e).__name__} raised in {raised_in}; this one "
                                         f"was raised at {elsewhere}: {text}") from e
                raise _known(why, text, "".join(traceback.format_exception(e)[-6:])) from e
            raise _unexpected_success(why)
        wrapper.known_bug = why
        return wrapper
    return decorator


def known_wrong_result(why, wrong, right, torch_versions=None):
    """The case returns what torch computed; torch returns `wrong` where `right` is correct."""
    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            observed = fn(self, *args, **kwargs)
            if not affects(torch_versions):
                self.assertEqual(observed, right, f"torch returned {observed!r}; correct is {right!r}")
                return
            if observed == wrong:
                raise _known(why, f"torch returned {observed!r} (correct: {right!r})")
            if observed == right:
                raise _unexpected_success(why)
            raise AssertionError(f"torch returned {observed!r}: neither the known wrong result {wrong!r} "
                                 f"nor the correct {right!r}")
        wrapper.known_bug = why
        return wrapper
    return decorator


def _shows_frame(output, spec):
    """True if `output` shows the frame `spec`: a Python frame 'path:function' (traceback or
    faulthandler format) inside torch or a framework, or a C++ symbol (torch's fatal-signal stacks)."""
    if ".py" not in spec:
        return re.search(r"frame #\d+: " + re.escape(spec), output) is not None
    path, function = _location(spec)
    for m in re.finditer(r'File "([^"]+)", line \d+,? in (\S+)', output):
        if _in_package(m.group(1), path) and function in (None, m.group(2)):
            return True
    return False


def _crash_matches(rank, ending, message, frame, at_exit):
    """Why `rank` (a testing.repro.RankOutcome) is not the recorded crash; None if it is."""
    if rank.returncode != ending:
        return f"rank {rank.rank} ended with {rank.returncode!r}, not {ending!r}"
    if at_exit != rank.succeeded:
        return (f"rank {rank.rank} " + ("crashed before finishing its work" if at_exit
                                        else "finished its work (the crash pinned comes before it)"))
    text = rank.after_start()
    if message and not re.search(message, text):
        return f"rank {rank.rank}'s output lacks {message!r}"
    if frame and not _shows_frame(text, frame):
        return f"rank {rank.rank}'s output shows no frame {frame}"
    return None


def known_crash(why, signal=None, exit_code=None, message=None, frame=None, at_exit=False, torch_versions=None,
                or_hang=None):
    """The case returns a testing.repro.Outcome in which a rank died after the repro started, by
    `signal` (a name, e.g. "SIGSEGV") or with `exit_code` (an uncaught exception), its output
    matching `message` and/or showing `frame`. at_exit: the rank finished its work (printed the
    success marker) and died in interpreter teardown; otherwise before. or_hang: for a race in
    torch with two observable endings, the frames ('path:function' inside torch) where the ranks
    wait when it ends in a hang instead (as known_hang's)."""
    if (signal is None) == (exit_code is None) or not (message or frame):
        raise ValueError("@known_crash pins a signal or an exit code, and a frame or a message")
    ending = -signals.Signals[signal].value if signal else exit_code
    if frame and ".py" in frame:
        _location(frame)
    hang_specs = [(spec, _location(spec)) for spec in or_hang or ()]
    what = (signal or f"exit code {exit_code}") + (f", {message!r}" if message else "") + (
        f", frame {frame}" if frame else "") + (" at exit" if at_exit else "") + (
        f"; or a hang in {' -> '.join(or_hang)}" if or_hang else "")

    def symptom(outcome):
        misses = [_crash_matches(rank, ending, message, frame, at_exit) for rank in outcome.ranks]
        if not all(misses):
            return f"rank {misses.index(None)}: {what}"
        stuck = _stuck(outcome, hang_specs) if hang_specs else []
        if stuck:
            return f"rank(s) {[r.rank for r in stuck]} wait in {' -> '.join(or_hang)} (the race's other ending)"
        raise AssertionError(f"no rank died as recorded ({what}):\n" + "\n".join(misses) + f"\n{outcome.summary()}")
    return _repro_mark(why, torch_versions, symptom, what)


def known_hang(why, frames, torch_versions=None):
    """The case returns a testing.repro.Outcome that did not complete: the ranks hung (or a
    collective timed out), and a rank's stack (dumped at the timeout, or its traceback) shows
    every frame of `frames` ('path:function' inside torch)."""
    specs = [(spec, _location(spec)) for spec in frames]
    if not specs:
        raise ValueError("@known_hang pins the frames where the ranks wait")

    def symptom(outcome):
        stuck = _stuck(outcome, specs)
        if not stuck:
            raise AssertionError(f"no rank waits in {frames}:\n{outcome.summary()}")
        return (f"rank(s) {[r.rank for r in stuck]} wait in {' -> '.join(frames)}"
                + (" (killed at the timeout)" if outcome.hung else " (a collective timed out)"))
    return _repro_mark(why, torch_versions, symptom)


def _stuck(outcome, specs):
    """The ranks of `outcome` that did not finish and whose output after the start shows every frame."""
    return [r for r in outcome.ranks if not r.succeeded and all(_shows_frame(r.after_start(), spec)
                                                                for spec, _ in specs)]


def _repro_mark(why, torch_versions, symptom, what=None):
    """A mark on a case that returns a testing.repro.Outcome: on releases the bug does not affect
    the repro completes; on the others it must not, and symptom(outcome) names the recorded
    symptom (or raises AssertionError: the repro failed some other way)."""
    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            outcome = fn(self, *args, **kwargs)
            if not affects(torch_versions):
                self.assertTrue(outcome.completed, f"the repro did not complete:\n{outcome.summary()}")
                return
            if outcome.completed:
                raise _unexpected_success(why)
            raise _known(why, symptom(outcome))
        wrapper.known_bug = why
        if what:
            wrapper.known_symptom = what
        return wrapper
    return decorator
