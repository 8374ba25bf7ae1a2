"""Which project cases cover each upstream PyTorch DCP test (test/distributed/checkpoint/), test
function by test function.

FUNCTIONS maps each upstream file to {function id: entry}. A function id is Class.method as
upstream names it; a [..] suffix names a sub-case (a parametrization, a run_subtests value or a
part of one function) where the project covers one part and not the other. Entries:

    covered(cases, uses=(...), what="...")
        project cases that check what the upstream function checks on CPU ranks. A case is
        `module.Class.test_method` of a //dsd scenario module (a parameterized case by its
        base method name). `uses` are identifiers (or short code fragments) that every cited
        case's own code must contain: `tools/catalogue.py --check` reads the test method and,
        transitively, the methods and functions it calls in this repository (its class and
        base classes, module-level helpers, dsd/*_checks.py, testing/*.py) with ast, and fails
        on a case that does not exist or does not use one of them. `what`: what upstream
        checks and where the project checks it.
    not_covered("what it checks; missing: ...")
        applies on CPU ranks, but no case checks it; the README lists the text after
        "missing:" (without parentheses naming project cases) as the reason.
    not_applicable("unit|CUDA|ext|newer API: reason")
        a unit test of private helpers on hand-built inputs (or of having no process group),
        CUDA-only behaviour, an external service, or an API newer than the pinned releases.

A file where no function applies may be given whole as not_applicable(reason, functions=(...)),
listing its functions so that they are counted. File verdicts are computed, never written
(verdict()): covered = every applicable function covered, partly = some, not covered = none,
not applicable = no function applies.

Upstream: pytorch/pytorch test/distributed/checkpoint/**, read through a stored-repository
index (no tag could be checked out); the version read is named above each file (commit, or an
index id). "newer API" was decided against torch 2.13.0 and 2.14.1, the pinned releases.
"""

import collections
import re

Entry = collections.namedtuple("Entry", "status cases uses what functions")

STATUSES = ("covered", "not covered", "not applicable")
NOT_APPLICABLE_KINDS = ("unit", "CUDA", "ext", "newer API")


def covered(cases, uses, what):
    return Entry("covered", tuple(cases), tuple(uses), what, ())


def not_covered(what):
    return Entry("not covered", (), (), what, ())


def not_applicable(why, functions=()):
    """A function's verdict, or (with `functions`) a whole file's: no function of it applies."""
    return Entry("not applicable", (), (), why, tuple(functions))


def functions(upstream):
    """{function id: Entry} of an upstream file (a whole-file not_applicable spread over its functions)."""
    entry = FUNCTIONS[upstream]
    if isinstance(entry, Entry):
        return {fid: entry._replace(functions=()) for fid in entry.functions}
    return entry


def verdict(upstream):
    """The file's verdict, computed from its functions'."""
    statuses = [e.status for e in functions(upstream).values() if e.status != "not applicable"]
    if not statuses:
        return "not applicable"
    if all(s == "covered" for s in statuses):
        return "covered"
    return "not covered" if all(s == "not covered" for s in statuses) else "partly"


def missing(entry):
    """What a not-covered entry lacks, in a few words: its text after "missing:", without the
    parentheses that name nearby project cases (those that mention a `_test` module)."""
    text = entry.what.partition("missing:")[2].strip() or entry.what
    out, depth, group = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        if depth:
            group.append(ch)
        else:
            out.append(ch)
        if ch == ")" and depth:
            depth -= 1
            if not depth:
                kept = "".join(group)
                out.append("" if "_test" in kept else kept)
                group = []
    return re.sub(r"\s+([,;.])", r"\1", re.sub(r"\s{2,}", " ", "".join(out))).strip().rstrip(";,.")


def counts():
    """({function status: n}, {file verdict: n}) over every upstream file."""
    by_function = collections.Counter(e.status for f in FUNCTIONS for e in functions(f).values())
    by_file = collections.Counter(verdict(f) for f in FUNCTIONS)
    return by_function, by_file


