"""A small CNN features extractor for ``(C, H, W)`` grid observations.

SB3's NatureCNN expects Atari-sized frames (8x8 stride-4 kernels need 36x36 pixels at least);
grids here are 7 to 25 cells wide, so this extractor uses 3x3 kernels with padding, and an
optional stride to shrink large agent-centred views before the linear layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class GridCNN(BaseFeaturesExtractor):
    """3x3 convolutions (``channels``, each with its ``strides`` entry) then one linear layer.

    Observations are taken as they come (planes in {0, 1}; pixels should use SB3's image
    normalization instead of this extractor).
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        channels: Sequence[int] = (16, 32),
        strides: Sequence[int] = (1, 2),
        features_dim: int = 128,
    ) -> None:
        super().__init__(observation_space, features_dim)
        if len(channels) != len(strides):
            raise ValueError(f"channels={list(channels)} and strides={list(strides)} must have the same length")
        layers: list[nn.Module] = []
        in_channels = observation_space.shape[0]
        for out_channels, stride in zip(channels, strides):
            layers += [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU()]
            in_channels = out_channels
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.cnn(torch.zeros(1, *observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations.float()))
