"""A small, known run history for tools/history's tests: three fake `bazel test` invocations
(build event files and test.xml files written into a directory), each recordable with
`python -m tools.history record`.

The latest run's matrix has 7 cells: 2 passed, 1 expected failure, 1 skipped, 1 failed and
2 flaky (one case the launcher reran, <flakyFailure>; one target Bazel reran, FLAKY); each
flaky case is flaky in 1 of its 3 runs. A plain absltest target (no properties) records too.
"""

import contextlib
import datetime
import io
import json
import os
import xml.etree.ElementTree as ET

EXPECTED_CELLS = {"passed": 2, "xfailed": 1, "skipped": 1, "failed": 1, "flaky": 2}
FAILED_MESSAGE = "AssertionError: tensors differ at net.0.weight (max abs diff 0.5)"
FLAKY_MESSAGE = "rank 1 timed out in the gloo barrier"
BAZEL_FLAKY_MESSAGE = "RuntimeError: connection reset by peer"
XFAIL_MESSAGE = "known bug: DCP reads .metadata with plain pickle.load on every rank"
SKIP_MESSAGE = "needs torch2_13's checkpoint layout"
INVOCATIONS = [f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3)]
COMMITS = ["a" * 40, "b" * 40, "c" * 40]
WALL_SECONDS = [300.0, 320.0, 410.0]

FSDP = "FsdpModelStateCheckpointTest"
HOSTILE = "MetadataPickleTest"
# label: (test_module, world_sizes, environments, torch version); None: a plain absltest XML.
TARGETS = {
    "//dsd:fsdp_model_state_test_gpu2": ("dsd.fsdp_model_state_test", "2", "torch2_13", "2.13.0+cpu"),
    "//dsd:fsdp_model_state_test_gpu4": ("dsd.fsdp_model_state_test", "4", "torch2_13", "2.13.0+cpu"),
    "//dsd:fsdp_model_state_test_gpu2_torch2_14": ("dsd.fsdp_model_state_test", "2", "torch2_14", "2.14.1+cu130"),
    "//dsd:hostile_checkpoint_test_gpu2": ("dsd.hostile_checkpoint_test", "2", "torch2_13", "2.13.0+cpu"),
    "//dsd:hostile_checkpoint_test_gpu2_torch2_14": ("dsd.hostile_checkpoint_test", "2", "torch2_14", "2.14.1+cu130"),
    "//dsd:reshard_test_gpu2to4": ("dsd.reshard_test", "2 -> 4", "torch2_13 -> torch2_13", "2.13.0+cpu"),
    "//dsd:dsd_api_test_gpu2": ("dsd.dsd_api_test", "2", "torch2_13", "2.13.0+cpu"),
    "//tools:xml_summary_test": None,
}


def _cases(label, run):
    """[(class, method, status, seconds, message)] of `label` in run 0, 1 or 2 (the latest)."""
    latest = run == 2
    if label.startswith("//dsd:fsdp_model_state_test"):
        failed = latest and label.endswith("torch2_14")
        flaky = latest and label.endswith("gpu4")
        return [(FSDP, "test_fsdp_model_state_no_resharding", "failed" if failed else "passed", 1.0 + 0.5 * run,
                 FAILED_MESSAGE if failed else None),
                (FSDP, "test_fsdp_model_state_with_resharding", "flaky" if flaky else "passed", 0.25,
                 FLAKY_MESSAGE if flaky else None)]
    if label.startswith("//dsd:hostile_checkpoint_test"):
        if label.endswith("torch2_14") and latest:
            return [(HOSTILE, m, "skipped", 0.0, SKIP_MESSAGE)
                    for m in ("test_metadata_pickle_runs_code", "test_metadata_pickle_refused")]
        return [(HOSTILE, "test_metadata_pickle_runs_code", "xfailed", 0.5, XFAIL_MESSAGE),
                (HOSTILE, "test_metadata_pickle_refused", "passed", 0.25, None)]
    if label == "//dsd:reshard_test_gpu2to4":  # sorted apart by bytes (T < f) and by en-US (f < T)
        return [("ReshardTest", "test_fsdp2_round_trip", "passed", 3.0, None),
                ("ReshardTest", "test_TP_round_trip", "passed", 1.0, None)]
    if label == "//dsd:dsd_api_test_gpu2":
        return [("DsdApiTest", "test_get_state_dict_matches_reference", "passed", 2.0, None)]
    return [("XmlSummaryTest", "test_counts_every_status_over_shards", "passed", 0.01, None),
            ("XmlSummaryTest", "test_skipped_by_absl", "absl_skip", 0.0, None)]


