"""A language-model-shaped fixture whose output projection shares the embedding's weight."""

import torch
import torch.nn as nn


class TiedEmbeddingModel(nn.Module):
    """embed -> linear -> lm_head, with lm_head.weight tied to embed.weight."""

    vocab_size, dim = 16, 8

    def __init__(self, seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embed = nn.Embedding(self.vocab_size, self.dim)
            self.hidden = nn.Linear(self.dim, self.dim)
            self.lm_head = nn.Linear(self.dim, self.vocab_size, bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, ids):
        return self.lm_head(torch.relu(self.hidden(self.embed(ids))))

    def get_input(self, device="cpu", seed=0):
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, self.vocab_size, (4, 5), generator=g).to(device)
