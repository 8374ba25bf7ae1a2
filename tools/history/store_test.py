"""The history database: created at the current schema, migrated explicitly from an older one,
idempotent on the invocation id, and a clear one-line error (exit status 2) for a corrupted, a
locked, a foreign or an unreachable database."""

import os
import sqlite3

import sqlalchemy as sa
from absl.testing import absltest

from tools.history import fixture
from tools.history import migrations
from tools.history import schema
from tools.history import store

V1_DUMP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "history_v1.sql")


def row_counts(url):
    engine = store.connect(url)
    with engine.connect() as conn:
        counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                  for t in schema.metadata.sorted_tables}
    engine.dispose()
    return counts


def shape(url):
    """{table: (columns, indexes, unique constraints, foreign keys)} as the database reports them."""
    engine = store.connect(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        out = {t: ({c["name"]: (str(c["type"]), c["nullable"]) for c in inspector.get_columns(t)},
                   sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(t)),
                   sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(t)),
                   sorted((tuple(f["constrained_columns"]), f["referred_table"])
                          for f in inspector.get_foreign_keys(t)))
               for t in inspector.get_table_names()}
    engine.dispose()
    return out


class StoreTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.runs = fixture.write(os.path.join(self.dir, "fixture"))
        self.db = os.path.join(self.dir, "history.sqlite")

    def record(self, run=0, db=None, *extra):
        path, commit, wall = self.runs[run]
        return fixture.run_cli("record", "--events", path, "--db", db or self.db, "--commit", commit,
                       "--wall_seconds", str(wall), *extra)

    def report(self):
        return fixture.run_cli("report", "--db", self.db, "--out", os.path.join(self.dir, "r.html"))

    def assert_one_line_error(self, result, *words):
        rc, _, err = result
        self.assertEqual(rc, 2, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for word in words:
            self.assertIn(word, err)

    def test_a_new_database_is_created_at_the_current_version(self):
        rc, out, err = self.record()
        self.assertEqual(rc, 0, err)
        self.assertIn("recorded invocation 00000000-0000-4000-8000-000000000001: 8 targets, 15 cases", out)
        engine = store.connect("sqlite:///" + self.db)
        with engine.connect() as conn:
            self.assertEqual(migrations.version(conn), schema.SCHEMA_VERSION)
            wall, commit = conn.execute(sa.select(schema.invocations.c.wall_seconds, schema.invocations.c.commit)).one()
        engine.dispose()
        self.assertEqual((wall, commit), (300.0, "a" * 40))
        self.assertEqual(row_counts("sqlite:///" + self.db),
                         {"schema_version": 1, "invocations": 1, "targets": 8, "attempts": 8, "cases": 15})

    def test_recording_the_same_invocation_twice_adds_nothing(self):
        self.assertEqual(self.record()[0], 0)
        before = row_counts("sqlite:///" + self.db)
        rc, out, _ = self.record()
        self.assertEqual(rc, 0)
        self.assertIn("is already in", out)
        self.assertEqual(row_counts("sqlite:///" + self.db), before)

    def test_an_older_schema_is_refused_until_migrated(self):
        with sqlite3.connect(self.db) as db, open(V1_DUMP) as f:
            db.executescript(f.read())
        old = row_counts("sqlite:///" + self.db)
        self.assert_one_line_error(self.record(1), "schema version 1", "migrate")
        self.assert_one_line_error(self.report(), "migrate")
        self.assertEqual(row_counts("sqlite:///" + self.db), old)
        rc, out, _ = fixture.run_cli("migrate", "--db", self.db)
        self.assertEqual(rc, 0)
        self.assertIn("schema version 2: invocations.wall_seconds", out)
        self.assertEqual(fixture.run_cli("migrate", "--db", self.db)[1].strip(),
                         f"sqlite:///{self.db} is at schema version 2: nothing to do")
        self.assertEqual(self.record(1)[0], 0)
        self.assertEqual(self.record(0)[0], 0)  # the run the dump holds: already there
        counts = row_counts("sqlite:///" + self.db)
        self.assertEqual((counts["invocations"], counts["cases"]), (2, old["cases"] + 15))

    def test_migrating_and_creating_give_the_same_schema(self):
        with sqlite3.connect(self.db) as db, open(V1_DUMP) as f:
            db.executescript(f.read())
        self.assertEqual(fixture.run_cli("migrate", "--db", self.db)[0], 0)
        fresh = os.path.join(self.dir, "fresh.sqlite")
        self.assertEqual(fixture.run_cli("migrate", "--db", fresh)[0], 0)
        self.assertEqual(shape("sqlite:///" + self.db), shape("sqlite:///" + fresh))

    def test_a_newer_schema_is_refused(self):
        self.assertEqual(self.record()[0], 0)
        with sqlite3.connect(self.db) as db:
            db.execute("INSERT INTO schema_version VALUES (99, '2030-01-01 00:00:00', 'from the future')")
        self.assert_one_line_error(self.record(1), "schema version 99", "update this checkout")
        self.assert_one_line_error(fixture.run_cli("migrate", "--db", self.db), "schema version 99")

    def test_a_corrupted_file_is_a_one_line_error(self):
        with open(self.db, "wb") as f:
            f.write(b"\x00garbage, not a database\xff" * 300)
        self.assert_one_line_error(self.record(), "is corrupted", self.db)
        self.assert_one_line_error(self.report(), "corrupted")
        self.assert_one_line_error(fixture.run_cli("flaky", "--db", self.db), "corrupted")
        self.assert_one_line_error(fixture.run_cli("migrate", "--db", self.db), "corrupted")

    def test_a_locked_database_is_a_one_line_error(self):
        self.assertEqual(self.record()[0], 0)
        holder = sqlite3.connect(self.db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            locked = "is locked by another process"
            self.assert_one_line_error(self.record(1, None, "--lock_timeout", "0.2"), locked)
            self.assert_one_line_error(fixture.run_cli("flaky", "--db", self.db, "--lock_timeout", "0.2"), locked)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        self.assertEqual(self.record(1)[0], 0)

    def test_a_database_of_something_else_is_refused(self):
        with sqlite3.connect(self.db) as db:
            db.execute("CREATE TABLE accounts (id INTEGER)")
        self.assert_one_line_error(self.record(), "not a history database")

    def test_an_unreachable_server_is_a_one_line_error(self):
        self.assert_one_line_error(self.record(0, "postgresql://history@127.0.0.1:1/history"),
                                   "cannot use history database postgresql+psycopg://history@127.0.0.1:1/history")

    def test_a_missing_events_file_is_a_one_line_error(self):
        missing = os.path.join(self.dir, "none.json")
        self.assert_one_line_error(fixture.run_cli("record", "--events", missing, "--db", self.db),
                                   "cannot read build event file")

    def test_which_database(self):
        env = {"DSD_HISTORY_DB": None, "DSD_CACHE_DIR": None, "XDG_CACHE_HOME": None}
        with absltest.mock.patch.dict(os.environ, {k: v for k, v in env.items() if v}, clear=False):
            for name in env:
                os.environ.pop(name, None)
            home = os.path.expanduser("~/.cache/dsd-bazel/history.sqlite")
            self.assertEqual(store.resolve_url(), "sqlite:///" + home)
            os.environ["XDG_CACHE_HOME"] = "/x"
            self.assertEqual(store.resolve_url(), "sqlite:////x/dsd-bazel/history.sqlite")
            os.environ["DSD_CACHE_DIR"] = "/c"
            self.assertEqual(store.resolve_url(), "sqlite:////c/history.sqlite")
            os.environ["DSD_HISTORY_DB"] = "postgresql://u:secret@db/h"
            self.assertEqual(store.resolve_url(), "postgresql+psycopg://u:secret@db/h")
            self.assertEqual(store.shown(store.resolve_url()), "postgresql+psycopg://u:***@db/h")
            self.assertEqual(store.resolve_url("rel.sqlite"), "sqlite:///" + os.path.abspath("rel.sqlite"))


if __name__ == "__main__":
    absltest.main()
