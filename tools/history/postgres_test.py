"""The history on a real PostgreSQL server (a private cluster on 127.0.0.1): the fixture records
into it, idempotently, and the report reads back exactly the data it reads from SQLite."""

import os
import tempfile

import sqlalchemy as sa
from absl.testing import absltest

from tools.history import fixture
from tools.history import migrations
from tools.history import queries
from tools.history import schema
from tools.history import store
from tools.testing import pg_cluster


def report_data(url):
    engine = store.connect(url)
    with store.transaction(engine, url) as conn:
        data = queries.report_data(conn)
    engine.dispose()
    return data


class PostgresTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        cls.server = pg_cluster.cluster("history", icu_collation=True)
        cls.url = cls.server.__enter__().url()
        cls.events = fixture.record_all(os.path.join(cls.dir, "fixture"), cls.url)

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)
        super().tearDownClass()

    def test_the_report_reads_the_same_data_as_from_sqlite(self):
        sqlite_url = "sqlite:///" + os.path.join(self.dir, "history.sqlite")
        fixture.record_all(os.path.join(self.dir, "fixture-sqlite"), sqlite_url)
        from_postgres, from_sqlite = report_data(self.url), report_data(sqlite_url)
        self.assertEqual(len(from_postgres["matrix"]["cells"]), sum(fixture.EXPECTED_CELLS.values()))
        for key in from_sqlite:  # the cases' messages, statuses and durations included
            self.assertEqual(from_postgres[key], from_sqlite[key], key)

    def test_recording_twice_adds_nothing(self):
        rc, out, err = fixture.run_cli("record", "--events", self.events[2], "--db", self.url)
        self.assertEqual(rc, 0, err)
        self.assertIn("is already in postgresql+psycopg://", out)
        engine = store.connect(self.url)
        with engine.connect() as conn:
            self.assertEqual(conn.execute(sa.select(sa.func.count()).select_from(schema.invocations)).scalar(), 3)
            self.assertEqual(migrations.version(conn), schema.SCHEMA_VERSION)
        engine.dispose()

    def test_the_report_and_flaky_commands(self):
        out = os.path.join(self.dir, "report.html")
        rc, stdout, err = fixture.run_cli("report", "--db", self.url, "--out", out, "--modules", fixture.modules_dir())
        self.assertEqual(rc, 0, err)
        self.assertIn("report of 3 run(s)", stdout)
        rc, stdout, _ = fixture.run_cli("flaky", "--db", self.url)
        self.assertEqual(rc, 0)
        self.assertIn("2 flaky case(s) in the last 3 run(s)", stdout)
        self.assertEqual(fixture.run_cli("migrate", "--db", self.url)[1].strip(),
                         f"{store.shown(self.url)} is at schema version {schema.SCHEMA_VERSION}: nothing to do")


if __name__ == "__main__":
    absltest.main()
