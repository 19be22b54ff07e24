"""Section ``ppo``: stable-baselines3 PPO training steps/s, one torch thread, each setup in a
child process of its own (whose peak memory is recorded), split into policy forward passes,
env stepping, the rest of the rollout, and the update."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from goodhart.agents.files import write_json
from goodhart.experiments.engine.workers import ONE_THREAD
from goodhart.experiments.bench.baselines import ZOO_MINIGRID, minigrid_cnn_env, minigrid_flat_env
from goodhart.experiments.bench.measure import BenchError, log, peak_rss_mib, spread

# setup -> (short label, what it is)
PPO_SETUPS = {
    "colormaze": ("ColorMaze PPO, colormaze.yaml", "GridCNN [16, 32] strides [1, 2] -> 128 on 4x13x13 agent-centred planes; 16 envs, n_steps 128, batch 512, 4 epochs"),
    "colormaze_full": ("ColorMaze PPO, full view", "colormaze.yaml with view=full: the same network on 4x7x7 whole-maze planes, the input size of MiniGrid's 7x7 view"),
    "colormaze_rgb": ("ColorMaze PPO, pixels", "colormaze.yaml with obs_mode=rgb: 52x52x3 agent-centred pixels (rgb_tile 4), a 4x4 stride-4 convolution to 16 channels per cell, then the same network"),
    "colormaze_rgb2": ("ColorMaze PPO, pixels, rgb_tile 2", "colormaze.yaml with obs_mode=rgb, rgb_tile=2: 26x26x3 pixels, a 2x2 stride-2 convolution to 16 channels per cell, then the same network"),
    "colormaze_dr": ("ColorMaze PPO, curriculum dr", "colormaze.yaml with curriculum.method=dr: fresh levels, the curriculum counting distinguishing levels (the baseline of the curricula)"),
    "colormaze_plr": ("ColorMaze PPO, PLR⊥ replaying", "colormaze.yaml with PLR⊥, oracle regret, replay_prob 1: every timed rollout samples 16 levels from the buffer, plays them, scores them and is learned from"),
    "colormaze_accel": ("ColorMaze PPO, ACCEL", "colormaze.yaml with ACCEL, oracle regret, replay_prob 0.8: replays, edits (3 per level) and new levels, scored; the edit and new rollouts are not learned from"),
    "minigrid_cnn": ("MiniGrid PPO, our CNN and settings", "the same GridCNN and PPO settings on MiniGrid-Empty-8x8, ImgObsWrapper transposed to 3x7x7 (object indices 0..10, not normalized)"),
    "minigrid_zoo": ("MiniGrid PPO, RL Zoo settings", "RL Zoo's MiniGrid PPO: FlatObsWrapper (2835 inputs), VecNormalize, MlpPolicy 64-64, 8 envs, n_steps 128, batch 64, 10 epochs, lr 2.5e-4"),
}

# ColorMaze setups: colormaze.yaml with these --set overrides
COLORMAZE_OVERRIDES = {
    "colormaze": [],
    "colormaze_dr": ["curriculum.method=dr"],
    "colormaze_plr": ["curriculum.method=plr", "curriculum.score=oracle", "curriculum.replay_prob=1.0"],
    "colormaze_accel": ["curriculum.method=accel", "curriculum.score=oracle", "curriculum.replay_prob=0.8"],
    "colormaze_full": ["env_kwargs.view=full"],
    "colormaze_rgb": ["env_kwargs.obs_mode=rgb"],
    "colormaze_rgb2": ["env_kwargs.obs_mode=rgb", "env_kwargs.rgb_tile=2"],
}


def _timed_vec_env(venv, clock: dict[str, float]):
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class TimedVecEnv(VecEnvWrapper):
        """Adds the time spent in ``step_async`` + ``step_wait`` to ``clock['env']``."""

        def reset(self):
            return self.venv.reset()

        def step_async(self, actions):
            start = time.perf_counter()
            self.venv.step_async(actions)
            clock["env"] += time.perf_counter() - start

        def step_wait(self):
            start = time.perf_counter()
            result = self.venv.step_wait()
            clock["env"] += time.perf_counter() - start
            return result

    return TimedVecEnv(venv)

def ppo_measurement(setup: str, repeats: int, quick: bool, seed: int = 0) -> dict[str, Any]:
    """Time ``1 + repeats`` PPO iterations (rollout + update) of ``setup`` in this process;
    the first is a warm-up. Meant to run in a child process of its own (see :func:`bench_ppo`)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

    from goodhart.agents.ppo import build_ppo, set_torch_threads, silent_logger
    from goodhart.envs import make_vec
    from goodhart.experiments.config import CONFIG_DIR, resolve

    set_torch_threads(1)
    cfg, _ = resolve(None, CONFIG_DIR / "colormaze.yaml", COLORMAZE_OVERRIDES.get(setup, []), {})
    ppo = cfg.ppo.model_dump()
    n_envs = cfg.n_envs
    if setup == "minigrid_zoo":
        n_envs, ppo = ZOO_MINIGRID["n_envs"], dict(ZOO_MINIGRID["ppo"])
    if quick:
        ppo.update(n_steps=16, n_epochs=1, batch_size=min(ppo["batch_size"], 16 * n_envs))
    clock = {"env": 0.0, "forward": 0.0}
    callback = None
    if setup in COLORMAZE_OVERRIDES:
        levels = make_vec(cfg.env, n_envs, seed=seed, **cfg.env_kwargs)
        venv = VecMonitor(levels)
        if cfg.curriculum is not None:
            from goodhart.agents.curriculum import LevelCurriculum

            callback = LevelCurriculum(cfg.curriculum.settings(), levels, ppo["gamma"], seed, Path(tempfile.mkdtemp(prefix="goodhart-bench-")), None)
    elif setup == "minigrid_cnn":
        venv = VecMonitor(DummyVecEnv([minigrid_cnn_env] * n_envs))
    elif setup == "minigrid_zoo":
        venv = VecNormalize(VecMonitor(DummyVecEnv([minigrid_flat_env] * n_envs)), gamma=ppo["gamma"])
    else:
        raise BenchError(f"unknown PPO setup {setup!r}; valid ones: {list(PPO_SETUPS)}")
    env = _timed_vec_env(venv, clock)
    if setup == "minigrid_zoo":
        model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **ppo)
        model.set_logger(silent_logger())
    else:
        model = build_ppo(env, ppo=ppo, network=cfg.network.model_dump(), seed=seed)

    def timed(fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock["forward"] += time.perf_counter() - start

        return wrapper

    # Rollout forward passes: the policy's forward and the value bootstraps; the update uses
    # evaluate_actions, so these only count during rollouts.
    model.policy.forward = timed(model.policy.forward)
    model.policy.predict_values = timed(model.policy.predict_values)
    iterations: list[dict[str, float]] = []
    collect, train = model.collect_rollouts, model.train

    def timed_collect(*args, **kwargs):
        clock["env"] = clock["forward"] = 0.0
        start = time.perf_counter()
        result = collect(*args, **kwargs)
        rollout = time.perf_counter() - start
        iterations.append({"rollout": rollout, "forward": clock["forward"], "env": clock["env"], "other": rollout - clock["forward"] - clock["env"]})
        return result

    def timed_train(*args, **kwargs):
        start = time.perf_counter()
        result = train(*args, **kwargs)
        iterations[-1]["update"] = time.perf_counter() - start
        return result

    model.collect_rollouts, model.train = timed_collect, timed_train
    rollout_size = ppo["n_steps"] * n_envs
    model.learn(rollout_size * (1 + repeats), callback=callback)
    measured = iterations[1:]
    rates = [rollout_size / (it["rollout"] + it["update"]) for it in measured]
    parts = ("forward", "env", "other", "update")
    breakdown = {part: statistics.median(it[part] for it in measured) for part in parts}
    total = sum(breakdown.values())
    return {
        "rates": rates,
        "rollout_size": rollout_size,
        "n_envs": n_envs,
        "ppo": ppo,
        "iteration_seconds": spread([it["rollout"] + it["update"] for it in measured]),
        "breakdown_seconds": breakdown,
        "breakdown_share": {part: breakdown[part] / total for part in parts},
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": peak_rss_mib(),
    }


def run_child(setup: str, repeats: int, quick: bool, timeout: float = 1800) -> dict[str, Any]:
    """:func:`ppo_measurement` in a fresh Python process; its result."""
    with tempfile.TemporaryDirectory(prefix="goodhart-bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        spec = json.dumps({"setup": setup, "repeats": repeats, "quick": quick})
        cmd = [sys.executable, "-m", "goodhart.experiments.bench", "--child", spec, str(result_path)]
        env = {**os.environ, **ONE_THREAD}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0 or not result_path.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise BenchError(f"the PPO measurement {setup!r} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(result_path.read_text())


def bench_ppo(repeats: int, quick: bool, minigrid: bool) -> Iterator[dict[str, Any]]:
    for setup, (label, description) in PPO_SETUPS.items():
        if setup.startswith("minigrid") and not minigrid:
            continue
        log(f"bench: {label}")
        result = run_child(setup, repeats, quick)
        rates = result.pop("rates")
        yield {"id": f"ppo/{setup}", "section": "ppo", "label": label, "description": description, "unit": "steps/s", **spread(rates), **result}

def child_main(argv: Sequence[str]) -> int:
    spec, result_path = json.loads(argv[0]), Path(argv[1])
    result = ppo_measurement(spec["setup"], spec["repeats"], spec["quick"])
    write_json(result_path, result)
    return 0


__all__ = ["PPO_SETUPS", "bench_ppo", "child_main", "ppo_measurement", "run_child"]
