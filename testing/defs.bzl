"""dist_py_test: one distributed test module, one py_test per world size.

Modelled on JAX's jax_test: one source file, one generated target per variant, per-variant
shard counts, tags, and a test_suite per tag.

    dist_py_test(
        name = "fsdp_optim_state_test",
        srcs = ["fsdp_optim_state_test.py"],
        world_sizes = [2, 4],
        shard_count = {4: 2},
        deps = ["//models:world_size_scaled", "//testing:dist_test_case"],
    )

emits
    :fsdp_optim_state_test_gpu2, :fsdp_optim_state_test_gpu4   py_test, main = the launcher,
        tagged gpuN and cpu:N (Bazel reserves N local cores), routed to the gpuN pool
    :fsdp_optim_state_test        test_suite of all variants
    :gpu2_tests, :gpu4_tests      test_suite per tag, once per package
"""

load(":pools.bzl", "pool_exec_properties")

_LAUNCHER_MAIN = "//testing:launcher.py"
_SIZES = ["small", "medium", "large", "enormous"]

def _check_int(what, value):
    if type(value) != "int":
        fail("%s must be an int, got %r" % (what, value))

def _shard_counts(name, shard_count, world_sizes):
    """{world_size: shard count or None} from an int, a dict keyed by world size, or None."""
    if shard_count == None:
        return {ws: None for ws in world_sizes}
    if type(shard_count) == "int":
        shard_count = {ws: shard_count for ws in world_sizes}
    if type(shard_count) != "dict":
        fail("dist_py_test(%s): shard_count must be an int or a dict {world_size: count}" % name)
    for ws, count in shard_count.items():
        if ws not in world_sizes:
            fail("dist_py_test(%s): shard_count has unknown key %r; world_sizes are %r" % (name, ws, world_sizes))
        _check_int("dist_py_test(%s): shard_count[%r]" % (name, ws), count)
        if count < 1:
            fail("dist_py_test(%s): shard_count[%r] must be >= 1, got %d" % (name, ws, count))
    return {ws: shard_count.get(ws) for ws in world_sizes}

def _module_name(name, srcs):
    if len(srcs) != 1 or not srcs[0].endswith(".py") or ":" in srcs[0]:
        fail("dist_py_test(%s): srcs must be exactly one .py file of this package, got %r" % (name, srcs))
    path = srcs[0][:-len(".py")]
    package = native.package_name()
    return (package + "/" + path if package else path).replace("/", ".")

def dist_py_test(
        name,
        srcs,
        world_sizes = None,
        phases = None,
        deps = [],
        data = [],
        args = [],
        shard_count = None,
        size = "medium",
        timeout = None,
        tags = [],
        cpus = None,
        flaky = None,
        visibility = None):
    """Emits `<name>_gpu<N>` for each N in world_sizes; see the module docstring.

    `cpus` overrides the local cores reserved per target (default: N), e.g. for a 1-rank
    target whose cases start sub-launches of their own.

    `phases` (instead of world_sizes) emits one target per list of world sizes, launched one
    after the other on the same TEST_TMPDIR: phases = [[4, 2], [2, 4]] gives
    `<name>_gpu4to2` and `<name>_gpu2to4`, each tagged with its largest world size.
    """
    if size not in _SIZES:
        fail("dist_py_test(%s): size must be one of %r, got %r" % (name, _SIZES, size))
    for tag in tags:
        if tag.startswith("gpu") or tag.startswith("cpu:"):
            fail("dist_py_test(%s): tag %r is set by the macro (world_sizes, cpus)" % (name, tag))
    if cpus != None:
        _check_int("dist_py_test(%s): cpus" % name, cpus)
        if cpus < 1:
            fail("dist_py_test(%s): cpus must be >= 1, got %d" % (name, cpus))
    if phases != None:
        if world_sizes != None:
            fail("dist_py_test(%s): give world_sizes or phases, not both" % name)
        return _phased(name, srcs, phases, deps, data, args, size, timeout, tags, cpus, flaky, visibility)
    if world_sizes == None:
        world_sizes = [2]
    if type(world_sizes) != "list" or not world_sizes:
        fail("dist_py_test(%s): world_sizes must be a non-empty list of ints" % name)
    for ws in world_sizes:
        _check_int("dist_py_test(%s): world size" % name, ws)
        if ws < 1:
            fail("dist_py_test(%s): world size must be >= 1, got %d" % (name, ws))
    if len({ws: None for ws in world_sizes}) != len(world_sizes):
        fail("dist_py_test(%s): duplicate world sizes in %r" % (name, world_sizes))
    module = _module_name(name, srcs)
    shards = _shard_counts(name, shard_count, world_sizes)

    variants = []
    for ws in sorted(world_sizes):
        variant = "%s_gpu%d" % (name, ws)
        variants.append(":" + variant)
        _variant(variant, srcs, module, ws, ["--world_size=%d" % ws] + args, deps, data, size, timeout,
                 tags, cpus, shards[ws], flaky, visibility)
    native.test_suite(name = name, tests = variants, tags = [t for t in tags if t == "manual"])

def _variant(variant, srcs, module, ranks, launcher_args, deps, data, size, timeout, tags, cpus, shard_count,
             flaky, visibility):
    """One py_test running `module` under the launcher on `ranks` GPUs (or CPU ranks)."""
    native.py_test(
        name = variant,
        srcs = srcs + [_LAUNCHER_MAIN],
        main = _LAUNCHER_MAIN,
        args = ["--test_module=" + module] + launcher_args,
        deps = deps + [d for d in ["//testing:launcher"] if d not in deps],
        data = data,
        size = size,
        timeout = timeout,
        flaky = flaky,
        shard_count = shard_count,
        tags = tags + ["gpu%d" % ranks, "cpu:%d" % (cpus or ranks)],
        exec_properties = pool_exec_properties(ranks),
        python_version = "PY3",
        srcs_version = "PY3",
        visibility = visibility,
    )
    suite = "gpu%d_tests" % ranks
    if not native.existing_rule(suite):
        native.test_suite(name = suite, tags = ["gpu%d" % ranks])

def _phased(name, srcs, phases, deps, data, args, size, timeout, tags, cpus, flaky, visibility):
    if type(phases) != "list" or not phases:
        fail("dist_py_test(%s): phases must be a non-empty list of lists of world sizes" % name)
    module = _module_name(name, srcs)
    variants = []
    for sizes in phases:
        if type(sizes) != "list" or len(sizes) < 2:
            fail("dist_py_test(%s): each phase list needs >= 2 world sizes, got %r" % (name, sizes))
        for ws in sizes:
            _check_int("dist_py_test(%s): world size" % name, ws)
            if ws < 1:
                fail("dist_py_test(%s): world size must be >= 1, got %d" % (name, ws))
        variant = "%s_gpu%s" % (name, "to".join([str(ws) for ws in sizes]))
        if ":" + variant in variants:
            fail("dist_py_test(%s): duplicate phases %r" % (name, sizes))
        variants.append(":" + variant)
        _variant(variant, srcs, module, max(sizes), ["--phases=" + ",".join([str(ws) for ws in sizes])] + args,
                 deps, data, size, timeout, tags, cpus, None, flaky, visibility)
    native.test_suite(name = name, tests = variants, tags = [t for t in tags if t == "manual"])
