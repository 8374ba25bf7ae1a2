"""Proof that --config=rbe routes test actions by pool, against real servers on loopback.

A private PostgreSQL cluster, a BuildGrid REAPI server and two test-double workers advertising
Pool=cpu and Pool=gpu2 (proofs/servers.py), then a nested Bazel with --config=rbe:
  - //dsd:fsdp_model_state_test_gpu2 (Pool=gpu2) executes on the gpu2 worker,
  - //models:models_test (the cpu platform's Pool=cpu) executes on the cpu worker,
  - the gpu2 action carries the executor hints of platforms/pools.bzl (nvidia runtime, /dev/shm
    size, sizing), and under --config=rbe-cpu the same distributed test goes to the cpu pool,
  - //dsd:fsdp_model_state_test_gpu4 (Pool=gpu4, no such worker) fails with BuildGrid's queue
    timeout instead of running anywhere else,
  - without DSD_WORKER_IMAGE (or with an image that is not pinned by digest) --config=rbe fails at
    analysis, naming what to set.
The workers' image keeps the Python environment elsewhere than the client does (DSD_ENV_ROOT in
the image, a symlink to the same installation here): the actions still find their interpreter,
because nothing in an action names the client's path.
Needs PostgreSQL, BuildGrid and Bazel (@proof_servers, @host_bazel); fails, never skips,
without them. Everything it starts is stopped at the end.
"""

import os
import re
import tempfile

from absl.testing import absltest

from proofs import servers
from proofs.remote_cache_proof_test import host_env_dir
from tools.testing.nested_bazel import NestedBazel


# The workers here ignore the image (they run in this machine's environment); the client must name one.
IMAGE = "docker://localhost/dsd-runner@sha256:" + "1" * 64


class RemoteExecutionProofTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The image's environment root: another directory, holding the client's installation.
        env_dir = host_env_dir("../py_torch2_13/python3")
        image_root = tempfile.mkdtemp(prefix="dsd-image-envs-")
        os.symlink(env_dir, os.path.join(image_root, os.path.basename(env_dir)))
        cls.grid = servers.BuildGrid(pools=("cpu", "gpu2"), worker_env={"DSD_ENV_ROOT": image_root}).__enter__()
        cls.bazel = NestedBazel(servers.workspace(), cls.grid.tmp, output_base=cls.grid.tmp + "/ob")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "bazel", None):
            cls.bazel.shutdown()
        if getattr(cls, "grid", None):
            cls.grid.__exit__(None, None, None)
        super().tearDownClass()

    def bazel_test(self, *targets, config="rbe", image=IMAGE):
        proc = self.bazel("test", *targets, f"--config={config}", f"--remote_executor={self.grid.endpoint}",
                          "--remote_instance_name=main", "--remote_retries=0", "--nocache_test_results",
                          "--symlink_prefix=/", "--verbose_failures", f"--repo_env=DSD_WORKER_IMAGE={image}")
        return proc.returncode, proc.stdout + proc.stderr

    def test_without_a_worker_image_rbe_fails_naming_what_to_set(self):
        rc, output = self.bazel_test("//dsd:fsdp_model_state_test_gpu2", image="")
        self.assertNotEqual(rc, 0, output[-3000:])
        self.assertIn("--config=rbe needs the workers' container image: set DSD_WORKER_IMAGE=docker://", output)
        rc, output = self.bazel_test("//dsd:fsdp_model_state_test_gpu2", image="docker://runner:latest")
        self.assertNotEqual(rc, 0, output[-3000:])
        self.assertIn("expected docker://REGISTRY/IMAGE@sha256:<64 hex digits>", output, "a tag is no pin")

    def test_actions_run_on_the_worker_of_their_pool(self):
        rc, output = self.bazel_test("//dsd:fsdp_model_state_test_gpu2", "//models:models_test")
        self.assertEqual(rc, 0, output[-3000:])
        self.assertRegex(output, r"INFO: \d+ processes: .*2 remote", "both test actions ran remotely")
        gpu2, cpu = "".join(self.grid.executed("gpu2")), "".join(self.grid.executed("cpu"))
        print("gpu2 worker:", gpu2, "cpu worker:", cpu, sep="\n")
        self.assertIn("testlogs/dsd/fsdp_model_state_test_gpu2/", gpu2)
        self.assertNotIn("fsdp_model_state_test_gpu2", cpu)
        self.assertIn("testlogs/models/models_test/", cpu)
        self.assertNotIn("models_test", gpu2)
        (line,) = [l for l in self.grid.executed("gpu2") if "fsdp_model_state_test_gpu2/" in l]
        hints = ("Pool=gpu2", "dockerRuntime=nvidia", "dockerShmSize=8g", "EstimatedCPU=2", f"container-image={IMAGE}")
        for hint in hints:
            self.assertIn(hint, line, "the executor hints of platforms/pools.bzl reach the worker")

    def test_rbe_cpu_sends_distributed_tests_to_the_cpu_pool(self):
        before = len(self.grid.executed("gpu2"))
        rc, output = self.bazel_test("//dsd:fsdp_model_state_test_gpu2", config="rbe-cpu")
        self.assertEqual(rc, 0, output[-3000:])
        (line,) = [l for l in self.grid.executed("cpu") if "fsdp_model_state_test_gpu2/" in l]
        self.assertIn("Pool=cpu", line)
        self.assertNotIn("dockerRuntime", line, "CPU ranks need no GPU runtime")
        self.assertEqual(len(self.grid.executed("gpu2")), before, "nothing ran on the gpu2 pool")

    def test_a_pool_without_workers_fails_clearly(self):
        before = {pool: len(self.grid.executed(pool)) for pool in self.grid.pools}
        rc, output = self.bazel_test("//dsd:fsdp_model_state_test_gpu4")
        self.assertNotEqual(rc, 0, output[-3000:])
        self.assertIn("queued for too long", output)
        print(re.findall(r".*Remote Execution Failure.*\n.*", output))
        self.assertEqual({pool: len(self.grid.executed(pool)) for pool in self.grid.pools}, before,
                         "the gpu4 action must not run on another pool's worker")


if __name__ == "__main__":
    absltest.main()
