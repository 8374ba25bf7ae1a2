"""torchtitan's CheckpointManager on its own models and layouts: a job resumed in a fresh launch
equals one that never stopped (model, optimizer, LR schedule, train state and dataloader
position), and the checkpoint modes users switch on.

Each target runs two launches (phases) on one TEST_TMPDIR (dist_py_test(phases = [[2, 2]])):
phase 0 trains N + K steps, checkpointing at step N as torchtitan's Trainer does, and keeps its
losses and full states as the reference; phase 1 is the restarted job: it loads the latest
checkpoint and trains K steps. Everything is torchtitan's own code (titan.py says which parts
are glue); the module imports torchtitan lazily, so tools/catalogue.py can plan its cases in an
environment without it.
"""

import os

import safetensors
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from absl.testing import parameterized

from dsd.frameworks import titan
from dsd.frameworks.titan_checks import TitanCase
from dsd.frameworks.titan_checks import build
from dsd.frameworks.titan_checks import full_state
from dsd.frameworks.titan_checks import position
from testing.known_failures import known_failure
from testing.parallelisms import LAYOUTS
from testing.parallelisms import ParallelDims

SAVE_AT, MORE = 3, 2  # N steps, checkpoint, K more
PP = ParallelDims(dp_shard=1, pp=2)
EP = ParallelDims(ep=2)
RESUMES = (
    ("fsdp2", LAYOUTS["fsdp2"].dims, "llama3", {}),
    ("tp", LAYOUTS["tp"].dims, "llama3", {}),
    ("moe_fsdp2_ep2", EP, "deepseek_v3", {}),
    ("fsdp2_async_save", LAYOUTS["fsdp2"].dims, "llama3", {"async_mode": "async"}),
)


class ResumeTest(TitanCase):

    def check_resume(self, dims, model, parallelism=None, **options):
        """Phase 0: N + K steps, saving at N (interval N); phase 1: load the latest step, K steps.
        The restored state equals the saved one and the resumed run the uninterrupted one, bitwise."""
        path = self.checkpoint_dir()
        run = build(dims, model=model, seed=0 if self.phase == 0 else 7, **(parallelism or {}))
        checkpointer = titan.checkpointer(run, path, interval=SAVE_AT, **options)
        if self.phase == 0:
            before = self.train(run, SAVE_AT, checkpointer)
            checkpointer.maybe_wait_for_saving()
            saved = full_state(run)
            after = self.train(run, MORE, checkpointer)
            checkpointer.close()
            self.save_reference(path, saved=saved, losses=after, final=full_state(run), position=position(run))
            self.assertEqual(len(before), SAVE_AT)
            return
        loaded = checkpointer.load(step=-1)
        restored = full_state(run)
        losses = self.train(run, MORE)
        checkpointer.close()
        reference = self.reference(path)
        self.assertTrue(loaded, "CheckpointManager.load found no checkpoint")
        self.assert_same_state(reference["saved"], restored, f"restored at step {SAVE_AT}")
        self.assert_losses(reference["losses"], losses, "the resumed run")
        self.assert_same_state(reference["final"], full_state(run), "after the resumed steps")
        self.assertEqual(reference["position"], position(run), "dataloader position (samples read by this rank)")

    @parameterized.named_parameters(*RESUMES)
    def test_resume_equals_uninterrupted_run(self, dims, model, options):
        self.check_resume(dims, model, **options)

    @known_failure(ValueError, r"Expecting \d+ arg_mbs but got 1",
                   "torchtitan 0.3.0 drives the pipeline schedule with schedule.step(arg_mbs=, kwarg_mbs=, "
                   "target_mbs=) (Trainer.pp_forward_backward_step), an API torch 2.13's schedules lack: the "
                   "keyword arguments reach the stage as one microbatch's inputs",
                   raised_in="torch/distributed/pipelining/schedules.py", torch_versions="2.13")
    def test_pipeline_resume_equals_uninterrupted_run(self):
        """Two stages, 1F1B over 4 microbatches (torchtitan's pipeline_llm)."""
        self.check_resume(PP, "llama3", parallelism={"pipeline_parallel_schedule": "1F1B"})


