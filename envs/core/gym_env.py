"""The Gymnasium environment: a view of a batched core holding one copy."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.checks import check_choice
from goodhart.envs.core.grid import GridCore
from goodhart.envs.core.render import Renderer, ansi

RENDER_MODES = ("human", "rgb_array", "ansi")


def observation_space(core: GridCore) -> spaces.Box:
    """uint8 planes in {0, 1} (symbolic) or pixels in [0, 255] (rgb)."""
    high = 1 if core.obs_mode == "symbolic" else 255
    return spaces.Box(0, high, shape=core.observation_shape, dtype=np.uint8)


def overlay(core: GridCore, index: int) -> list[str]:
    """The text shown beside a rendered frame: distribution, step, the env's proxy score
    (its ``PROXY_RETURN``, whatever the policy trains on) and the true objective so far."""
    so_far = core.outcomes([index])[0]
    return [
        core.distribution,
        f"step {so_far['steps']}",
        f"score {float(so_far[core.PROXY_RETURN]):g}",
        f"true {float(so_far['true_return']):g}",
    ]


class GridEnv(gym.Env):
    """One environment of a batched core (``core``), with Gymnasium's API.

    Keyword arguments other than ``render_mode`` go to the core (``distribution``,
    ``obs_mode``, the env's knobs...). ``info["true_reward"]`` is set on every step and
    ``info["outcome"]`` on the step that ends an episode.

    The episode limit is the core's ``max_steps`` (``gymnasium.make(id, max_steps=n)``, any n):
    the envs register no ``max_episode_steps``, and gymnasium's ``max_episode_steps=``
    argument of ``gymnasium.make`` only adds an outer TimeLimit that truncates without an
    ``outcome``, so change ``max_steps=`` instead.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 8}

    def __init__(self, core: type[GridCore], render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            check_choice("render_mode", render_mode, RENDER_MODES)
        self.core = core(1, **kwargs)
        self.render_mode = render_mode
        self.observation_space = observation_space(self.core)
        self.action_space = spaces.Discrete(len(self.core.ACTIONS))
        self._renderer: Renderer | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.core.reset([0], [self.np_random])
        if self.render_mode == "human":
            self.render()
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward, true_reward, terminated, truncated = (
            to_numpy(a)[0] for a in self.core.step(np.asarray([action], dtype=np.int64))
        )
        info: dict[str, Any] = {"true_reward": float(true_reward)}
        if terminated or truncated:
            info["outcome"] = self.core.outcomes([0])[0]
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to the env")
            return None
        if self.render_mode == "ansi":
            return ansi(self.core, 0)
        if self._renderer is None:
            self._renderer = Renderer()
        frame = self._renderer.frame(self.core, 0, overlay(self.core, 0))
        if self.render_mode == "rgb_array":
            return frame
        self._renderer.show(frame, self.metadata["render_fps"])
        return None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _observation(self) -> np.ndarray:
        return to_numpy(self.core.observe())[0].copy()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_renderer"] = None  # pygame surfaces and windows do not pickle
        return state
