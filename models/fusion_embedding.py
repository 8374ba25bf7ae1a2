"""FusionEmbedding fixtures: an embedding fused with a second one, as in torchtune.

Three variants, as in PyTorch's common_state_dict.py:
  FusionEmbedding               plain: state dict keys embedding.weight, fusion_embedding.weight
  FusionEmbeddingWithHook       state-dict hooks rename embedding.weight <-> weight, so the
                                checkpoint keeps the pre-fusion key
  FusionEmbeddingWithModifier   the hooks plus _fqn_modifiers(), the contract through which
                                DSD maps the renamed key back to the parameter's FQN
EmbeddingModel wraps one of them with a projection, for training steps.
"""

import torch
import torch.nn as nn


class FusionEmbedding(nn.Module):

    def __init__(self, vocab_size, fusion_vocab_size, embed_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.fusion_embedding = nn.Embedding(fusion_vocab_size, embed_dim)
        self.vocab_size = vocab_size

    def forward(self, ids):
        is_fusion = ids >= self.vocab_size
        out = self.embedding(torch.where(is_fusion, 0, ids))
        fused = self.fusion_embedding(torch.where(is_fusion, ids - self.vocab_size, 0))
        return torch.where(is_fusion.unsqueeze(-1), fused, out)


class FusionEmbeddingWithHook(FusionEmbedding):

    def __init__(self, vocab_size, fusion_vocab_size, embed_dim):
        super().__init__(vocab_size, fusion_vocab_size, embed_dim)
        self._register_state_dict_hook(FusionEmbeddingWithHook._state_dict_hook)
        self._register_load_state_dict_pre_hook(FusionEmbeddingWithHook._load_state_dict_hook, with_module=True)

    def _state_dict_hook(self, destination, prefix, keep_vars):
        """Saves embedding.weight as `weight`, its name before the fusion."""
        destination[prefix + "weight"] = destination.pop(prefix + "embedding.weight")

    def _load_state_dict_hook(self, state_dict, prefix, *args, **kwargs):
        """Maps `weight` back to embedding.weight before loading."""
        if state_dict and prefix + "weight" in state_dict:
            state_dict[prefix + "embedding.weight"] = state_dict.pop(prefix + "weight")


class FusionEmbeddingWithModifier(FusionEmbeddingWithHook):

    def _fqn_modifiers(self):
        """DSD contract: state dict key `weight` lives in submodule `embedding`."""
        return {"weight": "embedding"}


VARIANTS = {
    "plain": FusionEmbedding,
    "hook": FusionEmbeddingWithHook,
    "modifier": FusionEmbeddingWithModifier,
}


class EmbeddingModel(nn.Module):
    """tok (a FusionEmbedding variant) -> proj; deterministic init."""

    vocab_size, fusion_vocab_size, embed_dim = 16, 8, 12

    def __init__(self, variant="plain", seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.tok = VARIANTS[variant](self.vocab_size, self.fusion_vocab_size, self.embed_dim)
            self.proj = nn.Linear(self.embed_dim, 4)

    def forward(self, ids):
        return self.proj(self.tok(ids))

    def get_input(self, device="cpu", seed=0):
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, self.vocab_size + self.fusion_vocab_size, (4, 6), generator=g).to(device)