class CheckpointModesTest(TitanCase):

    def test_model_only_last_save_in_export_dtype(self):
        """save(last_step=True) with last_save_model_only and export_dtype=bfloat16 writes the
        model alone, in bfloat16; a fresh job (phase 1) starts from it through initial_load_path."""
        path = self.checkpoint_dir()
        export = os.path.join(path, "export")
        if self.phase == 0:
            run = build(LAYOUTS["fsdp2"].dims)
            self.train(run, 2)
            model = full_state(run, model_only=True)
            checkpointer = titan.checkpointer(run, export, last_save_model_only=True, export_dtype="bfloat16")
            checkpointer.save(curr_step=2, last_step=True)
            checkpointer.close()
            self.save_reference(path, model=model)
            return
        expected = {k: v.to(torch.bfloat16) for k, v in self.reference(path)["model"].items()}
        stored = dcp.FileSystemReader(os.path.join(export, "step-2")).read_metadata().state_dict_metadata
        self.assertEqual(sorted(expected), sorted(stored), "the model-only checkpoint holds the model's FQNs only")
        for fqn, meta in stored.items():
            self.assertEqual(meta.properties.dtype, torch.bfloat16, f"{fqn}: stored dtype")
        run = build(LAYOUTS["fsdp2"].dims, seed=7)
        checkpointer = titan.checkpointer(run, os.path.join(path, "fresh_job"), initial_load_path=os.path.join(export, "step-2"))
        self.assertTrue(checkpointer.load(), "initial_load_path was not loaded")
        loaded = {k: v.to(torch.bfloat16) for k, v in full_state(run, model_only=True).items()}
        self.assert_same_state(expected, loaded, "a new job started from the export")
        self.assertEqual(run.train_state.step, 0, "a model-only initial load leaves the train state alone")

    def test_hf_export_reads_back_with_safetensors(self):
        """last_save_in_hf writes HF safetensors through the model's state-dict adapter; phase 1
        (a plain process) reads them with safetensors and maps them back with the adapter."""
        path = self.checkpoint_dir()
        if self.phase == 0:
            run = build(LAYOUTS["fsdp2"].dims)
            self.train(run, 1)
            checkpointer = titan.checkpointer(run, os.path.join(path, "hf"), last_save_in_hf=True)
            checkpointer.save(curr_step=1, last_step=True)
            checkpointer.close()
            self.save_reference(path, model=full_state(run, model_only=True))
            return
        files = sorted(f for f in os.listdir(os.path.join(path, "hf", "step-1")) if f.endswith(".safetensors"))
        hf = {}
        for name in self.nonempty(files, "safetensors files"):
            with safetensors.safe_open(os.path.join(path, "hf", "step-1", name), framework="pt") as f:
                hf.update({key: f.get_tensor(key) for key in f.keys()})
        self.assertIn("model.embed_tokens.weight", hf, "HF key names")
        adapter = titan.hf_adapter("llama3")
        self.assert_same_state(self.reference(path)["model"], adapter.from_hf(hf), "read back from HF safetensors")


