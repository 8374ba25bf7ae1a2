"""python -m tools.history record|report|migrate|flaky (see tools/history/cli.py)."""

import sys

from tools.history import cli

sys.exit(cli.main())
