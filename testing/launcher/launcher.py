"""The launcher: the main of every distributed test target (testing/defs.bzl).

Started by Bazel (bazel test / bazel run) or by hand (python -m testing.launcher), it
  1. chooses the device (CUDA when every rank can have its own GPU, else CPU ranks on gloo;
     --device / DSD_DEVICE forces it) and, on CUDA, locks that many GPU slots on the host;
  2. per phase (one world size, or several for a target that saves at one world size and loads
     at another), launches the ranks with torchrun until every planned case has a verdict
     (launch.py: watchdog, relaunch after a crash or hang, attribution);
  3. decides the target's verdict: it passes only if every planned case passed, was skipped or
     is an expected failure on every rank, every fixture and every rank's shutdown ended
     cleanly, and the module planned at least one case;
  4. writes JUnit XML (XML_OUTPUT_FILE), per-rank logs and each failed case's artefacts
     (TEST_UNDECLARED_OUTPUTS_DIR), warnings (TEST_WARNINGS_OUTPUT_FILE), infrastructure problems
     (TEST_INFRASTRUCTURE_FAILURE_FILE: no CUDA or no free GPUs when CUDA is required) and exits
     non-zero unless the target passed.
Honours TEST_SHARD_INDEX / TEST_TOTAL_SHARDS / TEST_SHARD_STATUS_FILE, TESTBRIDGE_TEST_ONLY,
TESTBRIDGE_TEST_RUNNER_FAIL_FAST, TEST_TIMEOUT (not under `bazel run`, which enforces none) and
TEST_TMPDIR. For debugging: --tee_rank (DSD_TEE_RANK) streams ranks' output live, --debug_rank
(DSD_DEBUG_RANK) stops one rank in pdb at each case and lifts every time limit, --coverage
(DSD_COVERAGE=1) measures torch.distributed.checkpoint in every rank (tools/dcp_coverage.py).
"""

import argparse
import dataclasses
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from testing.launcher import gpu_slots
from testing.launcher import launch as launch_lib
from testing.launcher import plan as plan_lib
from testing.launcher.protocol import LAUNCHER
from testing.launcher.protocol import Result
from testing.launcher.protocol import Status
from testing.launcher.protocol import counts
from testing.launcher.protocol import merge_phases
from testing.launcher.protocol import write_junit
from third_party.envs import probe

_NO_LIMIT = 7 * 24 * 3600.0
_MARK = {Status.PASSED: "  OK  ", Status.FAILED: " FAIL ", Status.ERROR: "ERROR ", Status.SKIPPED: " SKIP ",
         Status.XFAILED: "XFAIL "}


def phases_of(phases, world_size):
    """[(world size, environment or None)] of each phase: --phases=4,2 or 2@torch2_13,2@torch2_14;
    without --phases one phase at --world_size in this interpreter's environment."""
    items = [p.strip() for p in phases.split(",") if p.strip()] if phases else [str(world_size)]
    out = []
    for item in items:
        ws, _, env = item.partition("@")
        if not ws.isdigit() or int(ws) < 1:
            raise argparse.ArgumentTypeError(f"a phase is <world size>[@<environment>] with a world size >= 1, got {item!r}")
        out.append((int(ws), env or None))
    return out


def environments(values):
    """{name: (interpreter, env_info.json)} from --env NAME=PYTHON:ENV_INFO flags."""
    envs = {}
    for value in values:
        name, _, paths = value.partition("=")
        python, _, info = paths.partition(":")
        if not (name and python and info):
            raise argparse.ArgumentTypeError(f"--env takes NAME=PYTHON:ENV_INFO, got {value!r}")
        envs[name] = (python, info)
    return envs


