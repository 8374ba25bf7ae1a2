"""Remote-execution routing of distributed tests: the one place that names pools and images.

A `gpuN` test target carries these exec_properties, so a remote executor schedules it on a
worker of pool `gpuN` running the project's container image (third_party/ holds its recipe).
Teams whose executor expects other keys (BuildBuddy `Pool`, EngFlow `Pool`, Buildbarn
platform properties, ...) change them here, once, for every target.
"""

# The platform property a remote executor matches workers on.
POOL_PROPERTY = "Pool"

# The platform property naming the container image the test action runs in.
CONTAINER_IMAGE_PROPERTY = "container-image"

# Built from third_party/requirements.txt; see third_party/README.md.
CONTAINER_IMAGE = "docker://ghcr.io/dsd-checkpoint-tests/runner:torch-2.13.0"

# Pool of build actions and of anything without a GPU.
CPU_POOL = "cpu"

def cpu_pool_exec_properties():
    return {
        POOL_PROPERTY: CPU_POOL,
        CONTAINER_IMAGE_PROPERTY: CONTAINER_IMAGE,
    }

def pool_name(world_size):
    """Pool of a target with `world_size` ranks: one GPU per rank."""
    return "gpu%d" % world_size

def pool_exec_properties(world_size):
    """The full property set (target exec_properties replace the executor's defaults)."""
    return {
        POOL_PROPERTY: pool_name(world_size),
        CONTAINER_IMAGE_PROPERTY: CONTAINER_IMAGE,
    }
