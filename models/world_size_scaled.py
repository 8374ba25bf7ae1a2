"""The 3-layer MLP of PyTorch's DCP FSDP optimizer-state test, scaled with the world size.

Layer widths are world_size, 2*world_size and 3*world_size, so every FSDP shard has the same
shape at any world size (the checkpoint then reshards cleanly across world sizes).
"""

import torch
import torch.nn as nn


class WorldSizeScaledModel(nn.Module):
    in_features = 8

    def __init__(self, world_size, seed=0):
        super().__init__()
        w1, w2, w3 = world_size, 2 * world_size, 3 * world_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net1 = nn.Sequential(nn.Linear(8, w1), nn.ReLU())
            self.net2 = nn.Sequential(nn.Linear(w1, w2), nn.ReLU())
            self.net3 = nn.Sequential(nn.Linear(w2, w3), nn.ReLU())

    def forward(self, x):
        return self.net3(self.net2(self.net1(x)))

    def get_input(self, device="cpu", seed=0):
        g = torch.Generator().manual_seed(seed)
        return torch.rand(8, self.in_features, generator=g).to(device)
