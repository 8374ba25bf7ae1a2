"""torchtitan 0.3.0 on CPU ranks, driven with its own code: its model configs (debug flavours,
shrunk), ParallelDims, parallelize_* and pipeline functions, OptimizersContainer,
LRSchedulersContainer, loss, ParallelAwareDataloader and CheckpointManager. What this module adds
is what torchtitan's Trainer would do around them (its module imports the data-set and tokenizer
stack, which the framework environments leave out) and the CPU glue of titan_cpu.py.

    run = titan.build(ParallelDims(tp=2))                  # a layout named by our ParallelDims
    losses = [titan.train_step(run) for _ in range(2)]
    ckpt = titan.checkpointer(run, folder)                  # torchtitan's CheckpointManager
    ckpt.save(curr_step=2); ckpt.load(step=2)

Determinism: one layout and one seed give bitwise identical runs; DTensor's random init on CPU
meshes depends on the layout, so a resharding case loads a checkpoint rather than relying on it.
"""

import dataclasses
import importlib
import sys
import types

import torch
import torch.distributed as dist

from dsd.frameworks import titan_cpu
from dsd.frameworks.token_data import SyntheticTokens
from testing.parallelisms import ParallelDims

SEQ_LEN = 32
GLOBAL_BATCH = 4  # samples per step at every layout (local batch: GLOBAL_BATCH / data-parallel degree)
LAYERS = 2       # the debug flavours have 6; 2 keeps a step well under a second on CPU
STEPS = 8        # the LR schedule's length: equal in a run and in its resumed twin
MODELS = {"llama3": "torchtitan.models.llama3", "deepseek_v3": "torchtitan.models.deepseek_v3"}


@dataclasses.dataclass
class TrainState:
    """What torchtitan's Trainer checkpoints under "train_state" (Trainer.state_dict)."""
    step: int = 0
    ntokens_seen: int = 0

    def state_dict(self):
        return {"step": self.step, "ntokens_seen": self.ntokens_seen}

    def load_state_dict(self, state):
        self.step, self.ntokens_seen = state["step"], state["ntokens_seen"]


@dataclasses.dataclass
class Run:
    """One training job's torchtitan components."""
    dims: ParallelDims
    parallel_dims: object
    parallelism: object
    spec: object
    model_parts: list
    optimizers: object
    lr_schedulers: object
    loss_fn: object
    dataloader: object
    train_state: TrainState
    pipeline: tuple = None  # (schedule, has_first_stage, has_last_stage)
    checkpointer: object = None
    batches: object = None  # the dataloader's iterator, made at the first step (after a load)


def spmd_backend():
    """torchtitan's default backend, spmd_types; under torch 2.13 it fails in fully_shard
    (pinned by torchtitan_checkpoint_test), so there the families use partial_dtensor."""
    return "spmd_types" if not torch.__version__.startswith("2.13") else "partial_dtensor"


def parallelism_config(dims, world_size, backend=None, **options):
    """Our ParallelDims as torchtitan's ParallelismConfig: the degrees have the same names."""
    from torchtitan.config import ParallelismConfig
    d = dims.resolved(world_size)
    return ParallelismConfig(
        data_parallel_replicate_degree=d.dp_replicate, data_parallel_shard_degree=d.dp_shard,
        context_parallel_degree=d.cp, tensor_parallel_degree=d.tp, pipeline_parallel_degree=d.pp,
        expert_parallel_degree=d.ep, spmd_backend=backend or spmd_backend(), **options)


def model_spec(model, trainer_config, layers=LAYERS, converters=None):
    """The model's debug flavour from torchtitan's registry, `layers` blocks long, attention
    through SDPA (titan_cpu.sdpa_attention), updated from the job's config as the Trainer does
    (sharding plans, RoPE sized to the sequence length, MoE settings)."""
    spec = importlib.import_module(MODELS[model]).model_registry("debugmodel", converters=converters)
    spec.model.layers = spec.model.layers[:layers]
    titan_cpu.sdpa_attention(spec.model)
    spec.model.update_from_config(config=trainer_config)
    return spec


def hf_adapter(model, layers=LAYERS):
    """The model's state-dict adapter (torchtitan <-> Hugging Face names), as the Trainer builds it."""
    spec = importlib.import_module(MODELS[model]).model_registry("debugmodel")
    spec.model.layers = spec.model.layers[:layers]
    return spec.state_dict_adapter(spec.model, None)


# Why torchtitan.trainer does not import here: the Trainer's metrics, tokenizer and data-set
# stack, which frameworks.excludes leaves out of the environments.
_TRAINER_ONLY = {"tensorboard", "tokenizers", "datasets", "wandb", "PIL"}


def trainer_config(training, parallelism, debug):
    """A Trainer.Config for Decoder.Config.update_from_config, which imports torchtitan.trainer
    and, given a Trainer.Config, sizes RoPE to the sequence length and sets the MoE debug flags.
    Where the module cannot import for want of its data stack only, a stand-in module whose
    Trainer.Config holds the three fields update_from_config reads."""
    try:
        from torchtitan.trainer import Trainer
    except ModuleNotFoundError as e:
        if e.name.split(".")[0] not in _TRAINER_ONLY:
            raise
        Trainer = types.SimpleNamespace(Config=type("Config", (), {}))
        sys.modules["torchtitan.trainer"] = types.ModuleType("torchtitan.trainer")
        sys.modules["torchtitan.trainer"].Trainer = Trainer
    config = Trainer.Config()
    config.training, config.parallelism, config.debug = training, parallelism, debug
    return config


