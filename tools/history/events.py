"""What a build event file (bazel test --build_event_json_file, which ./bazelw writes as
bazel-events.json) says about one invocation: its id, start, command line and end, and per test
target its overall status and every test action (shard, run, attempt) with its test.xml.

Only the targets of this file count: a test.xml left in bazel-testlogs by an earlier invocation
is never read unless this invocation's events name it.
"""

import dataclasses
import datetime
import json
import urllib.parse


class EventsError(Exception):
    """The build event file is missing, unreadable or not an invocation's (one-line message)."""


@dataclasses.dataclass
class Action:
    """One testResult event: a test action of a target."""
    shard: int
    run: int
    attempt: int
    status: str
    duration_s: float | None
    cached: bool
    started_at: datetime.datetime | None
    xml_uri: str | None


@dataclasses.dataclass
class Summary:
    """One testSummary event (absent when Bazel stopped before summarising the target)."""
    status: str
    duration_s: float | None
    shard_count: int | None


@dataclasses.dataclass
class Events:
    """The invocation as its build event file describes it; `actions` and `summaries` by label."""
    invocation_id: str
    started_at: datetime.datetime
    command: str
    workspace: str
    finished_at: datetime.datetime | None = None
    exit_code: str | None = None
    command_line: str = ""
    patterns: list = dataclasses.field(default_factory=list)
    metadata: dict = dataclasses.field(default_factory=dict)
    actions: dict = dataclasses.field(default_factory=dict)
    summaries: dict = dataclasses.field(default_factory=dict)

    @property
    def labels(self):
        """Every test target of the invocation, sorted."""
        return sorted(set(self.actions) | set(self.summaries))


def millis(value):
    """A UTC datetime (naive) from Bazel's milliseconds since the epoch (a string in JSON)."""
    if value in (None, "", "0"):
        return None
    return datetime.datetime.fromtimestamp(int(value) / 1000, datetime.timezone.utc).replace(tzinfo=None)


def _seconds(value):
    return None if value in (None, "") else int(value) / 1000


def file_path(uri):
    """The local path of a file:// URI; None for another scheme (a remote bytestream://)."""
    parsed = urllib.parse.urlparse(uri or "")
    return urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else None


def read(path):
    """The Events of the build event file at `path`; EventsError if it is not one."""
    try:
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        raise EventsError(f"cannot read build event file {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise EventsError(f"build event file {path} is not JSON lines: {e}") from e
    started = next((e for e in lines if "started" in e["id"]), None)
    if started is None:
        raise EventsError(f"build event file {path} has no `started` event (an interrupted or foreign file?)")
    s = started["started"]
    events = Events(invocation_id=s["uuid"], started_at=millis(s["startTimeMillis"]), command=s.get("command", ""),
                    workspace=s.get("workspaceDirectory", ""))
    for event in lines:
        _HANDLERS.get(next(iter(event["id"])), lambda *_: None)(events, event)
    return events


def _test_result(events, event):
    rid, result = event["id"]["testResult"], event.get("testResult", {})
    outputs = {o["name"]: o.get("uri") for o in result.get("testActionOutput", [])}
    cached = bool(result.get("cachedLocally") or result.get("executionInfo", {}).get("cachedRemotely"))
    events.actions.setdefault(rid["label"], []).append(Action(
        shard=rid.get("shard", 1), run=rid.get("run", 1), attempt=rid.get("attempt", 1),
        status=result.get("status", "NO_STATUS"), duration_s=_seconds(result.get("testAttemptDurationMillis")),
        cached=cached, started_at=millis(result.get("testAttemptStartMillisEpoch")), xml_uri=outputs.get("test.xml")))


def _test_summary(events, event):
    summary = event.get("testSummary", {})
    events.summaries[event["id"]["testSummary"]["label"]] = Summary(
        status=summary.get("overallStatus", "NO_STATUS"), duration_s=_seconds(summary.get("totalRunDurationMillis")),
        shard_count=summary.get("shardCount"))


def _finished(events, event):
    finished = event.get("finished", {})
    events.finished_at = millis(finished.get("finishTimeMillis"))
    events.exit_code = finished.get("exitCode", {}).get("name", "SUCCESS" if finished.get("overallSuccess") else None)


def _command_line(events, event):
    """bazel <command> <options the user gave> <targets>: the `original` command line, less the
    options Bazel marks HIDDEN (rc sources, client environment)."""
    line = event.get("structuredCommandLine", {})
    if line.get("commandLineLabel") != "original":
        return
    words = []
    for section in line.get("sections", []):
        if section.get("sectionLabel") == "startup options":
            continue
        words += section.get("chunkList", {}).get("chunk", [])
        words += [o["combinedForm"] for o in section.get("optionList", {}).get("option", [])
                  if "combinedForm" in o and "HIDDEN" not in o.get("metadataTags", [])]
    events.command_line = " ".join(words)
    events.patterns = next((s.get("chunkList", {}).get("chunk", []) for s in line.get("sections", [])
                            if s.get("sectionLabel") == "residual"), [])


def _key_values(events, event):
    """buildMetadata (--build_metadata=K=V) and workspaceStatus items (BUILD_HOST, BUILD_USER,
    BUILD_SCM_REVISION where a workspace status command sets it)."""
    if "buildMetadata" in event["id"]:
        events.metadata.update(event.get("buildMetadata", {}).get("metadata", {}))
    else:
        events.metadata.update({i["key"]: i.get("value", "") for i in event.get("workspaceStatus", {}).get("item", [])})


_HANDLERS = {
    "testResult": _test_result,
    "testSummary": _test_summary,
    "buildFinished": _finished,
    "structuredCommandLine": _command_line,
    "buildMetadata": _key_values,
    "workspaceStatus": _key_values,
}
