"""The launcher: the main of every distributed test target (testing/defs.bzl).

Started by Bazel (bazel test / bazel run) or by hand (python -m testing.launcher), it
  1. takes the device Bazel chose (DSD_DEVICE: cpu or cuda, testing/defs.bzl; --device by hand)
     and, on CUDA, locks that many GPU slots on the host (gpu_slots.py);
  2. per phase (one world size, or several for a target that saves at one world size and loads
     at another), launches the ranks until every planned case has a verdict (phase.py, launch.py)
     while it checks the phase's environment against its description;
  3. decides the target's verdict (verdict.py): it passes only if every planned case passed, was
     skipped or is an expected failure on every rank, every fixture and every rank's shutdown
     and exit ended cleanly, and the module planned at least one case;
  4. writes JUnit XML (XML_OUTPUT_FILE) with where the time went (timing.py), per-rank logs and
     each failed case's artefacts (TEST_UNDECLARED_OUTPUTS_DIR), warnings
     (TEST_WARNINGS_OUTPUT_FILE) and infrastructure problems (TEST_INFRASTRUCTURE_FAILURE_FILE),
     and exits non-zero unless the target passed.
Honours Bazel's test protocol (bazel_protocol.py). For debugging: --tee_rank (DSD_TEE_RANK)
streams ranks' output live, --debug_rank (DSD_DEBUG_RANK) stops one rank in pdb at each case and
lifts every time limit, --coverage (DSD_COVERAGE=1) measures torch.distributed.checkpoint in
every rank (tools/dcp_coverage.py).
"""

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time

from testing.launcher import bazel_protocol
from testing.launcher import gpu_slots
from testing.launcher import quarantine
from testing.launcher import starters
from testing.launcher import timing
from testing.launcher import watchdog
from testing.launcher.launch import Interrupted
from testing.launcher.launch import LaunchConfig
from testing.launcher.phase import Phase
from testing.launcher.protocol import LAUNCHER
from testing.launcher.protocol import LaunchSpec
from testing.launcher.protocol import Status
from testing.launcher.report import Report
from testing.launcher.verdict import Result
from testing.launcher.verdict import merge_phases
from testing.launcher.verdict import target_checks
from third_party.envs import probe

_NO_LIMIT = 7 * 24 * 3600.0


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


def build_parser():
    env = os.environ
    p = argparse.ArgumentParser(prog="python -m testing.launcher", description=__doc__.split("\n\n")[0])
    p.add_argument("--test_module", required=True, help="module holding the cases, e.g. dsd.fsdp_optim_state_test")
    p.add_argument("--world_size", type=int, default=2, help="number of ranks")
    p.add_argument("--phases", default="", help="world sizes of consecutive launches on one TEST_TMPDIR, "
                   "each optionally in a Python environment: 4,2 saves at 4 ranks and loads at 2; "
                   "2@torch2_13,2@torch2_14 saves with one torch and loads with another (cases read self.phase)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=PYTHON:ENV_INFO",
                   help="interpreter and recorded description of an environment named in --phases")
    p.add_argument("--device", default=env.get("DSD_DEVICE") or "cpu", choices=gpu_slots.DEVICES,
                   help="where ranks run: $DSD_DEVICE, which Bazel sets (--config=cpu|gpu, testing/defs.bzl); "
                   "cpu by hand unless given")
    p.add_argument("--rank_starter", default=env.get("DSD_RANK_STARTER") or "auto", choices=starters.STARTERS,
                   help="how ranks start (starters.py): auto is fork on CPU ranks, torchrun on CUDA")
    p.add_argument("--test_filter", default=env.get("TESTBRIDGE_TEST_ONLY", ""),
                   help="case ids, substrings or globs, ',' separated; '-pattern' excludes")
    p.add_argument("--fail_fast", action="store_true", default=env.get("TESTBRIDGE_TEST_RUNNER_FAIL_FAST") == "1",
                   help="stop after the first failing case (bazel test --test_runner_fail_fast)")
    defaults = watchdog.Limits()
    for field in dataclasses.fields(watchdog.Limits):
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
    p.add_argument("--quarantine", default="", metavar="FILE",
                   help="quarantined cases (testing/quarantine.json): they run, and are reported skipped with why")
    p.add_argument("--flaky_reruns", type=int, default=int(env.get("DSD_FLAKY_RERUNS", "0") or 0), metavar="N",
                   help="rerun failed cases in up to N fresh launches: one that then passes is FLAKY "
                   "(default $DSD_FLAKY_RERUNS, else 0: off)")
    p.add_argument("--durations", default="", metavar="FILE",
                   help="recorded case durations (testing/durations.json): shards balanced by them, else round-robin")
    p.add_argument("--list", action="store_true", help="print this shard's case ids and exit")
    return p


