"""What a target says: a line per result as it becomes known, warnings (Bazel's test.warnings),
infrastructure failures (TEST_INFRASTRUCTURE_FAILURE_FILE), the totals, and the JUnit XML."""

import os
import time
import xml.etree.ElementTree as ET

from testing.launcher.protocol import Status
from testing.launcher.verdict import Result
from testing.launcher.verdict import counts

_MARK = {Status.PASSED: "  OK  ", Status.FAILED: " FAIL ", Status.ERROR: "ERROR ", Status.SKIPPED: " SKIP ",
         Status.XFAILED: "XFAIL ", Status.FLAKY: "FLAKY "}


def write_junit(path, suite_name, results, total_time, properties=None, system_out=""):
    """JUnit XML as CI tools read it: failures (assertions) apart from errors (exceptions),
    skips with their reason, expected failures as pytest writes xfail (<skipped
    type="pytest.xfail" message=...>), and flaky cases as Maven Surefire writes a test that passed
    on a rerun: a passing <testcase> with a <flakyFailure> (an assertion) or <flakyError> child."""
    c = counts(results)
    skipped = c[Status.SKIPPED] + c[Status.XFAILED]
    attrs = dict(tests=str(len(results)), failures=str(c[Status.FAILED]), errors=str(c[Status.ERROR]),
                 skipped=str(skipped), time=f"{total_time:.3f}")
    suites = ET.Element("testsuites", **attrs)
    suite = ET.SubElement(suites, "testsuite", name=suite_name, **attrs)
    if properties:
        props = ET.SubElement(suite, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", name=name, value=str(value))
    for r in results:
        cls, _, method = r.id.rpartition(".")
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{cls}" if cls else suite_name,
                             name=method, time=f"{r.duration:.3f}")
        if r.status is Status.FAILED:
            ET.SubElement(case, "failure", message=r.message[:1000]).text = r.detail or r.message
        elif r.status is Status.ERROR:
            ET.SubElement(case, "error", message=r.message[:1000]).text = r.detail or r.message
        elif r.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", message=r.message[:1000])
        elif r.status is Status.XFAILED:
            ET.SubElement(case, "skipped", type="pytest.xfail", message=r.message[:1000]).text = r.detail
        elif r.status is Status.FLAKY:
            tag = "flakyFailure" if "AssertionError" in (r.detail or r.message) else "flakyError"
            ET.SubElement(case, tag, message=r.message[:1000]).text = r.detail
    if system_out:
        ET.SubElement(suite, "system-out").text = system_out
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


class Report:
    """The target's console output as results become known, and its files at the end."""

    def __init__(self, suite, xml_output=""):
        self.suite, self.xml_output = suite, xml_output
        self.warnings = []
        self.started = time.monotonic()

    def log(self, item):
        if isinstance(item, Result):
            print(f"[{_MARK[item.status]}] {item.id} ({item.duration:.2f}s)"
                  + (f"  {item.message}" if item.message else ""), flush=True)
            if item.status.failing and item.detail:
                print(item.detail, flush=True)
        else:
            print(item, flush=True)

    def warn(self, message):
        """Also into Bazel's test.warnings (TEST_WARNINGS_OUTPUT_FILE, listed in the build event
        protocol; tools/xml_summary.py prints them)."""
        self.warnings.append(message)
        self.log("warning: " + message)
        _append(os.environ.get("TEST_WARNINGS_OUTPUT_FILE"), message)

    def infrastructure_failure(self, message):
        """A problem of the machine, not of the code under test (Bazel's
        TEST_INFRASTRUCTURE_FAILURE_FILE); the target still fails."""
        self.log("infrastructure failure: " + message)
        _append(os.environ.get("TEST_INFRASTRUCTURE_FAILURE_FILE"), f"dsd launcher: {message}")

    def finish(self, results, properties, notes=()):
        """Writes the XML and the totals line; the exit status (1 if anything failed)."""
        elapsed = time.monotonic() - self.started
        if self.xml_output:
            write_junit(self.xml_output, self.suite, results, elapsed, properties, "\n".join(notes))
        c = counts(results)
        print(f"{self.suite}: {c[Status.PASSED]} passed, {c[Status.FAILED]} failed, {c[Status.ERROR]} errors, "
              f"{c[Status.SKIPPED]} skipped, {c[Status.XFAILED]} expected failures (known torch bugs), "
              f"{c[Status.FLAKY]} flaky "
              f"in {elapsed:.1f}s", flush=True)
        return 1 if c[Status.FAILED] or c[Status.ERROR] else 0


def _append(path, line):
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
