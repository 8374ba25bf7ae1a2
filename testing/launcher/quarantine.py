"""Quarantined cases (testing/quarantine.json), PyTorch's disabled tests done the way a verdict
stays true: a quarantined case still runs, and is reported SKIPPED with its reason, its link and
what it did this run ("quarantined: <reason> (<link>); this run: passed"). It takes effect
without editing the scenario, blocks no one while it is flaky or broken, and the history sees
whether it passes again: `python -m tools.history quarantine` fails once a quarantined case has
passed in each of the last N recorded runs, so that it leaves quarantine.

    {"quarantine": [{"module": "dsd.dsd_api_test", "case": "DsdApiTest.test_x",
                     "targets": ["//dsd:dsd_api_test_gpu4"],        (optional: every variant)
                     "reason": "...", "link": "https://...", "since": "2026-12-05"}]}
"""

import dataclasses
import json

from testing.launcher.protocol import CASE
from testing.launcher.protocol import Status

PREFIX = "quarantined: "
_REQUIRED = ("module", "case", "reason", "link")


def load(path, module, target):
    """{case id: entry} quarantined for `module` in `target` (a label; None matches any)."""
    if not path:
        return {}
    with open(path) as f:
        entries = json.load(f).get("quarantine", [])
    for entry in entries:
        missing = [key for key in _REQUIRED if not entry.get(key)]
        if missing:
            raise ValueError(f"{path}: an entry without {', '.join(missing)}: {entry}")
    return {e["case"]: e for e in entries if e["module"] == module
            and (target is None or not e.get("targets") or target in e["targets"])}


def apply(results, quarantined):
    """The results with each quarantined case SKIPPED, saying why and what it did this run."""
    return [_skipped(r, quarantined[r.id]) if r.kind == CASE and r.id in quarantined else r for r in results]


def _skipped(result, entry):
    outcome = result.status.value + (f": {result.message.splitlines()[0]}" if result.message.strip() else "")
    return dataclasses.replace(result, status=Status.SKIPPED,
                               message=f"{PREFIX}{entry['reason']} ({entry['link']}); this run: {outcome}")
