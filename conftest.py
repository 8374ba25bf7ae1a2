"""pytest runs the repository's own tests without Bazel (absltest and unittest cases alike):

    ./bazelw python -m pytest tools/ testing/launcher      # the environment's pytest (pinned)

absltest reads its flags (--test_tmpdir, ...) only under absltest.main(): mark them parsed with
their defaults. Tests that run a nested Bazel find it as under Bazel, through DSD_HOST_TOOLS,
here a tools.json naming the Bazel ./bazelw found (.bazelrc.env).
"""

import json
import os
import re
import tempfile

ROOT = os.path.dirname(os.path.abspath(__file__))


def pytest_configure(config):
    try:
        from absl import flags
    except ImportError:  # an interpreter without absl-py: only the stdlib unittest tests can run
        flags = None
    if flags is not None and not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    if "DSD_HOST_TOOLS" not in os.environ:
        try:
            with open(os.path.join(ROOT, ".bazelrc.env")) as f:
                bazel = re.search(r"--repo_env=DSD_BAZEL=(\S+)", f.read()).group(1)
        except (OSError, AttributeError):
            return  # no ./bazelw run yet: tests that need Bazel fail and say so
        tools = os.path.join(tempfile.mkdtemp(prefix="dsd-pytest-"), "tools.json")
        with open(tools, "w") as f:
            json.dump({"bazel": {"path": bazel}}, f)
        os.environ["DSD_HOST_TOOLS"] = tools
