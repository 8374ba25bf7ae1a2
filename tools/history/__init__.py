"""The run history: every `bazel test` invocation's targets and cases in a database (SQLite by
default, PostgreSQL for a team), and a report page made from it. See cli.py."""