def parse_args(argv):
    env = os.environ
    p = argparse.ArgumentParser(prog="python -m testing.launcher", description=__doc__.split("\n\n")[0])
    p.add_argument("--test_module", required=True, help="module holding the cases, e.g. dsd.fsdp_optim_state_test")
    p.add_argument("--world_size", type=int, default=2, help="number of ranks")
    p.add_argument("--phases", default="", help="world sizes of consecutive launches on one TEST_TMPDIR, "
                   "each optionally in a Python environment: 4,2 saves at 4 ranks and loads at 2; "
                   "2@torch2_13,2@torch2_14 saves with one torch and loads with another (cases read self.phase)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=PYTHON:ENV_INFO",
                   help="interpreter and recorded description of an environment named in --phases")
    p.add_argument("--device", default=env.get("DSD_DEVICE") or "auto", choices=gpu_slots.DEVICES,
                   help="where ranks run; default $DSD_DEVICE (set by --config=cpu|gpu), else auto")
    p.add_argument("--test_filter", default=env.get("TESTBRIDGE_TEST_ONLY", ""),
                   help="case ids, substrings or globs, ',' separated; '-pattern' excludes")
    p.add_argument("--fail_fast", action="store_true", default=env.get("TESTBRIDGE_TEST_RUNNER_FAIL_FAST") == "1",
                   help="stop after the first failing case (bazel test --test_runner_fail_fast)")
    defaults = launch_lib.Limits()
    for field in dataclasses.fields(launch_lib.Limits):
        p.add_argument(f"--{field.name}", type=float, default=getattr(defaults, field.name), metavar="SECONDS")
    p.add_argument("--pg_timeout", type=float, default=300.0, help="process-group collective timeout")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="bound of the whole target outside Bazel (under Bazel: TEST_TIMEOUT minus 20s)")
    p.add_argument("--xml_output", default=env.get("XML_OUTPUT_FILE", ""))
    p.add_argument("--output_dir", default=env.get("TEST_UNDECLARED_OUTPUTS_DIR", ""),
                   help="per-rank logs and records; a temporary directory when empty")
    p.add_argument("--gpu_lock_dir", default=env.get("DSD_GPU_LOCK_DIR", gpu_slots.DEFAULT_LOCK_DIR))
    p.add_argument("--gpu_lock_timeout", type=float, default=3600.0)
    p.add_argument("--failure_artifacts_mb", type=float, default=20.0,
                   help="MB of a failed case's scratch directory (its checkpoints) kept in the outputs")
    p.add_argument("--tee_rank", default=env.get("DSD_TEE_RANK", ""), metavar="RANKS",
                   help="ranks (e.g. 1 or 0,1) whose output is copied live to this output, like torchrun's "
                   "--tee with --local-ranks-filter; default $DSD_TEE_RANK")
    p.add_argument("--debug_rank", type=int, default=int(env.get("DSD_DEBUG_RANK", "-1") or -1), metavar="RANK",
                   help="this rank stops in pdb at the first line of each case (on this terminal, else on a "
                   "local port it names); lifts every time limit; default $DSD_DEBUG_RANK")
    p.add_argument("--coverage", action="store_true", default=env.get("DSD_COVERAGE") == "1",
                   help="measure torch.distributed.checkpoint with coverage.py in every rank, data files "
                   "into <output_dir>/coverage/ (tools/dcp_coverage.py); default $DSD_COVERAGE=1")
    p.add_argument("--list", action="store_true", help="print this shard's case ids and exit")
    args = p.parse_args(argv)
    try:
        args.tee_ranks = sorted({int(r) for r in args.tee_rank.replace(" ", "").split(",") if r})
    except ValueError:
        p.error(f"--tee_rank takes rank numbers, e.g. 1 or 0,1; got {args.tee_rank!r}")
    if args.debug_rank >= 0:
        # A rank sitting in a debugger must not be taken for a hang.
        for field in dataclasses.fields(launch_lib.Limits):
            if field.name != "startup_timeout":
                setattr(args, field.name, _NO_LIMIT)
        args.pg_timeout = args.timeout = _NO_LIMIT
        args.tee_ranks = sorted(set(args.tee_ranks) | {args.debug_rank})
    try:
        args.phase_list = phases_of(args.phases, args.world_size)
        args.envs = environments(args.env)
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    unknown = sorted({env for _, env in args.phase_list if env and env not in args.envs})
    if unknown:
        p.error(f"--phases names environment(s) {unknown} without --env")
    args.world_sizes = [ws for ws, _ in args.phase_list]
    return args


