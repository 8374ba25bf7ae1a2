"""dist_py_test: one distributed test module, one test target per variant; env_py_test: a plain
test that runs in one of the project's Python environments.

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

emits, per world size N and Python environment E (third_party/envs/envs.bzl):
    :fsdp_optim_state_test_gpuN          the default environment
    :fsdp_optim_state_test_gpuN_E        the others; built and run only when E is enabled
                                         (--config=all-envs), SKIPPED otherwise
each tagged gpuN, cpu:N (Bazel reserves N local cores), E, and routed to the gpuN pool remotely.
Every target reads the quarantine (//testing:quarantine.json); a sharded one balances its shards
by the recorded case durations (//testing:durations.json).
`phases = [[4, 2]]` saves at 4 ranks and loads at 2 in each environment (`_gpu4to2`);
`phases = [["2@torch2_13", "2@torch2_14"]]` saves with one environment and loads with another
(`_torch2_13_gpu2_to_torch2_14_gpu2`, tagged cross_version). dist_test_suites() adds
:gpuN_tests, :<E>_tests and :cross_version_tests for the tags used in the package.

Each test's device (cpu or cuda) is decided here, from --config=cpu|gpu (//testing:device) and
the GPU count ./bazelw found (//testing:visible_gpus), and set in the test's environment: it is
part of the cache key. Labels are Label()s, so the macros work from another workspace.
"""

load("//platforms:pools.bzl", "pool_exec_properties")
load("//third_party/envs:envs.bzl", "DEFAULT", "ENVIRONMENTS", "SCENARIO_ENVS", "enabled_setting", "env_files", "env_info", "python")

_SHIM = Label("//testing:env_main.py")
_MAIN = Label("//testing/launcher:launcher.py")
_LAUNCHER = Label("//testing/launcher")
_DISABLED = Label("//third_party/envs:disabled")
_QUARANTINE = Label("//testing:quarantine.json")
_DURATIONS = Label("//testing:durations.json")
_SIZES = ["small", "medium", "large", "enormous"]
_MAX_GPUS = 8

def _fail(name, message):
    fail("dist_py_test(%s): %s" % (name, message))

def _check_int(name, what, value, minimum = 1):
    if type(value) != "int":
        _fail(name, "%s must be an int, got %r" % (what, value))
    if value < minimum:
        _fail(name, "%s must be >= %d, got %d" % (what, minimum, value))

def _phase(name, item):
    """(world size, environment or None) of one phase: 4, or "4@torch2_14"."""
    if type(item) == "string" and "@" in item:
        ws, env = item.split("@")
        if env not in ENVIRONMENTS:
            _fail(name, "unknown environment %r in %r; known: %r" % (env, item, sorted(ENVIRONMENTS)))
        if not ws.isdigit():
            _fail(name, "phase %r must be <world size>@<environment>" % item)
        item = (int(ws), env)
    else:
        item = (item, None)
    _check_int(name, "world size", item[0])
    return item

def _variants(name, world_sizes, phases, envs):
    """[(suffix, [(world size, environment)])]: the one place world sizes, phases and
    environments are normalised into variants."""
    if phases != None and world_sizes != None:
        _fail(name, "give world_sizes or phases, not both")
    if phases != None:
        if type(phases) != "list" or not phases:
            _fail(name, "phases must be a non-empty list of lists of world sizes")
        for run in phases:
            if type(run) != "list" or len(run) < 2:
                _fail(name, "each phase list needs >= 2 world sizes, got %r" % (run,))
        runs = phases
    else:
        runs = [[ws] for ws in (world_sizes if world_sizes != None else [2])]
        if type(world_sizes if world_sizes != None else []) != "list" or not runs:
            _fail(name, "world_sizes must be a non-empty list of ints")
    for env in envs:
        if env not in ENVIRONMENTS:
            _fail(name, "unknown environment %r; known: %r" % (env, sorted(ENVIRONMENTS)))
    variants = []
    for run in runs:
        run = [_phase(name, item) for item in run]
        pinned = [env for _, env in run if env]
        if pinned and len(pinned) != len(run):
            _fail(name, "give an environment for every phase or for none, got %r" % (run,))
        if pinned:
            expanded = [("_to_".join(["%s_gpu%d" % (env, ws) for ws, env in run]), run)]
        else:
            sizes = "gpu" + "to".join([str(ws) for ws, _ in run])
            expanded = [(sizes if env == DEFAULT else sizes + "_" + env, [(ws, env) for ws, _ in run]) for env in envs]
        for suffix, phases_of in expanded:
            if suffix in [v[0] for v in variants]:
                _fail(name, "duplicate world sizes or phases %r" % (run,))
            variants.append((suffix, phases_of))
    return variants

