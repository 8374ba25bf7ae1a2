"""The history database's schema versions and the ordered steps between them.

Version 0 is an empty database; `create` gives it the latest tables (tools/history/schema.py)
stamped SCHEMA_VERSION. Version 1 is the first released schema; each later version is a STEP,
which brings a database of the version before it to its own, using the column types and
indexes of schema.py, so migrating and creating end with the same tables. `migrate` runs the
missing steps in one transaction, each recorded in schema_version.
"""

import datetime

import sqlalchemy as sa

from tools.history import schema


class SchemaError(Exception):
    """The database is not at a version this tool can use (one-line message)."""


def _add_column(conn, column):
    """ALTER TABLE ... ADD COLUMN, with the column's type as schema.py declares it."""
    if column.name in {c["name"] for c in sa.inspect(conn).get_columns(column.table.name)}:
        return
    preparer = conn.dialect.identifier_preparer
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(column.table)} ADD COLUMN {spec}")


def _create_index(conn, index):
    index.create(conn, checkfirst=True)


def _v2(conn):
    _add_column(conn, schema.invocations.c.wall_seconds)
    _create_index(conn, next(i for i in schema.invocations.indexes if i.name == "ix_invocations_started_at"))
    _create_index(conn, next(i for i in schema.cases.indexes if i.name == "ix_cases_case_id"))


# (version, what it adds, step from the version before): in order, one per version after 1.
STEPS = [
    (2, "invocations.wall_seconds (the CI wall time of the run); indexes on runs' start and case ids", _v2),
]
assert [v for v, _, _ in STEPS] == list(range(2, schema.SCHEMA_VERSION + 1)), "STEPS must reach SCHEMA_VERSION"


def version(conn):
    """The database's schema version: 0 for an empty one; SchemaError for one that has tables
    but no schema_version (not a history database)."""
    tables = set(sa.inspect(conn).get_table_names())
    if schema.schema_version.name not in tables:
        if tables:
            raise SchemaError(f"not a history database: it has tables ({', '.join(sorted(tables)[:5])}) "
                              "but no schema_version")
        return 0
    return conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar() or 0


def create(conn):
    """The latest tables in an empty database, stamped SCHEMA_VERSION."""
    schema.metadata.create_all(conn)
    _stamp(conn, schema.SCHEMA_VERSION, "created at this version")


def migrate(conn):
    """[(version, description)] of the steps run to bring the database to SCHEMA_VERSION (an
    empty one is created); SchemaError for a database newer than this tool."""
    if conn.dialect.name == "postgresql" and sa.inspect(conn).has_table(schema.schema_version.name):
        conn.exec_driver_sql("LOCK TABLE schema_version IN EXCLUSIVE MODE")  # one migrator at a time
    current = version(conn)
    if current == 0:
        create(conn)
        return [(schema.SCHEMA_VERSION, "created at this version")]
    _refuse_newer(current)
    done = []
    for step_version, description, step in STEPS:
        if step_version > current:
            step(conn)
            _stamp(conn, step_version, description)
            done.append((step_version, description))
    return done


def _refuse_newer(current):
    if current > schema.SCHEMA_VERSION:
        raise SchemaError(f"history database is at schema version {current}, newer than this tool's "
                          f"{schema.SCHEMA_VERSION}: update this checkout")


def require_current(conn, url, create_empty):
    """Nothing when the database is at SCHEMA_VERSION (an empty one is created when
    `create_empty`); SchemaError saying to run `migrate` when it is older, or that the history is
    empty, or that the tool is older than the database."""
    current = version(conn)
    if current == 0 and create_empty:
        create(conn)
        return
    if current == 0:
        raise SchemaError(f"no history in {url} yet: record a run first (python -m tools.history record)")
    _refuse_newer(current)
    if current < schema.SCHEMA_VERSION:
        raise SchemaError(f"history database is at schema version {current}, this tool uses "
                          f"{schema.SCHEMA_VERSION}: run `python -m tools.history migrate --db {url}` first")


def _stamp(conn, number, description):
    conn.execute(schema.schema_version.insert().values(
        version=number, description=description,
        applied_at=datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)))
