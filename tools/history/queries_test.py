"""tools/history/queries.py on the fixture history: the matrix, flaky rates, durations and
runs the report shows; and the flaky and report commands."""

import os
import tempfile

from absl.testing import absltest

from tools.history import fixture
from tools.history import queries
from tools.history import store


def report_data(url, **kwargs):
    engine = store.connect(url)
    with store.transaction(engine, url) as conn:
        data = queries.report_data(conn, **kwargs)
    engine.dispose()
    return data


class RulesTest(absltest.TestCase):

    def test_the_worst_case_decides(self):
        for targets, cases, expected in [
            (["PASSED"], ["passed", "xfailed", "skipped", "flaky", "failed"], "failed"),
            (["PASSED"], ["passed", "error"], "failed"),
            (["FAILED"], ["passed"], "failed"),  # the target failed outside any case (a crash)
            (["TIMEOUT"], [], "failed"),
            (["PASSED"], ["passed", "flaky", "xfailed"], "flaky"),
            (["FLAKY"], ["passed"], "flaky"),
            (["PASSED"], ["passed", "xfailed", "skipped"], "xfailed"),
            (["PASSED"], ["passed", "skipped"], "passed"),
            (["PASSED"], ["skipped"], "skipped"),
            (["NO_STATUS"], [], "skipped"),
        ]:
            self.assertEqual(queries.cell_status(targets, cases), expected, f"{targets} {cases}")

    def test_world_sizes_sort_as_numbers(self):
        columns = [("2.14.1", "2"), ("2.13.0", "16"), ("2.13.0", "4 -> 2"), ("2.13.0", "2"), ("2.13.0", "4")]
        self.assertEqual(sorted(columns, key=queries.column_order),
                         [("2.13.0", "2"), ("2.13.0", "4"), ("2.13.0", "4 -> 2"), ("2.13.0", "16"), ("2.14.1", "2")])


class FixtureHistoryTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        cls.url = "sqlite:///" + os.path.join(cls.dir, "history.sqlite")
        fixture.record_all(os.path.join(cls.dir, "fixture"), cls.url)
        cls.data = report_data(cls.url)

    def test_the_matrix_of_the_latest_run(self):
        cells = {(c["scenario"], c["release"], c["world_size"]): c["status"] for c in self.data["matrix"]["cells"]}
        self.assertEqual(cells, {
            ("dsd_api_test", "2.13.0+cpu", "2"): "flaky",
            ("fsdp_model_state_test", "2.13.0+cpu", "2"): "passed",
            ("fsdp_model_state_test", "2.13.0+cpu", "4"): "flaky",
            ("fsdp_model_state_test", "2.14.1+cu130", "2"): "failed",
            ("hostile_checkpoint_test", "2.13.0+cpu", "2"): "xfailed",
            ("hostile_checkpoint_test", "2.14.1+cu130", "2"): "skipped",
            ("reshard_test", "2.13.0+cpu", "2 -> 4"): "passed"})
        self.assertEqual(self.data["matrix"]["columns"], [("2.13.0+cpu", "2"), ("2.13.0+cpu", "2 -> 4"),
                                                          ("2.13.0+cpu", "4"), ("2.14.1+cu130", "2")])
        failed = next(c for c in self.data["matrix"]["cells"] if c["status"] == "failed")
        self.assertIn(fixture.FAILED_MESSAGE, [case["message"] for case in failed["cases"]])

    def test_flaky_cases_and_their_rates(self):
        self.assertEqual([(f["label"], f["case_id"], f["flaky"], f["executed"], f["rate"], f["last_message"])
                          for f in self.data["flaky"]], [
            ("//dsd:dsd_api_test_gpu2", "DsdApiTest.test_get_state_dict_matches_reference", 1, 3, 0.333,
             fixture.BAZEL_FLAKY_MESSAGE),
            ("//dsd:fsdp_model_state_test_gpu4", "FsdpModelStateCheckpointTest.test_fsdp_model_state_with_resharding",
             1, 3, 0.333, fixture.FLAKY_MESSAGE)])

    def test_runs_oldest_first_with_their_times(self):
        runs = self.data["runs"]
        self.assertEqual([r["invocation_id"] for r in runs], fixture.INVOCATIONS)
        self.assertEqual([r["wall_seconds"] for r in runs], fixture.WALL_SECONDS)
        self.assertEqual([r["bazel_seconds"] for r in runs], [250, 260, 270])
        self.assertEqual(runs[2]["counts"]["failed"], 1)
        self.assertEqual(runs[2]["counts"]["flaky"], 2)

    def test_durations_and_their_trend(self):
        case = next(c for c in self.data["case_durations"] if c["label"] == "//dsd:fsdp_model_state_test_gpu2"
                    and c["case_id"].endswith("no_resharding"))
        self.assertEqual((case["durations"], case["mean"], case["change"]), ([1.0, 1.5, 2.0], 1.5, 0.6))
        skipped = [c for c in self.data["case_durations"]
                   if c["label"] == "//dsd:hostile_checkpoint_test_gpu2_torch2_14"]
        self.assertEqual([c["durations"][2] for c in skipped], [None, None])  # skips have no duration
        self.assertEqual(self.data["slowest_targets"][0]["label"], "//dsd:reshard_test_gpu2to4")

    def test_one_run(self):
        data = report_data(self.url, invocation=fixture.INVOCATIONS[0])
        self.assertEqual([r["invocation_id"] for r in data["runs"]], fixture.INVOCATIONS[:1])
        self.assertEqual({c["status"] for c in data["matrix"]["cells"]}, {"passed", "xfailed"})
        self.assertEqual(report_data(self.url, invocation="latest")["runs"][0]["invocation_id"], fixture.INVOCATIONS[2])
        self.assertEqual(len(report_data(self.url, runs=2)["runs"]), 2)

    def test_the_flaky_command(self):
        rc, out, _ = fixture.run_cli("flaky", "--db", self.url)
        self.assertEqual(rc, 0)
        self.assertIn(" 33.3%  1/3  //dsd:fsdp_model_state_test_gpu4", out)
        self.assertIn("2 flaky case(s) in the last 3 run(s)", out)
        self.assertEqual(fixture.run_cli("flaky", "--db", self.url, "--fail_above", "0.5")[0], 0)
        rc, _, err = fixture.run_cli("flaky", "--db", self.url, "--fail_above", "0.2")
        self.assertEqual(rc, 1)
        self.assertIn("2 case(s) flaky in more than 20% of their runs", err)

    def test_the_report_command(self):
        out = os.path.join(self.dir, "report.html")
        rc, stdout, _ = fixture.run_cli("report", "--db", self.url, "--out", out, "--modules", fixture.modules_dir())
        self.assertEqual(rc, 0)
        self.assertIn(f"file://{out}", stdout)
        one_run = os.path.join(self.dir, "fixture", "run2", "bazel-events.json")
        rc, stdout, _ = fixture.run_cli("report", "--events", one_run, "--out", out, "--modules", fixture.modules_dir())
        self.assertEqual(rc, 0, stdout)
        self.assertIn("report of 1 run(s)", stdout)
        rc, _, err = fixture.run_cli("report", "--db", self.url, "--invocation", "no-such-run", "--out", out)
        self.assertEqual((rc, err.strip()), (2, f"tools.history report: no invocation no-such-run in {self.url}"))

    def test_the_budget_command_compares_the_last_run_with_the_one_before(self):
        rc, out, _ = fixture.run_cli("budget", "--db", self.url)
        self.assertEqual(rc, 0, out)
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^CI wall time: \S+s -> \S+s")
        self.assertRegex(out, r"test time of the \d+ targets run both times: ")
        changed = [line for line in lines if line.startswith("  ")]
        self.assertTrue(changed, out)
        deltas = [abs(float(line.split()[0].rstrip("s"))) for line in changed]
        self.assertEqual(deltas, sorted(deltas, reverse=True), "largest change first")


if __name__ == "__main__":
    absltest.main()
