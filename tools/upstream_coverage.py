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
         "dcp_features_test.DcpFeaturesTest.test_stateful_non_tensor_state",
         "torch_upgrade_test.TorchUpgradeTest.test_stateful_extras",
         "transformer_state_test.ShardedStateDictTest.test_dcp_round_trip",
         "transformer_state_test.NonParameterStateTest.test_lr_scheduler_and_initial_lr",
         "partial_load_test", "save_failures_test.SaveFailuresTest.test_overwrite_false_refuses_an_existing_checkpoint"],
        "DDP/HSDP and compiled models trained on after a load; rank-divergent key order; "
        "a Stateful loaded in place versus replaced"),
    "e2e/test_fine_tuning.py": covered(
        "partial_load_test.PartialLoadTest.test_fine_tune_into_a_model_with_a_new_head",
        "partial_load_test.PartialLoadTest.test_frozen_submodules_saved_without_them_then_restarted",
        "dsd_wrappers_test.DsdWrappersTest.test_frozen_parameters"),
    "e2e/test_fsdp.py": covered("fsdp_dtensor_state_dict_test", "dsd_wrappers_test.DsdWrappersTest.test_set_state_dict_restores_saved_state"),
    "e2e/test_fsdp_ep.py": not_covered("FSDP1 on expert-parallel sub-meshes (keys and meshes that differ per rank)"),
    "e2e/test_pipeline.py": not_covered("pipeline stages (each rank owns different parameters) loaded into full FSDP"),
    "fsdp/test_fsdp_dsd.py": partly(
        ["transformer_state_test.ShardedStateDictTest",
         "transformer_state_test.WrapperKeyNamesTest.test_torch_compile_and_activation_checkpointing_fsdp2",
         "dsd_wrappers_test.DsdWrappersTest.test_state_dict_matches_reference", "crash_regressions_test"],
        "Inductor (the compile case uses backend='eager': Inductor takes 45-80 s per model on CPU)"),
    "test_2d_checkpoint.py": partly(["two_d_parallel_test"], "FSDP1+TP with flatten/dedup planners (FSDP2+TP is covered)"),
    "test_2d_checkpoint_model_state.py": partly(["two_d_parallel_test"], "FSDP1+TP (FSDP2+TP is covered)"),
    "test_2d_model_state_checkpoint.py": partly(["two_d_parallel_test"], "FSDP1+TP (FSDP2+TP is covered)"),
    "test_2d_optim_state_checkpoint.py": partly(["two_d_parallel_test"], "load_sharded_optimizer_state_dict on FSDP1+TP"),
    "test_2d_fsdp_dt_checkpoint.py": partly(["two_d_parallel_test", "transformer_reshard_test"],
                                            "FSDP1+TP; reloading on even/odd subgroups"),
    "test_async_executor.py": not_applicable(UNIT),
    "test_async_process_executor.py": not_covered("the background save process serving the next save after a failed one"),
    "test_checkpoint.py": partly(["save_failures_test.SaveFailuresTest.test_storage_failure_raises_on_every_rank"],
                                 "a faulty StorageReader on the load side"),
    "test_compatibility.py": partly(["golden_corpus_test", "torch_upgrade_test"],
                                    "metadata defaults of pickles older than the pinned releases"),
    "test_consolidate_hf_safetensors.py": covered(
        "hf_safetensors_test.HfSaveTest.test_save_distributed_then_consolidate_on_rank0",
        "hf_safetensors_test.HfSaveTest.test_consolidate_into_one_file_per_rank_on_every_rank"),
    "test_cooperative_planner.py": not_applicable(UNIT),
    "test_cuobj_rdma_storage.py": not_applicable("needs an S3 RDMA service"),
    "test_dcp_to_torch_save.py": covered("dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back"),
    "test_debug_hsdp_load.py": partly(["checkpoint_migration_test.CheckpointMigrationTest.test_hsdp_checkpoint_into_fsdp2"],
                                      "an HSDP checkpoint loaded as a full state dict"),
    "test_dedup_tensors.py": not_applicable(UNIT),
    "test_dtensor_checkpoint.py": covered("tensor_parallel_test", "transformer_reshard_test",
                                          "transformer_state_test.NonParameterStateTest.test_extra_state"),
    "test_dtensor_resharding.py": covered("tensor_parallel_test.TensorParallelTest.test_save_on_one_layout_load_on_another",
                                          "two_d_parallel_test.TwoDimensionalTest.test_save_on_one_layout_load_on_another",
                                          "transformer_reshard_test"),
    "test_dtensor_size_debug.py": covered("fsdp_dtensor_state_dict_test"),
    "test_file_system_checkpoint.py": not_applicable(CUDA),
    "test_file_system_checkpoint_cpu.py": partly(
        ["dcp_features_test.DcpFeaturesTest.test_filesystem_writer_options", "bad_checkpoint_test",
         "save_failures_test.SaveFailuresTest.test_overwrite_false_refuses_an_existing_checkpoint"],
        "ShardedTensor resharding specs, stream extensions, dtype-cast strictness"),
    "test_format_utils.py": covered("dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back",
                                    "checkpoint_migration_test.CheckpointMigrationTest.test_online_torch_save_into_fsdp2",
                                    "checkpoint_migration_test.CheckpointMigrationTest.test_online_torch_save_into_fsdp2_sharded_state_dict_hangs"),
    "test_fsdp_checkpoint.py": partly(["fsdp_model_state_test", "fsdp_optim_state_test", "transformer_reshard_test",
                                      "transformer_reshard_uneven_test"],
                                     "the optimizer resharded onto even/odd subgroups"),
    "test_fsdp_model_state.py": covered("fsdp_model_state_test"),
    "test_fsdp_optim_state.py": covered("fsdp_optim_state_test"),
    "test_fsdp_tp_checkpoint_conversion.py": covered(
        "checkpoint_migration_test.CheckpointMigrationTest.test_fsdp1_sharded_tensor_checkpoint_into"),
    "test_fsspec.py": covered("storage_test.FsspecStorageTest"),
    "test_grad_dtype.py": not_applicable(UNIT),
    "test_hf_safetensor_e2e.py": covered("hf_safetensors_test"),
    "test_hf_storage.py": not_applicable(UNIT),
    "test_hsdp_checkpoint.py": partly(["checkpoint_migration_test.CheckpointMigrationTest.test_hsdp_checkpoint_into_fsdp2"],
                                     "FSDP1 HYBRID_SHARD (FSDP2's HSDP mesh is covered), uneven HSDP"),
    "test_hugging_face_storage.py": not_applicable("needs the Hugging Face Hub (mocked upstream)"),
    "test_list_state_dict.py": covered("storage_test.StoredMetadataTest"),
    "test_list_stored_state_dict.py": covered("storage_test.StoredMetadataTest"),
    "test_metadata_warning.py": not_applicable(UNIT),
    "test_nested_dict.py": not_applicable(UNIT),
    "test_optimizer.py": not_applicable(UNIT),
    "test_optimizer_flattened_missing_state.py": not_applicable(UNIT),
    "test_optimizer_frozen_state.py": not_applicable(UNIT),
    "test_optimizer_partial_state.py": not_applicable(UNIT),
    "test_optimizer_stateless.py": not_applicable(UNIT),
    "test_pg_aware_planner.py": partly(["checkpoint_migration_test.CheckpointMigrationTest.test_save_and_load_on_a_sub_process_group"],
                                       "the process-group-aware planners (an API newer than 2.13)"),
    "test_pg_transport.py": not_covered("PGTransport send/recv of state dicts"),
    "test_planner.py": not_applicable(UNIT),
    "test_quantized_hf_storage.py": not_applicable(UNIT),
    "test_restricted_metadata_unpickler.py": partly(
        ["hostile_checkpoint_test.MetadataPickleTest"],
        "the allow-list itself (a unit test); the suite pins what a hostile .metadata does to dcp.load"),
    "test_save_load_api.py": partly(["storage_test.NoDistTest",
                                     "bad_checkpoint_test.BadCheckpointTest.test_directory_without_a_checkpoint"],
                                    "storage auto-detection from checkpoint_id beyond local paths; the 'cannot detect' error"),
    "test_shared_and_pinned_memory.py": not_applicable(CUDA),
    "test_state_dict.py": partly(
        ["dsd_api_test", "dsd_wrappers_test", "crash_regressions_test", "transformer_state_test"],
        "TP with empty parameter groups; Inductor; compiling a whole FSDP model"),
    "test_state_dict_stager.py": not_applicable(CUDA),
    "test_state_dict_utils.py": not_applicable(CUDA),
    "test_torch_save_to_dcp.py": covered("dcp_features_test.DcpFeaturesTest.test_dcp_to_torch_save_and_back",
                                         "checkpoint_migration_test.CheckpointMigrationTest.test_online_torch_save_into_fsdp2"),
    "test_tp_checkpoint.py": covered("tensor_parallel_test"),
    "test_traverse.py": not_applicable(UNIT),
    "test_utils.py": covered("save_failures_test.SaveFailuresTest.test_coordinator_rank_1_saves_a_loadable_checkpoint",
                             "checkpoint_migration_test.CheckpointMigrationTest.test_save_and_load_on_a_sub_process_group"),
}
