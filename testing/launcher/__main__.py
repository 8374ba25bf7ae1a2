"""python -m testing.launcher: see launcher.py."""

import sys

from testing.launcher import launcher

sys.exit(launcher.main())
