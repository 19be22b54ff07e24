"""The stable-baselines3 VecEnv: a view of a batched core holding N copies.

Copy ``i`` behaves exactly like a single :class:`GridEnv` reset with seed ``seed + i``
(SB3's ``VecEnv.seed`` convention) and then reset without a seed after every episode: each
copy draws its levels from its own generator, and a finished copy is reset at once
(auto-reset, :mod:`~goodhart.envs.core.autoreset`), its last observation kept in
``info["terminal_observation"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from goodhart.envs.core.autoreset import AutoresetBatch
from goodhart.envs.core.grid import GridCore, Levels, outcome_rows
from goodhart.envs.core.gym_env import observation_space


class GridVecEnv(VecEnv):
    """N copies of a registered environment in one batched core.

    Args:
        core: the environment's core class (see :func:`goodhart.envs.make_vec`, which takes
            a registered id instead).
        num_envs: number of copies.
        seed: if given, copy ``i`` is seeded ``seed + i`` at the first reset.
        render_mode: ``None`` or ``"rgb_array"`` (frames from :meth:`get_images`).
        **kwargs: the core's arguments (``distribution``, knobs, ``backend``...).
    """

    def __init__(
        self,
        core: type[GridCore],
        num_envs: int,
        *,
        seed: int | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not allowed; expected None or 'rgb_array'")
        self.batch = AutoresetBatch(core(num_envs, **kwargs))
        self.core = self.batch.core
        self.render_mode = render_mode
        self._actions: np.ndarray | None = None
        super().__init__(num_envs, observation_space(self.core), spaces.Discrete(len(self.core.ACTIONS)))
        if seed is not None:
            self.seed(seed)

    # ----------------------------------------------------------------- core
    def reset(self) -> np.ndarray:
        observations = self.batch.reset(self._seeds)
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        step = self.batch.step(self._actions)
        infos: list[dict[str, Any]] = [{"true_reward": float(t)} for t in step.true_reward]
        for k, (i, outcome) in enumerate(zip(step.ended, outcome_rows(step.outcomes))):
            infos[i]["outcome"] = outcome
            infos[i]["terminal_observation"] = step.final_observations[k]
            infos[i]["TimeLimit.truncated"] = bool(step.truncated[i])
        return step.observations, step.reward.astype(np.float32), step.terminated | step.truncated, infos

    # ------------------------------------------------------ level curricula
    def play_levels(self, levels: Levels) -> np.ndarray:
        """Start copy ``i`` on row ``i`` of ``levels`` and replay it after every episode until
        :meth:`release_levels`; the observations (see ``AutoresetBatch.play_levels``)."""
        return self.batch.play_levels(levels)

    def release_levels(self) -> None:
        self.batch.release()

    # ------------------------------------------------------ save and resume
    def state_dict(self) -> dict[str, Any]:
        """Each copy's level generator state and the core's arrays (see ``AutoresetBatch``)."""
        return self.batch.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        """Restore a :meth:`state_dict` (from a VecEnv of the same env, size and knobs) and
        return the current observations."""
        observations = self.batch.load_state_dict(state)
        self._reset_seeds()
        return observations

    # ------------------------------------------------------------ plumbing
    def close(self) -> None:
        self.batch.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return self.batch.frames()

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of the view (``render_mode``) or of the core, once per copy asked."""
        owner = self if attr_name == "render_mode" else self.core
        return [getattr(owner, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Sets an attribute of the core, which all copies share."""
        if self._indices(indices) != list(range(self.num_envs)):
            raise ValueError("the copies share one core: set attributes on all of them (indices=None)")
        setattr(self.core, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        """Calls a method of the core once and returns its result for each copy asked."""
        result = getattr(self.core, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]
