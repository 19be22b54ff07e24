"""The Gymnasium VectorEnv: a view of a batched core holding N copies, registered as each env's
vector entry point, so ``gymnasium.make_vec(id, n)`` steps the N copies in one batched call
(no Python env per copy, as in Gymnasium's ``sync`` and ``async`` wrappers).

**Autoreset mode: same-step** (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``). A
copy whose episode ends is reset within that step: the step returns the new episode's first
observation, and the ended episode's last one in ``info["final_obs"]``. Gymnasium's default,
next-step, would spend the following step on the reset (its action ignored, reward 0), which
a batched core cannot do for some copies only without stepping them apart; same-step resets
the ended copies together, is what the stable-baselines3 view does, and is the loop that
CleanRL-style trainers were written for (``next_done = terminated | truncated``, no dummy
transitions). Gymnasium's own vector wrappers (``RecordEpisodeStatistics``...) read the mode
from the metadata.

Infos, in Gymnasium's vector format (a dict of (N,) arrays, each with a ``_key`` mask of the
copies that have it):

* ``info["true_reward"]``: (N,) float64, the true objective's increment of this step, every copy;
* ``info["outcome"]``: on a step where episodes end, a dict of (N,) arrays (``return``,
  ``true_return``, ``steps`` and the env's own metrics, each with its mask), masked by
  ``info["_outcome"]`` to the copies whose episode ended;
* ``info["final_obs"]`` (an object array) and ``info["final_info"]`` (``true_reward`` and
  ``outcome`` of the ended copies), where Gymnasium's same-step convention puts them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from goodhart.envs.core.autoreset import AutoresetBatch, BatchStep
from goodhart.envs.core.checks import check_choice
from goodhart.envs.core.grid import GridCore
from goodhart.envs.core.gym_env import observation_space


def episode_limit(core: type[GridCore], max_steps: int | None, max_episode_steps: int | None) -> int | None:
    """The core's ``max_steps`` from the env's own argument and ``make_vec``'s
    ``max_episode_steps`` (None when not given: the envs register none): the core ends the
    episode itself, with its ``outcome``."""
    if max_episode_steps is None or max_episode_steps == core.DEFAULT_MAX_STEPS:
        return max_steps
    if max_steps is not None and max_steps != max_episode_steps:
        raise ValueError(f"max_episode_steps={max_episode_steps!r} and max_steps={max_steps!r} disagree; give max_steps only")
    return max_episode_steps


def vector_info(step: BatchStep) -> dict[str, Any]:
    """A step's infos in Gymnasium's vector format (see the module docstring)."""
    n = len(step.reward)
    info: dict[str, Any] = {"true_reward": step.true_reward, "_true_reward": np.ones(n, dtype=bool)}
    if not len(step.ended):
        return info
    done = np.zeros(n, dtype=bool)
    done[step.ended] = True
    outcome: dict[str, np.ndarray] = {}
    for name, values in step.outcomes.items():
        outcome[name] = np.zeros(n, dtype=values.dtype)
        outcome[name][step.ended] = values
        outcome[f"_{name}"] = done.copy()
    final_obs = np.full(n, None, dtype=object)
    for k, i in enumerate(step.ended):
        final_obs[i] = step.final_observations[k]
    final_info = {"true_reward": np.where(done, step.true_reward, 0.0), "_true_reward": done.copy(), "outcome": outcome, "_outcome": done.copy()}
    info.update(outcome=outcome, _outcome=done.copy(), final_obs=final_obs, _final_obs=done.copy(), final_info=final_info, _final_info=done.copy())
    return info


class GridVectorEnv(gym.vector.VectorEnv):
    """N copies of an environment in one batched core, with Gymnasium's vector API.

    Made by ``gymnasium.make_vec("goodhart/ColorMaze-v0", n, **kwargs)``. ``reset(seed=s)``
    seeds copy ``i`` with ``s + i`` (a list gives each copy its seed), so that copy ``i``
    replays ``gym.make(id, **kwargs)`` reset with seed ``s + i`` and then reset without a seed
    after every episode; ``reset()`` without a seed continues each copy's level generator.
    ``options={"reset_mask": mask}`` resets only the copies of a (N,) bool mask.

    Keyword arguments other than ``render_mode`` and ``max_episode_steps`` go to the core
    (``distribution``, ``obs_mode``, knobs, ``backend``...). ``max_episode_steps`` sets the
    core's ``max_steps``. ``render_mode="rgb_array"``: :meth:`render` returns one frame per copy.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        core: type[GridCore],
        num_envs: int = 1,
        *,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode is not None:
            check_choice("render_mode", render_mode, self.metadata["render_modes"])
        kwargs["max_steps"] = episode_limit(core, kwargs.get("max_steps"), max_episode_steps)
        self.batch = AutoresetBatch(core(num_envs, **kwargs))
        self.core = self.batch.core
        self.num_envs = self.core.num_envs
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.core)
        self.single_action_space = spaces.Discrete(len(self.core.ACTIONS))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if options:
            raise ValueError(f"options={sorted(options)} are not supported; the only option is 'reset_mask'")
        copies = list(range(self.num_envs)) if mask is None else np.flatnonzero(self._check_mask(mask)).tolist()
        if seed is None or isinstance(seed, int | np.integer):
            if seed is not None:
                super().reset(seed=int(seed))  # the VectorEnv's own np_random, for wrappers that sample
            seeds = [None if seed is None else int(seed) + i for i in copies]
        elif len(seed) == self.num_envs:
            seeds = [seed[i] for i in copies]
        else:
            raise ValueError(f"seed= has {len(seed)} entries; expected an int, None or a list of {self.num_envs}")
        return self.batch.reset(seeds, copies), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions of shape {actions.shape}; expected ({self.num_envs},), one per copy")
        step = self.batch.step(actions)
        return step.observations, step.reward, step.terminated, step.truncated, vector_info(step)

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' to make_vec")
            return None
        return tuple(self.batch.frames())

    def close_extras(self, **kwargs: Any) -> None:
        self.batch.close()

    def _check_mask(self, mask: Any) -> np.ndarray:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must be a bool numpy array of shape ({self.num_envs},)")
        return mask
