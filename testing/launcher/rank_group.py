"""Starts the N ranks of one launch on this host and reports how each one ended.

    python -m testing.launcher.rank_group --nproc=N --report=ranks.json [--fork] [--log_dir=DIR]
        -- (-m MODULE | SCRIPT) [ARGS...]

What torchrun's standalone agent does for a launch of this suite, minus what the suite never
uses (elastic membership, restarts, an agent importing torch before the ranks can start):

  * every rank gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR and
    MASTER_PORT, so `init_process_group()` (env://) rendezvouses as under torchrun: rank 0 hosts
    the TCPStore on MASTER_PORT;
  * --fork: this process imports torch and the modules from outside this repository that the
    program (and --preimport_from modules) import, read from their source and never run, plus
    what torch imports lazily on the checkpoint paths; it freezes their objects out of the
    garbage collector's way (gc.freeze), then forks the ranks, which
    start with them imported (torch's multiprocessing start method "fork"). Without it, each
    rank is a fresh interpreter (spawn), as under torchrun: crash repros use that;
  * when a rank exits non-zero the others are stopped (SIGTERM, then SIGKILL after
    --stop_grace), as torchrun does, and SIGTERM/SIGINT to this process reach every rank;
  * --report: a JSON file, rewritten as ranks end: how each rank ended (its return code, a
    negative one for a signal) and when, with this process's own timestamps (started, imports
    done, ranks started). The launcher reads it instead of torchrun's text.

Each rank's stdout and stderr go to DIR/rank<R>.log with --log_dir (else they are inherited).
Stdlib only until --fork imports torch.
"""

import argparse
import ast
import gc
import importlib
import importlib.util
import json
import os
import runpy
import signal
import subprocess
import sys
import time
import traceback

from testing.launcher import processes

_STOP_GRACE = 3.0

# Modules torch imports lazily, inside calls every checkpointing scenario makes (found with py-spy
# on the ranks): torch._dynamo, about 1.3 s per process, on the first optimizer built
# (torch/optim/optimizer.py: Optimizer.__init__ -> torch/_compile.py: _disable_dynamo), and DCP's
# fsspec storage on the first save or load. For a program that imports torch.distributed.checkpoint
# they are imported once before the fork, not once per rank; other programs do not pay for them.
CHECKPOINTING_LAZY_IMPORTS = ("torch._dynamo", "torch.distributed.checkpoint._fsspec_filesystem")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m testing.launcher.rank_group", description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", type=int, required=True, help="number of ranks")
    p.add_argument("--report", required=True, help="JSON file: how each rank ended, and this process's timestamps")
    p.add_argument("--fork", action="store_true", help="import once, then fork the ranks (default: spawn them)")
    p.add_argument("--log_dir", default="", help="each rank's output into DIR/rank<R>.log")
    p.add_argument("--preimport_from", action="append", default=[], metavar="MODULE",
                   help="with --fork, also import what this repository module imports (the test module)")
    p.add_argument("--stop_grace", type=float, default=_STOP_GRACE, help="seconds between SIGTERM and SIGKILL")
    p.add_argument("target", nargs=argparse.REMAINDER, help="-- -m MODULE [ARGS] | -- SCRIPT [ARGS]")
    args = p.parse_args(argv)
    target = args.target[1:] if args.target[:1] == ["--"] else args.target
    if not target or (target[0] == "-m" and len(target) < 2):
        p.error("give the ranks' program after --: -m MODULE [ARGS] or SCRIPT [ARGS]")
    args.module, args.argv = (target[1], target[2:]) if target[0] == "-m" else (None, target)
    return args


def rank_env(rank, nproc):
    env = dict(os.environ)
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc),
               GROUP_RANK="0", ROLE_RANK=str(rank), ROLE_WORLD_SIZE=str(nproc),
               MASTER_ADDR=env.get("MASTER_ADDR", "127.0.0.1"))
    env.setdefault("MASTER_PORT", str(processes.free_port()))
    return env


def _imported_names(path):
    """Module names the source at `path` imports, at its top level or inside its functions (which
    import lazily what their calls need): from X import Y gives X and X.Y."""
    try:
        with open(path) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def _origin(name):
    """The file a module would be loaded from, without running it (None: not found)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    return spec.origin if spec and spec.has_location else None


def third_party_imports(roots):
    """The modules outside this repository (torch, absl, ...) that the repository modules
    `roots` import, directly or through other repository modules, read from their source and
    never run: importing them before forking runs none of the target's own code."""
    repo = processes.repository_root() + os.sep
    seen, outside, todo = set(), [], list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        origin = _origin(name)
        if origin is None:
            continue
        # Not realpath: in a runfiles tree each file is a symlink into the source tree.
        if not os.path.abspath(origin).startswith(repo):
            outside.append(name)
        elif origin.endswith(".py"):
            todo += _imported_names(origin)
    return outside


