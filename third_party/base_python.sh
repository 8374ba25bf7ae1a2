#!/bin/sh
# The toolchain's interpreter: any Python 3 on PATH. It runs Bazel's py_test stub and, for tests
# of a Python environment, testing/env_main.py, which hands over to that environment's own
# interpreter (third_party/python_env.bzl). Tests of repository tools need nothing more.
exec python3 "$@"