def check_environment(name, python, info):
    """A launcher.environment Result if the environment is not what its env_info.json records."""
    proc = subprocess.run([python, probe.__file__, "--check", info], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    why = (proc.stdout.strip() or proc.stderr.strip() or f"exit code {proc.returncode}").splitlines()[-1]
    return Result("launcher.environment", Status.ERROR, f"environment {name}: {why}", proc.stdout + proc.stderr,
                  kind=LAUNCHER)


class Report:
    """What the target says: one line per result as it becomes known, warnings, the XML."""

    def __init__(self, args, suite):
        self.args, self.suite = args, suite
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
        if os.environ.get("TEST_WARNINGS_OUTPUT_FILE"):
            with open(os.environ["TEST_WARNINGS_OUTPUT_FILE"], "a") as f:
                f.write(message + "\n")

    def infrastructure_failure(self, message):
        """A problem of the machine, not of the code under test (Bazel's
        TEST_INFRASTRUCTURE_FAILURE_FILE); the target still fails."""
        self.log("infrastructure failure: " + message)
        if os.environ.get("TEST_INFRASTRUCTURE_FAILURE_FILE"):
            with open(os.environ["TEST_INFRASTRUCTURE_FAILURE_FILE"], "a") as f:
                f.write(f"dsd launcher: {message}\n")

    def finish(self, results, properties, notes=()):
        elapsed = time.monotonic() - self.started
        if self.args.xml_output:
            write_junit(self.args.xml_output, self.suite, results, elapsed, properties, "\n".join(notes))
        c = counts(results)
        print(f"{self.suite}: {c[Status.PASSED]} passed, {c[Status.FAILED]} failed, {c[Status.ERROR]} errors, "
              f"{c[Status.SKIPPED]} skipped, {c[Status.XFAILED]} expected failures (known torch bugs) "
              f"in {elapsed:.1f}s", flush=True)
        return 1 if c[Status.FAILED] or c[Status.ERROR] else 0


def verdict_checks(test_module, test_filter, phase, shard_index, total_shards):
    """Launcher-level results: a module without cases and a filter matching nothing fail; an
    empty shard passes and says so (returned as a note)."""
    if phase.plan is None:
        return [], []
    if phase.total == 0:
        return [Result("launcher.plan", Status.ERROR, f"{test_module} defines no test case", kind=LAUNCHER)], []
    if phase.matched == 0:
        return [Result("launcher.test_filter", Status.ERROR,
                       f"--test_filter={test_filter!r} matched none of the {phase.total} cases of {test_module}",
                       kind=LAUNCHER)], []
    if not phase.plan:
        return [], [f"shard {shard_index + 1} of {total_shards} has no case: {phase.matched} case(s) over "
                    f"{total_shards} shards"]
    return [], []


def list_cases(args, shard_index, total_shards):
    cases = plan_lib.discover(importlib.import_module(args.test_module))
    for case in plan_lib.plan(list(cases), args.test_filter, shard_index, total_shards).cases:
        print(case)
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.environ.get("TEST_SHARD_STATUS_FILE"):
        open(os.environ["TEST_SHARD_STATUS_FILE"], "a").close()
    shard_index = int(os.environ.get("TEST_SHARD_INDEX", "0"))
    total_shards = int(os.environ.get("TEST_TOTAL_SHARDS", "1"))
    if args.list:
        return list_cases(args, shard_index, total_shards)

    suite = os.environ.get("TEST_TARGET") or args.test_module
    report = Report(args, suite)
    base_tmp = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="dsd-")
    output_dir = args.output_dir or os.path.join(base_tmp, "outputs")
    os.makedirs(output_dir, exist_ok=True)
    for stale in os.listdir(output_dir):  # an earlier run's (bazel run reuses test.outputs/)
        if re.fullmatch(r"attempt\d+|phase\d+|failures|coverage", stale):
            shutil.rmtree(os.path.join(output_dir, stale), ignore_errors=True)
    sizes = args.world_sizes
    # `bazel run` sets TEST_TIMEOUT too but enforces nothing: a debugging session is not cut short.
    bazel_timeout = 0 if os.environ.get("BUILD_WORKSPACE_DIRECTORY") else float(os.environ.get("TEST_TIMEOUT", "0") or 0)
    deadline = ((time.time() + bazel_timeout - 20, f"Bazel's TEST_TIMEOUT of {bazel_timeout:.0f}s minus 20s")
                if bazel_timeout > 40 and args.debug_rank < 0
                else (time.time() + args.timeout, f"--timeout={args.timeout:.0f}"))
    properties = {"test_module": args.test_module,
                  "world_sizes": " -> ".join(map(str, sizes)), "shard": f"{shard_index + 1}/{total_shards}",
                  "environments": " -> ".join(env or "(this interpreter)" for _, env in args.phase_list)}
    if args.test_filter:
        properties["test_filter"] = args.test_filter
    try:
        gpus = gpu_slots.visible_gpus()
        device, why = gpu_slots.choose_device(args.device, max(sizes), gpus, gpu_slots.torch_has_cuda())
    except gpu_slots.DeviceError as e:
        report.infrastructure_failure(str(e))
        return report.finish([Result("launcher.device", Status.ERROR, str(e), kind=LAUNCHER)], properties)
    properties["device"] = device
    properties["device.why"] = os.environ.get("DSD_DEVICE_WHY") or why
    if device == "cpu" and args.device == "auto":
        report.warn(f"{why} (--config=gpu makes too few GPUs a failure)")
    elif device == "cpu" and os.environ.get("DSD_DEVICE_WHY"):
        # Bazel chose CPU ranks at analysis time for lack of GPUs or of a CUDA torch (testing/defs.bzl).
        report.warn(f"ranks ran on CPU with gloo, not CUDA ({os.environ['DSD_DEVICE_WHY']}); "
                    "--config=gpu requires CUDA, --config=cpu silences this")
    report.log(f"{args.test_module}: world size{'s' if len(sizes) > 1 else ''} {properties['world_sizes']}, "
               f"device {device} ({why}), shard {properties['shard']}"
               + (f", filter {args.test_filter!r}" if args.test_filter else ""))
    report.log(f"per-rank logs: {_logs_location(output_dir, shard_index, total_shards)}")
    if args.debug_rank >= 0:
        if args.debug_rank >= max(sizes):
            return report.finish([Result("launcher.debug_rank", Status.ERROR, f"--debug_rank={args.debug_rank} "
                                         f"but the largest world size is {max(sizes)}", kind=LAUNCHER)], properties)
        report.log(f"debugging rank {args.debug_rank} (DSD_DEBUG_RANK): it stops in pdb at the start of each case; "
                   "every time limit is lifted")
    coverage_dir = os.path.join(output_dir, "coverage") if args.coverage else ""
    if coverage_dir:
        properties["coverage"] = "torch.distributed.checkpoint"
        report.log(f"coverage of torch.distributed.checkpoint: data files in {coverage_dir}")

    def interrupt(signum, frame):
        raise launch_lib.Interrupted()

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    limits = launch_lib.Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(launch_lib.Limits)})
    phases, slots, interrupted = [], None, False
    try:
        extra_env = {}
        if device == "cuda":
            wait = min(args.gpu_lock_timeout, deadline[0] - time.time())
            slots = gpu_slots.GpuSlots(gpus, max(sizes), args.gpu_lock_dir, wait).__enter__()
            extra_env["CUDA_VISIBLE_DEVICES"] = ",".join(slots.acquired)
            properties["gpus"] = extra_env["CUDA_VISIBLE_DEVICES"]
            report.log(f"GPU slots: {slots.acquired} (locked in {args.gpu_lock_dir})")
        for index, (ws, env) in enumerate(args.phase_list):
            if len(sizes) > 1:
                report.log(f"-- phase {index}: world size {ws}" + (f", environment {env}" if env else ""))
            python = args.envs[env][0] if env else sys.executable
            bad_env = check_environment(env, python, args.envs[env][1]) if env else None
            spec = launch_lib.spec_for(args, device, os.path.join(base_tmp, "scratch"), index, sizes,
                                       shard_index, total_shards, coverage_dir)
            phase = launch_lib.Phase(spec, ws, os.path.join(output_dir, f"phase{index}") if len(sizes) > 1
                                     else output_dir, python, limits, deadline, extra_env, report.log,
                                     outputs_root=output_dir, artifacts_limit=int(args.failure_artifacts_mb * 2**20),
                                     tee_ranks=args.tee_ranks, pipe_dir=os.path.join(base_tmp, "nccl_pipes"))
            phases.append(phase)
            if bad_env:
                phase.add(bad_env)
                break
            phase.run()
    except gpu_slots.DeviceError as e:
        report.infrastructure_failure(str(e))
        return report.finish([Result("launcher.device", Status.ERROR, str(e), kind=LAUNCHER)], properties)
    except launch_lib.Interrupted:
        interrupted = True
    finally:
        if slots:
            slots.close()
    results, notes = [], []
    for phase in phases:
        checks, phase_notes = verdict_checks(args.test_module, args.test_filter, phase, shard_index, total_shards)
        phase.results += checks
        notes += phase_notes
        if interrupted:
            phase.results += [Result(c, Status.ERROR, "not run: the launcher was interrupted (SIGTERM/SIGINT)")
                              for c in phase.remaining()]
    results = merge_phases([p.results for p in phases], sizes[:len(phases)]) if len(sizes) > 1 else (
        phases[0].results if phases else [])
    if interrupted and len(phases) < len(sizes):
        results.append(Result("launcher.interrupted", Status.ERROR,
                              f"interrupted before phase {len(phases)} (world size {sizes[len(phases)]})", kind=LAUNCHER))
    torch = next((p.torch for p in phases if p.torch), {})
    properties.update({f"torch.{k}": v for k, v in torch.items() if v})
    properties["launches"] = " -> ".join(str(len(p.launches)) for p in phases)
    for note in notes:
        report.log(note)
    rc = report.finish(results, properties, notes)
    return 143 if interrupted else rc


def _logs_location(output_dir, shard_index, total_shards):
    if not os.environ.get("TEST_TARGET"):
        return output_dir
    target = os.environ["TEST_TARGET"].lstrip("/").replace(":", "/")
    shard = f"shard_{shard_index + 1}_of_{total_shards}/" if total_shards > 1 else ""
    return f"bazel-testlogs/{target}/{shard}test.outputs/ (outputs.zip)"


if __name__ == "__main__":
    sys.exit(main())
