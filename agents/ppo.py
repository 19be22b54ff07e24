"""PPO from stable-baselines3 on the batched VecEnv, with the grid CNN."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv

from goodhart.agents.networks import GridCNN


def policy_kwargs(network: Mapping[str, Any]) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for a network config: ``channels``, ``strides``,
    ``features_dim``, on pixels ``tile`` and ``tile_channels`` (the CNN), ``net_arch``
    (hidden layers of the policy and value heads) and ``share_features`` (one CNN for both
    heads, or one each). Model files written before pixels could be trained have no ``tile``
    keys: planes need none; files written before ``share_features`` share the CNN. SB3's own
    image scaling is off: the network scales its input itself (:func:`goodhart.agents.networks.network_input`)."""
    extractor = {
        "channels": list(network["channels"]),
        "strides": list(network["strides"]),
        "features_dim": network["features_dim"],
    }
    if network.get("tile") is not None:
        extractor |= {"tile": network["tile"], "tile_channels": network["tile_channels"]}
    return {
        "features_extractor_class": GridCNN,
        "features_extractor_kwargs": extractor,
        "net_arch": list(network["net_arch"]),
        "share_features_extractor": network.get("share_features", True),
        "normalize_images": False,
    }


class GridPPO(PPO):
    """SB3's PPO, with the env's observations stored and fed to the network as the env gives
    them. Plain PPO wraps a pixel env in ``VecTransposeImage``, so the network would learn on
    channels-first pixels and then see channels-last ones from every tool that steps the env
    itself (evaluation, demos, loaded models); here the network's own input layer
    (:func:`goodhart.agents.networks.network_input`) orders and scales them, the same way
    everywhere. Load an exported pixel zip with this class to train it further on an env
    (``PPO.load(zip)`` without an env predicts on raw observations too)."""

    learn_from_rollout = True  # a level curriculum clears it for rollouts that only score levels (PLR⊥)

    def train(self) -> None:
        """PPO's update on the rollout just collected, unless a level curriculum
        (:mod:`goodhart.agents.curriculum`) played it only to score its levels."""
        if self.learn_from_rollout:
            super().train()

    @staticmethod
    def _wrap_env(env: Any, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        if not isinstance(env, VecEnv):
            raise TypeError(f"GridPPO trains on a VecEnv (goodhart.envs.make_vec), not a {type(env).__name__}")
        return env


SCHEDULE_KEYS = ("ent_coef_final", "ent_coef_anneal_steps")


def sb3_hyperparameters(ppo: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a config's ``ppo`` section that SB3's ``PPO`` takes: all of them but
    ``SCHEDULE_KEYS``, this project's entropy schedule (:class:`EntropySchedule`)."""
    return {key: value for key, value in ppo.items() if key not in SCHEDULE_KEYS}


def set_torch_threads(threads: int) -> None:
    """Pin torch's intra-op threads. Small policies run fastest with one thread per process
    on small CPUs; parallel work is better spread over processes."""
    torch.set_num_threads(threads)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one torch thread, then restore the count: rollouts of a small policy in
    batches of a few hundred observations run fastest so, and leave the other cores alone."""
    threads = torch.get_num_threads()
    set_torch_threads(1)
    try:
        yield
    finally:
        set_torch_threads(threads)


def build_ppo(
    env: VecEnv,
    *,
    ppo: Mapping[str, Any],
    network: Mapping[str, Any],
    seed: int | None,
    device: str = "cpu",
    tensorboard_log: Path | None = None,
) -> GridPPO:
    """A PPO learner on ``env`` with the hyperparameters ``ppo`` (a config's ``ppo`` section;
    its entropy schedule, if any, is the caller's :class:`EntropySchedule` callback). Without
    ``tensorboard_log`` it logs nowhere (SB3 would otherwise make an empty ``/tmp/SB3-*``
    folder at every ``learn``)."""
    model = GridPPO(
        ActorCriticPolicy,
        env,
        policy_kwargs=policy_kwargs(network),
        seed=seed,
        device=device,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        verbose=0,
        **sb3_hyperparameters(ppo),
    )
    if tensorboard_log is None:
        model.set_logger(silent_logger())
    return model


def silent_logger() -> Logger:
    """An SB3 logger that writes nothing and creates no folder."""
    return Logger(folder=None, output_formats=[])


class EntropySchedule(BaseCallback):
    """Anneals PPO's entropy coefficient linearly from ``start`` at step 0 to ``end`` at
    ``total_timesteps`` (the config's ``ent_coef_anneal_steps``, else the run's total), and
    keeps ``end`` after: a high bonus keeps early exploration from settling on a bad habit,
    a low one lets the learned policy act decisively (a racer with a high bonus to the end
    stays slow). Set before every update from the step count, so a resumed run follows the
    same schedule."""

    def __init__(self, start: float, end: float, total_timesteps: int) -> None:
        super().__init__()
        self.start, self.end, self.total = start, end, total_timesteps

    def value(self, timestep: int) -> float:
        return self.start + (self.end - self.start) * min(1.0, timestep / self.total)

    def _on_rollout_end(self) -> None:
        self.model.ent_coef = self.value(self.num_timesteps)
        self.logger.record("train/ent_coef", self.model.ent_coef)

    def _on_step(self) -> bool:
        return True
