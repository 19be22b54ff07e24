"""The stable-baselines3 VecEnv: a view of a batched core holding N copies.

Copy ``i`` behaves exactly like a single :class:`GridEnv` reset with seed ``seed + i``
(SB3's ``VecEnv.seed`` convention) and then reset without a seed after every episode: each
copy draws its levels from its own generator, and a finished copy is reset at once
(auto-reset), its last observation kept in ``info["terminal_observation"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from array_api_compat import is_array_api_obj
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.grid import GridCore
from goodhart.envs.core.gym_env import observation_space, overlay
from goodhart.envs.core.render import Renderer


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
        self.core = core(num_envs, **kwargs)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not allowed; expected None or 'rgb_array'")
        self.render_mode = render_mode
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._actions: np.ndarray | None = None
        self._renderer: Renderer | None = None
        super().__init__(num_envs, observation_space(self.core), spaces.Discrete(len(self.core.ACTIONS)))
        if seed is not None:
            self.seed(seed)

    # ----------------------------------------------------------------- core
    def reset(self) -> np.ndarray:
        for i, seed in enumerate(self._seeds):
            if seed is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(seed)
        self._reset_seeds()
        self._reset_options()
        self.core.reset(range(self.num_envs), self._rngs)
        return self._observations()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        reward, true_reward, terminated, truncated = (to_numpy(a) for a in self.core.step(self._actions))
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{"true_reward": float(t)} for t in true_reward]
        observations = self._observations()
        ended = np.flatnonzero(done)
        if len(ended):
            for i, outcome in zip(ended, self.core.outcomes(ended)):
                infos[i]["outcome"] = outcome
                infos[i]["terminal_observation"] = observations[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
            self.core.reset(ended, [self._rngs[i] for i in ended])
            observations[ended] = self._observations(ended)
        return observations, reward.astype(np.float32), done, infos

    def _observations(self, indices: np.ndarray | None = None) -> np.ndarray:
        return np.array(to_numpy(self.core.observe(indices)), copy=True)

    # ------------------------------------------------------ save and resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the copies are: each copy's level
        generator state and the core's arrays (levels and episodes in progress), on the host."""
        arrays = {name: to_numpy(value).copy() for name, value in vars(self.core).items() if is_array_api_obj(value)}
        return {"rngs": [None if rng is None else rng.bit_generator.state for rng in self._rngs], "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        """Restore a :meth:`state_dict` (from a VecEnv of the same env, size and knobs) and
        return the current observations."""
        if len(state["rngs"]) != self.num_envs:
            raise ValueError(f"the saved state has {len(state['rngs'])} copies, this VecEnv {self.num_envs}")
        for i, rng_state in enumerate(state["rngs"]):
            self._rngs[i] = np.random.Generator(np.random.PCG64())
            self._rngs[i].bit_generator.state = rng_state
        for name, value in state["arrays"].items():
            setattr(self.core, name, self.core._asarray(np.asarray(value)))
        self.core._loaded = True
        self._reset_seeds()
        return self._observations()

    # ------------------------------------------------------------ plumbing
    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self._renderer is None:
            self._renderer = Renderer()
        return [self._renderer.frame(self.core, i, overlay(self.core, i)) for i in range(self.num_envs)]

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