def _shard_counts(name, shard_count, variants):
    """{suffix: shard count or None} from None, an int, or a dict {world size: count}."""
    if shard_count == None or type(shard_count) == "int":
        if shard_count != None:
            _check_int(name, "shard_count", shard_count)
        return {suffix: shard_count for suffix, _ in variants}
    if type(shard_count) != "dict":
        _fail(name, "shard_count must be an int or a dict {world_size: count}")
    plain = [phases[0][0] for _, phases in variants if len(phases) == 1]
    for ws, count in shard_count.items():
        if ws not in plain:
            _fail(name, "shard_count has unknown key %r; world_sizes are %r" % (ws, sorted({w: 0 for w in plain})))
        _check_int(name, "shard_count[%r]" % ws, count)
    return {suffix: shard_count.get(phases[0][0]) if len(phases) == 1 else None for suffix, phases in variants}

def _module_name(name, srcs):
    if len(srcs) != 1 or not srcs[0].endswith(".py") or ":" in srcs[0]:
        _fail(name, "srcs must be exactly one .py file of this package, got %r" % (srcs,))
    path = srcs[0][:-len(".py")]
    package = native.package_name()
    return (package + "/" + path if package else path).replace("/", ".")

def _auto(ranks, cuda, gpus):
    """The environment of a test whose device --config=auto chose. Too few GPUs for an
    environment that can use CUDA says why (DSD_DEVICE_WHY, which the launcher reports as a
    warning); a CPU-only torch build runs on CPU ranks by design, silently."""
    if not cuda:
        return {"DSD_DEVICE": "cpu"}
    if gpus >= ranks:
        return {"DSD_DEVICE": "cuda"}
    return {"DSD_DEVICE": "cpu", "DSD_DEVICE_WHY": "auto: ./bazelw saw %d GPU(s), %d needed" % (gpus, ranks)}

def _device_env(ranks, cuda):
    """{"DSD_DEVICE": ...} for a test of `ranks` ranks: --config=cpu|gpu decide, else CUDA when
    the environments can use it and the host has a GPU per rank (//testing:visible_gpus)."""
    branches = {
        str(Label("//testing:device_cpu")): {"DSD_DEVICE": "cpu"},
        str(Label("//testing:device_cuda")): {"DSD_DEVICE": "cuda"},
    }
    for n in range(1, _MAX_GPUS + 1):
        branches[str(Label("//testing:auto_with_%d_gpus" % n))] = _auto(ranks, cuda, n)
    branches["//conditions:default"] = _auto(ranks, cuda, 0)
    return select(branches)

def _when_enabled(envs, value, otherwise):
    """`value` where every environment of `envs` is enabled, else `otherwise` (so nothing of a
    disabled environment is referenced, fetched or installed)."""
    setting = enabled_setting(envs)
    if setting == None:
        return value
    return select({str(setting): value, "//conditions:default": otherwise})

def _env_py_test(name, main, env_names, launcher_args, srcs, data, deps, tags, env, rule = native.py_test, **kwargs):
    """A py_test (or `rule`) whose main runs with the interpreter of env_names[0] (testing/env_main.py)."""
    files = []
    for e in env_names:
        files += [f for f in env_files(e) if f not in files]
    rule(
        name = name,
        srcs = srcs + [_SHIM],
        main = _SHIM,
        args = _when_enabled(env_names, ["$(rootpath %s)" % python(env_names[0]), "$(rootpath %s)" % main] + launcher_args, []),
        data = data + _when_enabled(env_names, files, []),
        deps = deps,
        tags = tags + [e for e in env_names if e not in tags],
        env = env,
        target_compatible_with = _when_enabled(env_names, [], [_DISABLED]),
        python_version = "PY3",
        srcs_version = "PY3",
        **kwargs
    )

