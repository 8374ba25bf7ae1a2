"""What torchtitan 0.3.0 needs to train on CPU ranks (gloo): three settings, each the smallest
that works, none of which changes the arithmetic of a step.

    use_cpu()                torchtitan's device is "cuda" on a host without an accelerator
    sdpa_attention(config)   FlexAttention cannot run a backward pass on CPU
    sum_reductions(parts)    FSDP2 reduce-scatters with PREMUL_SUM, which gloo lacks
"""

import sys

import torch
from torch.distributed.fsdp import FSDPModule

# The modules that copy torchtitan.tools.utils.device_type when imported.
_DEVICE_TYPE_USERS = ("torchtitan.tools.utils", "torchtitan.distributed.parallel_dims",
                      "torchtitan.distributed.utils", "torchtitan.models.common.token_dispatcher")


def use_cpu():
    """torchtitan.tools.utils sets device_type = _get_available_device_type() or "cuda" at import,
    and ParallelDims.build_mesh builds its DeviceMesh on it: on a CPU host every mesh would be a
    CUDA one. The rank worker already initialised the default process group (gloo)."""
    for name in _DEVICE_TYPE_USERS:
        __import__(name)
        module = sys.modules[name]
        if getattr(module, "device_type", "cpu") != "cpu":
            module.device_type, module.device_module = "cpu", torch.cpu
    # torchtitan.distributed.utils.init_distributed does this (spmd_types with activation checkpointing).
    torch.autograd.set_multithreading_enabled(False)


def sdpa_attention(model_config):
    """Every FlexAttention of the model config becomes torchtitan's ScaledDotProductAttention
    (causal, maskless: each sample is one document). FlexAttention raises "FlexAttention does
    not support backward on CPU" (torch/nn/attention/flex_attention.py), and torchtitan's
    registries no longer accept attn_backend="sdpa"."""
    from torchtitan.models.common.attention import FlexAttention
    from torchtitan.models.common.attention import ScaledDotProductAttention
    swaps = list(model_config.traverse(FlexAttention.Config))
    for _, _, parent, attr in swaps:
        if isinstance(parent, list):
            parent[attr] = ScaledDotProductAttention.Config()
        else:
            setattr(parent, attr, ScaledDotProductAttention.Config())
    if not swaps:
        raise AssertionError("the model config has no FlexAttention to replace: torchtitan changed its default")


def sum_reductions(model_parts):
    """torchtitan sets gradient_divide_factor=1.0 on every FSDP module (distributed/fsdp.py), so
    FSDP2 reduce-scatters with ReduceOp.PREMUL_SUM(1.0), which gloo rejects ("Cannot use
    ReduceOp.PREMUL_SUM with Gloo"). Forcing plain SUM collectives (a public FSDP2 API) is the
    same arithmetic: the factor is 1."""
    for part in model_parts:
        for module in part.modules():
            if isinstance(module, FSDPModule):
                module.set_force_sum_reduction_for_comms(True)
