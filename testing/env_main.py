"""The main of every test that runs in a Python environment (testing/defs.bzl).

Bazel's py_test stub runs this file with the toolchain's interpreter (any Python 3); it hands
over to the environment's interpreter (its locator, third_party/python_env.bzl) and the real
main, keeping the stub's PYTHONPATH:  env_main.py <env python> <main.py> [args...]
"""

import os
import sys

python, main, *args = sys.argv[1:]
os.execv(python, [python, main, *args])
