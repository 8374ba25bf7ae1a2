"""The host programs a test may use (@host_bazel, @proof_servers, @report_browser): their paths,
or a one-line failure naming what to install. Never a skip: a test that cannot run fails."""

import json
import os


class HostToolMissing(AssertionError):
    """A host program the test needs is not installed (the message says what to install)."""


def entry(name):
    """What third_party/host_tools.py found of host program `name` ({"path", "version", ...}), from
    the tools.json files listed in $DSD_HOST_TOOLS."""
    for path in os.environ.get("DSD_HOST_TOOLS", "").split():
        with open(path) as f:
            found = json.load(f).get(name)
        if found is not None:
            if "missing" in found:
                raise HostToolMissing(found["missing"])
            return found
    raise HostToolMissing(f"{name}: no host tool file lists it (set env DSD_HOST_TOOLS in the test's BUILD target)")


def tool(name):
    """Path of host program `name` (see entry)."""
    return entry(name)["path"]
