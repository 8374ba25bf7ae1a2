"""Unit tests of device choice and GPU slot locking (no GPU needed: slots are lock files)."""

import subprocess
import sys
import textwrap

from absl.testing import absltest
from absl.testing import parameterized

from testing.launcher import gpu_slots


class VisibleGpusTest(parameterized.TestCase):

    @parameterized.named_parameters(
        ("unset_uses_dev_nodes", None, ["0", "1", "10", "2"], ["0", "1", "2", "10"]),
        ("empty_hides_all", "", ["0", "1"], []),
        ("list", "3,1", ["0"], ["3", "1"]),
        ("stops_at_invalid", "0,-1,2", [], ["0"]),
        ("uuids", "GPU-aa,GPU-bb", [], ["GPU-aa", "GPU-bb"]),
    )
    def test_visible(self, cvd, nodes, expected):
        dev = self.create_tempdir()
        for n in nodes:
            dev.create_file("nvidia" + n)
        dev.create_file("nvidiactl")
        env = {} if cvd is None else {"CUDA_VISIBLE_DEVICES": cvd}
        self.assertEqual(gpu_slots.visible_gpus(env, dev.full_path), expected)


class CheckDeviceTest(parameterized.TestCase):
    """The launcher only checks the device defs.bzl chose: CUDA without its GPUs is a failure."""

    @parameterized.named_parameters(
        ("cpu", "cpu", 1, ["0", "1"], True),
        ("cpu_without_gpus", "cpu", 4, [], False),
        ("cuda_ok", "cuda", 2, ["0", "1"], True),
    )
    def test_servable(self, device, world_size, gpus, has_cuda):
        gpu_slots.check_device(device, world_size, gpus, has_cuda)

    @parameterized.named_parameters(
        ("too_few_gpus", 4, ["0", "1"], True, "needs 4 GPUs"),
        ("cpu_build", 1, ["0"], False, "no CUDA support"),
    )
    def test_cuda_is_a_failure_not_a_fallback(self, world_size, gpus, has_cuda, message):
        with self.assertRaisesRegex(gpu_slots.DeviceError, message):
            gpu_slots.check_device("cuda", world_size, gpus, has_cuda)

    @parameterized.parameters("tpu", "auto")
    def test_unknown_device(self, device):
        with self.assertRaises(gpu_slots.DeviceError):
            gpu_slots.check_device(device, 1, [], False)


class GpuSlotsTest(absltest.TestCase):

    def test_two_holders_get_disjoint_slots(self):
        lock_dir = self.create_tempdir().full_path
        gpus = ["0", "1", "2", "3"]
        with gpu_slots.GpuSlots(gpus, 2, lock_dir) as a, gpu_slots.GpuSlots(gpus, 2, lock_dir) as b:
            self.assertLen(a.acquired, 2)
            self.assertLen(b.acquired, 2)
            self.assertEmpty(set(a.acquired) & set(b.acquired))

    def test_waits_then_times_out_when_all_slots_are_held(self):
        lock_dir = self.create_tempdir().full_path
        with gpu_slots.GpuSlots(["0", "1"], 2, lock_dir):
            with self.assertRaisesRegex(gpu_slots.DeviceError, "no 1 free GPU slots"):
                gpu_slots.GpuSlots(["0", "1"], 1, lock_dir, timeout=0.3, poll=0.1).__enter__()

    def test_partial_availability_takes_nothing(self):
        lock_dir = self.create_tempdir().full_path
        with gpu_slots.GpuSlots(["0", "1", "2"], 2, lock_dir):
            waiter = gpu_slots.GpuSlots(["0", "1", "2"], 2, lock_dir, timeout=0.2, poll=0.05)
            with self.assertRaises(gpu_slots.DeviceError):
                waiter.__enter__()
            self.assertEmpty(waiter.acquired)
            with gpu_slots.GpuSlots(["0", "1", "2"], 1, lock_dir, timeout=0) as c:
                self.assertLen(c.acquired, 1, "the waiter must not keep the free slot")

    def test_slots_are_freed_when_the_holder_is_killed(self):
        lock_dir = self.create_tempdir().full_path
        holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path[:0] = {sys.path!r}
            from testing.launcher import gpu_slots
            s = gpu_slots.GpuSlots(["0", "1"], 2, {lock_dir!r}).__enter__()
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
        self.assertEqual(holder.stdout.readline().strip(), "held")
        with self.assertRaises(gpu_slots.DeviceError):
            gpu_slots.GpuSlots(["0", "1"], 1, lock_dir, timeout=0.2, poll=0.05).__enter__()
        holder.kill()
        holder.wait()
        with gpu_slots.GpuSlots(["0", "1"], 2, lock_dir, timeout=5) as s:
            self.assertCountEqual(s.acquired, ["0", "1"])

    def test_more_slots_than_gpus_fails_at_once(self):
        with self.assertRaisesRegex(gpu_slots.DeviceError, "only 1 GPUs visible"):
            gpu_slots.GpuSlots(["0"], 2, self.create_tempdir().full_path).__enter__()


if __name__ == "__main__":
    absltest.main()
