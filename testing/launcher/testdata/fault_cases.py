"""Launcher fixture: one fault at a time outside the cases themselves, chosen by DSD_FAULT.

Faults hit the last rank (or every rank where the name says so), at the named moment:
  setup_module_raise, teardown_module_raise, setup_class_raise, setup_class_hang,
  setup_class_crash, teardown_class_raise (every rank), teardown_class_hang,
  teardown_class_crash, class_cleanup_raise, between_crash, between_hang (after
  AFaultsTest.test_a, before the next unit), shutdown_raise, shutdown_hang, shutdown_crash
  (in destroy_process_group), exit_crash, exit_hang (after the rank's final record),
  interpreter_abort, interpreter_hang, interpreter_status, interpreter_thread (in interpreter teardown,
  after the rank returned: an atexit handler aborts like C++'s std::terminate, hangs or exits
  with status 3; a non-daemon thread the interpreter waits for).
Without a fault, every case passes: AFaultsTest.test_a, AFaultsTest.test_b, BAfterTest.test_c.
"""

import atexit
import os
import signal
import threading
import time

import torch
import torch.distributed as dist

from testing.dist_test_case import DistributedTestCase
from testing.launcher import protocol
from testing.launcher import rank_worker

FAULT = os.environ.get("DSD_FAULT", "")


def _last_rank():
    return dist.get_rank() == dist.get_world_size() - 1


def _hit(name, every_rank=False):
    return FAULT == name and (every_rank or _last_rank())


def _hang():
    while True:
        time.sleep(1)


def setUpModule():
    if _hit("setup_module_raise", every_rank=True):
        raise RuntimeError("deliberate setUpModule error")


def tearDownModule():
    if _hit("teardown_module_raise", every_rank=True):
        raise RuntimeError("deliberate tearDownModule error")


def _patch(owner, name, wrap):
    original = getattr(owner, name)
    setattr(owner, name, wrap(original))


if FAULT.startswith("between_"):
    def _agree(original):
        def agree(self, unit, status):
            if unit == "AFaultsTest.test_a" and _last_rank():
                os._exit(6) if FAULT == "between_crash" else _hang()
            return original(self, unit, status)
        return agree
    _patch(rank_worker.Rank, "agree", _agree)

if FAULT.startswith("shutdown_"):
    def _destroy(original):
        def destroy_process_group(*args, **kwargs):
            if _last_rank():
                if FAULT == "shutdown_raise":
                    raise RuntimeError("deliberate error in destroy_process_group")
                os._exit(7) if FAULT == "shutdown_crash" else _hang()
            return original(*args, **kwargs)
        return destroy_process_group
    _patch(dist, "destroy_process_group", _destroy)

if FAULT.startswith("exit_"):
    def _emit(original):
        def emit(self, event, **fields):
            original(self, event, **fields)
            if event == "done" and int(os.environ["RANK"]) == int(os.environ["WORLD_SIZE"]) - 1:
                os._exit(9) if FAULT == "exit_crash" else _hang()
        return emit
    _patch(protocol.RecordWriter, "emit", _emit)

if FAULT.startswith("interpreter_"):
    # The process group is gone by then: the rank comes from the environment.
    def _at_exit():
        if int(os.environ["RANK"]) != int(os.environ["WORLD_SIZE"]) - 1:
            return
        if FAULT == "interpreter_abort":
            os.kill(os.getpid(), signal.SIGABRT)  # what "terminate called without an active exception" does
        elif FAULT == "interpreter_hang":
            _hang()
        elif FAULT == "interpreter_status":
            os._exit(3)
    atexit.register(_at_exit)
    if FAULT == "interpreter_thread" and int(os.environ["RANK"]) == int(os.environ["WORLD_SIZE"]) - 1:
        threading.Thread(target=_hang, name="left-behind").start()  # not a daemon: exit waits for it


class AFaultsTest(DistributedTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if _hit("setup_class_raise", every_rank=True):
            raise RuntimeError("deliberate setUpClass error")
        if _hit("setup_class_hang"):
            _hang()
        if _hit("setup_class_crash"):
            os._exit(4)
        if _hit("class_cleanup_raise", every_rank=True):
            cls.addClassCleanup(lambda: (_ for _ in ()).throw(RuntimeError("deliberate class cleanup error")))

    @classmethod
    def tearDownClass(cls):
        if _hit("teardown_class_raise", every_rank=True):
            raise RuntimeError("deliberate tearDownClass error")
        if _hit("teardown_class_hang"):
            _hang()
        if _hit("teardown_class_crash"):
            os._exit(5)
        super().tearDownClass()

    def _all_reduce(self):
        t = torch.ones(1, device=self.device)
        dist.all_reduce(t)
        self.assertEqual(t.item(), self.world_size)

    def test_a(self):
        self._all_reduce()

    def test_b(self):
        self._all_reduce()


class BAfterTest(DistributedTestCase):

    def test_c(self):
        t = torch.ones(1, device=self.device)
        dist.all_reduce(t)
        self.assertEqual(t.item(), self.world_size)