def dist_py_test(
        name,
        srcs,
        world_sizes = None,
        phases = None,
        envs = None,
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
    """Emits one target per world size (or phase list) and environment; see the module docstring.

    `envs`: the environments to generate variants for (default: every one); `cpus` overrides
    the local cores reserved per target (default: the largest world size), e.g. for a 1-rank
    target whose cases start sub-launches of their own.
    """
    if size not in _SIZES:
        _fail(name, "size must be one of %r, got %r" % (_SIZES, size))
    for tag in tags:
        if tag.startswith("gpu") or tag.startswith("cpu:") or tag in ENVIRONMENTS or tag == "cross_version":
            _fail(name, "tag %r is set by the macro (world_sizes, cpus, envs)" % tag)
    if cpus != None:
        _check_int(name, "cpus", cpus)
    module = _module_name(name, srcs)
    variants = _variants(name, world_sizes, phases, envs if envs != None else SCENARIO_ENVS)
    shards = _shard_counts(name, shard_count, variants)
    targets = []
    for suffix, run in variants:
        ranks = max([ws for ws, _ in run])
        run_envs = []
        for _, e in run:
            if e not in run_envs:
                run_envs.append(e)
        launcher_args = ["--test_module=" + module, "--phases=" + ",".join(["%d@%s" % (ws, e) for ws, e in run])]
        launcher_args += ["--env=%s=$(rootpath %s):$(rootpath %s)" % (e, python(e), env_info(e)) for e in run_envs]
        launcher_args.append("--quarantine=$(rootpath %s)" % _QUARANTINE)
        launcher_data = [_QUARANTINE]
        if shards[suffix]:  # only a sharded target's split (and cache key) depends on the durations
            launcher_args.append("--durations=$(rootpath %s)" % _DURATIONS)
            launcher_data.append(_DURATIONS)
        _env_py_test(
            name = "%s_%s" % (name, suffix),
            main = _MAIN,
            env_names = run_envs,
            launcher_args = launcher_args + args,
            srcs = srcs + [_MAIN],
            data = data + launcher_data,
            deps = deps + [_LAUNCHER],
            tags = tags + ["gpu%d" % ranks, "cpu:%d" % (cpus or ranks)] + (["cross_version"] if len(run_envs) > 1 else []),
            env = _device_env(ranks, all([ENVIRONMENTS[e].cuda for e in run_envs])),
            size = size,
            timeout = timeout,
            flaky = flaky,
            shard_count = shards[suffix],
            exec_properties = pool_exec_properties(ranks),
            visibility = visibility,
        )
        targets.append(":%s_%s" % (name, suffix))
    native.test_suite(name = name, tests = targets, tags = [t for t in tags if t == "manual"])

def _single_env(kind, name, srcs, main, python_env, args, data, deps, tags, env, rule, **kwargs):
    main = main or (srcs[0] if len(srcs) == 1 else None)
    if not main:
        fail("%s(%s): give main when srcs has several files" % (kind, name))
    _env_py_test(name = name, main = main, env_names = [python_env], launcher_args = args, srcs = srcs, data = data,
                 deps = deps, tags = tags, env = env, rule = rule, **kwargs)

def env_py_test(name, srcs, main = None, python_env = DEFAULT, args = [], data = [], deps = [], tags = [], env = {}, **kwargs):
    """A py_test (absltest, unittest, ...) whose main runs with Python environment `python_env`;
    `env`: the test's environment variables, as for any test."""
    _single_env("env_py_test", name, srcs, main, python_env, args, data, deps, tags, env, native.py_test, **kwargs)

def env_py_binary(name, srcs, main = None, python_env = DEFAULT, args = [], data = [], deps = [], tags = [], **kwargs):
    """A py_binary (`bazel run`) whose main runs with Python environment `python_env`."""
    _single_env("env_py_binary", name, srcs, main, python_env, args, data, deps, tags, {}, native.py_binary, **kwargs)

def dist_test_suites():
    """One test_suite per GPU count, environment and cross_version tag used by this package's
    tests (gpu2_tests, torch2_14_tests, cross_version_tests, ...); call it once, after them."""
    tags = {}
    for rule in native.existing_rules().values():
        for tag in rule.get("tags", []):
            if (tag.startswith("gpu") and tag[len("gpu"):].isdigit()) or tag in ENVIRONMENTS or tag == "cross_version":
                tags[tag] = True
    for tag in sorted(tags):
        native.test_suite(name = tag + "_tests", tags = [tag])
