"""Applies the mutation named by DSD_MUTATION (tools/mutations/catalog.py) in rank processes.

tools/mutate.py puts this directory on the tests' PYTHONPATH, so every Python process of a
test imports it at start-up. The mutation is applied where ranks run: in a rank (RANK set by
every starter) and in the rank group that forks ranks from itself (DSD_RANK_GROUP, set by the
launcher), whose forked ranks inherit the patched modules. The launcher and the tools never are.
"""

import importlib.util
import os

if os.environ.get("DSD_MUTATION") and ("RANK" in os.environ or os.environ.get("DSD_RANK_GROUP")):
    _spec = importlib.util.spec_from_file_location(
        "dsd_mutation_catalog", os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog.py"))
    _catalog = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_catalog)
    _catalog.apply(os.environ["DSD_MUTATION"])
