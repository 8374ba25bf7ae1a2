"""The run history's tables, at the latest schema version: the one place they are defined.

A fresh database gets exactly these tables (metadata.create_all) stamped with SCHEMA_VERSION;
an older one reaches them through tools/history/migrations.py, whose steps add what each version
added, taking column types and indexes from here (migrations_test checks both paths agree).

    invocations  one `bazel test` run: Bazel's invocation id (unique: recording twice adds
                 nothing), when, the command line, the commit, the CI wall time
    targets      one test target of a run: Bazel's overall status, and what the launcher's
                 test.xml says it ran with (scenario, torch, environment(s), world size(s), device)
    attempts     one test action (shard, run, attempt) of a target: its status, duration, the
                 XML's properties; is_last marks the attempt whose cases count
    cases        one <testcase> of an attempt: passed, failed, error, skipped, xfailed (a known
                 bug), flaky (failed, then passed on a rerun), its duration and message's first line

Times are naive UTC datetimes; durations are seconds.
"""

import sqlalchemy as sa

SCHEMA_VERSION = 2

CASE_STATUSES = ("passed", "failed", "error", "skipped", "xfailed", "flaky")

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
    sa.Column("description", sa.String(255), nullable=False),
)

invocations = sa.Table(
    "invocations", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("invocation_id", sa.String(64), nullable=False, unique=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("command_line", sa.Text, nullable=False),
    sa.Column("patterns", sa.Text, nullable=False),
    sa.Column("exit_code", sa.String(64)),
    sa.Column("commit", sa.String(64)),
    sa.Column("commit_dirty", sa.Boolean),
    sa.Column("host", sa.String(255)),
    sa.Column("user", sa.String(255)),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("wall_seconds", sa.Float),  # version 2
    sa.Index("ix_invocations_started_at", "started_at"),  # version 2
)

targets = sa.Table(
    "targets", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("invocation_pk", sa.Integer, sa.ForeignKey("invocations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("label", sa.String(512), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("cached", sa.Boolean, nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("shard_count", sa.Integer, nullable=False),
    sa.Column("attempt_count", sa.Integer, nullable=False),
    sa.Column("scenario", sa.String(255), nullable=False),
    sa.Column("test_module", sa.String(255)),
    sa.Column("torch_release", sa.String(255)),
    sa.Column("torch_version", sa.String(64)),
    sa.Column("environments", sa.String(255)),
    sa.Column("world_sizes", sa.String(64)),
    sa.Column("device", sa.String(32)),
    sa.UniqueConstraint("invocation_pk", "label", name="uq_targets_invocation_label"),
)

attempts = sa.Table(
    "attempts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("target_pk", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("shard", sa.Integer, nullable=False),
    sa.Column("run", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("cached", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("is_last", sa.Boolean, nullable=False),
    sa.Column("xml_path", sa.Text),
    sa.Column("problem", sa.Text),
    sa.Column("properties", sa.JSON, nullable=False),
    sa.UniqueConstraint("target_pk", "shard", "run", "attempt", name="uq_attempts_target_shard_run_attempt"),
)

cases = sa.Table(
    "cases", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("attempt_pk", sa.Integer, sa.ForeignKey("attempts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("case_id", sa.String(512), nullable=False),
    sa.Column("classname", sa.String(512), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("message", sa.Text),
    sa.Index("ix_cases_case_id", "case_id"),  # version 2
)
