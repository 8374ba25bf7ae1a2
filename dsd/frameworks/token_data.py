"""Synthetic token batches for the framework families: no tokenizer, no data set, no download."""

import torch
from torch.utils.data import IterableDataset


class SyntheticTokens(IterableDataset):
    """An endless, seeded stream of (inputs, labels) token samples for data-parallel rank r of D:
    its k-th sample is global sample k * D + r, so D ranks reading b samples each read global
    samples [s * b * D, (s + 1) * b * D) at step s, at any D with the same global batch. Stateful
    (its position is the number of samples it read), so a stateful dataloader checkpoints it."""

    def __init__(self, vocab_size, seq_len, dp_rank, dp_degree, seed=1234):
        self.vocab_size, self.seq_len, self.seed = vocab_size, seq_len, seed
        self.dp_rank, self.dp_degree = dp_rank, dp_degree
        self.position = 0

    def sample(self, index):
        generator = torch.Generator().manual_seed(self.seed + index * self.dp_degree + self.dp_rank)
        tokens = torch.randint(0, self.vocab_size, (self.seq_len + 1,), generator=generator)
        return {"input": tokens[:-1]}, tokens[1:]

    def __iter__(self):
        while True:
            self.position += 1
            yield self.sample(self.position - 1)

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]
