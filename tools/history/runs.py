"""One `bazel test` invocation as the history records it: its build event file (events.py)
joined with each test action's test.xml (junit.py).

Guarantees: the targets are exactly those of the build event file; every attempt of every
shard and run is kept, and `is_last` marks the last attempt of each (shard, run), whose cases
are the target's result; a case that failed or errored in an earlier attempt and passed in the
last one is `flaky`, with the earlier message. A test.xml that is missing, remote or unreadable
leaves its attempt without cases and says why in `problem`.
"""

import dataclasses
import datetime
import subprocess

from tools.history import events as events_lib
from tools.history import junit

_FAILING = ("failed", "error")
_COMMIT_KEYS = ("COMMIT_SHA", "COMMIT", "BUILD_SCM_REVISION")


@dataclasses.dataclass
class Attempt:
    shard: int
    run: int
    attempt: int
    status: str
    duration_s: float | None
    cached: bool
    started_at: datetime.datetime | None
    is_last: bool
    xml_path: str | None
    problem: str | None
    properties: dict
    cases: list


@dataclasses.dataclass
class Target:
    label: str
    status: str
    cached: bool
    duration_s: float | None
    shard_count: int
    attempt_count: int
    scenario: str
    test_module: str | None
    torch_release: str | None
    torch_version: str | None
    environments: str | None
    world_sizes: str | None
    device: str | None
    attempts: list


@dataclasses.dataclass
class Invocation:
    invocation_id: str
    started_at: datetime.datetime
    finished_at: datetime.datetime | None
    command: str
    command_line: str
    patterns: str
    exit_code: str | None
    commit: str | None
    commit_dirty: bool | None
    host: str | None
    user: str | None
    wall_seconds: float | None
    targets: list


def load(events_path, commit=None, wall_seconds=None):
    """The Invocation of the build event file at `events_path`. `commit`: the tested commit
    (default: --build_metadata COMMIT_SHA, a workspace status BUILD_SCM_REVISION, else the
    workspace's git HEAD now, with whether tracked files differ from it)."""
    ev = events_lib.read(events_path)
    dirty = None
    if commit is None:
        commit = next((ev.metadata[k] for k in _COMMIT_KEYS if ev.metadata.get(k)), None)
    if commit is None:
        commit, dirty = git_commit(ev.workspace)
    targets = [_target(label, ev.actions.get(label, []), ev.summaries.get(label)) for label in ev.labels]
    return Invocation(invocation_id=ev.invocation_id, started_at=ev.started_at, finished_at=ev.finished_at,
                      command=ev.command, command_line=ev.command_line, patterns=" ".join(ev.patterns),
                      exit_code=ev.exit_code, commit=commit, commit_dirty=dirty, host=ev.metadata.get("BUILD_HOST"),
                      user=ev.metadata.get("BUILD_USER"), wall_seconds=wall_seconds, targets=targets)


def git_commit(workspace):
    """(HEAD's sha, whether tracked files differ from it) of the git checkout at `workspace`;
    (None, None) where there is none."""
    def git(*args):
        return subprocess.run(["git", "-C", workspace, *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()
    try:
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None


def _target(label, actions, summary):
    actions = sorted(actions, key=lambda a: (a.shard, a.run, a.attempt))
    last = {(a.shard, a.run): a.attempt for a in actions}
    attempts = [_attempt(a, last[(a.shard, a.run)] == a.attempt) for a in actions]
    _mark_flaky(attempts)
    props = next((a.properties for a in attempts if a.is_last and a.properties), {})
    module = props.get("test_module") or None
    return Target(
        label=label, status=summary.status if summary else (actions[-1].status if actions else "NO_STATUS"),
        cached=bool(actions) and all(a.cached for a in actions),
        duration_s=summary.duration_s if summary and summary.duration_s is not None else
        (sum(a.duration_s or 0 for a in actions) if actions else None),
        shard_count=(summary.shard_count if summary and summary.shard_count else len({a.shard for a in actions})),
        attempt_count=max((a.attempt for a in actions), default=0),
        scenario=module.rpartition(".")[2] if module else label, test_module=module,
        torch_release=torch_release(props), torch_version=props.get("torch.version") or None,
        environments=props.get("environments") or None, world_sizes=props.get("world_sizes") or None,
        device=props.get("device") or None, attempts=attempts)


def torch_release(properties):
    """The matrix's torch column of a target: its torch version, or for a target whose phases
    use different environments (saved with one torch, loaded with another) the environments."""
    envs = [e.strip() for e in properties.get("environments", "").split("->") if e.strip()]
    if len(set(envs)) > 1:
        return " -> ".join(envs)
    return properties.get("torch.version") or (envs[0] if envs else None)


def _attempt(action, is_last):
    path, problem, properties, cases = events_lib.file_path(action.xml_uri), None, {}, []
    if action.xml_uri is None:
        problem = "no test.xml in the build event file"
    elif path is None:
        problem = f"test.xml is not a local file: {action.xml_uri}"
    else:
        try:
            properties, cases = junit.read(path)
        except junit.JunitError as e:
            problem = str(e)
    return Attempt(shard=action.shard, run=action.run, attempt=action.attempt, status=action.status,
                   duration_s=action.duration_s, cached=action.cached, started_at=action.started_at,
                   is_last=is_last, xml_path=path, problem=problem, properties=properties, cases=cases)


def _mark_flaky(attempts):
    """A case of a last attempt that passed after failing in an earlier attempt of the same
    (shard, run) becomes flaky, with the earlier failure's message."""
    earlier = {}
    for a in attempts:
        if not a.is_last:
            for case in a.cases:
                if case.status in _FAILING:
                    earlier.setdefault((a.shard, a.run, case.case_id), case.message or case.status)
    for a in attempts:
        for case in a.cases if a.is_last else ():
            message = earlier.get((a.shard, a.run, case.case_id))
            if message is not None and case.status == "passed":
                case.status, case.message = "flaky", message
