"""PPO from stable-baselines3 on the batched VecEnv, with the grid CNN."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv

from goodhart.agents.networks import GridCNN


def policy_kwargs(network: Mapping[str, Any]) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for a network config: ``channels``, ``strides``,
    ``features_dim`` (the CNN) and ``net_arch`` (hidden layers of the policy and value heads)."""
    return {
        "features_extractor_class": GridCNN,
        "features_extractor_kwargs": {
            "channels": list(network["channels"]),
            "strides": list(network["strides"]),
            "features_dim": network["features_dim"],
        },
        "net_arch": list(network["net_arch"]),
        "normalize_images": False,
    }


def set_torch_threads(threads: int) -> None:
    """Pin torch's intra-op threads. Small policies run fastest with one thread per process
    on small CPUs; parallel work is better spread over processes."""
    torch.set_num_threads(threads)


def build_ppo(
    env: VecEnv,
    *,
    ppo: Mapping[str, Any],
    network: Mapping[str, Any],
    seed: int,
    device: str = "cpu",
    tensorboard_log: Path | None = None,
) -> PPO:
    """A PPO learner on ``env`` with the hyperparameters ``ppo`` (SB3's own names). Without
    ``tensorboard_log`` it logs nowhere (SB3 would otherwise make an empty ``/tmp/SB3-*``
    folder at every ``learn``)."""
    model = PPO(
        ActorCriticPolicy,
        env,
        policy_kwargs=policy_kwargs(network),
        seed=seed,
        device=device,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        verbose=0,
        **dict(ppo),
    )
    if tensorboard_log is None:
        model.set_logger(silent_logger())
    return model


def silent_logger() -> Logger:
    """An SB3 logger that writes nothing and creates no folder."""
    return Logger(folder=None, output_formats=[])