def write_xml(path, label, cases, properties=None):
    """A JUnit XML as the launcher writes it (`properties`), or as absltest does (None)."""
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=label if properties else "XmlSummaryTest")
    if properties:
        props = ET.SubElement(suite, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", name=name, value=value)
    for cls, method, status, seconds, message in cases:
        attrs = {"classname": f"{label}.{cls}" if properties else cls, "name": method, "time": f"{seconds:.3f}"}
        if status == "absl_skip":
            attrs.update(status="notrun", result="suppressed")
        case = ET.SubElement(suite, "testcase", **attrs)
        tag = {"failed": "failure", "error": "error", "skipped": "skipped", "xfailed": "skipped",
               "flaky": "flakyFailure"}.get(status)
        if tag:
            el = ET.SubElement(case, tag, message=message or "")
            if status == "xfailed":
                el.set("type", "pytest.xfail")
            el.text = message
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _properties(label):
    spec = TARGETS[label]
    if spec is None:
        return None
    module, ws, envs, version = spec
    return {"test_module": module, "world_sizes": ws, "shard": "1/1", "environments": envs, "device": "cpu",
            "torch.version": version, "launches": "1", "rank_starter": "fork", "timing.wall": "5.00"}


def _millis(run, offset_s=0):
    start = datetime.datetime(2026, 1, 1 + run, 10, 0, tzinfo=datetime.timezone.utc)
    return str(int((start.timestamp() + offset_s) * 1000))


def _result(label, attempt, status, xml, duration_ms, run):
    return {"id": {"testResult": {"label": label, "run": 1, "shard": 1, "attempt": attempt}},
            "testResult": {"testActionOutput": [{"name": "test.xml", "uri": "file://" + xml}], "status": status,
                           "testAttemptDurationMillis": str(duration_ms), "cachedLocally": False,
                           "testAttemptStartMillisEpoch": _millis(run, 1)}}


def _target_events(directory, label, run):
    """The testResult events (one per attempt) and testSummary of one target in one run."""
    base = os.path.join(directory, f"run{run}", label.strip("/").replace(":", "/"))
    cases = _cases(label, run)
    duration_ms = int(1000 * (sum(c[3] for c in cases) + 2 + run))
    events, status = [], "PASSED"
    if label == "//dsd:dsd_api_test_gpu2" and run == 2:  # Bazel's rerun: attempt 1 failed
        first = [(c[0], c[1], "error", c[3], BAZEL_FLAKY_MESSAGE) for c in cases]
        first_xml = os.path.join(base, "test_attempts", "attempt_1.xml")
        write_xml(first_xml, label, first, _properties(label))
        events.append(_result(label, 1, "FAILED", first_xml, duration_ms, run))
        status = "FLAKY"
    elif any(c[2] in ("failed", "error") for c in cases):
        status = "FAILED"
    write_xml(os.path.join(base, "test.xml"), label, cases, _properties(label))
    events.append(_result(label, len(events) + 1, "FAILED" if status == "FAILED" else "PASSED",
                          os.path.join(base, "test.xml"), duration_ms, run))
    events.append({"id": {"testSummary": {"label": label}},
                   "testSummary": {"overallStatus": status, "totalRunDurationMillis": str(duration_ms),
                                   "shardCount": 1, "attemptCount": len(events)}})
    return events


def write(directory):
    """Writes the three runs under `directory`; [(events path, commit, wall seconds)], oldest first."""
    out = []
    for run, uuid in enumerate(INVOCATIONS):
        events = [{"id": {"started": {}}, "started": {"uuid": uuid, "startTimeMillis": _millis(run), "command": "test",
                                                      "workspaceDirectory": directory}},
                  {"id": {"structuredCommandLine": {"commandLineLabel": "original"}},
                   "structuredCommandLine": {"commandLineLabel": "original", "sections": [
                       {"sectionLabel": "command", "chunkList": {"chunk": ["test"]}},
                       {"sectionLabel": "command options", "optionList": {"option": [{"combinedForm": "--config=ci"}]}},
                       {"sectionLabel": "residual", "chunkList": {"chunk": ["//..."]}}]}}]
        for label in TARGETS:
            events += _target_events(directory, label, run)
        events.append({"id": {"buildFinished": {}}, "finished": {
            "overallSuccess": run < 2, "finishTimeMillis": _millis(run, 250 + 10 * run),
            "exitCode": {"name": "SUCCESS" if run < 2 else "TESTS_FAILED"}}})
        path = os.path.join(directory, f"run{run}", "bazel-events.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in events)
        out.append((path, COMMITS[run], WALL_SECONDS[run]))
    return out


def run_cli(*argv):
    """(exit status, stdout, stderr) of python -m tools.history *argv, run in this process."""
    from tools.history import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def record_all(directory, url):
    """Writes the fixture under `directory` and records its runs into the database at `url`
    (through the command line); returns the events paths."""
    runs = write(directory)
    for path, commit, wall in runs:
        rc, _, err = run_cli("record", "--events", path, "--db", url, "--commit", commit, "--wall_seconds", str(wall))
        if rc != 0:
            raise RuntimeError(f"recording the fixture's {path} into {url} exited {rc}: {err.strip()}")
    return [path for path, _, _ in runs]


def modules_dir():
    """The stand-in scenario modules whose marks the fixture's cases match."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "scenarios")
