"""Process handling shared by the launcher, its ranks and sub-launches: dying with a parent,
finding every process of a launch by an environment token (psutil), killing them, free ports."""

import ctypes
import os
import signal
import socket
import time

import psutil

_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In a child (e.g. as preexec_fn): SIGKILL when the parent dies, even by SIGKILL."""
    ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def new_token(name):
    """("NAME", value) for an environment variable that marks every process of one launch."""
    return name, f"{os.getpid()}.{os.urandom(6).hex()}"


def processes_with_env(name, value):
    """PIDs of live (non-zombie) processes whose environment has NAME=value."""
    pids = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.environ().get(name) == value:
                pids.append(proc.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return pids


def process_start_time(pid):
    """When process `pid` started (seconds since the epoch, as time.time()), to the clock tick.
    Not psutil's create_time(), which adds the boot time in whole seconds (up to 1 s off)."""
    with open(f"/proc/{pid}/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")


def repository_root():
    """This repository's root (in a Bazel runfiles tree: the workspace directory there)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill_launch(proc, token, extra_pids=()):
    """SIGKILLs `proc`'s process group, every process carrying `token` (ranks run in sessions of
    their own) and `extra_pids`, then reaps `proc`."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    kill(set(extra_pids) | set(processes_with_env(*token)))
    proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def describe_exit(code):
    """'exit code 3' or 'signal SIGSEGV' for a returncode (negative: killed by a signal)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    if code > 128 and code - 128 in signal.Signals._value2member_map_:
        return f"exit code {code} ({signal.Signals(code - 128).name})"
    return f"exit code {code}"
