"""One training step of a titan.Run, as torchtitan 0.3.0's Trainer.train_step takes it (its
forward_backward_step, pp_forward_backward_step and post_dataloading_process), for one
gradient-accumulation step, with the global loss every rank agrees on."""

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor


def train_step(run):
    """Zero grads, forward and backward over this step's microbatches, clip, optimizer and LR
    steps, as the Trainer does; returns the step's global loss (the same float on every rank)."""
    from torchtitan.components.loss import IGNORE_INDEX
    from torchtitan.distributed import utils as dist_utils

    dims = run.parallel_dims
    if run.batches is None:  # made at the first step, so that a checkpoint load comes before it
        run.batches = iter(run.dataloader)
    run.optimizers.zero_grad()
    microbatches = [next(run.batches) for _ in range(_microbatch_count(run))]
    local_tokens = sum((labels != IGNORE_INDEX).sum() for _, labels in microbatches)
    global_tokens = dist_utils.dist_sum_tensor(local_tokens, dims.get_mesh("batch")) if dims.dp_enabled else local_tokens
    run.train_state.ntokens_seen += sum(labels.numel() for _, labels in microbatches)
    batches = [_model_inputs(run, *mb) for mb in microbatches]
    with dist_utils.get_spmd_context(parallel_dims=dims)():
        loss = _pipeline_step(run, batches, global_tokens) if run.pipeline else _forward_backward(run, *batches[0], global_tokens)
    dist_utils.clip_grad_norm_([p for m in run.model_parts for p in m.parameters()], 1.0, foreach=True,
                               pp_mesh=dims.get_optional_mesh("pp"), ep_enabled=dims.ep_enabled)
    if run.checkpointer is not None:
        run.checkpointer.maybe_wait_for_staging()
    run.optimizers.step()
    run.lr_schedulers.step()
    run.train_state.step += 1
    return _global_loss(run, loss)


def _microbatch_count(run):
    if not run.pipeline:
        return 1
    from dsd.frameworks.titan import local_batch
    return local_batch(run.parallel_dims) // run.parallelism.pipeline_parallel_microbatch_size


def _model_inputs(run, input_dict, labels):
    """(inputs, labels, model kwargs): Trainer.post_dataloading_process for a maskless attention."""
    inputs, kwargs = input_dict["input"], {k: v for k, v in input_dict.items() if k != "input"}
    if run.parallelism.spmd_backend == "spmd_types":
        from torchtitan.distributed.spmd_types import annotate_input_spmd_types
        return annotate_input_spmd_types(run.parallel_dims, inputs, labels, kwargs)
    return inputs, labels, kwargs


def _forward_backward(run, inputs, labels, kwargs, global_tokens):
    import spmd_types
    pred = run.model_parts[0](inputs, **kwargs)
    loss, _ = run.loss_fn(pred, labels, global_tokens)
    del pred
    with spmd_types.no_typecheck():
        loss.backward()
    return loss


def _pipeline_step(run, batches, global_tokens):
    """Trainer.pp_forward_backward_step: the schedule runs every microbatch through the stages."""
    schedule, first, last = run.pipeline
    losses = [] if last else None
    schedule.step(arg_mbs=[(inputs,) for inputs, _, _ in batches] if first else None,
                  kwarg_mbs=[kwargs for _, _, kwargs in batches],
                  target_mbs=[labels for _, labels, _ in batches] if last else None,
                  losses=losses, loss_kwargs={"global_valid_tokens": global_tokens}, return_outputs=False)
    return torch.sum(torch.stack(losses)) if last else torch.zeros(())


def _global_loss(run, loss):
    """The loss the Trainer logs (a sum over the loss mesh), on every rank: a pipeline's last
    stage holds it, so the pp mesh sums it first (the other stages contribute 0)."""
    from torchtitan.distributed import utils as dist_utils
    loss = loss.detach()
    loss = (loss.full_tensor() if isinstance(loss, DTensor) else loss).reshape(()).to(torch.float32).clone()
    dims = run.parallel_dims
    if dims.pp_enabled:
        dist.all_reduce(loss, group=dims.get_mesh("pp").get_group())
    if dims.dp_cp_enabled:
        return float(dist_utils.dist_sum(loss, dims.get_optional_mesh("loss")))
    return float(loss)
