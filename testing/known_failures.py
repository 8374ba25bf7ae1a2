"""Marks for regression cases that pin a known torch bug.

A marked case is an expected failure (XFAIL) while torch behaves as recorded, and fails the
day torch changes: when the bug is fixed (drop or narrow the mark) or when it fails another
way. Each mark pins torch's observable behaviour, never this project's own assertion text:

    @known_failure(RuntimeError, r"Missing optimizer state", why)   torch raises this error
    @known_wrong_result(why, wrong=[...], right=[...])              torch returns this value
    @known_crash(r"exitcode\\s*:\\s*-11", why)                      a sub-launch dies like this

`torch_versions="2.13"` (or a tuple of such prefixes) limits a mark to the torch releases it affects;
on other releases the case must pass as written. tools/catalogue.py lists every mark in the
README's known-bugs table.
"""

import functools
import os
import re
import traceback

import torch

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class KnownFailure(Exception):
    """Raised by a mark when torch behaved as recorded; the rank reports it as XFAILED."""


def affects(versions, version=None):
    """True if `version` (default: this torch) starts with one of `versions` (None: every release)."""
    if versions is None:
        return True
    version = version or torch.__version__
    return any(version == v or version.startswith(v + ".") or version.startswith(v + "+")
               for v in ((versions,) if isinstance(versions, str) else versions))


def raised_by_the_test(error):
    """'path:line' if the test raised `error` itself (a raise or assert statement in this
    repository, or a unittest assertion method), else None: torch raised it, in its Python code
    or in an operator the test called."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return None
    last = frames[-1]
    in_repo = os.path.abspath(last.filename).startswith(_REPO + os.sep)
    own_statement = in_repo and (last.line or "").lstrip().startswith(("raise", "assert"))
    if own_statement or os.sep + "unittest" + os.sep in last.filename:
        return f"{last.filename}:{last.lineno}"
    return None


def _known(why, symptom, tb=""):
    return KnownFailure(f"known bug: {why}\nsymptom: {symptom}\ntorch: {torch.__version__}\n{tb}")


def _unexpected_success(why):
    return AssertionError(f"unexpected success: the known bug no longer reproduces on torch {torch.__version__} "
                          f"({why}); remove the mark or narrow it with torch_versions=...")


def known_failure(exc_type, symptom, why, torch_versions=None):
    """The case raises `exc_type` matching the regex `symptom` from torch's code."""
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
                where = raised_by_the_test(e)
                if where:
                    raise TypeError(f"@known_failure pins errors raised by torch; this one was raised by the test "
                                    f"itself at {where}: {text}") from e
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


def known_crash(signature, why, torch_versions=None):
    """The case returns a testing.repro.Outcome; its output matches `signature` (a crash report,
    or for a hang the stacks dumped at the timeout, e.g. r"hang:(.|\\n)*in all_gather") after the
    repro started and before any rank printed the repro's success marker."""
    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            outcome = fn(self, *args, **kwargs)
            if not affects(torch_versions):
                self.assertTrue(outcome.completed, f"the repro did not complete:\n{outcome.summary()}")
                return
            if outcome.completed:
                raise _unexpected_success(why)
            position = outcome.first_match(signature)
            if position is None:
                raise AssertionError(f"the repro failed without the known signature {signature!r}:\n{outcome.summary()}")
            raise _known(why, outcome.around(position))
        wrapper.known_bug = why
        return wrapper
    return decorator