FUNCTIONS = {
    # read at 4d28f67d92dd776896c3f454eabe44569c4203c5
    "_experimental/test_barriers.py": not_applicable(
        "unit: experimental TCPStoreBarrier with a mocked TCPStore",
        functions=(
            "TestBarriers.test_tcpstore_barrier_initialization",
            "TestBarriers.test_execute_barrier",
        )),

    # read at 0ba433663954ff0c5c09c50c31a611b5d2a3b78e
    "_experimental/test_builder.py": not_applicable(
        "unit: experimental make_sync/async_checkpointer, one rank (global_world_size=1)",
        functions=(
            "TestMakeCheckpointer.test_make_sync_checkpointer",
            "TestMakeCheckpointer.test_make_sync_checkpointer_with_config_first",
            "TestMakeCheckpointer.test_make_sync_checkpointer_with_custom_config",
            "TestMakeCheckpointer.test_make_async_checkpointer",
        )),

    # read at 243d5e0507412b57859b627f34bdb2c2f6b12270
    "_experimental/test_checkpoint_process.py": not_applicable(
        "unit: experimental CheckpointProcess (a writer subprocess) for one rank",
        functions=(
            "TestRequestTypes.test_request_type_enum",
            "TestRequestTypes.test_worker_request",
            "TestRequestTypes.test_worker_response",
            "TestCheckpointProcessConfig.test_default_options",
            "TestCheckpointProcessConfig.test_custom_options",
            "TestCheckpointProcess.test_checkpoint_process_initialization",
            "TestCheckpointProcess.test_checkpoint_write_sync_state_dict",
            "TestCheckpointProcess.test_checkpoint_write_future_state_dict",
            "TestCheckpointProcess.test_checkpoint_write_with_kwargs",
            "TestCheckpointProcess.test_subprocess_initialization_timeout",
            "TestCheckpointProcess.test_subprocess_initialization_failure",
            "TestCheckpointProcess.test_graceful_termination",
            "TestCheckpointProcess.test_forced_termination",
            "TestCheckpointProcess.test_communication_error_handling",
            "TestCheckpointProcess.test_shared_memory_tensor_ipc",
        )),

    # read at 0f65ff5b4dd0bb79d1cbe2f976df85b770869325
    "_experimental/test_checkpoint_reader.py": not_applicable(
        "unit: experimental CheckpointReader of a per-rank torch.save file, one rank",
        functions=(
            "TestCheckpointReader.test_read_checkpoint",
            "TestCheckpointReader.test_read_with_map_location",
            "TestCheckpointReader.test_read_nonexistent_checkpoint",
            "TestCheckpointReader.test_read_with_kwargs",
            "TestCheckpointReader.test_partial_read",
            "TestCheckpointReader.test_partial_read_missing_keys",
            "TestCheckpointReader.test_partial_read_different_dtypes",
        )),

    # read at 01f9ef32eae5ef513002dd44902c23cbe6be3aae
    "_experimental/test_checkpoint_writer.py": not_applicable(
        "unit: experimental CheckpointWriter with a mocked barrier and hooks, one rank",
        functions=(
            "TestCheckpointWriterConfig.test_default_values",
            "TestCheckpointWriterConfig.test_custom_values",
            "TestCheckpointWriter.test_write_creates_checkpoint_file",
            "TestCheckpointWriter.test_write_calls_barrier",
            "TestCheckpointWriter.test_write_calls_commit_hooks",
            "TestCheckpointWriter.test_write_without_barrier",
            "TestCheckpointWriter.test_write_without_commit_hook",
            "TestCheckpointWriter.test_close",
        )),

    # read at d7aa3f7d01b92603b1b26fa9301cbaf757a4d17e (listing, newest of three seen; an older copy had
    # TestMultiRankCheckpointer with NCCL barriers, since removed)
    "_experimental/test_checkpointer.py": not_applicable(
        "unit: experimental Sync/AsyncCheckpointer, one rank (global_world_size=1)",
        functions=(
            "TestCheckpointer.test_save_and_load_basic",
            "TestCheckpointer.test_load_with_map_location",
            "TestCheckpointer.test_partial_load",
            "TestCheckpointer.test_load_strict_mode",
            "TestCheckpointer.test_save_with_kwargs",
            "TestCheckpointer.test_nested_dict_partial_load",
            "TestAsyncCheckpointerSpecific.test_async_returns_futures",
            "TestAsyncCheckpointerSpecific.test_async_sequential_saves_wait",
            "TestAsyncCheckpointerSpecific.test_async_multiple_saves_ordering",
            "TestAsyncCheckpointerSpecific.test_async_error_handling",
            "TestAsyncCheckpointerSpecific.test_async_future_results",
        )),

    # read at 019a5b672031374b813319a126d1821bb395b260
    # By function:
    #   test_cuda_non_blocking_without_cuda, test_different_option_combinations, test_multiple_staging_operations:
    #     unit: experimental DefaultStager options on CPU, one process
    #   test_sync_staging, test_async_staging, test_cuda_tensors_staging, test_resource_cleanup: CUDA
    #     (@requires_gpu) + unit: experimental DefaultStager
    "_experimental/test_staging.py": not_applicable(
        "unit: experimental DefaultStager on one process (4 of the 7 functions also need CUDA)",
        functions=(
            "TestDefaultStager.test_cuda_non_blocking_without_cuda",
            "TestDefaultStager.test_different_option_combinations",
            "TestDefaultStager.test_multiple_staging_operations",
            "TestDefaultStager.test_sync_staging",
            "TestDefaultStager.test_async_staging",
            "TestDefaultStager.test_cuda_tensors_staging",
            "TestDefaultStager.test_resource_cleanup",
        )),

    # read at 6648028beb3cfbe5090aa14b53579af212edcaa6
    "_experimental/test_types.py": not_applicable(
        "unit: experimental RankInfo / STATE_DICT types",
        functions=(
            "TestRankInfo.test_rank_info_initialization",
            "TestRankInfo.test_rank_info_default_initialization",
            "TestRankInfo.test_state_dict_type_alias",
        )),

    # e2e/test_e2e_save_and_load.py read at 01357535d7c74848ba16d36179c2df92559e75ba (recent: torch.accelerator,
    # raise AssertionError style, StagingOptions/DefaultStager, TestCheckpointOrderingAndOverwrite)
    "e2e/test_e2e_save_and_load.py": {
        "TestE2ESaveAndLoad.test_e2e[compile=False,model_type=FSDP]": covered(
            ["transformer_state_test.ShardedStateDictTest.test_dcp_round_trip"],
            uses=("checkpointing.save", "continue_training", "verify_state"),
            what="FSDP1 (DeviceMesh, use_orig_params) model + Adam (+ a Stateful-like object holding a tensor and a "
                 "train state with tensors and a BytesIO) trained, dcp.save, loaded into a fresh model, states "
                 "equal, one more step gives the unsharded reference's loss and state. Project: fsdp1_to_fsdp1 round "
                 "trip then continue_training + verify_state; Stateful train state (step, dataloader, RNG) restored: "
                 "dcp_features_test.DcpFeaturesTest.test_stateful_non_tensor_state (assertEqual of "
                 "step/epoch/batches_seen, RNG state; FSDP2). Not exercised: "
                 "_patch_model_state_dict/_patch_optimizer_state_dict (the module itself as the Stateful) and a "
                 "BytesIO entry"),
        "TestE2ESaveAndLoad.test_e2e[compile=False,model_type=HSDP]": not_covered(
            "the same with FSDP1 ShardingStrategy.HYBRID_SHARD on a (2, N/2) mesh. missing: FSDP1 HYBRID_SHARD "
            "saved, loaded and trained on (only FSDP2 HSDP: two_d_parallel_test, checkpoint_migration_test)"),
        "TestE2ESaveAndLoad.test_e2e[compile=False,model_type=DDP]": not_covered(
            "the same with DistributedDataParallel. missing: a DDP model saved with DCP, loaded into DDP and trained "
            "on (reshard_test fsdp2_to_ddp only loads FSDP2's checkpoint into DDP and compares state; "
            "dsd_wrappers_test checks DDP state dicts without DCP)"),
        "TestE2ESaveAndLoad.test_e2e[compile=True]": not_covered(
            "the three wrappers under torch.compile(model, dynamic=False) (Inductor), saved, loaded, one more step "
            "equal. missing: a whole compiled FSDP1/HSDP/DDP model through DCP and continued training "
            "(transformer_state_test.WrapperKeyNamesTest compiles per block with backend='eager' under FSDP2 only)"),
        "TestE2ESaveAndLoad.test_e2e_async_cached[thread]": covered(
            ["dcp_features_test.DcpFeaturesTest.test_async_save"],
            uses=("async_save", "AsyncCheckpointerType.THREAD", "StagingOptions"),
            what="async_save(THREAD) with DefaultStager(StagingOptions(all False)); the loaded state is the state at "
                 "save time (project: training goes on before future.result(), _assert_model_equals the snapshot; "
                 "FSDP2, not FSDP1)"),
        "TestE2ESaveAndLoad.test_e2e_async_cached[process,shared_memory]": not_covered(
            "async_save(PROCESS) with StagingOptions(use_shared_memory=True) (shared CPU memory handed to the "
            "background process). missing: use_shared_memory=True (dcp_features_test.test_async_save process uses "
            "StagingOptions(False, False, False, False))"),
        "TestE2ESaveAndLoad.test_e2e_async_cached[cache_staged_state_dict=True]": not_applicable(
            "CUDA: FileSystemWriter(cache_staged_state_dict=True) stages into pinned memory and raises on CPU builds "
            "('Cannot access accelerator device'; pinned by dcp_features_test.test_cache_staged_state_dict, skipped "
            "on CPU)"),
        "TestE2ESaveAndLoad.test_e2e_async_cached[zoc=True]": not_applicable(
            "CUDA: zero-overhead checkpointing (use_async_staging, use_pinned_memory, use_non_blocking_copy) needs "
            "an accelerator (dcp_features_test.test_async_save_pinned_memory_staging skips on CPU)"),
        "TestE2ESaveAndLoad.test_stateful_and_non_stateful_loads": not_covered(
            "dcp.load calls a Stateful's load_state_dict in place (the dict entry is not replaced: no __setitem__) "
            "and replaces a non-Stateful entry via __setitem__ (upstream runs it without a process group). missing: "
            "no case checks in-place versus replaced top-level entries"),
        "TestE2ESaveAndLoad.test_no_dist": not_applicable(
            "unit: dcp.save/load({}) with no process group initialised (no_dist inferred); nothing distributed. The "
            "explicit no_dist=True path on ranks is storage_test.NoDistTest"),
        "TestE2ESaveAndLoad.test_partial_load": not_covered(
            "FSDP1 model + optimizer saved; dcp.load({'model': model}) loads the model alone (verify msd); "
            "_load_state_dict_from_keys('model') returns the whole model subtree as full CPU tensors and "
            "_load_state_dict_from_keys('optimizer.state') the optimizer state without param_groups. The model-only "
            "load is covered by "
            "partial_load_test.PartialLoadTest.test_model_only_from_a_model_and_optimizer_checkpoint (fsdp1/fsdp2). "
            "missing: _load_state_dict_from_keys with a prefix key returning a subtree and leaving siblings out "
            "(storage_test.StoredMetadataTest reads one leaf FQN only)"),
        "TestCheckpointOrderingAndOverwrite.test_different_ordered_state_dict_keys": not_covered(
            "rank 0 builds {'A', 'B'}, the others {'B', 'A'}, each a Stateful whose load_state_dict runs a "
            "collective (all_gather / all_reduce): dcp.save + dcp.load must not deadlock (DCP loads keys in a "
            "rank-independent order). missing: rank-divergent state-dict key order"),
        "TestCheckpointOrderingAndOverwrite.test_overwrite": covered(
            ["save_failures_test.SaveFailuresTest.test_overwrite_false_refuses_an_existing_checkpoint",
             "storage_test.FsspecStorageTest.test_fsspec_overwrite"],
            uses=("overwrite=False", "Checkpoint already exists"),
            what="dcp.save, then FileSystemWriter(overwrite=True) replaces it (load sees t2), then overwrite=False "
                 "raises 'Checkpoint already exists'. Project: FileSystemWriter(overwrite=False) refused on every "
                 "rank and the existing checkpoint still loads; overwrite=True replacing one (FsspecWriter) verified "
                 "by verify_msd"),
        "TestNoCPU.test_no_cpu": not_applicable(
            "CUDA: needs an NCCL-only process group to see async_save refuse ('A CPU backend must be enabled')"),
        "TestInitStateDict.test_init_state_dict": not_covered(
            "single process: dcp.load fills the given model/optimizer state dicts in place (msd is "
            "state_dict['model']), and set_state_dict restores the non-tensor lr (0.1 over 0.2). lr restored after a "
            "load is covered by transformer_state_test.NonParameterStateTest.test_lr_scheduler_and_initial_lr; "
            "missing: the in-place identity of plain (non-Stateful) state dicts after dcp.load"),
    },

    # e2e/test_fine_tuning.py read at 01d808e107f1f2f24d030aeeaeeaf7832eac6dc5 and a newer copy (index id 5742342686:
    # DTensorTestBase, FSDP1 with DeviceMesh, get_model_state_dict(submodules=..., keep_submodule_prefixes=False))
    "e2e/test_fine_tuning.py": {
        "TestFineTuning.test_fine_tuning": not_covered(
            "pretrain an FSDP1 model and save it; fine-tune FSDP1(FineTuningModel) whose 'pretrain' submodule is "
            "frozen: load the pretrained weights into that submodule only (get_model_state_dict(model, "
            "submodules={model.pretrain}, options=StateDictOptions(keep_submodule_prefixes=False)) -> dcp.load -> "
            "set_model_state_dict(model, {model.pretrain: sd}, strict=False)), train, save with "
            "ignore_frozen_params=True, restart twice. The fine-tuning flow (frozen parameters, ignore_frozen_params "
            "save, strict=False restart) is covered by "
            "partial_load_test.PartialLoadTest.test_frozen_submodules_saved_without_them_then_restarted. missing: "
            "the submodule-scoped DSD API (submodules=, keep_submodule_prefixes=False, a state dict keyed by a "
            "module in set_model_state_dict): no project case passes submodules"),
    },

    # e2e/test_fsdp.py read at 4ad8964d875a1e3088422c6954265d627264a1b1 (listing commit)
    "e2e/test_fsdp.py": {
        "TestFSDP.test_e2e": covered(
            ["dsd_api_test.DsdApiTest.test_dcp_round_trip_into_a_differently_initialised_model"],
            uses=("checkpointing.save", "checkpointing.load", "verify_msd"),
            what="FSDP1 (init_device_mesh, use_orig_params) get_state_dict -> dcp save -> a fresh model -> dcp load "
                 "-> set_state_dict; the model state dict equals the saved one. Project fsdp1 variants: AppState "
                 "(get_state_dict / set_state_dict) saved and loaded into a seed-1 model, verify_msd and verify_osd"),
    },

    # e2e/test_fsdp_ep.py read at 035290b77d8b4bd106cf5f9a728516d4335d5a42 and a newer copy (index id 6113136924:
    # mesh_fsdp_tp["dp"] with _root_mesh = None instead of _mesh_resources.create_child_mesh, absent from 2.13)
    "e2e/test_fsdp_ep.py": {
        "TestFSDPWithEP.test_e2e": not_covered(
            "8 ranks: FSDP1 (use_orig_params) with each expert layer wrapped on a 'dp' sub-mesh of a (2, 4) mesh and "
            "the rest on the 8-rank mesh; get_state_dict returns DTensors on the right mesh (range(8) for shared "
            "params, (layer, layer + 4) for a rank's expert), omits other ranks' experts, and the optimizer state "
            "keys equal the model keys. Expert parallelism itself is covered by the framework families "
            "(dsd/frameworks, framework environments only): torchtitan's DeepSeek-V3 MoE with FSDP2 + EP 2 resumes "
            "bitwise (torchtitan_checkpoint_test ResumeTest.test_resume_equals_uninterrupted_run_moe_fsdp2_ep2) and "
            "reshards EP 2 -> EP 4 FQN by FQN (torchtitan_reshard_test ReshardTest.test_load_into_another_layout_"
            "moe_ep2_to_ep4). missing: FSDP1 on expert-parallel sub-meshes at 8 ranks (upstream's wrapper and "
            "mesh assertions); this table cites //dsd cases only"),
    },

    # e2e/test_pipeline.py read at 45918c74bf1d4dee32e45da1df0541475f32f5d3
    "e2e/test_pipeline.py": {
        "TestPipeline.test_pipeline": covered(
            ["frameworks.torchtitan_checkpoint_test.ResumeTest.test_pipeline_resume_equals_uninterrupted_run",
             "frameworks.torchtitan_reshard_test.ReshardTest.test_pipeline_stages_load_into_fsdp"],
            uses=("pipelining_fn", "checkpointer", "assert_same_state"),
            what="each of 4 ranks materialises one layer of a meta-device model and saves its stage's "
                 "get_state_dict with dcp.save; an FSDP1 model of the whole network loads it (no value assertion "
                 "upstream). Project (framework environments): torchtitan's 2-stage 1F1B pipeline (pipelining_fn, "
                 "stages built on meta then materialised) saved by CheckpointManager resumes bitwise, and the "
                 "stages' checkpoint (each rank owning other FQNs) loads into FSDP2 over 4 ranks FQN by FQN; "
                 "the loading side is FSDP2, not FSDP1"),
    },

    # fsdp/test_fsdp_dsd.py: union of two stored versions: a56e71aecffeafe4e5270bf19b2d755f1f49a104 (save/load tests, no
    # compiled-model test) and 039d936ef53f76a8e5ef90d02e091b089734cc8c (compiled-model test, no save/load tests)
    "fsdp/test_fsdp_dsd.py": {
        "TestFullyShardWithDistributedStateDict.test_1d_fsdp_get_model_state_dict": covered(
            ["transformer_state_test.ShardedStateDictTest.test_fsdp2_reshard_after_forward_false_after_a_forward"],
            uses=("reshard_after_forward=False", "get_model_state_dict", "verify_state"),
            what="run_subtests mlp_dim=[2, 3, 4, 5] (even and uneven): nested fully_shard, model.state_dict() == "
                 "get_model_state_dict; with reshard_after_forward=False after a forward the state dict is still the "
                 "sharded one. Project: after a forward with reshard_after_forward=False the param is unsharded yet "
                 "the state dict value is a Shard(0) DTensor and verify_state passes; uneven fsdp2 state dicts vs "
                 "the reference in dsd_api_test.DsdApiTest.test_get_state_dict_matches_reference (uneven_fsdp2_*)"),
        "TestFullyShardWithDistributedStateDict.test_1d_fsdp_cpu_offload_full_model_state_dict": covered(
            ["dsd_wrappers_test.DsdWrappersTest.test_state_dict_matches_reference"],
            uses=("WRAPPER_X_KIND", "KINDS[kind]", "verify_msd"),
            what="FSDP2 get_model_state_dict(full_state_dict=True, cpu_offload=True): rank 0 holds the original "
                 "values on CPU, other ranks {}. Project fsdp2_full_cpu_offload: verify_msd checks rank-0-only "
                 "(empty elsewhere), CPU device and values"),
        "TestFullyShardWithDistributedStateDict.test_compiled_model_with_buffers": not_covered(
            "(older version) a whole model under torch.compile (OptimizedModule at the root) with a persistent and a "
            "non-persistent buffer: get_model_state_dict keeps the persistent one, drops the non-persistent one, and "
            "set_model_state_dict loads it back. missing: non-persistent buffers inside a compiled module (the "
            "project compiles blocks with backend='eager' and keeps its non-persistent rope buffers outside them: "
            "transformer_state_test.WrapperKeyNamesTest / NonParameterStateTest)"),
        "TestFullyShardWithDistributedStateDict.test_save_with_fsdp1_and_load_with_fsdp2": not_covered(
            "run_subtests state_dict_type=[FULL_STATE_DICT, SHARDED_STATE_DICT]: FSDP1 (always_wrap_policy, no mesh) "
            "model via FSDP.state_dict_type + FSDP.sharded_optim_state_dict saved with dcp.save; FSDP2 loads model "
            "and AdamW state (get_model/optimizer_state_dict -> dcp.load -> load_state_dict); full msd/osd equal. "
            "Covered nearby: FSDP1-through-DSD -> FSDP2 "
            "(transformer_state_test.ShardedStateDictTest.test_dcp_round_trip fsdp1_to_fsdp2) and an FSDP1 "
            "SHARDED_STATE_DICT model -> FSDP2 "
            "(checkpoint_migration_test.test_fsdp1_sharded_tensor_checkpoint_into). missing: FSDP1 FULL_STATE_DICT "
            "saved through DCP, and FSDP1's own FSDP.sharded_optim_state_dict loaded into FSDP2's optimizer"),
        "TestFullyShardWithDistributedStateDict.test_save_with_fsdp1_and_load_with_fsdp2_tp": not_covered(
            "an unsharded model's full DSD state dict and an FSDP1 (2-D device_mesh) sharded one saved side by side; "
            "an FSDP2 + TP (dp, tp) model loads each (model + AdamW) and matches the unsharded reference. missing: "
            "FSDP1 -> FSDP2 + TP, and a DCP checkpoint of a plain full state dict saved by every rank loaded into "
            "FSDP2 + TP"),
        "TestFullyShardWithDistributedStateDict.test_save_with_tp_and_load_with_fsdp2_tp[sharded]": covered(
            ["two_d_parallel_test.TwoDimensionalTest.test_save_on_one_layout_load_on_another"],
            uses=("check_save_on_one_layout_load_on_another", "LAYOUTS_2D"),
            what="TP (1-D over all ranks) sharded model + optimizer saved, loaded into FSDP2 + TP on a (dp, tp) "
                 "mesh; full state equals the reference. Project tp_to_fsdp2_tp: verify_msd / verify_osd against the "
                 "reference"),
        "TestFullyShardWithDistributedStateDict.test_save_with_tp_and_load_with_fsdp2_tp[full]": not_covered(
            "the unsharded model's full state dict (plain tensors on every rank) saved and loaded into FSDP2 + TP. "
            "missing: a full (plain-tensor) DCP checkpoint loaded into FSDP2 + TP"),
        "TestFullyShardWithDistributedStateDict.test_save_with_fsdp2_tp_and_load_with_tp[save_full_state_dict=False]": covered(
            ["two_d_parallel_test.TwoDimensionalTest.test_save_on_one_layout_load_on_another"],
            uses=("check_save_on_one_layout_load_on_another", "LAYOUTS_2D"),
            what="FSDP2 + TP sharded model + optimizer saved, loaded into 1-D TP; equal to the reference. Project "
                 "fsdp2_tp_to_tp (two_d_parallel_test, verify_msd/verify_osd); also across world sizes in "
                 "transformer_reshard_test.TransformerReshardTest.test_save_then_load_at_another_world_size "
                 "(fsdp2_tp_to_tp)"),
        "TestFullyShardWithDistributedStateDict.test_save_with_fsdp2_tp_and_load_with_tp[save_full_state_dict=True]": not_covered(
            "FSDP2 + TP get_model/optimizer_state_dict(full_state_dict=True) saved (plain tensors), loaded into TP; "
            "also the allow_implicit_replication=True sub-case runs under implicit_replication(). missing: a "
            "full_state_dict=True checkpoint of a 2-D model loaded into TP; implicit_replication"),
    },

    # The four FSDP1 + TP 2-D files are gone from pytorch HEAD; as written they use PairwiseParallel,
    # parallelize_module(tp_mesh_dim=1) and tensor.parallel.fsdp.is_available / enable_2d_with_fsdp, all absent from
    # 2.13. The behaviour (FSDP1 over a TP-parallelized module on a 2-D mesh) still exists in 2.13 (FSDP(device_mesh=
    # mesh["dp"]) over parallelize_module(mesh["tp"], ColwiseParallel/RowwiseParallel)), so they count as applicable.
    # test_2d_checkpoint.py read at 3e4d8d6c08a134ad78130ee84a13722a51c002e8
    "test_2d_checkpoint.py": {
        "Test2dCheckpoint.test_2d_fsdp_integration_functionality": not_covered(
            "FSDP1 over a TP (PairwiseParallel, tp_mesh_dim=1) model on a 2-D mesh: SHARDED_STATE_DICT saved with "
            "DefaultSavePlanner(flatten_state_dict, flatten_sharded_tensors, dedup_replicated_tensors) (no load: it "
            "only asserts a second model differs). missing: FSDP1 + TP 2-D (the project's 2-D is FSDP2 + TP: "
            "two_d_parallel_test fsdp2_tp)"),
    },

    # test_2d_checkpoint_model_state.py: one stored version, d4398200ff4816aaa6a0ccb4e725e1bddeddc2b1
    "test_2d_checkpoint_model_state.py": {
        "Test2dModelStateCheckpoint.test_2d_model_state_checkpoint": not_covered(
            "FSDP1 + TP (PairwiseParallel) 2-D SHARDED_STATE_DICT model saved with flatten/dedup planners, loaded "
            "into a second 2-D model with DefaultLoadPlanner(flatten_state_dict, flatten_sharded_tensors); "
            "summon_full_params locals equal. missing: FSDP1 + TP (FSDP2 + TP is covered by two_d_parallel_test)"),
    },

    # test_2d_fsdp_dt_checkpoint.py read at 15470b7f2b5f9b4b309b08010566eb61e027ab2d and 04884e1d (same functions)
    "test_2d_fsdp_dt_checkpoint.py": {
        "Test2dFsdpDtCheckpoint.test_2d_fsdp_dt_checkpoint_no_resharding": not_covered(
            "FSDP1 + TP 2-D model + FSDP.optim_state_dict saved; model loaded, optimizer via "
            "load_sharded_optimizer_state_dict + FSDP.optim_state_dict_to_load; params and Adam state equal. "
            "missing: FSDP1 + TP model + optimizer (the FSDP2 + TP equivalent is two_d_parallel_test / "
            "transformer_reshard_test)"),
        "Test2dFsdpDtCheckpoint.test_2d_fsdp_dt_checkpoint_resharding": not_covered(
            "the same, loaded into an FSDP1 + TP model whose FSDP group is the even/odd sub-group. missing: FSDP1 + "
            "TP, and reloading onto even/odd sub-groups with an optimizer"),
    },

    # test_2d_model_state_checkpoint.py: one stored version, 298a4521a347ebeacf8b8bc9d1d5d260c1bfdaaf (the same
    # test as test_2d_checkpoint_model_state.py)
    "test_2d_model_state_checkpoint.py": {
        "Test2dModelStateCheckpoint.test_2d_model_state_checkpoint": not_covered(
            "duplicate of test_2d_checkpoint_model_state.py: FSDP1 + TP 2-D model save -> load. missing: FSDP1 + TP"),
    },

    # test_2d_optim_state_checkpoint.py read at 28ff5dfd3cac75fd32fbfa88d00598da5dd83e71
    "test_2d_optim_state_checkpoint.py": {
        "Test2dModelStateCheckpoint.test_2d_model_state_checkpoint": not_covered(
            "FSDP1 + TP 2-D: model saved (flatten/dedup planners), loaded; optimizer through "
            "load_sharded_optimizer_state_dict + FSDP.flatten_sharded_optim_state_dict; Adam exp_avg/exp_avg_sq "
            "equal. missing: load_sharded_optimizer_state_dict on FSDP1 + TP (only FSDP1 1-D in "
            "fsdp_optim_state_test)"),
    },

    # test_async_executor.py: one stored version, aaf2859b81eb79c5c09ef2f542486cf280f1c0f1
    # By function:
    #   test_result_releases_state_dict_on_caller: newer API + unit:
    #     torch.distributed.checkpoint._async_executor._OwnedStateDictFuture (absent from 2.13) frees the staged
    #     state dict on the caller thread; threads only
    #   test_async_save_uses_owned_state_dict_future: newer API + unit: async_save(no_dist=True) returns an
    #     _OwnedStateDictFuture (absent from 2.13) that drops its state dict after result()
    "test_async_executor.py": not_applicable(
        "newer API + unit: _async_executor._OwnedStateDictFuture (absent from 2.13 and 2.14) releasing the staged "
        "state dict; threads only",
        functions=(
            "TestOwnedStateDictFuture.test_result_releases_state_dict_on_caller",
            "TestOwnedStateDictFuture.test_async_save_uses_owned_state_dict_future",
        )),

    # test_async_process_executor.py read at 07105dbecdbdf18f0380b6d132b70ce3ede2a97d (recent: prefix store, GC
    # env vars)
    "test_async_process_executor.py": {
        "TestAsyncProcessExecutor.test_checkpoint_save_failure_continues_serving": not_covered(
            "on ranks (instantiated for accelerators upstream; nothing CUDA-specific): "
            "_ProcessBasedAsyncCheckpointExecutor whose background process group cannot be created (get_free_port -> "
            "-1) raises; a save through a storage writer that fails once makes the future carry the error; the next "
            "save is served by the SAME background process (get_free_port not called again) and succeeds. missing: a "
            "failing async_save(PROCESS) followed by another async save (dcp_features_test.test_async_save only "
            "saves successfully)"),
        "TestAsyncProcessExecutorPrefixStore.test_checkpoint_save_with_prefix_store_enabled": not_covered(
            "single gloo rank: with DCP_USE_PREFIX_STORE=1 the background save process reuses the main TCPStore "
            "(MASTER_ADDR/MASTER_PORT, no free port) and the save succeeds. missing: DCP_USE_PREFIX_STORE"),
        "TestProcessGroupInitInfo.test_process_group_init_info_with_default_pg": not_applicable(
            "unit: _ProcessGroupInitInfo fields (rank, world size, TCP store address/port)"),
        "TestProcessGroupInitInfo.test_process_group_init_info_with_prefix_store_env_var": not_applicable(
            "unit: _ProcessGroupInitInfo parses DCP_USE_PREFIX_STORE and rejects missing/invalid MASTER_ADDR/PORT"),
        "TestProcessGroupInitInfo.test_process_group_init_info_without_prefix_store_env_var": not_applicable(
            "unit: DCP_USE_PREFIX_STORE values other than '1' disable the prefix store"),
        "TestProcessGroupInitInfo.test_process_group_init_info_gc_env_vars": not_applicable(
            "unit: DCP_DISABLE_AUTOMATIC_GC / DCP_DISABLE_MANUAL_GC parsing"),
    },

    # test_checkpoint.py read at 080bd5788d08c79988b0009f68858bf5a235d3d7 (recent: hw_classification, torch.accelerator)
    "test_checkpoint.py": {
        "TestDistributedCheckpointing.test_tensor_metadata_with_missing_rank_spec": not_applicable(
            "unit: _create_default_local_metadata of a ShardedTensor placed on rank 1 only has one chunk (internal "
            "planner helper; no save or load)"),
        "TestDistributedCheckpointing.test_default_metadata": covered(
            ["storage_test.StoredMetadataTest.test_stored_keys_shapes_dtypes_and_chunks"],
            uses=("BytesStorageMetadata", "TensorStorageMetadata", "read_metadata"),
            what="metadata of a state dict with a ShardedTensor, a replicated tensor and a list: bytes -> "
                 "BytesStorageMetadata, tensors -> TensorStorageMetadata with global size, dtype and chunk count "
                 "(upstream through the internal _create_default_local_metadata). Project: a saved checkpoint's "
                 "read_metadata(): extra state as BytesStorageMetadata, every tensor's stored global shape, dtype "
                 "and chunks tiling it"),
        "TestDistributedFailure.test_dummy_writer_works": not_covered(
            "save_state_dict through a StorageWriter implemented from the abstract interface (writes nothing) "
            "succeeds. missing: a custom StorageWriter that is not a FileSystemWriter subclass (low value)"),
        "TestDistributedFailure.test_dummy_reader_works": not_covered(
            "load_state_dict through a custom StorageReader returning given metadata succeeds. missing: a custom "
            "StorageReader (low value)"),
        "TestDistributedFailure.test_save_error_handling[prepare_local_plan|prepare_global_plan|write_data|finish]": covered(
            ["save_failures_test.SaveFailuresTest.test_storage_failure_raises_on_every_rank"],
            uses=("FaultyWriter", "CheckpointException", "error.failures"),
            what="4 ranks: a writer failing in prepare_local_plan, prepare_global_plan, write_data or finish on one "
                 "rank (coordinator 0 or 1) raises CheckpointException on every rank whose failures name exactly the "
                 "failing rank(s). Project: same stages on rank 0/1/the coordinator, coordinator_rank 0 and 1, "
                 "sorted(error.failures) == [failing] and the wrapped exception type"),
        "TestDistributedFailure.test_save_error_handling[set_up_storage_writer|write_data_async]": not_covered(
            "a failure in set_up_storage_writer (rank 0; rank 1 as coordinator) and a write_data Future completed "
            "with an exception (fail_write_data_async on rank 3). missing: those two stages (FaultyWriter fails "
            "prepare_local_plan / prepare_global_plan / write_data / finish, synchronously)"),
        "TestDistributedFailure.test_save_error_handling_no_dist": not_applicable(
            "unit: the same failures with no process group (no_dist)"),
        "TestDistributedFailure.test_load_error_handling": not_covered(
            "4 ranks: a StorageReader failing on ONE rank in set_up_storage_reader, read_metadata, "
            "prepare_local_plan, prepare_global_plan, read_data or an async read_data Future, with coordinators 0-3: "
            "CheckpointException on every rank naming that rank. missing: load-side storage failures on one rank "
            "(bad_checkpoint_test damages files so that every rank fails; no faulty StorageReader)"),
        "TestDistributedFailure.test_load_error_handling_no_dist": not_applicable(
            "unit: the same load failures with no process group"),
    },

    # test_compatibility.py read at 066dd9c8c0726d5204a26f4e31f42f66c90451b8 (listing commit)
    "test_compatibility.py": {
        "TestDCPCompatbility.test_metadata": not_applicable(
            "unit: Metadata / TensorStorageMetadata / ChunkStorageMetadata / MetadataIndex construct with defaults "
            "for every newer field (so a legacy pickle deserialises)"),
        "TestDCPCompatbility.test_sharded_tensor_dependency": not_applicable(
            "unit: a checkpoint whose metadata pickles the legacy _shard.sharded_tensor TensorProperties (patched "
            "in) still loads; one process. (Checkpoints written by the pinned releases: golden_corpus_test, "
            "torch_upgrade_test)"),
        "TestDCPCompatbility.test_storage_meta": not_covered(
            "single process: read_metadata().storage_meta records checkpoint_id, the writer's save_id and the "
            "reader's load_id. missing: no case reads storage_meta (save_id / load_id / checkpoint_id)"),
    },

    # test_consolidate_hf_safetensors.py read at 0190be0951adaaa42fceced9efbd1e28c075870d (newest: includes the
    # integer-dtype
    # fix of #192485, which 2.13/2.14 lack; the project pins that bug in
    # hf_safetensors_test.test_consolidate_an_integer_tensor)
    "test_consolidate_hf_safetensors.py": {
        "TestConsolidateHFSafeTensors.test_consolidate_to_one_file": covered(
            ["hf_safetensors_test.HfSaveTest.test_save_distributed_then_consolidate_on_rank0"],
            uses=("save_distributed=True", "enable_consolidation=True", "assert_files_hold"),
            what="row-wise (Shard(0)) and column-wise (Shard(1)) DTensors saved as HF shard files "
                 "(save_distributed), consolidated by rank 0 (consolidate_safetensors_files) into one file: full "
                 "values and the index's weight_map (and total_size). Project: fsdp2 and tp (Shard(1) rowwise "
                 "weights) shard files consolidated on rank 0 by the writer (enable_consolidation calls the same "
                 "function); files read with safetensors equal the reference and the index maps every FQN "
                 "(total_size not checked)"),
        "TestConsolidateHFSafeTensors.test_consolidate_to_two_files": covered(
            ["hf_safetensors_test.HfSaveTest.test_fqn_to_index_mapping_splits_the_consolidated_files"],
            uses=("fqn_to_index_mapping", "assert_files_hold"),
            what="fqn_to_index_mapping {dtensor: 1, dtensor_col: 2} gives two files, each with its tensor, and the "
                 "weight_map. Project: a two-file mapping, every FQN in the file the mapping names"),
        "TestConsolidateHFSafeTensors.test_parse_input_metadata_supports_integer_and_bool_dtypes": not_applicable(
            "unit: _parse_input_metadata sizes I32 without torch.finfo (fix newer than 2.14; the end-to-end bug on "
            "2.13/2.14 is pinned by hf_safetensors_test.HfDtypeTest.test_consolidate_an_integer_tensor)"),
        "TestConsolidateHFSafeTensors.test_calculate_max_contiguous_elements_validations": not_applicable(
            "unit: _calculate_max_contiguous_elements argument checks"),
        "TestConsolidateHFSafeTensors.test_calculate_max_contiguous_elements_valid_cases": not_applicable(
            "unit: _calculate_max_contiguous_elements"),
        "TestConsolidateHFSafeTensors.test_consolidate_with_two_ranks": covered(
            ["hf_safetensors_test.HfSaveTest.test_consolidate_into_one_file_per_rank_on_every_rank"],
            uses=("consolidate_safetensors_files_on_every_rank", "assert_files_hold"),
            what="consolidate_safetensors_files_on_every_rank with two output files: each rank writes one, rank 0 "
                 "the index. Project: one output file per rank (file k by rank k % world size), contents, index and "
                 "mapping checked"),
        "TestConsolidateHFSafeTensors.test_consolidate_one_file_with_two_ranks": not_covered(
            "consolidate_safetensors_files_on_every_rank with ONE output file at 2 ranks: the rank with nothing to "
            "write waits for the other and the file is complete. missing: a successful on-every-rank consolidation "
            "with idle ranks "
            "(hostile_checkpoint_test.HfHostileTest.test_consolidation_on_every_rank_waits_out_a_failed_rank uses "
            "that shape only with a corrupted input)"),
        "TestConsolidateHFSafeTensors.test_write_sub_tensor_to_file_optimized": not_applicable(
            "unit: _write_sub_tensor_to_file_optimized byte placement"),
    },

    # test_cooperative_planner.py: one stored version, 87aaf0693f1b79412f0239b68fcf65be6bd0211c
    # By function:
    #   test_deduplicates_and_byte_balances_readers: unit + newer API: cooperative_planner._create_cooperative_plans
    #     (absent from 2.13) on hand-built LoadPlans
    #   test_keeps_native_reads_on_metadata_mismatch: unit + newer API: same, mismatched metadata keeps native reads
    "test_cooperative_planner.py": not_applicable(
        "unit + newer API: cooperative_planner._create_cooperative_plans (absent from 2.13 and 2.14) on hand-built "
        "LoadPlans",
        functions=(
            "TestCooperativeLoadPlanner.test_deduplicates_and_byte_balances_readers",
            "TestCooperativeLoadPlanner.test_keeps_native_reads_on_metadata_mismatch",
        )),

    # test_cuobj_rdma_storage.py: one stored version, 0cb01c0b33de0c9697d640be38cf3894e9ef81e8
    # By function:
    #   test_parse_s3_url: ext + newer API: _cuobj_rdma_storage (S3 RDMA) is absent from 2.13; URL parsing unit
    #   test_validate_checkpoint_id: ext + newer API: S3RdmaStorageWriter.validate_checkpoint_id
    #   test_save_load_roundtrip: ext + newer API: dcp.save/load through S3RdmaStorageWriter/Reader with an in-
    #     memory client, single process
    "test_cuobj_rdma_storage.py": not_applicable(
        "ext + newer API: S3 RDMA storage (_cuobj_rdma_storage, absent from 2.13 and 2.14)",
        functions=(
            "TestCuObjRdmaStorage.test_parse_s3_url",
            "TestCuObjRdmaStorage.test_validate_checkpoint_id",
            "TestCuObjRdmaStorage.test_save_load_roundtrip",
        )),

    # test_dcp_to_torch_save.py: one stored version, 801a8c9f91dfe2daacdd026b923f7eb2b3a3cdde
    "test_dcp_to_torch_save.py": {
        "TestDCPToTorchSave.test_dcp_to_torch_save": covered(
            ["dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back"],
            uses=("dcp_to_torch_save", "torch.load"),
            what="2 ranks: dcp.save({'model': Transformer}), dcp_to_torch_save, torch.load equals the state dict. "
                 "Project: same conversion of a sharded FSDP2 checkpoint, every key and value compared"),
    },

    # test_debug_hsdp_load.py: one stored version, ae6b3701ddde2abd55c44043c5463cfca7fa9255 (imports PairwiseParallel,
    # absent from 2.13, so the file does not import there; the behaviour needs only FSDP1 HYBRID_SHARD)
    "test_debug_hsdp_load.py": {
        "TestTpCheckpoint.test_try_load_without_DCP": not_covered(
            "debug case documenting a failure (no assertRaises: it errors by design): torch.save of an FSDP1 "
            "HYBRID_SHARD DeviceMesh SHARDED_STATE_DICT (DTensors) loaded under FULL_STATE_DICT raises 'got mixed "
            "torch.Tensor and DTensor'. missing: nothing in the project pins loading a torch.save'd sharded DTensor "
            "state dict as a full one (fsdp_dtensor_state_dict_test.test_dtensor_sharded_model_load_state_dict loads "
            "it back as SHARDED only)"),
        "TestTpCheckpoint.test_try_load_with_DCP": not_covered(
            "FSDP1 HYBRID_SHARD (DeviceMesh) SHARDED_STATE_DICT saved with DCP, loaded by the same model under "
            "FULL_STATE_DICT (plain full tensors) through DCP; must not fail (no value assertion). missing: an HSDP "
            "checkpoint loaded as a full state dict (reshard_test fsdp1_to_plain loads 1-D FSDP1 into plain tensors; "
            "checkpoint_migration_test.test_hsdp_checkpoint_into_fsdp2 loads FSDP2 HSDP into sharded FSDP2)"),
    },

    # read at 16ae0d9de95e5fd3729b2164d28ccee6da60dde9
    "test_dedup_tensors.py": not_applicable(
        "unit: dedup_tensors of two hand-built SavePlans",
        functions=(
            "TestDedupTensor.test_dedup_shards",
        )),

    # test_dtensor_checkpoint.py read at 6112c47f81ef6e4d24047b79181a5001e9f2055a (the sub-mesh version, newest read)
    "test_dtensor_checkpoint.py": {
        "DTensorPlanner.test_distributed_tensor_planner": not_covered(
            "a module whose parameters are a Shard(0) and a Replicate() DTensor on the world mesh "
            "(distribute_tensor) plus a Shard(0) and a Replicate() DTensor on a sub-mesh of the even ranks "
            "(DeviceMesh over [0, 2, ...]; odd ranks hold empty locals), and get/set_extra_state holding an int and "
            "a tensor; dcp.save then dcp.load into re-initialised values restores sdt/rdt locals, sub-mesh locals "
            "(zeros, size 0 on odd ranks) and the extra state. missing: DTensors on a sub-mesh that excludes some "
            "ranks, and an extra_state holding a tensor (Shard/Replicate params: tensor_parallel_test; dict "
            "extra_state with a float: transformer_state_test.NonParameterStateTest.test_extra_state)"),
    },

    # test_dtensor_resharding.py read at index id 623678476 (newest found: extensions parametrize, LocalShardsWrapper,
    # raise AssertionError style); older 877d3425 / 0554fa80 have only the first four functions
    "test_dtensor_resharding.py": {
        "TestDTensorReshardPlacementChange.test_1d_to_1d_reshard_placement_change": not_covered(
            "parametrized extensions=[None, [Rot13Example()], [ZStandard()]]: a 4x4 tensor distribute_tensor'd as "
            "Replicate() / Shard(0) on a 1-D mesh saved (FileSystemWriter(_extensions=...)), loaded into zeros() "
            "with the other placement (FileSystemReader(_extension_registry=...)), equal after redistribute. The "
            "plain (extensions=None) sub-case is covered by "
            "tensor_parallel_test.TensorParallelTest.test_save_on_one_layout_load_on_another (tp_to_fsdp2 / "
            "fsdp2_to_tp: rowwise bias Replicate <-> Shard(0), verify_msd). missing: the stream-transform extension "
            "sub-cases (FileSystemWriter _extensions, ZStandard / a custom StreamTransformExtension, reader "
            "_extension_registry)"),
        "TestDTensorReshardPlacementChange.test_2d_to_2d_reshard_placement_change": covered(
            ["two_d_parallel_test.TwoDimensionalTest.test_save_on_one_layout_load_on_another"],
            uses=("check_save_on_one_layout_load_on_another", "LAYOUTS_2D"),
            what="every ordered pair of [RR, RS0, S0R, S0S0] on a 2x2 mesh saved and loaded via DCP. Project: hsdp "
                 "(Replicate, Shard(0)) <-> fsdp2_tp ((Shard(0), Shard(0)/Shard(1)/Replicate)) on 2x2 meshes, "
                 "verify_msd and verify_osd FQN by FQN (a [Replicate, Replicate] layout is not among them)"),
        "TestDTensorReshardMeshChange.test_1d_to_2d_reshard_mesh_change": covered(
            ["two_d_parallel_test.TwoDimensionalTest.test_save_on_one_layout_load_on_another"],
            uses=("check_save_on_one_layout_load_on_another", "LAYOUTS_2D"),
            what="[Shard(0)] / [Replicate()] on a 1-D mesh loaded onto a 2-D mesh in each 2-D placement. Project: tp "
                 "(Shard(0)/Shard(1)/Replicate) and fsdp2 saved, loaded into fsdp2_tp / hsdp on a 2x2 mesh "
                 "(tp_to_hsdp, fsdp2_to_fsdp2_tp ...), verify_msd"),
        "TestDTensorReshardMeshChange.test_2d_to_1d_reshard_mesh_change": covered(
            ["two_d_parallel_test.TwoDimensionalTest.test_save_on_one_layout_load_on_another"],
            uses=("check_save_on_one_layout_load_on_another", "LAYOUTS_2D"),
            what="2-D placements on a 2x2 mesh loaded onto a 1-D mesh as Shard(0)/Replicate(). Project: fsdp2_tp / "
                 "hsdp saved, loaded into tp / fsdp2 (fsdp2_tp_to_tp, hsdp_to_fsdp2 ...), verify_msd"),
        "TestDTensorReshardMeshChange.test_dtensor_checkpoint_resharding_with_empty_shard": not_covered(
            "a 1-element tensor Shard(0) over all ranks (ranks 1.. hold empty shards) saved, loaded into a 2-D mesh "
            "[Shard(0), Shard(0)] DTensor (empty shards again); the load must not fail. missing: empty shards loaded "
            "into a 2-D mesh (reshard_test covers empty FSDP2 shards 1-D to 1-D across world sizes; "
            "hf_safetensors_test.HfLoadTest.test_empty_shards 1-D through HF files)"),
        "TestDTensorReshardMeshChange.test_dtensor_checkpoint_with_uneven_shards": covered(
            ["reshard_test.ReshardTest.test_save_then_load_at_another_world_size"],
            uses=("SAVE_X_LOAD", "assert_full_state_matches", "checkpointing.load"),
            what="DTensor.from_local(shape=[14, 1]) with shards 4/4/4/2 saved, loaded into a plain full tensor on "
                 "every rank (no value assertion upstream). Project: FSDP1 DTensors with uneven shards "
                 "(UnevenDummyModel at 4 ranks) loaded into a plain module on every rank (fsdp1_to_plain), full "
                 "state compared with the reference"),
        "TestCheckpointableReshard.test_uneven_reshard_with_checkpointable_api": not_covered(
            "a torch.Tensor subclass implementing __create_chunk_list__ / __create_write_items__ / "
            "__get_tensor_shard__ (the DCP 'checkpointable' protocol, present in 2.13's planner_helpers) saved with "
            "arbitrary uneven shard offsets (0/4/7/11) and loaded with another uneven plan (0/2/6/12); local values "
            "equal the expected slices. missing: any custom checkpointable tensor type"),
        "TestCheckpointableReshard.test_uneven_reshard_with_dtensor_shards_wrapper_api": not_covered(
            "DTensor.from_local over LocalShardsWrapper (torch.distributed.tensor._shards_wrapper) with arbitrary "
            "uneven shard offsets, saved and loaded with a different uneven plan; values equal the expected slices. "
            "missing: LocalShardsWrapper-backed DTensors (non-chunk shard boundaries)"),
    },

    # test_dtensor_size_debug.py: one stored version, 7976154d04a6337c857824cf6f610758647e2d43
    "test_dtensor_size_debug.py": {
        "DTensorSizeDebug.test_fsdp_to_tp": covered(
            ["fsdp_dtensor_state_dict_test.FsdpWithDeviceMeshAndDTensorTest.test_dtensor_global_shape_is_the_unsharded_shape"],
            uses=("SHARDED_STATE_DICT", "value.shape", "SHARDING"),
            what="debug script without assertions (imports PairwiseParallel, gone in 2.13, so it cannot even import "
                 "there): FSDP1(use_orig_params, device_mesh) SHARDED_STATE_DICT of Linear(2, 10) at 4 ranks (shards "
                 "3/3/3/1) prints each DTensor's .shape (should be the global [10, 2]), versus distribute_tensor and "
                 "DTensor.from_local. Project: FSDP1 on a DeviceMesh, even and uneven model (uneven and empty shards "
                 "at 4 ranks), asserts every model and optimizer-state DTensor's .shape equals the unsharded "
                 "parameter's, FQN by FQN, and that the local rows add up to it"),
    },

    # test_file_system_checkpoint.py read at 04b99651fa6243b630477e740a6b107bf3852e4e: the CUDA twin of the _cpu file
    # (NCCL, cuda placements). The behaviours are not CUDA-specific; each maps to its CPU twin,
    # test_file_system_checkpoint_cpu.py.
    # By function:
    #   test_read_write_only_tensor: CUDA as written (twin of the _cpu file's test, plus a single_file_per_rank=True
    #     pass, which dcp_features_test.test_filesystem_writer_options covers)
    #   test_read_write_shard_tensor: CUDA as written (NCCL, cuda:N placements); CPU twin in
    #     test_file_system_checkpoint_cpu.py
    #   test_load_with_different_shard_plan: CUDA as written; CPU twin in test_file_system_checkpoint_cpu.py (not
    #     covered there)
    #   test_load_rowwise_to_colwise, test_save_load_bytes, test_switch_between_sharded_tensor_to_tensor: CUDA as
    #     written; CPU twin in test_file_system_checkpoint_cpu.py
    "test_file_system_checkpoint.py": not_applicable(
        "CUDA as written (NCCL, cuda placements): the twin of test_file_system_checkpoint_cpu.py, whose functions "
        "are mapped there",
        functions=(
            "TestDistributedStateDictSaveLoad.test_read_write_only_tensor",
            "TestDistributedStateDictSaveLoadWithSharedTensor.test_read_write_shard_tensor",
            "TestDistributedReshardOnLoad.test_load_with_different_shard_plan",
            "TestDistributedReshardOnLoad.test_load_rowwise_to_colwise",
            "TestDistributedReshardOnLoad.test_save_load_bytes",
            "TestDistributedReshardOnLoad.test_switch_between_sharded_tensor_to_tensor",
        )),

    # test_file_system_checkpoint_cpu.py read at 02dee1ad31d013c458c5071f1710da10a2d50392 (newest read: has
    # test_dtype_mismatch_casting with DefaultLoadPlanner(allow_unsafe_types=...), absent from 2.13)
    "test_file_system_checkpoint_cpu.py": {
        "TestDistributedStateDictSaveLoad.test_read_write_only_tensor": covered(
            ["dcp_features_test.DcpFeaturesTest.test_filesystem_writer_options"],
            uses=("thread_count", "FileSystemWriter"),
            what="thread_count=[1, 2]: a module's state dict saved with FileSystemWriter(thread_count) (no_dist) and "
                 "loaded back equal (single process). Project: FileSystemWriter(thread_count=1/4, "
                 "single_file_per_rank) on ranks, loaded state equals the saved one; no_dist save/load: "
                 "storage_test.NoDistTest"),
        "TestDistributedStateDictSaveLoad.test_dtype_mismatch_casting[default]": not_covered(
            "single process: an fp32 checkpoint loaded into a bf16 template is cast silently (default), a bf16 "
            "checkpoint into fp32 widens. missing: DCP (FileSystemReader) loads into a tensor of another dtype (only "
            "the HF reader's casts are pinned: hf_safetensors_test.HfDtypeTest)"),
        "TestDistributedStateDictSaveLoad.test_dtype_mismatch_casting[allow_unsafe_types=False]": not_applicable(
            "newer API: DefaultLoadPlanner(allow_unsafe_types=False) (narrowing casts refused with 'Silent casting "
            "is not allowed') is absent from 2.13 (DefaultLoadPlanner takes flatten_state_dict, "
            "flatten_sharded_tensors, allow_partial_load)"),
        "TestDistributedStateDictSaveLoadRot13.test_read_write_tensor_and_blob": not_covered(
            "thread_count=[1, 2]: tensors and a Stateful holding bytes saved through "
            "FileSystemWriter(_extensions=[Rot13Example()]) and read back with "
            "FileSystemReader(_extension_registry=...) (the extension found from the metadata). missing: "
            "stream-transform extensions"),
        "TestDistributedStateDictSaveLoadZStandard.test_read_write_only_tensor": not_covered(
            "thread_count=[1, 2]: the same with _extensions=[ZStandard()] (needs the zstandard or pyzstd package). "
            "missing: ZStandard-compressed checkpoints"),
        "TestDistributedStateDictSaveLoadWithSharedTensor.test_read_write_shard_tensor": covered(
            ["fsdp_model_state_test.FsdpModelStateCheckpointTest.test_fsdp_model_state_no_resharding"],
            uses=("SHARDED_STATE_DICT", "summon_full_params"),
            what="2 gloo ranks, thread_count=[1, 2]: a ShardedTensor (ChunkShardingSpec) module state dict saved and "
                 "loaded into a fresh module, local shards equal. Project: FSDP1 (no mesh) SHARDED_STATE_DICT, i.e. "
                 "ShardedTensors, saved and loaded, full params equal"),
        "TestDistributedReshardOnLoad.test_load_with_different_shard_plan": not_covered(
            "ShardedTensors resharded between every pair of 4 plans: 2 chunks, 4 chunks with 2 per rank, and two "
            "EnumerableShardingSpec plans with uneven, interleaved shards (several per rank). missing: several "
            "shards per rank / arbitrary (enumerable) shard plans (project shards are one contiguous chunk per rank)"),
        "TestDistributedReshardOnLoad.test_load_rowwise_to_colwise": covered(
            ["tensor_parallel_test.TensorParallelTest.test_save_on_one_layout_load_on_another"],
            uses=("check_save_on_one_layout_load_on_another", "LAYOUTS_1D"),
            what="a tensor sharded on dim 0 saved, loaded sharded on dim 1 (ShardedTensor; .cuda() as written). "
                 "Project: rowwise TP weights (Shard(1)) loaded into FSDP2's Shard(0) and back (tp_to_fsdp2 / "
                 "fsdp2_to_tp), verify_msd"),
        "TestDistributedReshardOnLoad.test_save_load_bytes": covered(
            ["dcp_features_test.DcpFeaturesTest.test_stateful_non_tensor_state"],
            uses=("TrainState", "batches_seen"),
            what="non-tensor values (a list, a string) saved and loaded over other values. Project: step (int) and a "
                 "dataloader dict restored through a Stateful (assertEqual of step/epoch/batches_seen)"),
        "TestDistributedReshardOnLoad.test_switch_between_sharded_tensor_to_tensor": covered(
            ["reshard_test.ReshardTest.test_save_then_load_at_another_world_size"],
            uses=("SAVE_X_LOAD", "assert_full_state_matches", "checkpointing.load"),
            what="a sharded tensor loaded as a plain tensor and a plain (replicated) tensor loaded into a sharded "
                 "one, for several specs. Project: FSDP1 (sharded DTensor) checkpoints loaded by a plain module "
                 "(fsdp1_to_plain) and FSDP2's sharded checkpoint loaded by DDP (fsdp2_to_ddp); plain -> sharded "
                 "also in storage_test.NoDistTest (one file loaded into FSDP2). DTensors, not ShardedTensors"),
    },

    # test_format_utils.py read at 01767dfbcd73a48fa66f4d69d6849f162725e09d (recent: hw_classification split)
    "test_format_utils.py": {
        "TestFormatUtilsNoDist.test_dcp_to_torch_save": covered(
            ["dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back"],
            uses=("dcp_to_torch_save", "torch.load"),
            what="(no process group) dcp.save of a module, dcp_to_torch_save, torch.load equals the state dict. "
                 "Project: an FSDP2 checkpoint converted by rank 0; the torch.save file's keys and values equal the "
                 "saved model"),
        "TestFormatUtilsNoDist.test_torch_save_to_dcp": covered(
            ["dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back"],
            uses=("torch_save_to_dcp", "dcp.load"),
            what="(no process group) torch.save file -> torch_save_to_dcp -> dcp.load into a module equals it. "
                 "Project: the converted DCP checkpoint loaded into an FSDP2 model equals the saved state"),
        "TestFormatUtils.test_online_torch_save_to_dcp": covered(
            ["checkpoint_migration_test.CheckpointMigrationTest.test_online_torch_save_into_fsdp2"],
            uses=("BroadcastingTorchSaveReader", "DynamicMetaLoadPlanner"),
            what="rank 0's torch.save file read by dcp.load(storage_reader=BroadcastingTorchSaveReader(), "
                 "planner=DynamicMetaLoadPlanner()) into an FSDP1 (DeviceMesh, uneven model) full state dict; equal. "
                 "Project: the same reader/planner into FSDP2's full state dict (other ranks pass a path that does "
                 "not exist), verify_msd, tie, one more training step; the sharded-state-dict misuse pinned as a hang"),
    },

    # test_fsdp_checkpoint.py read at 5869df0464b4ebed8301c0e52cd26ebbb75fb3c3 (test_fsdp_checkpoint_no_resharding
    # is commented out)
    "test_fsdp_checkpoint.py": {
        "FsdpCheckpoint.test_fsdp_checkpoint_with_resharding": not_covered(
            "FSDP1 meta Linear model + FSDP.sharded_optim_state_dict saved with "
            "DefaultSavePlanner(flatten_state_dict, flatten_sharded_tensors); loaded into FSDP1 on even/odd "
            "sub-groups: model through DefaultLoadPlanner, optimizer through load_sharded_optimizer_state_dict + "
            "FSDP.flatten_sharded_optim_state_dict; params and Adam exp_avg/exp_avg_sq equal. missing: the optimizer "
            "resharded onto sub-groups (fsdp_model_state_test reshards the model only; fsdp_optim_state_test loads "
            "the optimizer on the same group)"),
    },

    # test_fsdp_model_state.py read at 02f1c1a5852be2d335281472fcaf641649841b6d
    "test_fsdp_model_state.py": {
        "FsdpModelStateCheckpoint.test_fsdp_model_state_no_resharding": covered(
            ["fsdp_model_state_test.FsdpModelStateCheckpointTest.test_fsdp_model_state_no_resharding"],
            uses=("SHARDED_STATE_DICT", "summon_full_params", "DefaultLoadPlanner"),
            what="FSDP1 Linear(8, 8, device='meta') SHARDED_STATE_DICT saved, loaded into a second FSDP1 model; "
                 "summon_full_params weights and biases equal (and differ before)"),
        "FsdpModelStateCheckpoint.test_fsdp_model_state_with_resharding": covered(
            ["fsdp_model_state_test.FsdpModelStateCheckpointTest.test_fsdp_model_state_with_resharding"],
            uses=("dist.new_group", "process_group", "summon_full_params"),
            what="the same, loaded into FSDP1 on even/odd sub-groups (dist.new_group)"),
    },

    # test_fsdp_optim_state.py read at 05a963fb5b172aaae7f62c31880af2f2621809cb
    "test_fsdp_optim_state.py": {
        "FsdpOptimStateCheckpoint.test_load_sharded_optimizer_state_dict": covered(
            ["fsdp_optim_state_test.FsdpOptimStateCheckpointTest.test_load_sharded_optimizer_state_dict"],
            uses=("load_sharded_optimizer_state_dict", "optim_state_dict_to_load", "DefaultLoadPlanner"),
            what="parametrized pass_planner True/False: FSDP1 (world-size-scaled widths) model + "
                 "FSDP.optim_state_dict saved; model loaded, optimizer via "
                 "load_sharded_optimizer_state_dict(planner=DefaultLoadPlanner()|None) + optim_state_dict_to_load; "
                 "optim state before save == after load (ShardedTensors)"),
    },

    # test_fsdp_tp_checkpoint_conversion.py read at 3f0959bb1aeaab417356dfcd7003a980eb0b9233
    "test_fsdp_tp_checkpoint_conversion.py": {
        "TestFsdpTpCheckpointConversion.test_fsdp_to_tp": covered(
            ["checkpoint_migration_test.CheckpointMigrationTest.test_fsdp1_sharded_tensor_checkpoint_into"],
            uses=("ShardedTensor", "SHARDED_STATE_DICT", "set_model_state_dict"),
            what="FSDP1 (no mesh, use_orig_params) SHARDED_STATE_DICT (ShardedTensor) saved with dcp.save, loaded "
                 "into a colwise/rowwise TP model (parallelize_module); gathered values equal. Project tp variant "
                 "asserts the legacy values are ShardedTensors and verify_msd of the TP model against the reference"),
    },

    # test_fsspec.py read at 05a963fb5b172aaae7f62c31880af2f2621809cb (newest of the two read)
    "test_fsspec.py": {
        "TestFSSpec.test_fsspec": covered(
            ["storage_test.FsspecStorageTest.test_fsdp1_optimizer_loaded_with_load_sharded_optimizer_state_dict_through_fsspec"],
            uses=("load_sharded_optimizer_state_dict", "FsspecReader", "optim_state_dict_to_load"),
            what="FSDP1 (no DeviceMesh: ShardedTensor) SHARDED_STATE_DICT model + FSDP.optim_state_dict saved "
                 "through FsspecWriter; model loaded through FsspecReader, optimizer through "
                 "load_sharded_optimizer_state_dict(storage_reader=FsspecReader) + FSDP.optim_state_dict_to_load; "
                 "params and Adam exp_avg/exp_avg_sq equal. Project: the same on the uneven dummy model (no mesh, "
                 "ShardedTensors), every model value and every optimizer state value (step, exp_avg, exp_avg_sq) "
                 "compared with the saved state FQN by FQN"),
        "TestFSSpec.test_overwrite": covered(
            ["storage_test.FsspecStorageTest.test_fsspec_overwrite"],
            uses=("FsspecWriter", "overwrite=True", "Checkpoint already exists"),
            what="FsspecWriter(overwrite=False) then overwrite=True over it; the load sees the second save; "
                 "overwrite=False over an existing checkpoint raises CheckpointException 'Checkpoint already "
                 "exists'. Project asserts the same regex and verify_msd against the second model"),
        "TestFileSystem.test_remove_on_fail": covered(
            ["storage_test.FsspecStorageTest.test_fsspec_stream_failure_removes_the_partial_file"],
            uses=("create_stream", "concat_path", "fs.exists"),
            what="fsspec FileSystem.create_stream: a write that raises removes the partial file, a read that raises "
                 "keeps it (single-process; the project runs it per rank and asserts both)"),
    },

    # one stored version, 44ad916a713d38d3d64c8d4e3641d2eaa77b0e92
    "test_grad_dtype.py": not_applicable(
        "unit: private state_dict._init_optim_state honours param.grad_dtype (single process)",
        functions=(
            "TestGradDtype.test_optimizer_state_uses_grad_dtype",
        )),

    # test_hf_safetensor_e2e.py read at index id 59136697353 (newest found: CPU/gloo _CPUHFSafetensorsTestBase,
    # hw_classification, QuantizedHuggingFaceStorageReader, HuggingFaceStorageReader(thread_count))
    "test_hf_safetensor_e2e.py": {
        "TestSingleRankSaveLoad.test_save": covered(
            ["hf_safetensors_test.HfSaveTest.test_full_state_dict_saved_from_rank0"],
            uses=("HF_FILE", "assert_files_hold"),
            what="single process: a state dict saved with HuggingFaceStorageWriter(path) lands in "
                 "model-00001-of-00001.safetensors, equal when read with safetensors.load_file. Project: rank 0's "
                 "full state dict through the non-distributed writer, read back with the safetensors package"),
        "TestSingleRankSaveLoad.test_load": covered(
            ["hf_safetensors_test.HfLoadTest.test_load_a_file_written_by_the_safetensors_package"],
            uses=("save_file", "load_hf"),
            what="a file written by safetensors.save_file loads through HuggingFaceStorageReader. Project: the same "
                 "into FSDP2 / TP models sharded over every rank, verify_msd"),
        "TestSingleRankSaveLoad.test_load_into_empty_dict": not_covered(
            "_load_state_dict_from_keys(storage_reader=HuggingFaceStorageReader(path)) with no keys returns every "
            "tensor of an HF file. missing: _load_state_dict_from_keys through the HF reader (only FileSystem in "
            "storage_test)"),
        "TestSingleRankSaveLoad.test_load_with_multiple_threads": not_covered(
            "two files (fqn_to_index_mapping) read with HuggingFaceStorageReader(thread_count=2). missing: a "
            "multi-threaded HF reader"),
        "TestSingleRankSaveLoad.test_quantized_checkpoint_loading": not_covered(
            "single process: a block-quantized safetensors file (+ *_scale_inv and an index) loaded with "
            "QuantizedHuggingFaceStorageReader(target_dtype, block_size, thread_count) dequantises to the original "
            "values. missing: QuantizedHuggingFaceStorageReader (present in 2.13)"),
        "TestDistributedHFSafetensorsConsolidation.test_consolidate_to_one_file": covered(
            ["hf_safetensors_test.HfSaveTest.test_save_distributed_then_consolidate_on_rank0"],
            uses=("save_distributed=True", "enable_consolidation=True"),
            what="2 gloo ranks: a Shard(0) DTensor saved with save_distributed + enable_consolidation; rank 0 reads "
                 "the single file, equal to the global tensor. Project: same writer options, every value compared"),
        "TestDTensorReshardPlacementChange.test_1d_to_1d_reshard_placement_change": covered(
            ["hf_safetensors_test.HfLoadTest.test_load_shard_files_saved_at_another_world_size"],
            uses=("save_distributed=True", "load_hf"),
            what="4 gloo ranks: Replicate() <-> Shard(0) DTensors through HF shard files (save_distributed) and "
                 "HuggingFaceStorageReader, equal after redistribute. Project: FSDP2 shard files (with DCP sharding "
                 "offsets) loaded into FSDP2 and into TP (Replicate biases, Shard(0)/Shard(1) weights), verify_msd"),
        "TestDTensorReshardPlacementChange.test_2d_to_2d_reshard_placement_change": not_covered(
            "the 12 ordered 2-D placement pairs on a 2x2 mesh through HF shard files. missing: any 2-D layout "
            "through the HF writer/reader (hf_safetensors_test uses 1-D FSDP2 and TP only)"),
        "TestDTensorReshardMeshChange.test_1d_to_2d_reshard_mesh_change": not_covered(
            "1-D placements saved as HF shard files, loaded onto a 2x2 mesh. missing: 2-D through HF"),
        "TestDTensorReshardMeshChange.test_2d_to_1d_reshard_mesh_change": not_covered(
            "2-D placements saved as HF shard files, loaded onto a 1-D mesh. missing: 2-D through HF"),
        "TestDTensorReshardMeshChange.test_dtensor_checkpoint_resharding_with_empty_shard": not_covered(
            "a 1-element Shard(0) DTensor (empty shards) saved as HF shard files, loaded into [Shard(0), Shard(0)] "
            "on a 2-D mesh. missing: HF empty shards into 2-D (hf_safetensors_test.HfLoadTest.test_empty_shards is "
            "1-D -> 1-D)"),
        "TestHFSafetensorsAcceleratorSmoke.test_consolidate_to_one_file": not_applicable(
            "CUDA: accelerator twin (except_for cpu) of "
            "TestDistributedHFSafetensorsConsolidation.test_consolidate_to_one_file"),
        "TestHFSafetensorsAcceleratorSmoke.test_1d_to_1d_reshard_placement_change": not_applicable(
            "CUDA: accelerator twin of the gloo 1-D placement-change test"),
    },

    # test_hf_storage.py read at 041a4f55583f2530b18ac98622e0f1d2f11b86ad
    # By function:
    #   test_write_data_hf: unit: HuggingFaceStorageWriter.write_data results (mocked safetensors)
    #   test_write_data_with_sharding: unit: sharded file naming in write_data
    #   test_read_data_hf: unit: HuggingFaceStorageReader.read_data of a hand-built file
    #   test_write_metadata_hf: unit: finish() writes the index json
    #   test_read_metadata_hf: unit: read_metadata of a hand-built file
    "test_hf_storage.py": not_applicable(
        "unit: HuggingFaceStorageWriter / Reader methods on mocked or hand-built safetensors files",
        functions=(
            "TestHfStorage.test_write_data_hf",
            "TestHfStorage.test_write_data_with_sharding",
            "TestHfStorage.test_read_data_hf",
            "TestHfStorage.test_write_metadata_hf",
            "TestHfStorage.test_read_metadata_hf",
        )),

    # test_hsdp_checkpoint.py read at 001b3038c7532f882706f84fff6d7381a2c1da60 (newest: DTensorContinuousTestBase;
    # upstream
    # instantiates it for accelerators only, except_for=["cpu"], but nothing in the behaviour needs CUDA)
    "test_hsdp_checkpoint.py": {
        "TestHSDPCheckpoint.test_hsdp_checkpoint": not_covered(
            "run_subtests is_even_sharded_model=[True, False]: FSDP1 ShardingStrategy.HYBRID_SHARD on a (2, N/2) "
            "init_device_mesh, SHARDED_STATE_DICT saved (DefaultSavePlanner), an Adam step moves it, dcp.load + "
            "load_state_dict restores it: same device_mesh, placements and local values. missing: FSDP1 HYBRID_SHARD "
            "(the project's HSDP is FSDP2 fully_shard on a 2-D mesh: two_d_parallel_test hsdp), and an uneven HSDP "
            "model (SimpleModelUneven 5->10->15->30->5)"),
        "TestHSDPCheckpoint.test_hsdp_fsdp_checkpoint_conversion": not_covered(
            "run_subtests even/uneven: FSDP1 HYBRID_SHARD checkpoint (save_state_dict) loaded into FSDP1 on a 1-D "
            "mesh; redistributed-to-Replicate values equal. missing: FSDP1 HYBRID_SHARD, uneven HSDP "
            "(checkpoint_migration_test.CheckpointMigrationTest.test_hsdp_checkpoint_into_fsdp2 is FSDP2 HSDP -> "
            "FSDP2 on the even transformer)"),
    },

    # test_hugging_face_storage.py: one stored version, 3c0ef15ecdbdcf031eaad7f47936ec2e3000f42b
    # By function:
    #   test_write_data_hf: ext: HuggingFaceHubWriter uploads to the Hub (mocked HfApi.upload_file);
    #     _hugging_face_storage is absent from 2.13
    #   test_read_data_hf: ext: HuggingFaceHubReader (mocked snapshot_download); absent from 2.13
    "test_hugging_face_storage.py": not_applicable(
        "ext: HuggingFaceHubWriter / Reader upload to and download from the Hugging Face Hub (mocked upstream; "
        "_hugging_face_storage is absent from 2.13 and 2.14)",
        functions=(
            "TestHuggingFaceStorage.test_write_data_hf",
            "TestHuggingFaceStorage.test_read_data_hf",
        )),

    # test_list_state_dict.py: one stored version, e03d4de3aadf849c67a42e51ff9f9aecf2421327
    # As read: newer API: dist_cp.list_stored_sd_metadata is absent from 2.13 (and 2.14). The information it lists
    #     (stored key, global size [4, 4], dtype of a (Shard(0), Replicate()) DTensor) is checked through 2.13's
    #     FileSystemReader.read_metadata() by
    #     storage_test.StoredMetadataTest.test_stored_keys_shapes_dtypes_and_chunks
    "test_list_state_dict.py": not_applicable(
        "newer API: dist_cp.list_stored_sd_metadata is absent from 2.13 and 2.14 (the stored metadata it lists is "
        "read with read_metadata() by storage_test.StoredMetadataTest)",
        functions=(
            "TestListStateDict.test_list_stored_sd_metadata",
        )),

    # test_list_stored_state_dict.py read at 4d4a53da734d1db5b197fb9ce4add3f89d56bfdf
    # As read: newer API: dist_cp.list_stored_state_dict is absent from 2.13 (and 2.14): a 2-D DTensor listed as
    #     TensorStorageMetadata (size, dtype) and a BytesIO as BytesStorageMetadata. The same metadata through
    #     read_metadata() is checked by storage_test.StoredMetadataTest.test_stored_keys_shapes_dtypes_and_chunks
    "test_list_stored_state_dict.py": not_applicable(
        "newer API: dist_cp.list_stored_state_dict is absent from 2.13 and 2.14 (the stored metadata it lists is "
        "read with read_metadata() by storage_test.StoredMetadataTest)",
        functions=(
            "TestListStateDict.test_list_stored_sd_metadata",
        )),

    # read at 1cc7b5bffe8a7cae619bac6faf5951d460830e3d
    "test_metadata_warning.py": not_applicable(
        "unit + newer API: torch.distributed.checkpoint._metadata_warning (absent from 2.13) warns once that "
        ".metadata is a pickle",
        functions=(
            "TestMetadataWarning.test_read_metadata_warns_about_pickle_once",
            "TestMetadataWarning.test_installation_is_idempotent",
        )),

    # read at 138cfa057f43814db70dc3583c8c862bc5931eb4 (same functions at aa6104e2)
    "test_nested_dict.py": not_applicable(
        "unit: nested_dict.flatten_state_dict / unflatten_state_dict",
        functions=(
            "TestFlattening.test_flattening_round_trip",
            "TestFlattening.test_mapping",
        )),

    # read at a82de9bc0f5279efc9ba3a2acdbab681ded56f77
    "test_optimizer.py": not_applicable(
        "unit: private optimizer._gen_rank_device / _alloc_tensor / _infer_default_device_type (mocked accelerator)",
        functions=(
            "TestOptimizerDeviceDefaults.test_gen_rank_device_explicit_cpu",
            "TestOptimizerDeviceDefaults.test_infer_default_device_type_falls_back_to_cpu",
            "TestOptimizerDeviceDefaults.test_gen_rank_device_default_follows_accelerator",
            "TestOptimizerDeviceDefaults.test_alloc_tensor_default_falls_back_to_cpu",
            "TestOptimizerDeviceDefaults.test_alloc_tensor_explicit_device_unchanged",
        )),

    # test_optimizer_flattened_missing_state.py: one stored version, e2d9fadeabd36a1fc92c9ccb7080ba35bba3dd9d.
    # Single process,
    # but it tests public DSD behaviour (get/set_optimizer_state_dict) that is the same on every rank: counted as
    # applicable.
    "test_optimizer_flattened_missing_state.py": {
        "TestDCPFlattenedMissingState.test_strict_reports_missing_state": not_covered(
            "flatten_optimizer_state_dict=True optimizer state with one parameter's 'state.1.weight.*' entries "
            "removed: set_optimizer_state_dict raises RuntimeError 'Missing optimizer state' (strict default). "
            "missing: a deliberately incomplete optimizer state dict refused by set_optimizer_state_dict (the "
            "message appears in the project only inside known_failure pins of DSD bugs)"),
        "TestDCPFlattenedMissingState.test_non_strict_skips_missing_state": not_covered(
            "the same with StateDictOptions(strict=False): the load succeeds and the parameter has no optimizer "
            "state. missing: strict=False for optimizer state dicts (dsd_wrappers_test checks strict=False for model "
            "state only)"),
    },

    # test_optimizer_frozen_state.py read at 9e545d031dac2527b19b654c761b925a86beb83b (single process, public DSD API)
    "test_optimizer_frozen_state.py": {
        "TestDCPFrozenOptimizerState.test_frozen_state_round_trip": not_covered(
            "a parameter frozen (requires_grad_(False)) AFTER an optimizer step keeps its optimizer state through "
            "get_optimizer_state_dict -> set_optimizer_state_dict (same state keys). missing: frozen-after-training "
            "parameters (the project freezes before training, so frozen parameters never have state: "
            "dsd_wrappers_test.test_frozen_parameters, partial_load_test)"),
    },

    # read at 88e95c02cf9e59df9a0f1b168c3e670aba265dca
    "test_optimizer_partial_state.py": not_applicable(
        "unit + newer API: torch.distributed.checkpoint._grad_dtype._init_optim_state (module absent from 2.13)",
        functions=(
            "TestDCPOptimizerState.test_partial_state_initialization",
            "TestDCPOptimizerState.test_custom_grad_dtype",
        )),

    # test_optimizer_stateless.py: one stored version, d1a559671902ba04dad901c298a2088cf1b50be8 (single process,
    # public DSD API)
    "test_optimizer_stateless.py": {
        "TestDCPStatelessOptimizer.test_flattened_sgd_round_trip": not_covered(
            "plain SGD (no momentum: empty optimizer state) through get/set_optimizer_state_dict with "
            "flatten_optimizer_state_dict=True; both states stay {}. missing: a stateless optimizer "
            "(dsd_wrappers_test uses SGD with momentum, and the flattened kind only with Adam)"),
    },

    # test_pg_aware_planner.py read at 3c3f9882dbfa81575cdc4bdff299a24d393fe0e4
    # As read: newer API: torch.distributed.checkpoint.pg_aware_planner (ProcessGroupAwareSavePlanner /
    #     ProcessGroupAwareLoadPlanner) is absent from 2.13; it saves FSDP1 LOCAL_STATE_DICTs of even/odd sub-groups
    #     (same FQNs, different data) into one checkpoint, which 2.13's default planners cannot express. (DCP on a
    #     sub-process-group with its own directory is
    #     checkpoint_migration_test.test_save_and_load_on_a_sub_process_group)
    "test_pg_aware_planner.py": not_applicable(
        "newer API: torch.distributed.checkpoint.pg_aware_planner is absent from 2.13 and 2.14 (it saves FSDP1 "
        "LOCAL_STATE_DICTs of even/odd sub-groups into one checkpoint)",
        functions=(
            "TestProcessGroupAwarePlanner.test_process_group_aware_planner",
        )),

    # test_pg_transport.py read at 03deb364e634825e63afbc000250cfe9424f47c7 (PGTransport is in 2.13: _pg_transport.py)
    "test_pg_transport.py": {
        "PgTransportCPU.test_pg_transport": not_covered(
            "8 gloo ranks: PGTransport(group, timeout, device).send_checkpoint / recv_checkpoint pass a model state "
            "dict around a ring; each rank receives its neighbour's, equal. missing: PGTransport (no project case)"),
        "PgTransportCPU.test_pg_transport_with_mixed_content": not_covered(
            "the same with a DTensor (DTensor.from_local on a 1-D mesh), plain tensors, a string, a nested dict and "
            "a list. missing: PGTransport"),
        "PgTransportCPU.test_pg_transport_with_sharded_tensor": not_covered(
            "the same with a ShardedTensor (init_from_local_shards) and a rank scalar; received values land on CPU "
            "and equal the previous rank's. missing: PGTransport"),
        "PgTransportCUDA.test_pg_transport": not_applicable(
            "CUDA: NCCL twin of PgTransportCPU.test_pg_transport"),
        "PgTransportCUDA.test_pg_transport_with_mixed_content": not_applicable(
            "CUDA: NCCL twin"),
        "PgTransportCUDA.test_pg_transport_with_sharded_tensor": not_applicable(
            "CUDA: NCCL twin"),
        "TestCastTensor.test_cast_tensor_different_dtypes": not_applicable(
            "unit: _cast_tensor"),
        "TestCastTensor.test_cast_tensor_with_stride": not_applicable(
            "unit: _cast_tensor"),
        "TestCastTensor.test_cast_tensor_with_offset": not_applicable(
            "unit: _cast_tensor"),
        "TestPrepareTensor.test_prepare_tensor_basic": not_applicable(
            "unit: _prepare_tensor metadata"),
        "TestPrepareTensor.test_prepare_tensor_different_shapes": not_applicable(
            "unit: _prepare_tensor"),
        "TestPrepareTensor.test_prepare_tensor_with_stride": not_applicable(
            "unit: _prepare_tensor"),
        "TestPrepareStateDict.test_prepare_state_dict_basic": not_applicable(
            "unit: _prepare_state_dict"),
        "TestPrepareStateDict.test_prepare_state_dict_nested": not_applicable(
            "unit: _prepare_state_dict"),
        "TestPrepareStateDict.test_prepare_state_dict_with_non_tensor_values": not_applicable(
            "unit: _prepare_state_dict"),
        "TestPGTransportMocked.test_send_checkpoint_basic": not_applicable(
            "unit: mocked process group"),
        "TestPGTransportMocked.test_recv_checkpoint_basic": not_applicable(
            "unit: mocked process group"),
        "TestPGTransportMocked.test_send_checkpoint_empty_state_dict": not_applicable(
            "unit: mocked PG"),
        "TestPGTransportMocked.test_send_checkpoint_with_non_tensor_values": not_applicable(
            "unit: mocked PG"),
        "TestPGTransportMocked.test_recv_checkpoint_with_state_dict_callback": not_applicable(
            "unit: mocked PG"),
        "TestPGTransportEdgeCases.test_send_checkpoint_with_cpu_tensors": not_applicable(
            "CUDA + unit: CPU tensors sent with a CUDA device, mocked PG"),
    },

    # read at 26a39059ec580351411f180816c47e2ef5134ae1 (listing commit, 27934 chars)
    "test_planner.py": {
        "TestSavePlan.test_local_plan": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestSavePlan.test_local_plan_with_caching": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestSavePlan.test_global_plan": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestSavePlan.test_dedup_plans": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestSavePlan.test_global_plan_with_caching": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestSavePlan.test_finish_plan_with_caching": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestSavePlan.test_local_load_plan": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestSavePlan.test_load_with_resharding": not_applicable(
            "unit: load-plan math 8 -> 4 and 4 -> 8 shards (create_default_local_load_plan); end to end, resharding "
            "across world sizes is reshard_test / transformer_reshard_test"),
        "TestSavePlan.test_load_with_world_size_diff_by_one": not_applicable(
            "unit: load-plan math 4 -> 3 (end to end: transformer_reshard_uneven_test)"),
        "TestPlannerHelpers.test_create_read_item_from_chunks": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestPlannerHelpers.test_merge_delta_local_plans": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestPlannerHelpers.test_compare_save_plans": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestValidateGlobalPlan.test_non_overlapping_chunks": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestValidateGlobalPlan.test_detect_overlapping_chunks": not_applicable(
            "unit: planner functions on hand-built plans / ShardedTensors under with_fake_comms or with_dist (no "
            "real ranks)"),
        "TestLoadPlanner.test_strict": covered(
            ["partial_load_test.PartialLoadTest.test_checkpoint_missing_keys_needs_allow_partial_load"],
            uses=("allow_partial_load=True", "Missing key in checkpoint state_dict"),
            what="single process: a module with an extra parameter loads with "
                 "DefaultLoadPlanner(allow_partial_load=True) and raises CheckpointException 'Missing key in "
                 "checkpoint' with allow_partial_load=False. Project: refused on every rank by default "
                 "(assert_load_fails_everywhere regex), loaded with allow_partial_load=True, optimizer left as it was"),
        "TestLoadPlanner.test_load_different_sizes_throws": covered(
            ["bad_checkpoint_test.BadCheckpointTest.test_wrong_shape"],
            uses=("Size mismatch", "assert_load_fails_everywhere"),
            what="single process: loading Linear(2, 2)'s checkpoint into Linear(3, 2) raises CheckpointException "
                 "'Size mismatch'. Project: a wider layer fails on every rank with the exact 'Size mismatch between "
                 "saved ... and current' message and the model is left untouched"),
        "TestLoadPlanner.test_version_key_in_planner_data": not_covered(
            "single process: after a load, planner.metadata.version == CURRENT_DCP_VERSION. missing: no case checks "
            "the stored DCP version (low value)"),
    },

    # test_quantized_hf_storage.py read at bff2c90bc71ec5ac1a92d395e09cca7f39e2ba88
    # By function:
    #   test_dequantization: unit: QuantizedHuggingFaceStorageReader._process_read_request with mocked safetensors
    #     files (same-file and cross-file scales)
    #   test_dtensor_slice_dequantization_block_alignment: unit: block-aligned dequantisation of a slice spanning 4
    #     blocks (mocked)
    "test_quantized_hf_storage.py": not_applicable(
        "unit: QuantizedHuggingFaceStorageReader's dequantisation on mocked safetensors files",
        functions=(
            "TestQuantizedHfStorage.test_dequantization",
            "TestQuantizedHfStorage.test_dtensor_slice_dequantization_block_alignment",
        )),

    # test_restricted_metadata_unpickler.py: one stored version, dbf59e5a1bb4c319b7692645b7c14c55b5dbb2fb
    # By function:
    #   test_normal_metadata_loads: newer API + unit: filesystem._restricted_metadata_load is absent from 2.13 and
    #     2.14 (the unfixed behaviour, .metadata read with pickle.load, is pinned by
    #     hostile_checkpoint_test.MetadataPickleTest)
    #   test_malicious_payload_blocked: newer API + unit: _restricted_metadata_load raises 'Blocked unpickling'
    #     (absent from 2.13; on 2.13 the payload runs:
    #     hostile_checkpoint_test.MetadataPickleTest.test_metadata_pickle_runs_code)
    #   test_metadata_index_loads: newer API + unit: MetadataIndex through the restricted unpickler
    #   test_add_safe_metadata_globals_with_mapping: newer API + unit: add_safe_metadata_globals({module:
    #     {qualname}}) (absent from 2.13)
    #   test_add_safe_metadata_globals_with_list: newer API + unit: add_safe_metadata_globals([callable])
    "test_restricted_metadata_unpickler.py": not_applicable(
        "newer API + unit: filesystem._restricted_metadata_load and add_safe_metadata_globals are absent from 2.13 "
        "and 2.14 (the unfixed behaviour, .metadata read with pickle.load, is pinned by "
        "hostile_checkpoint_test.MetadataPickleTest)",
        functions=(
            "TestRestrictedMetadataUnpickler.test_normal_metadata_loads",
            "TestRestrictedMetadataUnpickler.test_malicious_payload_blocked",
            "TestRestrictedMetadataUnpickler.test_metadata_index_loads",
            "TestRestrictedMetadataUnpickler.test_add_safe_metadata_globals_with_mapping",
            "TestRestrictedMetadataUnpickler.test_add_safe_metadata_globals_with_list",
        )),

    # test_save_load_api.py read at 03b5a260 and a newer copy (docs mirror, index id 5778035105) that adds
    # test_assert_same_keys
    "test_save_load_api.py": {
        "TestSaveAndLoadAPI.test_auto_detect": not_covered(
            "checkpoint_id alone picks FileSystemWriter/Reader; with both validate_checkpoint_id patched to False "
            "DCP still saves/loads (fallback); an unknown scheme 'abc://abc.abc' raises RuntimeError 'Cannot detect' "
            "on save and load. The plain path auto-detection is used by most project cases (checkpoint_id=path). "
            "missing: the 'Cannot detect which StorageReader or StorageWriter' error and the validate_checkpoint_id "
            "fallback"),
        "TestSaveAndLoadAPI.test_assert_same_keys": not_covered(
            "dcp.utils._assert_same_keys across ranks passes for equal keys and raises when rank 0 has 'abc' and "
            "others 'def'. missing: rank-divergent keys (also the subject of e2e "
            "test_different_ordered_state_dict_keys)"),
    },

    # one stored version, 068396057d4424fc2ead6f725e3e3d19c69b7f28 (a script: module-level function)
    "test_shared_and_pinned_memory.py": not_applicable(
        "CUDA: pinned + shared CPU cache filled from CUDA tensors on a side stream, handed to a spawned process with "
        "an interprocess CUDA event",
        functions=(
            "test_shared_pinned_ipc",
        )),

    # test_state_dict.py read at index id 462423557 (42375 chars; torch.accelerator, fully_shard from
    # torch.distributed.fsdp,
    # FusionEmbedding, TP test_multi_param_groups with an empty param group, TestNoComm). Other stored versions seen:
    # 368615587e538f7b66b2c35be34026621a4160b0 (older, 34671 chars), 01d4728a564cd24d82e42f53f8cc3733060cd1fa
    # (41294 chars).
    "test_state_dict.py": {
        "TestStateDict.test_fsdp": not_covered(
            "run_subtests use_orig_params x use_dtensor x wrapping [(), (nn.Linear, UnitModule)] x [Adam, AdamW, "
            "SGD]; _test_fsdp returns early unless use_orig_params=True and use_dtensor=False, so it runs FSDP1 "
            "WITHOUT a DeviceMesh (ShardedTensor state dicts), auto-wrapped by UnitModule or (Linear, UnitModule): "
            "10 steps, get_state_dict vs the unsharded model (_verify_msd/_verify_osd/_verify_osd_by_load), "
            "set_model/optimizer_state_dict into a fresh model, and "
            "_patch_model_state_dict/_patch_optimizer_state_dict. missing: DSD on FSDP1 without a DeviceMesh (the "
            "project's FSDP1 always has one: dsd_wrappers_test fsdp1, transformer fsdp1), the (nn.Linear, "
            "UnitModule) nested wrap policy, and the _patch_* APIs"),
        "TestStateDict.test_compiled_fsdp": not_covered(
            "FSDP1 (no mesh) under torch.compile (Inductor), Adam/AdamW, through _test_save_load. missing: a "
            "torch.compile'd FSDP1 model through DSD"),
        "TestStateDict.test_fsdp2[compile_model=False]": covered(
            ["dsd_wrappers_test.DsdWrappersTest.test_set_state_dict_restores_saved_state"],
            uses=("set_state_dict", "WRAPPER_X_KIND", "verify_msd"),
            what="fully_shard with reshard_after_forward True/False, Adam/AdamW: get_state_dict vs the reference, "
                 "set into a fresh model, verified again. Project fsdp2 variants: set_state_dict restores the saved "
                 "state (verify_msd/verify_osd against the reference); Adam/AdamW/SGD-momentum through "
                 "verify_osd_by_load in dsd_wrappers_test.DsdWrappersTest.test_optimizers; "
                 "reshard_after_forward=False in "
                 "transformer_state_test.ShardedStateDictTest.test_fsdp2_reshard_after_forward_false_after_a_forward"),
        "TestStateDict.test_fsdp2[compile_model=True]": not_covered(
            "the same with torch.compile(fully_shard(model)) (Inductor, whole model). missing: a compiled FSDP2 root "
            "(the project compiles blocks with backend='eager' before sharding)"),
        "TestStateDict.test_ddp[use_composable=False]": covered(
            ["dsd_wrappers_test.DsdWrappersTest.test_set_state_dict_restores_saved_state"],
            uses=("set_state_dict", "WRAPPER_X_KIND", "verify_msd"),
            what="DDP with Adam/AdamW/SGD through _test_save_load. Project ddp variants: state dicts vs the "
                 "reference, set_state_dict restores them; Adam/AdamW/SGD-momentum in "
                 "dsd_wrappers_test.DsdWrappersTest.test_optimizers (ddp_*)"),
        "TestStateDict.test_ddp[use_composable=True]": not_covered(
            "the composable replicate() (torch.distributed._composable.replicate, present in 2.13) through "
            "_test_save_load. missing: replicate()"),
        "TestStateDict.test_fsdp_ddp": not_covered(
            "FSDP1 (UnitModule auto-wrap) with ignored_modules=[a DDP-wrapped submodule], Adam/AdamW, through "
            "_test_save_load. missing: FSDP1 ignored_modules (a submodule left out of sharding) through DSD"),
        "TestStateDict.test_single_gpu": covered(
            ["dsd_wrappers_test.DsdWrappersTest.test_set_state_dict_restores_saved_state"],
            uses=("set_state_dict", "WRAPPER_X_KIND"),
            what="an unwrapped module through _test_save_load (single process upstream). Project 'plain' wrapper "
                 "variants (plain_sharded, plain_full ...): state dicts vs the reference and set_state_dict restores "
                 "them"),
        "TestStateDict.test_strict": covered(
            ["dsd_wrappers_test.DsdWrappersTest.test_strict_false_reports_missing_and_unexpected_keys",
             "dsd_wrappers_test.DsdWrappersTest.test_strict_false_reports_missing_and_unexpected_keys_ddp"],
            uses=("strict=False", "missing_keys", "unexpected_keys"),
            what="run_subtests DDP / fully_shard: an extra key raises 'Unexpected key', strict=False returns "
                 "missing_keys [key] and unexpected_keys ['abc'], a missing key raises 'Missing key'. Project: same "
                 "for fsdp2/fsdp1/plain; DDP pinned as a known wrong result (missing keys reported with the "
                 "'module.' prefix)"),
        "TestStateDict.test_cpu_offload_full_state_dict": covered(
            ["dsd_wrappers_test.DsdWrappersTest.test_state_dict_matches_reference",
             "dsd_wrappers_test.DsdWrappersTest.test_fsdp1_full_cpu_offload_optimizer_state"],
            uses=("KINDS", "get_state_dict"),
            what="FSDP1 (DeviceMesh, UnitModule auto-wrap): cpu_offload=True values on CPU (vacuous on CPU ranks), "
                 "full_state_dict=True plain tensors, full+cpu_offload on rank 0 only ({} elsewhere). Project: "
                 "fsdp1_full verify_msd/verify_osd (plain tensors); FSDP1 full+cpu_offload pinned: a segfault on "
                 "2.13 "
                 "(crash_regressions_test.CrashRegressionsTest.test_fsdp1_full_state_dict_cpu_offload_use_orig_params) "
                 "and wrong optimizer state on 2.14 (known_wrong_result)"),
        "TestStateDict.test_activation_ckpt_fqns_ddp": not_covered(
            "apply_activation_checkpointing then DDP: get_model_state_dict keys equal the plain model's. missing: "
            "activation checkpointing under DDP (WrapperKeyNamesTest covers FSDP2 and FSDP1 only)"),
        "TestStateDict.test_activation_ckpt_fqns_fsdp1[use_orig_params=True]": covered(
            ["transformer_state_test.WrapperKeyNamesTest.test_activation_checkpointing_outside_fsdp1_units"],
            uses=("apply_ac", "verify_state"),
            what="apply_activation_checkpointing before FSDP1: get_model_state_dict keys carry no "
                 "_checkpoint_wrapped_module prefix. Project: AC applied before FSDP1 auto-wrap, verify_state (keys "
                 "and values vs the reference) passes before the pinned set_state_dict failure; "
                 "test_activation_checkpointing_fsdp1 checks AC inside the units"),
        "TestStateDict.test_activation_ckpt_fqns_fsdp1[use_orig_params=False]": not_covered(
            "the same with FSDP1 use_orig_params=False (FlatParameter). missing: AC + FSDP1 flat params key names"),
        "TestStateDict.test_extra_state": covered(
            ["transformer_state_test.NonParameterStateTest.test_extra_state"],
            uses=("softcap._extra_state", "get_model_state_dict"),
            what="a module's get_extra_state appears in get_model_state_dict and set_model_state_dict round-trips it "
                 "(single process upstream). Project: softcap._extra_state in the DSD state dict, stored as bytes, "
                 "applied by set_extra_state after a DCP load (fsdp2, fsdp1)"),
        "TestStateDict.test_non_persistent_buffers": covered(
            ["transformer_state_test.NonParameterStateTest.test_non_persistent_buffers_are_neither_saved_nor_loaded"],
            uses=("rope", "get_model_state_dict"),
            what="a non-persistent buffer is not in get_model_state_dict and set_model_state_dict works without it. "
                 "Project: rope buffers absent from the DSD state dict and from the checkpoint, and not written by a "
                 "load"),
        "TestStateDict.test_broadcast_from_rank0[wrapper=fully_shard|FSDP(device_mesh)]": covered(
            ["dsd_wrappers_test.DsdWrappersTest.test_broadcast_from_rank0"],
            uses=("broadcast_from_rank0", "set_optimizer_state_dict"),
            what="rank 0 alone holds the full model + optimizer state; "
                 "set_model/optimizer_state_dict(full_state_dict, broadcast_from_rank0) into FSDP2 / "
                 "FSDP1(DeviceMesh); full state equals rank 0's. Project: same for fsdp1/fsdp2, verified sharded and "
                 "full against the reference"),
        "TestStateDict.test_broadcast_from_rank0[wrapper=FSDP(HYBRID_SHARD)]": not_covered(
            "the same into FSDP1 HYBRID_SHARD on a (2, N/2) mesh. missing: FSDP1 HYBRID_SHARD"),
        "TestStateDict.test_broadcast_from_rank0[strict]": not_covered(
            "with broadcast_from_rank0, a rank-0 state dict missing a key raises 'Missing key' (strict default). "
            "missing: no case checks strict under broadcast_from_rank0"),
        "TestStateDict.test_fsdp_root_not_initialized": covered(
            ["transformer_state_test.ShardedStateDictTest.test_dcp_round_trip"],
            uses=("self.model(load_layout, seed=1)", "checkpointing.load"),
            what="get_model_state_dict / get_optimizer_state_dict on an FSDP1(DeviceMesh) model that never ran "
                 "forward do not fail. Project fsdp1 targets (fsdp2_to_fsdp1, fsdp1_to_fsdp1): checkpointing.load "
                 "calls get_state_dict on a freshly wrapped FSDP1 model before any forward, then verify_state"),
        "TestStateDict.test_optim_state_dict_param_matching": not_covered(
            "FSDP2 optimizer with a LambdaLR (adds initial_lr): the full+cpu_offload optimizer state dict carries "
            "initial_lr, and set_optimizer_state_dict(broadcast_from_rank0) into a fresh optimizer WITHOUT "
            "initial_lr adds it. missing: loading param-group keys the target optimizer lacks "
            "(transformer_state_test.NonParameterStateTest.test_lr_scheduler_and_initial_lr builds the scheduler, "
            "hence initial_lr, before loading)"),
        "TestStateDict.test_flattened_osd": not_covered(
            "FSDP2 optimizer state saved with flatten_optimizer_state_dict True/False and loaded with True/False "
            "(all 4 combinations); the optimizer state is the same. Same-flag flattened round trip is covered by "
            "dsd_wrappers_test.DsdWrappersTest.test_set_state_dict_restores_saved_state (fsdp2_flattened_optim). "
            "missing: mismatched save/load flags"),
        "TestStateDict.test_deprecate_api": not_covered(
            "FutureWarnings: get_model_state_dict(submodules=...) (with/without keep_submodule_prefixes) and "
            "set_model_state_dict({module: sd}) are deprecated but still load; FSDP.state_dict_type warns, DSD does "
            "not. missing: the submodules API and deprecation warnings (low value: deprecated APIs)"),
        "TestStateDict.test_shared_weight[flatten_optimizer=False]": covered(
            ["transformer_state_test.ShardedStateDictTest.test_dcp_round_trip"],
            uses=("assert_tied", "checkpointing.load", "continue_training"),
            what="tied embedding/decoder weights under FSDP1(DeviceMesh): DSD state dicts vs the reference, set into "
                 "a fresh model. Project: the tied transformer saved by fsdp1 (DeviceMesh) and loaded into a fresh "
                 "model (assert_tied, verify_state, one more step); tied-weight state dicts per wrapper in "
                 "dsd_wrappers_test.DsdWrappersTest.test_tied_parameters"),
        "TestStateDict.test_shared_weight[flatten_optimizer=True]": not_covered(
            "the same with flatten_optimizer_state_dict=True. missing: flattened optimizer state with tied weights"),
        "TestStateDict.test_setting_meta_device_model": not_covered(
            "an FSDP2 model built on meta; set_model_state_dict(full_state_dict=True, strict=False) WITHOUT "
            "broadcast_from_rank0 (every rank passes the full CPU state dict) materialises it; full_tensor() values "
            "equal. missing: a full state dict on every rank into a meta-device model (the project's meta loads use "
            "broadcast_from_rank0 or to_empty first)"),
        "TestStateDict.test_setting_meta_device_model_broadcasting_and_memory[values]": covered(
            ["transformer_state_test.MetaDeviceInitTest.test_broadcast_into_a_meta_model_unties_the_head"],
            uses=("_meta_model", "BROADCAST", "verify_msd"),
            what="4 ranks: a meta-device FSDP2 model loaded with set_model_state_dict(broadcast_from_rank0, "
                 "full_state_dict, strict=False); values equal. Project: meta FSDP2 transformer + BROADCAST, "
                 "verify_msd against the reference (passes before the case's pinned later KeyError)"),
        "TestStateDict.test_setting_meta_device_model_broadcasting_and_memory[memory]": not_applicable(
            "CUDA: bounds torch.cuda memory_allocated/memory_reserved after the broadcast"),
        "TestStateDict.test_set_cpu_model_state_dict_broadcast_from_rank0": not_covered(
            "an unwrapped nn.Linear on CPU, zeroed on every rank; set_model_state_dict(full_state_dict, "
            "broadcast_from_rank0) with rank 0's state dict restores it everywhere. missing: broadcast_from_rank0 "
            "into a plain (unwrapped) module (dsd_wrappers_test.test_broadcast_from_rank0 runs fsdp1 and fsdp2 only)"),
        "TestStateDict.test_multi_device_load_model_state_dict[meta+device]": not_covered(
            "a model mixing a meta submodule and a materialised one loads a full state dict with "
            "broadcast_from_rank0. missing: broadcast into a partly-meta model"),
        "TestStateDict.test_multi_device_load_model_state_dict[multiple devices]": not_applicable(
            "CUDA: 'Multiple devices found' needs CPU and accelerator submodules in one model"),
        "TestStateDict.test_state_dict_with_hook_on_keys": covered(
            ["dsd_api_test.DsdApiTest.test_hook_renamed_keys_need_fqn_modifiers_to_load"],
            uses=("FusionEmbeddingWithHook", "FusionEmbeddingWithModifier", "Missing key"),
            what="a state-dict hook renames keys: loading into a meta FusionEmbedding raises 'Missing key', "
                 "FusionEmbeddingWithModifier (_fqn_modifiers) loads. Project asserts the same and checks the loaded "
                 "values"),
        "TestStateDict.test_multi_param_groups": not_covered(
            "TP (ColwiseParallel/RowwiseParallel, use_local_output=False) model; AdamW with two param groups (own "
            "lr) and with an EMPTY param group; full_state_dict False/True x broadcast_from_rank0 False/True: "
            "get_optimizer_state_dict -> set_optimizer_state_dict into a new AdamW gives equal param_groups and "
            "state. missing: TP optimizers with several / empty param groups "
            "(dsd_wrappers_test.test_multiple_param_groups: fsdp1/fsdp2/ddp/plain, no empty group, no set round trip)"),
        "TestNoComm.test_no_dist": not_applicable(
            "unit: DSD get/set without an initialised process group (single process)"),
    },

    # read at 09f57092aa6c3cc3f9f5618b0d030c80133862a0
    # By function:
    #   test_views, test_caching, test_tensor_attrs, test_different_dtypes, test_empty_tensors,
    #     test_complex_storage_sharing, test_dataclasses, test_tensor_pinned_and_shared, test_dtensor: CUDA:
    #     StateDictStager copies CUDA tensors to (pinned/shared) CPU memory (@requires_cuda / NCCL)
    #   test_cpu_storage_independence: unit: StateDictStager clones CPU tensors (single process, internal
    #     _state_dict_stager)
    "test_state_dict_stager.py": not_applicable(
        "CUDA: StateDictStager copies CUDA tensors into pinned / shared CPU memory (one function, on CPU tensors, is "
        "a unit test of the internal stager)",
        functions=(
            "TestStateDictStager.test_views",
            "TestStateDictStager.test_caching",
            "TestStateDictStager.test_tensor_attrs",
            "TestStateDictStager.test_different_dtypes",
            "TestStateDictStager.test_empty_tensors",
            "TestStateDictStager.test_complex_storage_sharing",
            "TestStateDictStager.test_dataclasses",
            "TestStateDictStager.test_tensor_pinned_and_shared",
            "TestDTensorStateDictStager.test_dtensor",
            "TestStateDictStager.test_cpu_storage_independence",
        )),

    # read at index id 127282344 (newest found; adds _distribute_tensors and DTensor cpu offload); listing
    # 99f65872 is older
    "test_state_dict_utils.py": {
        "TestStateDictUtils.test_gather_state_dict_dtensor": covered(
            ["dsd_api_test.DsdApiTest.test_get_state_dict_matches_reference"],
            uses=("verify_msd", "get_state_dict"),
            what="private _gather_state_dict of a Shard(0) DTensor equals the all-gather (plus an is_cuda check that "
                 "needs CUDA). Project: verify_msd gathers every sharded value through _gather_state_dict "
                 "(testing/state_dict_verify.gather_full) and compares it with the unsharded reference"),
        "TestStateDictUtils.test_gather_with_cpu_and_ranks_only": not_covered(
            "private _gather_state_dict(cpu_offload=True, ranks_only=(0, 2)) at 4 ranks: ranks 0 and 2 hold the "
            "gathered CPU tensor, the others {}. missing: ranks_only with several ranks (DSD's public "
            "full_state_dict+cpu_offload uses ranks_only=(0,), checked by dsd_wrappers_test full_cpu_offload); "
            "internal, low value"),
        "TestStateDictUtils.test_cpu_and_ranks_only": not_applicable(
            "CUDA: _offload_state_dict_to_cpu of CUDA tensors with ranks_only"),
        "TestStateDictUtils.test_complicated_dict": not_covered(
            "private _gather_state_dict of nested lists mixing DTensors and CUDA tensors (cuda as written; the "
            "gather is CPU-capable). missing: gathering DTensors inside lists (internal, low value)"),
        "TestStateDictUtils.test_create_cpu_state_dict": not_applicable(
            "CUDA: _create_cpu_state_dict with pin_memory/share_memory, _copy_state_dict from CUDA"),
        "TestStateDictUtils.test_state_dict_util_distribute_tensors": covered(
            ["dsd_wrappers_test.DsdWrappersTest.test_broadcast_from_rank0"],
            uses=("broadcast_from_rank0", "set_model_state_dict"),
            what="private _distribute_tensors turns full tensors into DTensors matching even and uneven (1 row over "
                 "all ranks) shardings. Project: broadcast_from_rank0 into FSDP2/FSDP1 runs _distribute_tensors on "
                 "UnevenDummyModel (empty shards at 4 ranks) and verifies sharded and full state against the "
                 "reference"),
        "TestStateDictUtils.test_cpu_offload_for_dtensor": not_applicable(
            "CUDA: a CUDA DTensor copied to a CPU DTensor with non_blocking copies and torch.cuda.synchronize"),
    },

    # test_torch_save_to_dcp.py read at 1445418df4b41cbdcb5c6eb71cc7313acda3faff (example-style file without Owner line)
    "test_torch_save_to_dcp.py": {
        "TestTorchSaveToDCP.test_offline_conversion": covered(
            ["dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back"],
            uses=("torch_save_to_dcp", "dcp.load"),
            what="rank 0 torch.save; every rank torch.load's it, shards each tensor (DTensor.from_local(Replicate) "
                 "-> redistribute(Shard(0)); init_device_mesh('cuda') as written) and dcp.save's it; a plain state "
                 "dict loads it back equal. Project: torch.save file -> torch_save_to_dcp -> loaded into FSDP2, "
                 "equal (the supported offline converter); sharded checkpoints loaded into plain tensors: "
                 "reshard_test fsdp1_to_plain"),
        "TestTorchSaveToDCP.test_onine_conversion": covered(
            ["checkpoint_migration_test.CheckpointMigrationTest.test_online_torch_save_into_fsdp2"],
            uses=("BroadcastingTorchSaveReader", "load_torch_save"),
            what="dcp.load with a custom StorageReader that reads a torch.save file directly (or wraps "
                 "FileSystemReader for a DCP directory); values equal. Project: online torch.save -> dcp.load "
                 "through the library's BroadcastingTorchSaveReader, verify_msd"),
    },

    # upstream version read: 108671c3a66c0808bcb2ddcfcb953a3ee9b600a2 (function set also in 0734fe0)
    "test_tp_checkpoint.py": {
        "TestTpCheckpoint.test_tp_checkpoint": covered(
            ["tensor_parallel_test.TensorParallelTest.test_save_on_one_layout_load_on_another",
             "tensor_parallel_test.TensorParallelTest.test_uneven_tp_shards_saved_and_loaded"],
            uses=("ColwiseParallel", "RowwiseParallel", "checkpointing.load"),
            what="MLP with colwise net1 / rowwise net2 (parallelize_module, ColwiseParallel, RowwiseParallel, "
                 "init_device_mesh) saved with DCP (FileSystemWriter, DefaultSavePlanner), an SGD step moves it, "
                 "load restores the saved DTensors. Project: tp_to_fsdp2 / fsdp2_to_tp save and load TP DTensors "
                 "(Shard(0)/Shard(1)/Replicate) and verify_msd every FQN; TP -> TP (uneven shards) into a "
                 "differently initialised model, verify_msd and verify_osd"),
        "TestTpCheckpoint.test_tp_checkpoint_load_on_meta_device": covered(
            ["tensor_parallel_test.TensorParallelTest.test_uneven_tp_checkpoint_loaded_into_a_meta_device_model"],
            uses=("uneven_tp_plan", "assert_uneven_shards", "assign=True"),
            what="UnevenShardedModel (5->10->15->1; rowwise net1, colwise net2: uneven shards at 2 and 4 ranks) "
                 "saved; a meta-device copy parallelized, its state dict (meta DTensors) handed to DCP load "
                 "(DefaultLoadPlanner materialises meta tensors), then model.load_state_dict(assign=True); values "
                 "equal the saved ones. Project: UnevenDummyModel with every Linear split along a width of 5 or 15 "
                 "(shards checked uneven), the TP model's state_dict() saved, loaded into the same plan on a "
                 "meta-device model, load_state_dict(assign=True); no parameter left on meta, verify_msd (placements "
                 "and values, FQN by FQN) against the reference"),
    },

    # read at 1d32ffa6a1f52253b1c37552a6afe534801e6a94
    "test_traverse.py": not_applicable(
        "unit: traverse.traverse_state_dict / set_element / get_element",
        functions=(
            "TestTraverse.test_traverse_shallow",
            "TestTraverse.test_traverse_nested_list",
            "TestTraverse.test_traverse_nested_dict",
            "TestTraverse.test_traverse_doesnt_ignore_intermediate_collections",
            "TestTraverse.test_traverse_with_ordered_dict",
            "TestTraverse.test_set_element",
            "TestTraverse.test_get_element",
        )),

    # test_utils.py read at 05382727fd08ac518afece33a69e4bb72c2d2cab (newest read; 069f0986 is an older one)
    "test_utils.py": {
        "TestMedatadaIndex.test_init_convert_offset": not_applicable(
            "unit: MetadataIndex offset normalisation"),
        "TestMedatadaIndex.test_index_hint_ignored_on_equals": not_applicable(
            "unit: MetadataIndex equality"),
        "TestMedatadaIndex.test_index_hint_ignored_on_hash": not_applicable(
            "unit: MetadataIndex hash"),
        "TestMedatadaIndex.test_flat_data": not_applicable(
            "unit: find_state_dict_object on plain values"),
        "TestMedatadaIndex.test_sharded_tensor_lookup": not_applicable(
            "unit: find_state_dict_object on a ShardedTensor under with_fake_comms (no real ranks)"),
        "TestMedatadaIndex.test_dcp_logger": not_applicable(
            "unit: _dcp_logger is not _c10d_logger"),
        "TestReaderView.testShortRead": not_applicable(
            "unit: _create_file_view read"),
        "TestReaderView.testLongRead": not_applicable(
            "unit: _create_file_view read past the view"),
        "TestReaderView.testAllRead": not_applicable(
            "unit: _create_file_view read(-1)"),
        "TestReaderView.testShortReadinto": not_applicable(
            "unit: _create_file_view readinto"),
        "TestReaderView.testLongReadinto": not_applicable(
            "unit: _create_file_view readinto past the view"),
        "TestDistWrapper.test_gather_object": covered(
            ["checkpoint_migration_test.CheckpointMigrationTest.test_save_and_load_on_a_sub_process_group"],
            uses=("process_group=group", "dist.new_group"),
            what="_DistWrapper(mesh_2d.get_group(1), coordinator_rank=0).gather_object collects the sub-group's "
                 "objects on the sub-group's coordinator (global rank 2 for the second row). Project: "
                 "dcp.save/load(process_group=pair) on ranks {2,3} plan through reduce_scatter (gather_object to "
                 "global rank 2); the case asserts the load reproduces the reference (verify_state) and one .distcp "
                 "per pair rank"),
        "TestDistWrapper.test_scatter_object": covered(
            ["checkpoint_migration_test.CheckpointMigrationTest.test_save_and_load_on_a_sub_process_group"],
            uses=("process_group=group", "dist.new_group"),
            what="_DistWrapper.scatter_object from each sub-group's coordinator hands each member its own item. "
                 "Project: the sub-group save/load scatters the central plan from global rank 2 to {2,3}; "
                 "verify_state after the load"),
        "TestDistWrapper.test_broadcast_object_with_nonzero_coordinator": covered(
            ["save_failures_test.SaveFailuresTest.test_coordinator_rank_1_saves_a_loadable_checkpoint"],
            uses=("save_state_dict_with_coordinator", "coordinator_rank"),
            what="_DistWrapper(WORLD, coordinator_rank=1).broadcast_object delivers rank 1's payload everywhere. "
                 "Project: save_state_dict(coordinator_rank=1) finishes with all_reduce (gather + broadcast_object "
                 "from rank 1) and assert_loads_as_reference checks the checkpoint"),
        "TestDistWrapper.test_broadcast_object_global_local_mismatch": covered(
            ["save_failures_test.SaveFailuresTest.test_coordinator_rank_of_a_reordered_group_is_a_group_rank"],
            uses=("sort_ranks=False", "coordinator_rank", "assert_coordinator"),
            what="_DistWrapper on a sub-group with coordinator_rank=1 (a LOCAL index) broadcasts from the global "
                 "coordinator (global ranks 1 and 3; issue 152310). Project: save_state_dict / "
                 "load_state_dict(process_group=dist.new_group(reversed ranks, sort_ranks=False), "
                 "coordinator_rank=0): exactly the last global rank (group rank 0) coordinates both (is_coordinator "
                 "gathered from every rank), and the checkpoint loads as the reference through the group and through "
                 "the default one"),
        "TestDistWrapper.test_barrier": not_covered(
            "_DistWrapper(sub-group).barrier() works. missing: dcp.save/load(use_collectives=False), the only DCP "
            "path that calls _DistWrapper.barrier, on any group (no case passes use_collectives)"),
    },
}