def parse_args(argv):
    p = build_parser()
    args = p.parse_args(argv)
    try:
        args.tee_ranks = sorted({int(r) for r in args.tee_rank.replace(" ", "").split(",") if r})
        args.phase_list = phases_of(args.phases, args.world_size)
        args.envs = environments(args.env)
    except (ValueError, argparse.ArgumentTypeError) as e:
        p.error(f"--tee_rank takes rank numbers, e.g. 1 or 0,1; got {args.tee_rank!r}"
                if isinstance(e, ValueError) else str(e))
    if args.debug_rank >= 0:
        # A rank sitting in a debugger must not be taken for a hang.
        for field in dataclasses.fields(watchdog.Limits):
            if field.name != "startup_timeout":
                setattr(args, field.name, _NO_LIMIT)
        args.pg_timeout = args.timeout = _NO_LIMIT
        args.tee_ranks = sorted(set(args.tee_ranks) | {args.debug_rank})
    unknown = sorted({env for _, env in args.phase_list if env and env not in args.envs})
    if unknown:
        p.error(f"--phases names environment(s) {unknown} without --env")
    args.world_sizes = [ws for ws, _ in args.phase_list]
    # coverage.py must see torch.distributed.checkpoint imported: forked ranks inherit it imported.
    args.starter = starters.choose("spawn" if args.coverage and args.rank_starter == "auto" else args.rank_starter,
                                   args.device)
    return args


class EnvironmentCheck:
    """Checks, beside the phase's launches, that an environment is what its env_info.json records
    (third_party/envs/probe.py, run by the environment's own interpreter)."""

    def __init__(self, name, python, info):
        self.name, self.started = name, time.time()
        self.proc = subprocess.Popen([python, probe.__file__, "--check", info], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def result(self):
        """(a launcher.environment Result or None, seconds it took)."""
        output, _ = self.proc.communicate()
        self.ended = time.time()
        if self.proc.returncode == 0:
            return None
        why = (output.strip() or f"exit code {self.proc.returncode}").splitlines()[-1]
        return Result("launcher.environment", Status.ERROR, f"environment {self.name}: {why}", output, kind=LAUNCHER)


@dataclasses.dataclass
class Target:
    """One run of the target: its arguments, Bazel's test protocol and what it produced."""

    args: argparse.Namespace
    bazel: bazel_protocol.TestProtocol
    report: Report
    properties: dict
    device: str = "cpu"
    extra_env: dict = dataclasses.field(default_factory=dict)
    phases: list = dataclasses.field(default_factory=list)
    environment_checks: list = dataclasses.field(default_factory=list)
    interrupted: bool = False


def spec_for(target, index):
    args = target.args
    return LaunchSpec(test_module=args.test_module, device=target.device, attempt_dir="",
                      scratch_dir=os.path.join(target.bazel.tmpdir, "scratch"), test_filter=args.test_filter,
                      shard_index=target.bazel.shard_index, total_shards=target.bazel.total_shards,
                      fail_fast=args.fail_fast, pg_timeout=args.pg_timeout, phase=index,
                      phase_world_sizes=list(args.world_sizes), coverage_dir=target.bazel.coverage_dir,
                      durations_file=args.durations, random_seed=target.bazel.random_seed,
                      debug_rank=args.debug_rank, agree_timeout=max(LaunchSpec.agree_timeout, args.pg_timeout))


def run_phase(target, index, world_size, env):
    """Runs one phase (checking its environment alongside); False if the next must not run."""
    args = target.args
    multi = len(args.world_sizes) > 1
    if multi:
        target.report.log(f"-- phase {index}: world size {world_size}" + (f", environment {env}" if env else ""))
    python = args.envs[env][0] if env else sys.executable
    check = EnvironmentCheck(env, python, args.envs[env][1]) if env else None
    limits = watchdog.Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(watchdog.Limits)})
    config = LaunchConfig(spec_for(target, index), world_size, python, limits, target.bazel.deadline,
                          target.extra_env, args.starter, tuple(args.tee_ranks),
                          os.path.join(target.bazel.tmpdir, "nccl_pipes"))
    output_dir = target.bazel.output_dir
    phase = Phase(config, os.path.join(output_dir, f"phase{index}") if multi else output_dir, target.report.log,
                  outputs_root=output_dir, artifacts_limit=int(args.failure_artifacts_mb * 2**20))
    target.phases.append(phase)
    try:
        phase.run()
        phase.rerun_failures(args.flaky_reruns)
    finally:
        bad_env = check.result() if check else None
        if check:
            last = phase.launches[-1].ended if phase.launches else None
            target.environment_checks.append((check.started, check.ended, last))
        if bad_env:
            phase.add(bad_env)
    return bad_env is None


