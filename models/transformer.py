"""A tiny decoder-only transformer, shaped like the models DCP/DSD users checkpoint, with how
it is sharded (fsdp_units, tp_plan: what testing/parallelisms.parallelize asks of a model).

    model = Transformer(seed=0)                                 # deterministic, on CPU
    model = parallelisms.parallelize(model, "fsdp2", device)    # testing/parallelisms.py

Llama-like, with every state-dict feature a real model brings:
  tok_embeddings.weight   tied to output.weight (one parameter, two FQNs; state_dict() keeps both;
                          tie_weights() re-ties them, e.g. after to_empty() of a plain module)
  layers.<i>              TransformerBlock: attention_norm (RMSNorm) -> Attention (wq, wk, wv, wo)
                          -> ffn_norm (RMSNorm) -> FeedForward (SwiGLU: w1, w2, w3)
  rope.cos, rope.sin      non-persistent buffers (never in a state dict; recomputed by
                          init_buffers(), e.g. after to_empty() of a meta-device model)
  norm                    LayerNorm (weight and bias)
  softcap._extra_state    LogitSoftcap keeps its cap as extra state (get/set_extra_state, a dict),
                          and it changes the logits, so a lost extra state changes the output
Dimensions are tiny (vocab 64, dim 32, 4 heads, 2 layers) so cases run fast on CPU ranks; the
head count and widths divide by 2 and 4 (TP degrees), not by 3.
"""

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import apply_activation_checkpointing
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.tensor.parallel import ColwiseParallel
from torch.distributed.tensor.parallel import RowwiseParallel


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int = 64
    dim: int = 32
    n_layers: int = 2
    n_heads: int = 4
    ffn_hidden: int = 64
    max_seq_len: int = 16
    softcap: float = 30.0
    batch: int = 2
    seq_len: int = 8


class RMSNorm(nn.Module):

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class RotaryEmbedding(nn.Module):
    """cos/sin tables as non-persistent buffers: derived from the config, never checkpointed."""

    def __init__(self, head_dim, max_seq_len, theta=10000.0):
        super().__init__()
        self.head_dim, self.max_seq_len, self.theta = head_dim, max_seq_len, theta
        self.register_buffer("cos", torch.empty(max_seq_len, head_dim // 2), persistent=False)
        self.register_buffer("sin", torch.empty(max_seq_len, head_dim // 2), persistent=False)
        self.reset_buffers()

    def reset_buffers(self):
        device = self.cos.device
        if device.type == "meta":
            return
        freqs = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, device=device).float() / self.head_dim))
        angles = torch.outer(torch.arange(self.max_seq_len, device=device).float(), freqs)
        with torch.no_grad():
            self.cos.copy_(angles.cos())
            self.sin.copy_(angles.sin())

    def forward(self, x):
        """x: (batch, seq, heads, head_dim), rotated pairwise by position."""
        seq = x.shape[1]
        cos, sin = self.cos[:seq, None, :], self.sin[:seq, None, :]
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    """Causal multi-head attention. Under TP, wq/wk/wv are colwise (each rank holds some heads)
    and wo rowwise; the head count is derived from the local width, as in torchtitan."""

    def __init__(self, config):
        super().__init__()
        self.head_dim = config.dim // config.n_heads
        self.wq = nn.Linear(config.dim, config.dim, bias=False)
        self.wk = nn.Linear(config.dim, config.dim, bias=False)
        self.wv = nn.Linear(config.dim, config.dim, bias=False)
        self.wo = nn.Linear(config.dim, config.dim, bias=False)

    def forward(self, x, rope):
        batch, seq, _ = x.shape
        q, k, v = (w(x).view(batch, seq, -1, self.head_dim) for w in (self.wq, self.wk, self.wv))
        q, k = rope(q), rope(k)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(batch, seq, -1))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, config):
        super().__init__()
        self.w1 = nn.Linear(config.dim, config.ffn_hidden, bias=False)
        self.w2 = nn.Linear(config.ffn_hidden, config.dim, bias=False)
        self.w3 = nn.Linear(config.dim, config.ffn_hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.attention_norm = RMSNorm(config.dim)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.dim)
        self.feed_forward = FeedForward(config)

    def forward(self, x, rope):
        x = x + self.attention(self.attention_norm(x), rope)
        return x + self.feed_forward(self.ffn_norm(x))


class LogitSoftcap(nn.Module):
    """cap * tanh(logits / cap), the cap kept as extra state (a dict, not a tensor)."""

    def __init__(self, cap):
        super().__init__()
        self.cap = float(cap)

    def get_extra_state(self):
        return {"cap": self.cap}

    def set_extra_state(self, state):
        self.cap = float(state["cap"])

    def forward(self, logits):
        return self.cap * torch.tanh(logits / self.cap)


