"""Section ``env``: environment steps/s with random actions, observations produced: the
batched VecEnv and the raw core of this project's envs at several sizes, ``gymnasium.make_vec``
(the vector entry point against the sync wrapper), and MiniGrid alone and in gymnasium's
``SyncVectorEnv``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from goodhart.experiments.bench.baselines import minigrid_image_env
from goodhart.experiments.bench.measure import log, measure_steps, spread

OUR_ENVS = {"ColorMaze": "goodhart/ColorMaze-v0", "LoopRace": "goodhart/LoopRace-v0"}
ENV_SIZES = (1, 64, 1024)
GYM_VECTOR_SIZE = 64
SYNC_COPIES = 8


def _action_cycle(n_actions: int, shape: tuple[int, ...], seed: int = 0, pool: int = 512):
    """An endless cycle over a pool of pre-drawn random actions of ``shape``."""
    actions = np.random.default_rng(seed).integers(0, n_actions, size=(pool, *shape))
    while True:
        yield from actions


def our_steppers(env_id: str, n: int) -> dict[str, Callable[[], None]]:
    """Step functions of the VecEnv (auto-reset, infos) and of its raw core (no resets)."""
    from goodhart.envs import make_vec

    venv = make_vec(env_id, n, seed=0)
    venv.reset()
    vec_actions = _action_cycle(venv.action_space.n, (n,), seed=1)

    def vec_step() -> None:
        venv.step(next(vec_actions))

    core = make_vec(env_id, n, seed=0)
    core.reset()
    raw = core.core
    core_actions = _action_cycle(core.action_space.n, (n,), seed=1)

    def core_step() -> None:
        raw.step(next(core_actions))
        raw.observe()

    return {"vecenv": vec_step, "core": core_step}

def gymnasium_steppers(env_id: str, n: int) -> dict[str, Callable[[], None]]:
    """Step functions of ``gymnasium.make_vec``: by default (the vector entry point: the batched
    core) and with ``vectorization_mode="sync"`` (Gymnasium's wrapper of n single envs)."""
    import gymnasium as gym

    steppers = {}
    for kind, mode in (("gym_vector", None), ("gym_sync", "sync")):
        envs = gym.make_vec(env_id, n, vectorization_mode=mode)
        envs.reset(seed=0)
        actions = _action_cycle(envs.single_action_space.n, (n,), seed=1)
        steppers[kind] = lambda envs=envs, actions=actions: envs.step(next(actions))
    return steppers


def minigrid_steppers() -> dict[str, Callable[[], None]]:
    import gymnasium as gym

    env = minigrid_image_env()
    env.reset(seed=0)
    single_actions = (int(a) for a in _action_cycle(env.action_space.n, (), seed=1))

    def single_step() -> None:
        _, _, terminated, truncated, _ = env.step(next(single_actions))
        if terminated or truncated:
            env.reset()

    venv = gym.vector.SyncVectorEnv([minigrid_image_env for _ in range(SYNC_COPIES)])
    venv.reset(seed=0)
    sync_actions = _action_cycle(venv.single_action_space.n, (SYNC_COPIES,), seed=1)

    def sync_step() -> None:
        venv.step(next(sync_actions))  # gymnasium's autoreset: a done copy resets on its next step

    return {"single": single_step, "sync8": sync_step}


def bench_env(repeats: int, quick: bool, minigrid: bool) -> Iterator[dict[str, Any]]:
    seconds = 0.05 if quick else 1.0
    for name, env_id in OUR_ENVS.items():
        for n in ENV_SIZES:
            for kind, step in our_steppers(env_id, n).items():
                label = f"{name} {'VecEnv' if kind == 'vecenv' else 'raw core'} N={n}"
                log(f"bench: {label}")
                yield {"id": f"env/{name}/{kind}/{n}", "section": "env", "label": label, "unit": "steps/s", **spread(measure_steps(step, n, seconds, repeats))}
        for kind, step in gymnasium_steppers(env_id, GYM_VECTOR_SIZE).items():
            label = f"{name} gymnasium.make_vec N={GYM_VECTOR_SIZE}, {'vector entry point' if kind == 'gym_vector' else 'sync wrapper'}"
            log(f"bench: {label}")
            yield {"id": f"env/{name}/{kind}/{GYM_VECTOR_SIZE}", "section": "env", "label": label, "unit": "steps/s", **spread(measure_steps(step, GYM_VECTOR_SIZE, seconds, repeats))}
    if minigrid:
        for kind, step in minigrid_steppers().items():
            batch = SYNC_COPIES if kind == "sync8" else 1
            label = f"MiniGrid-Empty-8x8 {'SyncVectorEnv x8' if kind == 'sync8' else 'single env'}"
            log(f"bench: {label}")
            yield {"id": f"env/minigrid/{kind}", "section": "env", "label": label, "unit": "steps/s", **spread(measure_steps(step, batch, seconds, repeats))}

__all__ = ["ENV_SIZES", "GYM_VECTOR_SIZE", "OUR_ENVS", "SYNC_COPIES", "bench_env", "gymnasium_steppers", "minigrid_steppers", "our_steppers"]