def run_phases(target):
    """Every phase in order, on the device's GPU slots when on CUDA; [] or the launcher.device
    error of GPU slots that did not come free in time."""
    args, slots = target.args, None
    try:
        if target.device == "cuda":
            wait = min(args.gpu_lock_timeout, target.bazel.deadline[0] - time.time())
            slots = gpu_slots.GpuSlots(gpu_slots.visible_gpus(), max(args.world_sizes), args.gpu_lock_dir, wait)
            slots.__enter__()
            target.extra_env["CUDA_VISIBLE_DEVICES"] = target.properties["gpus"] = ",".join(slots.acquired)
            target.report.log(f"GPU slots: {slots.acquired} (locked in {args.gpu_lock_dir})")
        for index, (world_size, env) in enumerate(args.phase_list):
            if not run_phase(target, index, world_size, env):
                break
    except gpu_slots.DeviceError as e:
        target.report.infrastructure_failure(str(e))
        return [Result("launcher.device", Status.ERROR, str(e), kind=LAUNCHER)]
    except Interrupted:
        target.interrupted = True
    finally:
        if slots:
            slots.close()
    return []


def results_of(target):
    """The target's results (phases merged) and notes, with its launcher-level checks."""
    args, results, notes = target.args, [], []
    for phase in target.phases:
        checks, phase_notes = target_checks(args.test_module, args.test_filter, phase.plan,
                                            target.bazel.shard_index, target.bazel.total_shards)
        phase.results += checks
        notes += phase_notes
        if target.interrupted:
            phase.results += [Result(c, Status.ERROR, "not run: the launcher was interrupted (SIGTERM/SIGINT)")
                              for c in phase.remaining()]
    sizes = args.world_sizes
    if len(sizes) > 1:
        results = merge_phases([p.results for p in target.phases], sizes[:len(target.phases)])
    elif target.phases:
        results = target.phases[0].results
    if target.interrupted and len(target.phases) < len(sizes):
        results.append(Result("launcher.interrupted", Status.ERROR, f"interrupted before phase {len(target.phases)} "
                              f"(world size {sizes[len(target.phases)]})", kind=LAUNCHER))
    label = os.environ.get("TEST_TARGET")
    return quarantine.apply(results, quarantine.load(args.quarantine, args.test_module, label)), notes


