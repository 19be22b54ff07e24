"""What the two vector views share: N copies of a core, each drawing its levels from its own
generator, reset in the very step that ends their episode.

Copy ``i`` seeded ``s + i`` replays a single :class:`~goodhart.envs.core.gym_env.GridEnv`
reset with seed ``s + i`` and then reset without a seed after every episode. Resetting in the
same step is what a batched core does naturally: the copies that ended are reset together, in
one call, and every copy's action of the next step counts. The stable-baselines3 VecEnv
(:mod:`~goodhart.envs.core.vec_env`) and the Gymnasium VectorEnv
(:mod:`~goodhart.envs.core.gym_vector_env`) only format what :meth:`AutoresetBatch.step`
returns, each in its library's convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import is_array_api_obj
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding

from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.grid import GridCore, Levels
from goodhart.envs.core.gym_env import overlay
from goodhart.envs.core.render import Renderer


@dataclass(frozen=True)
class BatchStep:
    """One step of every copy, after the copies whose episode ended were reset.

    Attributes:
        observations: (N, ...) uint8; a copy that ended shows its new episode's first one.
        reward, true_reward: (N,) float64, the proxy and the true objective of this step.
        terminated, truncated: (N,) bool.
        ended: (k,) int64, the copies whose episode ended in this step.
        final_observations: (k, ...) their last observation.
        outcomes: outcome metric -> (k,) values of their episodes (see ``GridCore.outcome_arrays``).
    """

    observations: np.ndarray
    reward: np.ndarray
    true_reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    ended: np.ndarray
    final_observations: np.ndarray
    outcomes: dict[str, np.ndarray]


class AutoresetBatch:
    """A batched core with one level generator per copy and same-step auto-reset."""

    def __init__(self, core: GridCore) -> None:
        self.core = core
        self.num_envs = core.num_envs
        self.rngs: list[np.random.Generator | None] = [None] * core.num_envs
        self.held: Levels | None = None
        self._renderer: Renderer | None = None

    def reset(self, seeds: Sequence[int | None], indices: Sequence[int] | None = None) -> np.ndarray:
        """Start a new episode in copies ``indices`` (default: all). ``seeds[k]`` seeds copy
        ``indices[k]``'s generator afresh; ``None`` continues it (or seeds it from the OS on its
        first use), as ``Env.reset(seed=None)`` does. Returns every copy's observation."""
        copies = list(range(self.num_envs)) if indices is None else [int(i) for i in indices]
        for i, seed in zip(copies, seeds, strict=True):
            if seed is not None or self.rngs[i] is None:
                self.rngs[i], _ = seeding.np_random(seed)
        self.core.reset(copies, [self.rngs[i] for i in copies])
        return self.observations()

    def play_levels(self, levels: Levels) -> np.ndarray:
        """Start every copy on its row of ``levels`` and hold it there: each later episode of
        copy ``i`` replays level ``i`` (a level curriculum's rollout) until :meth:`release`.
        Returns every copy's observation."""
        self.held = {key: np.asarray(values) for key, values in levels.items()}
        self.core.load_levels(list(range(self.num_envs)), self.held)
        return self.observations()

    def release(self) -> None:
        """Copies draw their next levels from their generators again."""
        self.held = None

    def step(self, actions: Any) -> BatchStep:
        """Advance every copy by one step and reset those whose episode ended."""
        if not self.core._loaded:
            raise ResetNeeded("call reset() before step()")
        reward, true_reward, terminated, truncated = (to_numpy(a) for a in self.core.step(actions))
        observations = self.observations()
        ended = np.flatnonzero(terminated | truncated)
        final_observations = observations[ended]
        outcomes: dict[str, np.ndarray] = {}
        if len(ended):
            outcomes = {name: values[ended] for name, values in self.core.outcome_arrays().items()}
            if self.held is None:
                self.core.reset(ended, [self.rngs[i] for i in ended])
            else:
                self.core.load_levels(ended, {key: values[ended] for key, values in self.held.items()})
            observations[ended] = self.observations(ended)
        return BatchStep(
            observations,
            np.array(reward, dtype=np.float64),
            np.array(true_reward, dtype=np.float64),
            np.array(terminated, dtype=bool),
            np.array(truncated, dtype=bool),
            ended,
            final_observations,
            outcomes,
        )

    def observations(self, indices: Any = None) -> np.ndarray:
        """Observations of every copy (or of copies ``indices``) as a fresh numpy array."""
        return np.array(to_numpy(self.core.observe(indices)), copy=True)

    # ------------------------------------------------------ save and resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the copies are: each copy's level
        generator state and the core's arrays (levels and episodes in progress), on the host."""
        arrays = {name: to_numpy(value).copy() for name, value in vars(self.core).items() if is_array_api_obj(value)}
        return {"rngs": [None if rng is None else rng.bit_generator.state for rng in self.rngs], "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        """Restore a :meth:`state_dict` (from a batch of the same env, size and knobs) and
        return the current observations."""
        if len(state["rngs"]) != self.num_envs:
            raise ValueError(f"the saved state has {len(state['rngs'])} copies, this batch {self.num_envs}")
        for i, rng_state in enumerate(state["rngs"]):
            self.rngs[i] = np.random.Generator(np.random.PCG64())
            self.rngs[i].bit_generator.state = rng_state
        for name, value in state["arrays"].items():
            setattr(self.core, name, self.core._asarray(np.asarray(value)))
        self.core._loaded = True
        return self.observations()

    # ------------------------------------------------------------ rendering
    def frames(self) -> list[np.ndarray]:
        """One RGB frame per copy, with the overlay (distribution, step, proxy and true so far)."""
        if self._renderer is None:
            self._renderer = Renderer()
        return [self._renderer.frame(self.core, i, overlay(self.core, i)) for i in range(self.num_envs)]

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
