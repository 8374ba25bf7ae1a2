"""Which scenarios cover each upstream PyTorch DCP test file (test/distributed/checkpoint/).

The README's coverage table is generated from COVERAGE by tools/catalogue.py, which also checks
it against the code: every reference names an existing scenario module of //dsd (or one of its
test methods, `module.Class.test_name`), so renaming or deleting a case breaks `catalogue
--check` instead of leaving the table wrong. Statuses:

    covered(refs...)                 every behaviour of the file that applies on CPU ranks
    partly(refs, missing)            what is covered, and precisely what is not
    not_covered(why)                 applicable, but no scenario yet
    not_applicable(why)              CUDA-only as written, an external service, or a unit test
                                     of internal APIs with nothing distributed to run
"""

UNIT = "single-process test of internal APIs: nothing distributed to run as a scenario"
CUDA = "CUDA-only as written (pinned or shared CUDA memory, CUDA streams)"


def covered(*refs):
    return ("covered", refs, "")


def partly(refs, missing):
    return ("partly", tuple(refs), missing)


def not_covered(why):
    return ("not covered", (), why)


def not_applicable(why):
    return ("not applicable", (), why)


COVERAGE = {
    "_experimental/test_barriers.py": not_applicable(UNIT),
    "_experimental/test_builder.py": not_applicable(UNIT),
    "_experimental/test_checkpoint_process.py": not_applicable(UNIT),
    "_experimental/test_checkpoint_reader.py": not_applicable(UNIT),
    "_experimental/test_checkpoint_writer.py": not_applicable(UNIT),
    "_experimental/test_checkpointer.py": not_applicable(UNIT),
    "_experimental/test_staging.py": not_applicable(UNIT),
    "_experimental/test_types.py": not_applicable(UNIT),
    "e2e/test_e2e_save_and_load.py": partly(
        ["dcp_features_test.DcpFeaturesTest.test_async_save",
         "dcp_features_test.DcpFeaturesTest.test_async_save_pinned_memory_staging",
         "dcp_features_test.DcpFeaturesTest.test_stateful_non_tensor_state",
         "torch_upgrade_test.TorchUpgradeTest.test_stateful_extras"],
        "continued training after load for DDP/HSDP/compiled models; rank-divergent key order"),
    "e2e/test_fine_tuning.py": partly(
        ["dsd_wrappers_test.DsdWrappersTest.test_frozen_parameters"],
        "restart of a fine-tuning job from a frozen pretrained submodule"),
    "e2e/test_fsdp.py": covered("fsdp_dtensor_state_dict_test", "dsd_wrappers_test.DsdWrappersTest.test_set_state_dict_restores_saved_state"),
    "e2e/test_fsdp_ep.py": not_covered("FSDP1 on expert-parallel sub-meshes (keys and meshes that differ per rank)"),
    "e2e/test_pipeline.py": not_covered("pipeline stages (each rank owns different parameters) loaded into full FSDP"),
    "fsdp/test_fsdp_dsd.py": partly(
        ["dsd_wrappers_test.DsdWrappersTest.test_state_dict_matches_reference", "crash_regressions_test"],
        "nested fully_shard parity, reshard_after_forward=False, a compiled model with buffers"),
    "test_2d_checkpoint.py": partly(["two_d_parallel_test"], "FSDP1+TP with flatten/dedup planners (FSDP2+TP is covered)"),
    "test_2d_checkpoint_model_state.py": partly(["two_d_parallel_test"], "FSDP1+TP (FSDP2+TP is covered)"),
    "test_2d_model_state_checkpoint.py": partly(["two_d_parallel_test"], "FSDP1+TP (FSDP2+TP is covered)"),
    "test_2d_optim_state_checkpoint.py": partly(["two_d_parallel_test"], "load_sharded_optimizer_state_dict on FSDP1+TP"),
    "test_2d_fsdp_dt_checkpoint.py": partly(["two_d_parallel_test"], "reloading on even/odd subgroups"),
    "test_async_executor.py": not_applicable(UNIT),
    "test_async_process_executor.py": not_covered("the background save process serving the next save after a failed one"),
    "test_checkpoint.py": not_covered("a StorageWriter/Reader failing at each stage on chosen ranks and coordinators"),
    "test_compatibility.py": partly(["golden_corpus_test", "torch_upgrade_test"],
                                    "metadata defaults of pickles older than the pinned releases"),
    "test_consolidate_hf_safetensors.py": covered(
        "hf_safetensors_test.HfSaveTest.test_save_distributed_then_consolidate_on_rank0",
        "hf_safetensors_test.HfSaveTest.test_consolidate_into_one_file_per_rank_on_every_rank"),
    "test_cooperative_planner.py": not_applicable(UNIT),
    "test_cuobj_rdma_storage.py": not_applicable("needs an S3 RDMA service"),
    "test_dcp_to_torch_save.py": covered("dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back"),
    "test_debug_hsdp_load.py": not_covered("an HSDP sharded save loaded as a full state dict"),
    "test_dedup_tensors.py": not_applicable(UNIT),
    "test_dtensor_checkpoint.py": partly(["tensor_parallel_test"], "extra_state beside Shard/Replicate parameters"),
    "test_dtensor_resharding.py": covered("tensor_parallel_test.TensorParallelTest.test_save_on_one_layout_load_on_another",
                                          "two_d_parallel_test.TwoDimensionalTest.test_save_on_one_layout_load_on_another"),
    "test_dtensor_size_debug.py": covered("fsdp_dtensor_state_dict_test"),
    "test_file_system_checkpoint.py": not_applicable(CUDA),
    "test_file_system_checkpoint_cpu.py": partly(
        ["dcp_features_test.DcpFeaturesTest.test_filesystem_writer_options", "bad_checkpoint_test"],
        "ShardedTensor resharding specs, stream extensions, dtype-cast strictness"),
    "test_format_utils.py": partly(["dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back"],
                                   "online BroadcastingTorchSaveReader + DynamicMetaLoadPlanner into FSDP"),
    "test_fsdp_checkpoint.py": covered("fsdp_model_state_test", "fsdp_optim_state_test"),
    "test_fsdp_model_state.py": covered("fsdp_model_state_test"),
    "test_fsdp_optim_state.py": covered("fsdp_optim_state_test"),
    "test_fsdp_tp_checkpoint_conversion.py": not_covered("an FSDP1 ShardedTensor checkpoint loaded into a TP model"),
    "test_fsspec.py": not_covered("FsspecWriter/Reader"),
    "test_grad_dtype.py": not_applicable(UNIT),
    "test_hf_safetensor_e2e.py": covered("hf_safetensors_test"),
    "test_hf_storage.py": not_applicable(UNIT),
    "test_hsdp_checkpoint.py": not_covered("FSDP1 HYBRID_SHARD save/load, HSDP to FSDP"),
    "test_hugging_face_storage.py": not_applicable("needs the Hugging Face Hub (mocked upstream)"),
    "test_list_state_dict.py": not_covered("listing stored state-dict metadata"),
    "test_list_stored_state_dict.py": not_covered("listing stored tensor and bytes metadata"),
    "test_metadata_warning.py": not_applicable(UNIT),
    "test_nested_dict.py": not_applicable(UNIT),
    "test_optimizer.py": not_applicable(UNIT),
    "test_optimizer_flattened_missing_state.py": not_applicable(UNIT),
    "test_optimizer_frozen_state.py": not_applicable(UNIT),
    "test_optimizer_partial_state.py": not_applicable(UNIT),
    "test_optimizer_stateless.py": not_applicable(UNIT),
    "test_pg_aware_planner.py": not_covered("process-group-aware planners on subgroups"),
    "test_pg_transport.py": not_covered("PGTransport send/recv of state dicts"),
    "test_planner.py": not_applicable(UNIT),
    "test_quantized_hf_storage.py": not_applicable(UNIT),
    "test_restricted_metadata_unpickler.py": partly(
        ["hostile_checkpoint_test.MetadataPickleTest"],
        "the allow-list itself (a unit test); the suite pins what a hostile .metadata does to dcp.load"),
    "test_save_load_api.py": partly(["bad_checkpoint_test.BadCheckpointTest.test_directory_without_a_checkpoint"],
                                    "storage auto-detection from checkpoint_id beyond local paths"),
    "test_shared_and_pinned_memory.py": not_applicable(CUDA),
    "test_state_dict.py": partly(
        ["dsd_api_test", "dsd_wrappers_test", "crash_regressions_test"],
        "compiled models, activation-checkpoint FQNs, extra_state, non-persistent buffers, initial_lr, "
        "TP with empty parameter groups"),
    "test_state_dict_stager.py": not_applicable(CUDA),
    "test_state_dict_utils.py": not_applicable(CUDA),
    "test_torch_save_to_dcp.py": partly(["dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back"],
                                        "the online conversion"),
    "test_tp_checkpoint.py": covered("tensor_parallel_test"),
    "test_traverse.py": not_applicable(UNIT),
    "test_utils.py": not_covered("_DistWrapper on a subgroup with a coordinator other than rank 0"),
}
