"""The environments, registered with Gymnasium (``gymnasium.make`` and, batched,
``gymnasium.make_vec``), and the stable-baselines3 VecEnv that trains on them (:func:`make_vec`,
``GridVecEnv``: imported on first use, so that Gymnasium users never load torch).

A new environment is one module with a :class:`~goodhart.envs.core.grid.GridCore` subclass
and one line in ``ENVS`` below; training, evaluation and rendering then work on it unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym

from goodhart.envs.absent_supervisor import AbsentSupervisor
from goodhart.envs.color_maze import ColorMaze
from goodhart.envs.core.grid import GridCore
from goodhart.envs.core.gym_env import GridEnv
from goodhart.envs.core.gym_vector_env import GridVectorEnv
from goodhart.envs.corner_maze import CornerMaze
from goodhart.envs.keys_and_chests import KeysAndChests
from goodhart.envs.loop_race import LoopRace
from goodhart.envs.tomato_watering import TomatoWatering

if TYPE_CHECKING:
    from goodhart.envs.core.vec_env import GridVecEnv

ENVS: dict[str, type[GridCore]] = {
    "goodhart/LoopRace-v0": LoopRace,
    "goodhart/ColorMaze-v0": ColorMaze,
    "goodhart/CornerMaze-v0": CornerMaze,
    "goodhart/AbsentSupervisor-v0": AbsentSupervisor,
    "goodhart/TomatoWatering-v0": TomatoWatering,
    "goodhart/KeysAndChests-v0": KeysAndChests,
}

for _env_id, _core in ENVS.items():
    if _env_id not in gym.registry:
        gym.register(
            _env_id,
            entry_point="goodhart.envs.core.gym_env:GridEnv",
            vector_entry_point="goodhart.envs.core.gym_vector_env:GridVectorEnv",
            kwargs={"core": _core},
            # No max_episode_steps: the core ends each episode itself at its max_steps, with the
            # episode's outcome. A registered limit would wrap gymnasium.make's env in a
            # TimeLimit that cuts a longer max_steps short, without an outcome.
        )


def core_class(env_id: str) -> type[GridCore]:
    """The batched core registered under ``env_id``."""
    if env_id not in ENVS:
        raise ValueError(f"env id {env_id!r} is not a Goodhart Gridworlds env; valid ones: {list(ENVS)}")
    return ENVS[env_id]


def file_stem(env_id: str) -> str:
    """The name of an env's files: its shipped config (``agents/configs/<stem>.yaml``) and its
    picture (``docs/<stem>.png``): the env's name in lower case, ``goodhart/SomeEnv-v0`` ->
    ``someenv``."""
    return env_id.split("/")[-1].split("-")[0].lower()


def make_vec(env_id: str, num_envs: int, *, seed: int | None = None, **kwargs: Any) -> GridVecEnv:
    """A stable-baselines3 VecEnv of ``num_envs`` copies of ``env_id``; copy ``i`` is seeded
    ``seed + i``. ``kwargs`` are the env's (``distribution``, knobs, ``backend``...)."""
    from goodhart.envs.core.vec_env import GridVecEnv

    return GridVecEnv(core_class(env_id), num_envs, seed=seed, **kwargs)


def __getattr__(name: str) -> Any:
    """``GridVecEnv`` on first use only: it subclasses stable-baselines3's VecEnv, whose import
    pulls in torch (about 1,500 modules), which ``gymnasium.make`` users never need."""
    if name == "GridVecEnv":
        from goodhart.envs.core.vec_env import GridVecEnv

        return GridVecEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENVS",
    "AbsentSupervisor",
    "ColorMaze",
    "CornerMaze",
    "GridEnv",
    "GridVecEnv",
    "GridVectorEnv",
    "KeysAndChests",
    "LoopRace",
    "TomatoWatering",
    "core_class",
    "file_stem",
    "make_vec",
]
