"""What one test.xml says: the suite's <properties> and each <testcase>'s status, duration and
message. Reads the launcher's XML (tools/xml_summary.py's case_status decides the statuses it
shares) and plain absltest / pytest XML, which have no properties.

Statuses: passed, failed, error, skipped, xfailed (<skipped type="pytest.xfail">: a known bug),
flaky (a passing <testcase> with a <flakyFailure> or <flakyError> child, Maven Surefire's
convention: it failed, then passed when rerun).
"""

import dataclasses
import xml.etree.ElementTree as ET

from tools import xml_summary

_STATUS = {"failed": "failed", "errors": "error", "skipped": "skipped", "xfailed": "xfailed", "passed": "passed",
           "flaky": "flaky"}
_MESSAGE_OF = {"failed": "failure", "error": "error", "skipped": "skipped", "xfailed": "skipped"}
_FLAKY_TAGS = ("flakyFailure", "flakyError")
MESSAGE_CHARS = 500


class JunitError(Exception):
    """The file is not JUnit XML (a truncated or missing test.xml); one-line message."""


@dataclasses.dataclass
class Case:
    classname: str
    name: str
    case_id: str
    status: str
    duration_s: float | None
    message: str | None


def first_line(text):
    """The first non-blank line of `text`, at most MESSAGE_CHARS characters; None if none."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:MESSAGE_CHARS]
    return None


def _message(element):
    if element is None:
        return None
    return first_line(element.get("message")) or first_line(element.text)


def case_of(element, suite_name):
    """The Case of a <testcase>; its case_id is Class.method, without the suite's label prefix
    the launcher puts in front of the class name."""
    classname, name = element.get("classname", ""), element.get("name", "")
    short = classname[len(suite_name) + 1:] if suite_name and classname.startswith(suite_name + ".") else classname
    status = _STATUS[xml_summary.case_status(element)]
    if status == "flaky":
        message = _message(next(child for child in element if child.tag in _FLAKY_TAGS))
    else:
        message = _message(element.find(_MESSAGE_OF[status])) if status in _MESSAGE_OF else None
    time = element.get("time")
    return Case(classname=classname, name=name, case_id=f"{short}.{name}" if short else name, status=status,
                duration_s=float(time) if time not in (None, "") else None, message=message)


def read(path):
    """(properties {name: value}, [Case]) of the JUnit XML file at `path`; JunitError if it
    cannot be read or parsed."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise JunitError(f"unreadable test.xml {path}: {e}") from e
    properties, found = {}, []
    for suite in [root] if root.tag == "testsuite" else root.findall("testsuite"):
        for prop in suite.findall("properties/property"):
            properties.setdefault(prop.get("name", ""), prop.get("value", ""))
        found += [case_of(el, suite.get("name", "")) for el in suite.findall("testcase")]
    return properties, found
