"""tools/xml_summary.py on a hand-made build event file and XMLs (stdlib unittest: also runs
under pytest, without Bazel)."""

import contextlib
import io
import json
import os
import tempfile
import unittest

from tools import xml_summary

CASES = {
    "passed": "<testcase classname='s.A' name='t1'/>",
    "failed": "<testcase classname='s.A' name='t2'><failure message='m'/></testcase>",
    "errors": "<testcase classname='s.A' name='t3'><error message='m'/></testcase>",
    "skipped": "<testcase classname='s.A' name='t4'><skipped message='needs CUDA: x'/></testcase>",
    "xfailed": "<testcase classname='s.A' name='t5'><skipped type='pytest.xfail' message='known bug: b'/></testcase>",
    "absl_skip": "<testcase classname='s.A' name='t6' status='notrun' result='suppressed'/>",
    "flaky": "<testcase classname='s.A' name='t7'><flakyFailure message='failed, then passed on rerun 1: x'/>"
             "</testcase>",
}


class XmlSummaryTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.events = []

    def target(self, label, status, *cases, shards=1, cached=False, warning=None, timing=None):
        props = "".join(f"<property name='timing.{k}' value='{v}'/>" for k, v in (timing or {}).items())
        for shard in range(1, shards + 1):
            path = os.path.join(self.tmp, label.replace("/", "_").replace(":", "_") + f"_{shard}.xml")
            with open(path, "w") as f:
                f.write(f"<testsuites><testsuite><properties>{props}</properties>" + "".join(CASES[c] for c in cases)
                        + "</testsuite></testsuites>")
            outputs = [{"name": "test.xml", "uri": "file://" + path}]
            if warning:
                with open(path + ".warnings", "w") as f:
                    f.write(warning + "\n")
                outputs.append({"name": "test.warnings", "uri": "file://" + path + ".warnings"})
            self.events.append({"id": {"testResult": {"label": label, "run": 1, "shard": shard, "attempt": 1}},
                                "testResult": {"testActionOutput": outputs, "cachedLocally": cached}})
        self.events.append({"id": {"testSummary": {"label": label}}, "testSummary": {"overallStatus": status}})

    def run_summary(self, *flags):
        path = os.path.join(self.tmp, "events.json")
        with open(path, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in self.events)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = xml_summary.main(["--events", path, *flags])
        return rc, out.getvalue()

    def test_counts_every_status_over_shards(self):
        self.target("//a:t", "PASSED", "passed", "skipped", "xfailed", "absl_skip", shards=2, cached=True)
        rc, out = self.run_summary("--skipped")
        self.assertEqual(rc, 0, out)
        self.assertIn("cases: 2 passed, 0 failed, 0 errors, 4 skipped, 2 expected failures", out)
        self.assertIn("PASSED (cached)", out)
        self.assertIn("skipped: //a:t: s.A.t4: needs CUDA: x", out)
        self.assertIn("expected failure: //a:t: s.A.t5: known bug: b", out)

    def test_a_flaky_case_is_counted_apart_and_named(self):
        self.target("//a:t", "PASSED", "passed", "flaky")
        rc, out = self.run_summary()
        self.assertEqual(rc, 0, out)
        self.assertIn("1 passed, 0 failed, 0 errors, 0 skipped, 0 expected failures, 1 flaky", out)
        self.assertIn("flaky: //a:t: s.A.t7: failed, then passed on rerun 1: x", out)

    def test_failures_and_errors_fail(self):
        self.target("//a:t", "FAILED", "passed", "failed", "errors")
        rc, out = self.run_summary()
        self.assertEqual(rc, 1)
        self.assertIn("1 passed, 1 failed, 1 errors", out)

    def test_a_target_that_executed_no_case_is_not_green(self):
        self.target("//a:ok", "PASSED", "passed")
        self.target("//a:empty", "PASSED")
        self.target("//a:all_skipped", "PASSED", "skipped")
        rc, out = self.run_summary()
        self.assertEqual(rc, 1)
        self.assertIn("2 target(s) not green: //a:all_skipped, //a:empty", out)

    def test_only_the_invocations_targets_count(self):
        stale = os.path.join(self.tmp, "stale.xml")
        with open(stale, "w") as f:
            f.write("<testsuites><testsuite>" + CASES["failed"] + "</testsuite></testsuites>")
        self.target("//a:t", "PASSED", "passed")
        rc, out = self.run_summary()
        self.assertEqual(rc, 0, out)
        self.assertIn("1 test targets in the last invocation", out)

    def test_warnings_are_listed_once_per_text(self):
        for name in ("a", "b", "c", "d"):
            self.target(f"//a:{name}", "PASSED", "passed", shards=2, warning="ranks ran on CPU with gloo, not CUDA")
        self.target("//a:e", "PASSED", "passed")
        rc, out = self.run_summary()
        self.assertEqual(rc, 0, out)
        self.assertIn("warning (4 targets: //a:a, //a:b, //a:c and 1 more): ranks ran on CPU with gloo, not CUDA\n",
                      out)
        self.assertEqual(out.count("warning"), 1)

    def test_a_missing_shard_xml_is_reported_and_not_green(self):
        self.target("//a:t", "PASSED", "passed", shards=2)
        os.remove(os.path.join(self.tmp, "__a_t_2.xml"))
        rc, out = self.run_summary()
        self.assertEqual(rc, 1, out)
        self.assertIn("missing ", out)
        self.assertIn("__a_t_2.xml", out)

    def test_where_the_time_went(self):
        self.target("//a:t", "PASSED", "passed", timing={"wall": 9.0, "cases": 3.0, "fixtures": 1.0, "overhead": 5.0,
                                                        "starter": 2.5, "imports": 1.5, "teardown": 1.0})
        self.target("//a:u", "PASSED", "passed", timing={"wall": 4.0, "cases": 1.0, "fixtures": 0.0, "overhead": 3.0,
                                                        "starter": 2.0, "imports": 0.5, "teardown": 0.5})
        self.target("//a:cached", "PASSED", "passed", cached=True, timing={"overhead": 99.0, "starter": 99.0})
        rc, out = self.run_summary()
        self.assertEqual(rc, 0, out)
        self.assertIn("overhead outside cases: 2 executed targets, median 4.00s, max 5.00s per target", out)
        self.assertIn("largest overheads: starter 4.5s, imports 2.0s, teardown 1.5s", out)
        self.assertIn("targets with the most: //a:t 5.0s, //a:u 3.0s", out)

    def test_variants_of_disabled_environments_are_one_line(self):
        self.target("//a:t_gpu2", "PASSED", "passed")
        for label, env in (("//a:t_gpu2_torch2_14", "torch2_14"), ("//a:t_gpu4_torch2_14", "torch2_14"),
                           ("//a:t_gpu2_local", "local")):
            self.events.append({"id": {"targetConfigured": {"label": label}}, "configured": {"tag": ["gpu2", env]}})
            self.events.append({"id": {"targetCompleted": {"label": label}}, "aborted": {"reason": "SKIPPED"}})
        rc, out = self.run_summary()
        self.assertEqual(rc, 0, out)
        self.assertIn("left out: 3 test targets of disabled environments (local: 1, torch2_14: 2); enable them with "
                      "--config=all-envs or --config=local-torch", out)
        self.assertNotIn("t_gpu2_torch2_14", out, "not one by one")

    def test_a_missing_event_file_fails(self):
        rc = xml_summary.main(["--events", os.path.join(self.tmp, "none.json")])
        self.assertEqual(rc, 1)


if __name__ == "__main__":
    unittest.main()