def build(dims, model="llama3", layers=LAYERS, seed=0, backend=None, ac=None, compile_model=False,
          converters=None, fresh_meshes=False, **parallelism):
    """torchtitan's model, parallelised as `dims` over every rank, with its optimizer, LR
    schedule, loss and dataloader, as Trainer.__init__ builds them."""
    from torchtitan.components.loss import CrossEntropyLoss
    from torchtitan.components.optimizer import LRSchedulersContainer, default_adamw
    from torchtitan.config import CompileConfig, DebugConfig, TrainingConfig
    from torchtitan.distributed import utils as dist_utils

    titan_cpu.use_cpu()
    config = parallelism_config(dims, dist.get_world_size(), backend, **parallelism)
    parallel_dims = _parallel_dims(config, fresh_meshes)
    dist_utils.set_spmd_backend(config.spmd_backend)
    debug = DebugConfig(seed=seed)
    dist_utils.set_determinism(parallel_dims, torch.device("cpu"), debug, distinct_seed_mesh_dims=["pp"])
    training = TrainingConfig(local_batch_size=local_batch(parallel_dims), seq_len=SEQ_LEN, steps=STEPS,
                              mixed_precision_param="float32", disable_cuda_graphs=True)
    spec = model_spec(model, trainer_config(training, config, debug), layers, converters)
    compile_config = CompileConfig(enable=compile_model, components=["model"])
    loss_fn = CrossEntropyLoss.Config(global_vocab_size=spec.model.vocab_size).build(compile_config=compile_config)
    parts = dict(parallel_dims=parallel_dims, training=training, parallelism=config,
                 compile_config=compile_config, ac_config=ac, dump_folder="")
    model_parts, pipeline = _parallelized(spec, parts, loss_fn)
    optimizers = default_adamw(lr=8e-4).build(model_parts=model_parts)
    if spec.post_optimizer_build_fn is not None:
        spec.post_optimizer_build_fn(optimizers, model_parts, parallel_dims)
    lr_schedulers = LRSchedulersContainer.Config(warmup_steps=2, decay_ratio=0.5).build(
        optimizers=optimizers, training_steps=STEPS)
    return Run(dims, parallel_dims, config, spec, model_parts, optimizers, lr_schedulers, loss_fn,
               _dataloader(parallel_dims, spec, config), TrainState(), pipeline)


_MESHES = {}


def _parallel_dims(config, fresh=False):
    """torchtitan's ParallelDims for `config`, its meshes built once per process and layout, as
    a Trainer builds them once per job: under spmd_types, fully_shard rejects a second set of
    meshes for the same layout in one process ("Expected param's DTensor mesh to be the same mesh
    passed to fully_shard"; pinned by torchtitan_checkpoint_test)."""
    from torchtitan.distributed import ParallelDims as TitanDims
    dims = TitanDims.from_config(config, dist.get_world_size())
    key = (dims.dp_replicate, dims.dp_shard, dims.cp, dims.tp, dims.pp, dims.ep, dims.spmd_backend)
    if fresh or key not in _MESHES:
        dims.build_mesh()
        if fresh:
            return dims
        _MESHES[key] = dims
    return _MESHES[key]


def _parallelized(spec, parts, loss_fn):
    """(model parts, pipeline or None): the model built on meta, parallelised (or split into
    pipeline stages) by torchtitan's functions, then materialised and initialised on CPU."""
    from torchtitan.config import TORCH_DTYPE_MAP
    from torchtitan.tools import utils

    with torch.device("meta"), utils.set_default_dtype(TORCH_DTYPE_MAP["float32"]):
        model = spec.model.build()
    pipeline = None
    if parts["parallel_dims"].pp_enabled:
        schedule, model_parts, first, last = spec.pipelining_fn(
            model, device=torch.device("cpu"), model_config=spec.model, parallelize_fn=spec.parallelize_fn,
            loss_fn=loss_fn, **parts)
        pipeline = (schedule, first, last)
    else:
        model_parts = [spec.parallelize_fn(model, **parts)]
    for part in model_parts:
        part.to_empty(device="cpu")
        with torch.no_grad():
            part.init_weights(buffer_device=None)
        part.train()
    titan_cpu.sum_reductions(model_parts)
    return model_parts, pipeline


def data_parallel(parallel_dims):
    """(degree, rank) of this rank on the data-parallel ("batch") mesh."""
    if not parallel_dims.dp_enabled:
        return 1, 0
    mesh = parallel_dims.get_mesh("batch")
    return mesh.size(), mesh.get_local_rank()


def local_batch(parallel_dims):
    return GLOBAL_BATCH // data_parallel(parallel_dims)[0]


def _dataloader(parallel_dims, spec, config):
    from torchtitan.components.dataloader import ParallelAwareDataloader
    degree, rank = data_parallel(parallel_dims)
    batch = config.pipeline_parallel_microbatch_size if parallel_dims.pp_enabled else local_batch(parallel_dims)
    return ParallelAwareDataloader(SyntheticTokens(spec.model.vocab_size, SEQ_LEN, rank, degree),
                                   dp_rank=rank, dp_world_size=degree, batch_size=batch)


def checkpointer(run, folder, **options):
    """torchtitan's CheckpointManager over the run's state (as Trainer.__init__ builds it);
    `options` are CheckpointManager.Config fields (async_mode, last_save_model_only, ...)."""
    from torchtitan.components.checkpoint import CheckpointManager
    adapter = run.spec.state_dict_adapter(run.spec.model, None)
    config = CheckpointManager.Config(enable=True, folder=folder, **options)
    run.checkpointer = config.build(dataloader=run.dataloader, model_parts=run.model_parts,
                                    optimizers=run.optimizers, lr_schedulers=run.lr_schedulers,
                                    states={"train_state": run.train_state}, sd_adapter=adapter)
    return run.checkpointer
