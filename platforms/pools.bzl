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

load("@bazel_skylib//rules:common_settings.bzl", "bool_flag", "string_flag")
load("@worker_image//:image.bzl", "WORKER_IMAGE")

POOL_PROPERTY = "Pool"
CONTAINER_IMAGE_PROPERTY = "container-image"

# The worker image (third_party/Dockerfile), pinned by digest so a test's result always names the
# image it ran in: DSD_WORKER_IMAGE=docker://...@sha256:... (platforms/worker_image.bzl).
_NO_IMAGE = ("--config=rbe needs the workers' container image: set DSD_WORKER_IMAGE=docker://REGISTRY/" +
             "IMAGE@sha256:DIGEST (your build of third_party/Dockerfile; `docker buildx imagetools inspect` " +
             "prints the digest) and run again")

def _image():
    return {CONTAINER_IMAGE_PROPERTY: WORKER_IMAGE} if WORKER_IMAGE else {}

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
        "dockerShmSize": SHM_SIZE,
    }, **dict(_image(), **_sizing(ranks)))

def pool_name(world_size):
    """Pool of a test with `world_size` ranks on GPUs: one GPU per rank."""
    return "gpu%d" % world_size

def gpu_pool_exec_properties(world_size):
    return dict({
        POOL_PROPERTY: pool_name(world_size),
        "dockerRuntime": "nvidia",
        "dockerShmSize": SHM_SIZE,
    }, **dict(_image(), **_sizing(world_size)))

def pool_exec_properties(world_size):
    """The properties of a distributed test: its GPU pool, or the CPU pool under --config=rbe-cpu;
    under --config=rbe without DSD_WORKER_IMAGE, an analysis error that says to set it."""
    if WORKER_IMAGE:
        return select({
            str(Label("//platforms:cpu_pool")): cpu_pool_exec_properties(world_size),
            "//conditions:default": gpu_pool_exec_properties(world_size),
        })
    return select({
        str(Label("//platforms:cpu_pool_local")): cpu_pool_exec_properties(world_size),
        str(Label("//platforms:gpu_pool_local")): gpu_pool_exec_properties(world_size),
    }, no_match_error = _NO_IMAGE)

def pool_settings():
    """--//platforms:pool=cpu (--config=rbe-cpu), --//platforms:remote_execution (--config=rbe)
    and their config_settings; see platforms/BUILD.bazel."""
    string_flag(name = "pool", build_setting_default = "gpu", values = ["gpu", CPU_POOL])
    native.config_setting(name = "cpu_pool", flag_values = {":pool": "cpu"})
    bool_flag(name = "remote_execution", build_setting_default = False)
    for pool in ("cpu", "gpu"):
        native.config_setting(name = pool + "_pool_local", flag_values = {":pool": pool, ":remote_execution": "false"})
