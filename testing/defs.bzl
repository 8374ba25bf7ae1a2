"""dist_py_test: one distributed test module, one test target per variant.

Modelled on JAX's jax_test / jax_generate_backend_suites: one source file, one generated
target per variant, per-variant shard counts, tags, and explicit per-package suites.

    dist_py_test(
        name = "fsdp_optim_state_test",
        srcs = ["fsdp_optim_state_test.py"],
        world_sizes = [2, 4],
        shard_count = {4: 2},
        deps = ["//models:world_size_scaled", "//testing:dist_test_case"],
    )
    dist_test_suites()  # once, at the end of the BUILD file

emits
    :fsdp_optim_state_test_gpu2, :fsdp_optim_state_test_gpu4   the launcher on N ranks, tagged
        gpuN and cpu:N (Bazel reserves N local cores), routed to the gpuN pool remotely
    :fsdp_optim_state_test       test_suite of its variants
and dist_test_suites() adds :gpu1_tests, :gpu2_tests, ... for the tags used in the package.
Labels are Label()s, so the macro works when loaded from another workspace.
"""

load("//platforms:pools.bzl", "pool_exec_properties")

_MAIN = Label("//testing/launcher:launcher.py")
_LAUNCHER = Label("//testing/launcher")
_SIZES = ["small", "medium", "large", "enormous"]

def _fail(name, message):
    fail("dist_py_test(%s): %s" % (name, message))

def _check_int(name, what, value, minimum = 1):
    if type(value) != "int":
        _fail(name, "%s must be an int, got %r" % (what, value))
    if value < minimum:
        _fail(name, "%s must be >= %d, got %d" % (what, minimum, value))

def _variants(name, world_sizes, phases):
    """[(suffix, [world size of each phase])]: the one place world sizes and phases are normalised.

    world_sizes = [2, 4] gives ("gpu2", [2]), ("gpu4", [4]); phases = [[4, 2]] gives
    ("gpu4to2", [4, 2]), launched one after the other on the same TEST_TMPDIR.
    """
    if phases != None and world_sizes != None:
        _fail(name, "give world_sizes or phases, not both")
    if phases != None:
        if type(phases) != "list" or not phases:
            _fail(name, "phases must be a non-empty list of lists of world sizes")
        for sizes in phases:
            if type(sizes) != "list" or len(sizes) < 2:
                _fail(name, "each phase list needs >= 2 world sizes, got %r" % (sizes,))
        runs = phases
    else:
        runs = [[ws] for ws in (world_sizes if world_sizes != None else [2])]
        if type(world_sizes if world_sizes != None else []) != "list" or not runs:
            _fail(name, "world_sizes must be a non-empty list of ints")
    variants = []
    for sizes in runs:
        for ws in sizes:
            _check_int(name, "world size", ws)
        suffix = "gpu" + "to".join([str(ws) for ws in sizes])
        if suffix in [v[0] for v in variants]:
            _fail(name, "duplicate world sizes or phases %r" % (sizes,))
        variants.append((suffix, sizes))
    return sorted(variants, key = _world_sizes_of)

def _world_sizes_of(variant):
    return variant[1]

def _shard_counts(name, shard_count, variants):
    """{suffix: shard count or None} from None, an int, or a dict {world size: count}."""
    if shard_count == None or type(shard_count) == "int":
        if shard_count != None:
            _check_int(name, "shard_count", shard_count)
        return {suffix: shard_count for suffix, _ in variants}
    if type(shard_count) != "dict":
        _fail(name, "shard_count must be an int or a dict {world_size: count}")
    plain = {sizes[0]: suffix for suffix, sizes in variants if len(sizes) == 1}
    for ws, count in shard_count.items():
        if ws not in plain:
            _fail(name, "shard_count has unknown key %r; world_sizes are %r" % (ws, sorted(plain)))
        _check_int(name, "shard_count[%r]" % ws, count)
    return {suffix: shard_count.get(sizes[0]) if len(sizes) == 1 else None for suffix, sizes in variants}

def _module_name(name, srcs):
    if len(srcs) != 1 or not srcs[0].endswith(".py") or ":" in srcs[0]:
        _fail(name, "srcs must be exactly one .py file of this package, got %r" % (srcs,))
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
    """Emits `<name>_gpu<N>` per world size (or `<name>_gpu<A>to<B>` per phase list).

    `cpus` overrides the local cores reserved per target (default: the largest world size),
    e.g. for a 1-rank target whose cases start sub-launches of their own.
    """
    if size not in _SIZES:
        _fail(name, "size must be one of %r, got %r" % (_SIZES, size))
    for tag in tags:
        if tag.startswith("gpu") or tag.startswith("cpu:"):
            _fail(name, "tag %r is set by the macro (world_sizes, cpus)" % tag)
    if cpus != None:
        _check_int(name, "cpus", cpus)
    module = _module_name(name, srcs)
    variants = _variants(name, world_sizes, phases)
    shards = _shard_counts(name, shard_count, variants)
    targets = []
    for suffix, sizes in variants:
        ranks = max(sizes)
        sizes_arg = ["--world_size=%d" % sizes[0]] if len(sizes) == 1 else ["--phases=" + ",".join([str(ws) for ws in sizes])]
        native.py_test(
            name = "%s_%s" % (name, suffix),
            srcs = srcs + [_MAIN],
            main = _MAIN,
            args = ["--test_module=" + module] + sizes_arg + args,
            deps = deps + [_LAUNCHER],
            data = data,
            size = size,
            timeout = timeout,
            flaky = flaky,
            shard_count = shards[suffix],
            tags = tags + ["gpu%d" % ranks, "cpu:%d" % (cpus or ranks)],
            exec_properties = pool_exec_properties(ranks),
            python_version = "PY3",
            srcs_version = "PY3",
            visibility = visibility,
        )
        targets.append(":%s_%s" % (name, suffix))
    native.test_suite(name = name, tests = targets, tags = [t for t in tags if t == "manual"])

def dist_test_suites():
    """One test_suite per GPU-count tag used by this package's tests (gpu2_tests, ...); call it
    once, after the package's dist_py_test targets."""
    tags = {}
    for rule in native.existing_rules().values():
        for tag in rule.get("tags", []):
            if tag.startswith("gpu") and tag[len("gpu"):].isdigit():
                tags[tag] = True
    for tag in sorted(tags):
        native.test_suite(name = tag + "_tests", tags = [tag])
