"""A small CNN features extractor for grid observations, symbolic planes or pixels.

SB3's NatureCNN expects Atari-sized frames (8x8 stride-4 kernels need 36x36 pixels at least);
grids here are 7 to 25 cells wide, so this extractor uses 3x3 kernels with padding, and an
optional stride to shrink large agent-centred views before the linear layer. On pixels, a
first convolution whose kernel and stride are one grid cell (``tile`` pixels) turns every
cell into a feature vector, and the 3x3 layers then work on cells as they do on planes.

:func:`network_input` is the one place that says how an env observation becomes the
network's input; it runs inside the network, so training, evaluation, loaded model files and
SB3 zips all feed the env's observations unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


def is_pixel_space(space: spaces.Box) -> bool:
    """Whether observations are pixels, ``(H, W, 3)`` uint8 in [0, 255] (``obs_mode="rgb"``),
    rather than ``(C, H, W)`` planes in {0, 1}."""
    return (
        len(space.shape) == 3
        and space.shape[-1] == 3
        and space.dtype == np.uint8
        and bool(np.all(space.high == 255))
    )


def network_input(observations: torch.Tensor, pixels: bool) -> torch.Tensor:
    """A batch of env observations as the network's float input ``(N, C, H, W)``: planes
    ``(N, C, H, W)`` in {0, 1} as they are; pixels ``(N, H, W, 3)`` in [0, 255] channels
    first, scaled to [0, 1] (unscaled pixels make the first layer's activations 255 times
    those of planes, and PPO's learning rate too large for them)."""
    x = observations.float()
    if pixels:
        x = x.permute(0, 3, 1, 2) / 255.0
    return x


class GridCNN(BaseFeaturesExtractor):
    """On pixels, a ``tile`` x ``tile`` stride-``tile`` convolution to ``tile_channels``
    (one output per grid cell when ``tile`` is the env's ``rgb_tile``); then 3x3 convolutions
    (``channels``, each with its ``strides`` entry) and one linear layer."""

    def __init__(
        self,
        observation_space: spaces.Box,
        channels: Sequence[int] = (16, 32),
        strides: Sequence[int] = (1, 2),
        features_dim: int = 128,
        tile: int | None = None,
        tile_channels: int = 16,
    ) -> None:
        super().__init__(observation_space, features_dim)
        if len(channels) != len(strides):
            raise ValueError(f"channels={list(channels)} and strides={list(strides)} must have the same length")
        self.pixels = is_pixel_space(observation_space)
        if self.pixels and tile is None:
            raise ValueError(f"pixel observations {observation_space.shape} need tile= (the pixels per grid cell)")
        if not self.pixels and tile is not None:
            raise ValueError(f"tile={tile} is for pixel observations; {observation_space.shape} are planes")
        layers: list[nn.Module] = []
        in_channels = observation_space.shape[-1] if self.pixels else observation_space.shape[0]
        if tile is not None:
            layers += [nn.Conv2d(in_channels, tile_channels, tile, stride=tile), nn.ReLU()]
            in_channels = tile_channels
        for out_channels, stride in zip(channels, strides):
            layers += [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU()]
            in_channels = out_channels
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            sample = network_input(torch.zeros(1, *observation_space.shape), self.pixels)
            flat = self.cnn(sample).shape[1]
        self.linear = nn.Sequential(nn.Linear(flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(network_input(observations, self.pixels)))