def preimport_names(roots):
    """What preimport imports for the repository modules `roots`: torch, what they import from
    outside the repository and, for a checkpointing program, CHECKPOINTING_LAZY_IMPORTS."""
    names = ["torch", "torch.distributed"] + third_party_imports(roots)
    if any(name.startswith("torch.distributed.checkpoint") for name in names):
        names += CHECKPOINTING_LAZY_IMPORTS
    return names


def preimport(args):
    """Imports preimport_names() of the ranks' program and --preimport_from modules, ignoring
    failures: the ranks import again and report them."""
    roots = [args.module] if args.module else []
    roots += [_module_of(args.argv[0])] if args.argv and not args.module else []
    for name in preimport_names(roots + args.preimport_from):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (reported by the ranks, which import it again)
            pass
    # As CPython's gc docs recommend before fork: the imports' objects (modules, classes,
    # functions; about a million with torch) move to the permanent generation, so the ranks'
    # collections, and the full one during their teardown, stop traversing them (a second of
    # teardown per rank with torch 2.14). Objects the ranks create are collected as always.
    gc.freeze()


def _module_of(script):
    """The dotted name of a script of this repository (dsd/x.py -> dsd.x), for the import scan."""
    rel = os.path.relpath(os.path.abspath(script), processes.repository_root())
    return rel[:-3].replace(os.sep, ".") if rel.endswith(".py") and not rel.startswith("..") else ""


def _redirect(log_dir, rank):
    if log_dir:
        fd = os.open(os.path.join(log_dir, f"rank{rank}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


def run_forked_rank(args, rank):
    """In a forked child: becomes rank `rank` and never returns (the interpreter exits through
    its normal teardown with the program's status)."""
    processes.die_with_parent()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    env = rank_env(rank, args.nproc)
    os.environ.clear()
    os.environ.update(env)
    _redirect(args.log_dir, rank)
    code = 0
    try:
        if args.module:
            sys.argv = [args.module, *args.argv]
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(args.argv)
            runpy.run_path(args.argv[0], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 (as the interpreter reports an uncaught exception)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def spawn_rank(args, rank):
    program = ["-m", args.module, *args.argv] if args.module else list(args.argv)
    out = open(os.path.join(args.log_dir, f"rank{rank}.log"), "ab") if args.log_dir else None  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, *program], env=rank_env(rank, args.nproc), stdout=out,
                                stderr=subprocess.STDOUT if out else None, preexec_fn=processes.die_with_parent).pid
    finally:
        if out:
            out.close()


class Group:
    """The ranks' processes, how they ended, and the report."""

    def __init__(self, args):
        self.args = args
        self.report = {"started": processes.process_start_time(os.getpid()), "nproc": args.nproc,
                       "mode": "fork" if args.fork else "spawn", "ranks": {}}
        self.pids = {}
        self.stopping = False

    def write(self):
        tmp = self.args.report + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.report, f, indent=1)
        os.replace(tmp, self.args.report)

    def start(self):
        os.environ.setdefault("MASTER_PORT", str(processes.free_port()))
        if self.args.fork:
            preimport(self.args)
        self.report["imported"] = time.time()
        for rank in range(self.args.nproc):
            if self.args.fork:
                pid = os.fork()
                if pid == 0:
                    run_forked_rank(self.args, rank)
            else:
                pid = spawn_rank(self.args, rank)
            self.pids[pid] = rank
            self.report["ranks"][str(rank)] = {"pid": pid, "started": time.time()}
        self.write()

    def stop(self, sig=signal.SIGTERM):
        self.stopping = True
        for pid, rank in self.pids.items():
            if "returncode" not in self.report["ranks"][str(rank)]:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def wait(self):
        deadline = None
        while len([r for r in self.report["ranks"].values() if "returncode" in r]) < len(self.pids):
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                if deadline and time.time() > deadline:
                    self.stop(signal.SIGKILL)
                time.sleep(0.02)
                continue
            if pid not in self.pids:
                continue
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            entry = self.report["ranks"][str(self.pids[pid])]
            entry.update(returncode=code, ended=time.time(), stopped_by_group=self.stopping)
            self.write()
            if code != 0 and not self.stopping:
                self.report["first_failure"] = self.pids[pid]
                self.stop()
                deadline = time.time() + self.args.stop_grace
        self.write()
        return 0 if all(r["returncode"] == 0 for r in self.report["ranks"].values()) else 1


def main(argv):
    processes.die_with_parent()
    args = parse_args(argv)
    if args.log_dir:
        os.makedirs(args.log_dir, exist_ok=True)
    group = Group(args)

    def forward(signum, frame):
        group.stop(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    group.start()
    return group.wait()


if __name__ == "__main__":
    # The group is the harness, not a rank: once every rank has ended and the report is written,
    # it leaves without the interpreter's teardown (with --fork it holds torch, whose teardown
    # costs about half a second per launch). The ranks themselves exit through teardown.
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
