"""The benchmark harness: this project's speed against MiniGrid and stable-baselines3, in one run.

Sections (``--only``):

``env``
    Environment steps/s with random actions, observations produced: the batched VecEnv
    (``make_vec``, auto-reset and infos included) and the raw core (``core.step`` +
    ``core.observe``, no resets) of ColorMaze and LoopRace at N = 1, 64, 1024, against
    ``MiniGrid-Empty-8x8-v0`` (``ImgObsWrapper``) alone and in gymnasium's ``SyncVectorEnv`` x 8;
    and ``gymnasium.make_vec(id, 64)`` (the registered vector entry point, the batched core)
    against ``make_vec(id, 64, vectorization_mode="sync")`` (64 single envs).
``ppo``
    stable-baselines3 PPO training steps/s, one torch thread, each setup in its own process
    (whose peak RSS is recorded): ColorMaze with ``agents/configs/colormaze.yaml`` (on
    planes, the full view, and pixels of 4 and 2 pixels per cell); MiniGrid-Empty-8x8 with
    the same GridCNN and PPO settings; MiniGrid-Empty-8x8 with the RL Zoo's MiniGrid settings. One warm-up rollout + update, then ``repeats`` timed ones, each
    split into policy forward passes, env stepping, the rest of the rollout, and the update.
``time_to_result``
    Wall time and peak RSS of ``goodhart reproduce NAME --quick`` (and the full mode) as a
    subprocess, in a fresh folder. Minutes: only run when asked for.

Every figure is the median of ``repeats`` measurements after a warm-up, with min and max;
ratios are against the baselines measured in the same run. MiniGrid is the optional ``bench``
extra.
"""

from __future__ import annotations

from goodhart.agents.files import write_json
from goodhart.experiments.bench.baselines import require_minigrid
from goodhart.experiments.bench.harness import SECTIONS, parse_sections, run_bench
from goodhart.experiments.bench.measure import BenchError
from goodhart.experiments.bench.tables import format_tables

__all__ = ["SECTIONS", "BenchError", "format_tables", "parse_sections", "require_minigrid", "run_bench", "write_json"]
