"""Remote-execution routing of distributed tests: the one place that names pools, images and the
worker properties executors read.

A test with N ranks carries exec_properties (testing/defs.bzl) that send it to pool gpuN, one GPU
per rank, or, under --config=rbe-cpu (--//platforms:pool=cpu), to the CPU pool: every scenario
also runs on CPU ranks. Bazel merges a target's exec_properties into its execution platform's:
the platform's properties apply, and the target's win per key.

Property names differ between executors; change them here, once, for every target:
  Pool                  BuildBuddy, EngFlow, Buildbarn / BuildGrid (whatever the workers advertise)
  container-image       BuildBuddy, EngFlow (docker://IMAGE@sha256:DIGEST)
  dockerRuntime         nvidia: the NVIDIA container runtime, so the container sees the GPUs
  dockerShmSize         Docker's default /dev/shm is 64 MB; NCCL and torch's shared-memory
                        tensors (async checkpointing, dataloaders) fail or crash with that
  EstimatedCPU / EstimatedMemory   sizing hints for schedulers that bin-pack actions
"""

load("@bazel_skylib//rules:common_settings.bzl", "string_flag")

POOL_PROPERTY = "Pool"
CONTAINER_IMAGE_PROPERTY = "container-image"

# The worker image (third_party/Dockerfile), pinned by digest so a test's result always names the
# image it ran in. Push your build and put its digest here (`docker buildx imagetools inspect`).
CONTAINER_IMAGE = "docker://ghcr.io/dsd-checkpoint-tests/runner@sha256:" + "0" * 64

CPU_POOL = "cpu"
SHM_SIZE = "8g"

def _sizing(ranks):
    """A rank needs a core and ~3 GB (torch, a process group, a checkpoint's buffers)."""
    return {
        "EstimatedCPU": str(ranks),
        "EstimatedMemory": "%dGB" % (2 + 3 * ranks),
    }

def cpu_pool_exec_properties(ranks = 1):
    """Build actions, tools tests, and distributed tests under --config=rbe-cpu."""
    return dict({
        POOL_PROPERTY: CPU_POOL,
        CONTAINER_IMAGE_PROPERTY: CONTAINER_IMAGE,
        "dockerShmSize": SHM_SIZE,
    }, **_sizing(ranks))

def pool_name(world_size):
    """Pool of a test with `world_size` ranks on GPUs: one GPU per rank."""
    return "gpu%d" % world_size

def gpu_pool_exec_properties(world_size):
    return dict({
        POOL_PROPERTY: pool_name(world_size),
        CONTAINER_IMAGE_PROPERTY: CONTAINER_IMAGE,
        "dockerRuntime": "nvidia",
        "dockerShmSize": SHM_SIZE,
    }, **_sizing(world_size))

def pool_exec_properties(world_size):
    """The properties of a distributed test: its GPU pool, or the CPU pool under --config=rbe-cpu."""
    return select({
        str(Label("//platforms:cpu_pool")): cpu_pool_exec_properties(world_size),
        "//conditions:default": gpu_pool_exec_properties(world_size),
    })

def pool_settings():
    """--//platforms:pool=cpu (--config=rbe-cpu) and its config_setting; see platforms/BUILD.bazel."""
    string_flag(name = "pool", build_setting_default = "gpu", values = ["gpu", CPU_POOL])
    native.config_setting(name = "cpu_pool", flag_values = {":pool": "cpu"})