def describe_run(target):
    """The target's first lines and its XML properties: module, phases, device, shard, starter."""
    args, bazel, props = target.args, target.bazel, target.properties
    props.update({"test_module": args.test_module, "world_sizes": " -> ".join(map(str, args.world_sizes)),
                  "shard": f"{bazel.shard_index + 1}/{bazel.total_shards}", "rank_starter": args.starter,
                  "random_seed": bazel.random_seed,
                  "environments": " -> ".join(env or "(this interpreter)" for _, env in args.phase_list),
                  "device": target.device,
                  "device.why": os.environ.get("DSD_DEVICE_WHY") or ("Bazel's configuration (DSD_DEVICE)"
                                                                     if os.environ.get("DSD_DEVICE") else "--device")})
    if args.test_filter:
        props["test_filter"] = args.test_filter
    target.report.log(f"{args.test_module}: world size{'s' if len(args.world_sizes) > 1 else ''} "
                      f"{props['world_sizes']}, device {target.device} ({props['device.why']}), shard {props['shard']}"
                      + (f", filter {args.test_filter!r}" if args.test_filter else ""))
    target.report.log(f"per-rank logs: {bazel.logs_location()}")
    if os.environ.get("DSD_DEVICE_WHY"):
        # Bazel chose CPU ranks at analysis time for lack of GPUs (testing/defs.bzl).
        target.report.warn(f"ranks ran on CPU with gloo, not CUDA ({os.environ['DSD_DEVICE_WHY']}); "
                           "--config=gpu requires CUDA, --config=cpu silences this")
    if args.debug_rank >= 0:
        target.report.log(f"debugging rank {args.debug_rank} (DSD_DEBUG_RANK): it stops in pdb at the start of each "
                          "case; every time limit is lifted")
    if bazel.coverage_dir:
        props["coverage"] = "torch.distributed.checkpoint"
        target.report.log(f"coverage of torch.distributed.checkpoint: data files in {bazel.coverage_dir}")


def preflight(target):
    """Launcher-level errors before any rank starts (the device, --debug_rank), or []."""
    args = target.args
    try:
        gpu_slots.check_device(args.device, max(args.world_sizes), gpu_slots.visible_gpus(),
                               gpu_slots.torch_has_cuda())
    except gpu_slots.DeviceError as e:
        target.report.infrastructure_failure(str(e))
        return [Result("launcher.device", Status.ERROR, str(e), kind=LAUNCHER)]
    if args.debug_rank >= max(args.world_sizes):
        return [Result("launcher.debug_rank", Status.ERROR, f"--debug_rank={args.debug_rank} but the largest "
                       f"world size is {max(args.world_sizes)}", kind=LAUNCHER)]
    return []


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bazel = bazel_protocol.TestProtocol.from_environment(args)
    if args.list:
        return bazel_protocol.list_cases(args.test_module, args.test_filter, bazel, args.durations)
    with bazel_protocol.PrematureExitFile():
        return run_target(Target(args, bazel, Report(bazel.suite, args.xml_output), {}, device=args.device))


def run_target(target):
    args, bazel = target.args, target.bazel
    describe_run(target)
    errors = preflight(target)
    if errors:
        return target.report.finish(errors, target.properties)

    def interrupt(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    errors = run_phases(target)
    if errors:
        return target.report.finish(errors, target.properties)
    results, notes = results_of(target)
    torch = next((p.torch for p in target.phases if p.torch), {})
    target.properties.update({f"torch.{k}": v for k, v in torch.items() if v})
    target.properties["launches"] = " -> ".join(str(len(p.launches)) for p in target.phases)
    parts = timing.breakdown(bazel.process_started, time.time(), target.phases, target.environment_checks)
    target.properties.update(timing.properties(parts))
    for note in notes:
        target.report.log(note)
    rc = target.report.finish(results, target.properties, notes)
    return 143 if target.interrupted else rc


if __name__ == "__main__":
    sys.exit(main())
