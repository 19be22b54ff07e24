"""A batched policy driving a core directly, on levels given by seed.

The vector views (:mod:`~goodhart.envs.core.autoreset`) reset a copy inside the step that ends
its episode, which is what training wants. Figures and data sets want to look at the core
*between* the step and the reset (the agent's last cell, the episode's outcome, a rater's view
of the step) or want no reset at all (one episode per level). :func:`rollout` steps the core
and hands each step over before it resets anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.utils import seeding

from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.grid import GridCore, Levels


def reset_levels(core: GridCore, seeds: Sequence[int]) -> list[np.random.Generator]:
    """Start copy ``i`` of ``core`` on the level ``gym.make(...).reset(seed=seeds[i])`` gives
    (a seed may repeat). Returns the copies' generators, which draw their next levels."""
    if len(seeds) != core.num_envs:
        raise ValueError(f"{len(seeds)} seeds for a core of {core.num_envs} copies")
    rngs = [seeding.np_random(int(seed))[0] for seed in seeds]
    core.reset(range(core.num_envs), rngs)
    return rngs


@dataclass(frozen=True)
class Step:
    """One step of every copy, before any copy is reset.

    Attributes:
        obs: (N, ...) the observations the actions were taken from (a fresh numpy array).
        actions: (N,) int64.
        reward, true_reward: (N,) the proxy and the true objective of this step.
        terminated, truncated: (N,) bool.
        live: (N,) bool, the copies whose episode this step belongs to: all of them with
            auto-reset; otherwise those whose one episode had not ended before this step.
    """

    obs: np.ndarray
    actions: np.ndarray
    reward: np.ndarray
    true_reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    live: np.ndarray

    @property
    def ended(self) -> np.ndarray:
        """(N,) bool, the live copies whose episode ended in this step."""
        return (self.terminated | self.truncated) & self.live


def rollout(
    core: GridCore, act: Callable[[np.ndarray], Any], seeds: Sequence[int], *, autoreset: bool = False
) -> Iterator[Step]:
    """Put copy ``i`` of ``core`` on the level of seed ``seeds[i]`` (:func:`reset_levels`) now,
    so that the start can be looked at before the first step, and return the steps of
    ``act`` (observations -> N actions) playing from there, one :class:`Step` at a time.

    Between two steps the core shows the state after the last one, so the consumer can read
    it (positions, ``core.outcomes`` of the ended copies) before anything is reset. With
    ``autoreset``, a copy whose episode ended is then reset on its next level, from its own
    generator (as the vector views do, one step later), and the steps never end: the consumer
    stops when it has enough. Without it, every copy plays one episode and the steps end with
    the last one; a finished copy is still stepped (the core steps all copies together) but no
    longer ``live``.
    """
    return _steps(core, act, reset_levels(core, seeds), autoreset)


def rollout_levels(core: GridCore, act: Callable[[np.ndarray], Any], levels: Levels) -> Iterator[Step]:
    """As :func:`rollout` without auto-reset, with copy ``i`` on row ``i`` of ``levels`` (as
    :meth:`GridCore.level_arrays` gives them) instead of a seed's level: one episode each."""
    core.load_levels(list(range(core.num_envs)), levels)
    return _steps(core, act, [], False)


def _steps(core: GridCore, act: Callable[[np.ndarray], Any], rngs: list[np.random.Generator], autoreset: bool) -> Iterator[Step]:
    n = core.num_envs
    live = np.ones(n, dtype=bool)
    while True:
        obs = np.array(to_numpy(core.observe()), copy=True)
        actions = np.asarray(act(obs), dtype=np.int64).reshape(n)
        reward, true_reward, terminated, truncated = (np.asarray(to_numpy(a)) for a in core.step(actions))
        step = Step(obs, actions, reward, true_reward, terminated, truncated, live.copy())
        yield step
        if autoreset:
            ended = np.flatnonzero(terminated | truncated)
            if len(ended):
                core.reset(ended, [rngs[i] for i in ended])
        else:
            live &= ~step.ended
            if not live.any():
                return


__all__ = ["Step", "reset_levels", "rollout", "rollout_levels"]
