"""The even and uneven 4-layer MLPs of PyTorch's FSDP DTensor state-dict tests.

Even: 8 -> 16 -> 32 -> 64 -> 8, every weight's first dimension divides by 2 and 4, so FSDP
shards are equal. Uneven: 5 -> 10 -> 15 -> 30 -> 5, so shards differ in size and, at world
size 4, some ranks hold empty shards. Initialisation is deterministic (seeded, without
touching the global RNG), so every rank and every rebuild starts from the same weights.
"""

import torch
import torch.nn as nn


def _build(seed, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        build()


class _DummyMLP(nn.Module):
    in_features = 0

    def forward(self, x):
        return self.net4(self.net3(self.net2(self.net1(x))))

    def get_input(self, device="cpu", seed=0):
        """A batch of in_features rows; the same on every rank for the same seed."""
        g = torch.Generator().manual_seed(seed)
        return torch.rand(self.in_features, self.in_features, generator=g).to(device)


class EvenDummyModel(_DummyMLP):
    in_features = 8

    def __init__(self, seed=0):
        super().__init__()

        def build():
            self.net1 = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
            self.net2 = nn.Sequential(nn.Linear(16, 32), nn.ReLU())
            self.net3 = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
            self.net4 = nn.Sequential(nn.ReLU(), nn.Linear(64, 8))

        _build(seed, build)


class UnevenDummyModel(_DummyMLP):
    in_features = 5

    def __init__(self, seed=0):
        super().__init__()

        def build():
            self.net1 = nn.Sequential(nn.Linear(5, 10), nn.ReLU())
            self.net2 = nn.Sequential(nn.Linear(10, 15), nn.ReLU())
            self.net3 = nn.Linear(15, 30)
            self.net4 = nn.Sequential(nn.ReLU(), nn.Linear(30, 5))

        _build(seed, build)


def dummy_model(even, seed=0):
    """EvenDummyModel if `even`, else UnevenDummyModel."""
    return EvenDummyModel(seed) if even else UnevenDummyModel(seed)
