"""The host programs a test may use (@host_bazel, @proof_servers): their paths, or a one-line
failure naming what to install. Never a skip: a proof that cannot run fails."""

import json
import os


class HostToolMissing(AssertionError):
    """A host program the test needs is not installed (the message says what to install)."""


def tool(name):
    """Path of host program `name` from the tools.json files listed in $DSD_HOST_TOOLS."""
    for path in os.environ.get("DSD_HOST_TOOLS", "").split():
        with open(path) as f:
            entry = json.load(f).get(name)
        if entry is not None:
            if "missing" in entry:
                raise HostToolMissing(entry["missing"])
            return entry["path"]
    raise HostToolMissing(f"{name}: no host tool file lists it (set env DSD_HOST_TOOLS in the test's BUILD target)")