class LayoutsOnCpuTest(TitanCase):
    """Layouts and modes torchtitan 0.3.0 cannot run on CPU ranks, pinned with the error users get."""

    @known_failure(NotImplementedError, r"aten\._scaled_dot_product_flash_attention_for_cpu\.default does not have a "
                   r"sharding strategy registered",
                   "context parallel on CPU: torch's ring attention shards only the CUDA SDPA kernels (flash, "
                   "efficient, cuDNN), so the CPU flash kernel gets no DTensor sharding strategy (FlexAttention, "
                   "the other CP backend, cannot run a backward pass on CPU)",
                   raised_in="torch/distributed/tensor/_sharding_prop.py")
    def test_context_parallel_step(self):
        run = build(ParallelDims(dp_shard=1, cp=2), backend="partial_dtensor")
        self.train(run, 1)

    @known_failure(AssertionError, r"Non-blocking copy requires that the current accelerator is available",
                   "async_mode='async_with_pinned_mem' stages through DefaultStager with non-blocking copies, "
                   "which need an accelerator: on CPU ranks the checkpointer cannot save",
                   raised_in="torch/distributed/checkpoint/staging.py:__init__")
    def test_pinned_memory_async_save(self):
        run = build(LAYOUTS["fsdp2"].dims)
        checkpointer = titan.checkpointer(run, self.checkpoint_dir(f"phase{self.phase}"), interval=1,
                                          async_mode="async_with_pinned_mem")
        self.train(run, 1, checkpointer)

    @known_failure(ValueError, r"When dp_mesh_dims is provided, all parameters must be DTensors on the full SPMD mesh",
                   "torchtitan 0.3.0's default spmd_backend='spmd_types' cannot shard with torch 2.13's fully_shard "
                   "(its parameters reach fully_shard as plain tensors); the families use partial_dtensor there",
                   raised_in="torch/distributed/fsdp/_fully_shard/_fsdp_param.py", torch_versions="2.13")
    def test_default_spmd_backend_shards(self):
        run = build(LAYOUTS["fsdp2"].dims, backend="spmd_types")
        self.assertTrue(self.train(run, 1)[0] > 0, "the loss of a step")

    @known_failure(ValueError, r"Expected param's DTensor mesh to be the same mesh passed to fully_shard",
                   "a second torchtitan job in one process (a new ParallelDims and its meshes, e.g. a reference "
                   "model beside the trained one) cannot be sharded under spmd_types: the parameters keep the "
                   "first job's mesh (titan.py reuses one ParallelDims per layout)",
                   raised_in="torch/distributed/fsdp/_fully_shard/_fsdp_param.py:_init_sharding_spec_spmd",
                   torch_versions="2.14")
    def test_second_job_in_one_process(self):
        build(LAYOUTS["fsdp2"].dims)
        build(LAYOUTS["fsdp2"].dims, fresh_meshes=True)

    @known_failure(AssertionError, r"dataloader resharding is not supported yet",
                   "torchtitan's ParallelAwareDataloader state cannot be loaded at another data-parallel degree "
                   "(torchtitan #811): a job resharded from 2 data-parallel ranks to 1 must exclude_from_loading "
                   "the dataloader",
                   raised_in="torchtitan/components/dataloader.py:load_state_dict")
    def test_dataloader_state_at_another_data_parallel_degree(self):
        path = self.checkpoint_dir(f"phase{self.phase}")
        run = build(LAYOUTS["fsdp2"].dims)
        checkpointer = titan.checkpointer(run, path, interval=1)
        self.train(run, 1, checkpointer)
        checkpointer.close()
        run = build(LAYOUTS["tp"].dims)  # dp degree 1
        titan.checkpointer(run, path).load(step=1)

    def test_activation_checkpointing_and_compile_keys(self):
        """Selective AC and per-block torch.compile wrap the blocks; the checkpoint keeps the
        plain model's FQNs, and a job without them (phase 1) loads it."""
        from torchtitan.distributed.activation_checkpoint import SelectiveAC
        path = self.checkpoint_dir()
        if self.phase == 0:
            run = build(LAYOUTS["fsdp2"].dims, ac=SelectiveAC.Config(), compile_model=True)
            wrapped = [n for n, _ in run.model_parts[0].named_parameters() if "_checkpoint_wrapped_module" in n]
            self.nonempty(wrapped, "parameters under activation checkpointing")
            titan.checkpointer(run, path, interval=1).save(curr_step=1)
            self.save_reference(path, model=full_state(run, model_only=True))
            return
        stored = dcp.FileSystemReader(os.path.join(path, "step-1")).read_metadata().state_dict_metadata
        wrappers = [k for k in stored if "_orig_mod" in k or "_checkpoint_wrapped_module" in k]
        self.assertEqual(wrappers, [], "wrapper names in the stored FQNs")
        run = build(LAYOUTS["fsdp2"].dims, seed=7)
        self.assertTrue(titan.checkpointer(run, path).load(step=1), "no checkpoint loaded")
        self.assert_same_state(self.reference(path)["model"], full_state(run, model_only=True), "loaded without AC and compile")
