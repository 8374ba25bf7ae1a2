"""Where the history lives and how a run gets into it.

The database is, in order: --db, $DSD_HISTORY_DB, else SQLite at
${DSD_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/dsd-bazel}/history.sqlite (no server). A plain path
means a SQLite file; postgresql:// URLs use psycopg 3 (a team's shared history).

Guarantees: recording is one transaction, so a run is in the history completely or not at all;
recording an invocation id that is already there adds nothing; every database failure (a
corrupted or locked file, an unreachable server, a schema to migrate) surfaces as HistoryError
with a one-line message.
"""

import contextlib
import datetime
import os

import sqlalchemy as sa

from tools.history import migrations
from tools.history import schema


class HistoryError(Exception):
    """The history database cannot be used; the message is one line saying why and what to do."""


def default_url():
    cache = os.environ.get("DSD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dsd-bazel")
    return "sqlite:///" + os.path.join(os.path.abspath(cache), "history.sqlite")


def resolve_url(given=None):
    """The SQLAlchemy URL of the history: `given`, $DSD_HISTORY_DB, or default_url(); a plain
    path becomes a SQLite URL, postgres(ql):// uses psycopg 3."""
    url = given or os.environ.get("DSD_HISTORY_DB") or default_url()
    if "://" not in url:
        return "sqlite:///" + os.path.abspath(url)
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def shown(url):
    """The URL as messages print it (no password)."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def connect(url, lock_timeout=10.0, create=True):
    """An Engine for `url`. SQLite: the file and its directory are created (unless not `create`:
    then a missing file is a HistoryError), a locked database is waited for up to `lock_timeout`
    seconds, foreign keys are enforced and every transaction is a real SQLite transaction (DDL
    included)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as e:
        raise HistoryError(f"not a database URL: {url!r} ({e})") from e
    if parsed.get_backend_name() != "sqlite":
        try:
            return sa.create_engine(parsed, connect_args={"connect_timeout": 10})
        except (ImportError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
            raise HistoryError(f"cannot use {shown(url)}: {e}") from e
    if parsed.database and parsed.database != ":memory:":
        if not create and not os.path.exists(parsed.database):
            raise HistoryError(f"no history at {parsed.database} yet: record a run first "
                               "(python -m tools.history record)")
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": lock_timeout})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # pysqlite's own transaction handling off
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN")

    return engine


@contextlib.contextmanager
def transaction(engine, url):
    """engine.begin(), with database failures turned into HistoryError (one line)."""
    try:
        with engine.begin() as conn:
            yield conn
    except migrations.SchemaError as e:
        raise HistoryError(str(e)) from e
    except sa.exc.DBAPIError as e:
        raise HistoryError(describe(e, url)) from e


def describe(error, url):
    """One line for a DBAPI failure: what happened to the database and what to do."""
    text = str(getattr(error, "orig", error)).strip().splitlines()
    first = text[0] if text else type(error).__name__
    where = shown(url)
    if "database is locked" in first:
        return (f"history database {where} is locked by another process: retry when it is done "
                "(or wait longer: --lock_timeout)")
    if "file is not a database" in first or "malformed" in first:
        return (f"history database {where} is corrupted ({first}): move the file aside; "
                "the next record starts a new history")
    if isinstance(error, sa.exc.OperationalError) and "sqlite" not in where:
        return f"cannot use history database {where}: {first}"
    return f"history database {where}: {first}"


def record(conn, invocation):
    """Inserts the Invocation (runs.py) with its targets, attempts and cases; returns the number
    of cases added, or None when its invocation id is already recorded (nothing is added)."""
    exists = conn.execute(sa.select(schema.invocations.c.id).where(
        schema.invocations.c.invocation_id == invocation.invocation_id)).first()
    if exists:
        return None
    row = {c.name: getattr(invocation, c.name) for c in schema.invocations.columns
           if c.name not in ("id", "recorded_at")}
    row["recorded_at"] = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    invocation_pk = conn.execute(schema.invocations.insert().values(**row)).inserted_primary_key[0]
    added = 0
    for target in invocation.targets:
        target_pk = conn.execute(schema.targets.insert().values(
            invocation_pk=invocation_pk, **_fields(target, schema.targets, "invocation_pk"))).inserted_primary_key[0]
        for attempt in target.attempts:
            attempt_pk = conn.execute(schema.attempts.insert().values(
                target_pk=target_pk, **_fields(attempt, schema.attempts, "target_pk"))).inserted_primary_key[0]
            if attempt.cases:
                rows = [dict(attempt_pk=attempt_pk, **_fields(c, schema.cases, "attempt_pk")) for c in attempt.cases]
                conn.execute(schema.cases.insert(), rows)
                added += len(attempt.cases)
    return added


def _fields(obj, table, parent):
    return {c.name: getattr(obj, c.name) for c in table.columns if c.name not in ("id", parent)}
