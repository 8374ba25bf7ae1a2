"""Unit tests of the JUnit XML the launcher writes."""

import xml.etree.ElementTree as ET

from absl.testing import absltest

from testing.launcher import protocol
from testing.launcher import report
from testing.launcher.protocol import Status
from testing.launcher.verdict import Result


class JunitXmlTest(absltest.TestCase):

    def test_counts_elements_and_properties(self):
        path = self.create_tempdir().full_path + "/out/test.xml"
        results = [
            Result("A.test_ok", Status.PASSED, duration=0.25),
            Result("A.test_bad", Status.FAILED, "failed on rank(s) [1]: boom", "trace <&>"),
            Result("A.test_raises", Status.ERROR, "failed on rank(s) [0]: KeyError", "trace"),
            Result("B.test_skip", Status.SKIPPED, "needs CUDA: pinned memory"),
            Result("B.test_known", Status.XFAILED, "known bug: b", "symptom"),
            Result("launcher.shutdown", Status.ERROR, "hung", kind=protocol.LAUNCHER),
        ]
        report.write_junit(path, "//dsd:mod_gpu2", results, 3.5, {"device": "cpu"}, "a note")
        suite = ET.parse(path).getroot().find("testsuite")
        self.assertEqual(suite.get("name"), "//dsd:mod_gpu2")
        self.assertEqual([suite.get(k) for k in ("tests", "failures", "errors", "skipped")], ["6", "1", "2", "2"])
        self.assertEqual({p.get("name"): p.get("value") for p in suite.iter("property")}, {"device": "cpu"})
        cases = suite.findall("testcase")
        self.assertEqual([(c.get("classname"), c.get("name")) for c in cases][-1],
                         ("//dsd:mod_gpu2.launcher", "shutdown"))
        self.assertEqual(cases[1].find("failure").text, "trace <&>")
        self.assertIsNotNone(cases[2].find("error"))
        self.assertEqual(cases[3].find("skipped").get("message"), "needs CUDA: pinned memory")
        self.assertEqual(cases[4].find("skipped").get("type"), "pytest.xfail")
        self.assertEqual(suite.find("system-out").text, "a note")


if __name__ == "__main__":
    absltest.main()