class Transformer(nn.Module):

    def __init__(self, seed=0, config=TransformerConfig()):
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
            self.rope = RotaryEmbedding(config.dim // config.n_heads, config.max_seq_len)
            # A ModuleDict keyed "0", "1", ... like torchtitan's: FQNs stay layers.<i>.*.
            self.layers = nn.ModuleDict({str(i): TransformerBlock(config) for i in range(config.n_layers)})
            self.norm = nn.LayerNorm(config.dim)
            self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
            self.softcap = LogitSoftcap(config.softcap)
            if not self.tok_embeddings.weight.is_meta:
                # Non-trivial norm parameters, so a norm's values are checked, not just its ones.
                for name, p in self.named_parameters():
                    if "norm" in name:
                        with torch.no_grad():
                            p.add_(0.1 * torch.randn_like(p))
        self.tie_weights()

    def tie_weights(self):
        """output.weight is tok_embeddings.weight. to_empty() of a plain meta-device module
        creates a parameter per module and so unties them: tie again after it."""
        self.output.weight = self.tok_embeddings.weight

    def init_buffers(self, device=None):
        """Recomputes the non-persistent buffers, e.g. after to_empty() of a meta-device model;
        with `device`, first materialises them there (if they are still on meta)."""
        if device is not None:
            self.rope.to_empty(device=device)
        self.rope.reset_buffers()

    def forward(self, tokens):
        h = self.tok_embeddings(tokens)
        for block in self.layers.values():
            h = block(h, self.rope)
        return self.softcap(self.output(self.norm(h)))

    def fsdp_units(self):
        """The blocks (whatever wraps them: checkpoint_wrapper, torch.compile): sharded before
        the root, which then holds the embedding, the final norm and the tied head."""
        return list(self.layers.values())

    def tp_plan(self):
        """Tensor parallelism per block, Megatron-style: wq/wk/wv/w1/w3 colwise, wo/w2 rowwise;
        the embedding, norms and tied head stay replicated (plain tensors)."""
        return {name: style() for name, _ in self.named_modules()
                for suffix, style in _TP_STYLES.items() if name.startswith("layers.") and name.endswith(suffix)}

    def get_input(self, device="cpu", seed=0):
        """A batch of token ids, the same on every rank for the same seed."""
        return batches(self.config, device, 1, seed)[0]


# Sharding: what this model tells testing/parallelisms.parallelize, and the wrappers applied first

_TP_STYLES = {"attention.wq": ColwiseParallel, "attention.wk": ColwiseParallel, "attention.wv": ColwiseParallel,
              "attention.wo": RowwiseParallel, "feed_forward.w1": ColwiseParallel,
              "feed_forward.w3": ColwiseParallel, "feed_forward.w2": RowwiseParallel}


def apply_ac(model):
    """Activation checkpointing per block (checkpoint_wrapper), torchtitan's "full" AC, applied
    before sharding (for FSDP1 that puts each FSDP unit inside a wrapper; see
    apply_ac_inside_fsdp1_units). Parameter FQNs gain `_checkpoint_wrapped_module.`; state-dict
    keys do not."""
    for name, block in list(model.layers.items()):
        model.layers[name] = checkpoint_wrapper(block)
    return model


def apply_ac_inside_fsdp1_units(model):
    """Activation checkpointing of an FSDP1-wrapped model, as FSDP1's docs order it: each block
    inside its FSDP unit (apply_activation_checkpointing after wrapping)."""
    apply_activation_checkpointing(model, check_fn=lambda m: isinstance(m, TransformerBlock))
    return model


def apply_compile(model, backend="eager"):
    """torch.compile per block, as torchtitan does (before sharding). Parameter FQNs gain
    `_orig_mod.`. The eager backend still runs Dynamo, which makes the wrapper and its prefix;
    it skips Inductor's code generation, which costs a minute per model on CPU ranks."""
    for name, block in list(model.layers.items()):
        model.layers[name] = torch.compile(block, backend=backend)
    return model


def next_token_loss(logits, tokens):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten())


def batches(config, device, steps, first_seed=0):
    """`steps` batches of token ids (seeds first_seed, first_seed + 1, ...), the same on every rank."""
    out = []
    for seed in range(first_seed, first_seed + steps):
        g = torch.Generator().manual_seed(seed)
        out.append(torch.randint(0, config.vocab_size, (config.batch, config.seq_len), generator=g).to(device))
    return out


def adamw(params):
    return torch.optim.AdamW(params, lr=0.01, weight_decay=0.1)


def cosine_warmup(optim, warmup=2, total=8):
    """LambdaLR: linear warm-up, then cosine decay (the usual LM schedule)."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return torch.optim.lr_scheduler.LambdaLR(optim, factor)
