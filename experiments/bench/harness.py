"""The run: the sections asked for, the machine they ran on, and the ratios against the
baselines measured in the same run, in one JSON-ready record."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.experiments.bench.baselines import require_minigrid
from goodhart.experiments.bench.env_speed import GYM_VECTOR_SIZE, OUR_ENVS, bench_env
from goodhart.experiments.bench.measure import BenchError
from goodhart.experiments.bench.ppo_speed import bench_ppo
from goodhart.experiments.bench.time_to_result import bench_time_to_result

SECTIONS = ("env", "ppo", "time_to_result")
DEFAULT_SECTIONS = ("env", "ppo")


RATIOS = (
    ("env/ColorMaze/vecenv/1024", "env/minigrid/single", "ColorMaze VecEnv N=1024 / MiniGrid single env"),
    ("env/LoopRace/vecenv/1024", "env/minigrid/single", "LoopRace VecEnv N=1024 / MiniGrid single env"),
    ("env/ColorMaze/vecenv/1", "env/minigrid/single", "ColorMaze VecEnv N=1 / MiniGrid single env"),
    ("env/ColorMaze/vecenv/1024", "env/minigrid/sync8", "ColorMaze VecEnv N=1024 / MiniGrid SyncVectorEnv x8"),
    ("env/minigrid/sync8", "env/minigrid/single", "MiniGrid SyncVectorEnv x8 / MiniGrid single env"),
    ("env/ColorMaze/core/1024", "env/ColorMaze/vecenv/1024", "ColorMaze raw core / VecEnv, N=1024"),
    *((f"env/{name}/gym_vector/{GYM_VECTOR_SIZE}", f"env/{name}/gym_sync/{GYM_VECTOR_SIZE}",
       f"{name} gymnasium.make_vec N={GYM_VECTOR_SIZE}: vector entry point / sync wrapper") for name in OUR_ENVS),
    ("ppo/colormaze", "ppo/minigrid_cnn", "ColorMaze PPO / MiniGrid PPO with the same CNN and settings"),
    ("ppo/colormaze_full", "ppo/minigrid_cnn", "ColorMaze PPO full view (7x7 input) / MiniGrid PPO, same CNN, settings and input size"),
    ("ppo/colormaze", "ppo/minigrid_zoo", "ColorMaze PPO / MiniGrid PPO with RL Zoo settings"),
    ("ppo/colormaze_rgb", "ppo/colormaze", "ColorMaze PPO on pixels (rgb_tile 4) / on planes"),
    ("ppo/colormaze_rgb2", "ppo/colormaze", "ColorMaze PPO on pixels (rgb_tile 2) / on planes"),
    ("ppo/colormaze_plr", "ppo/colormaze_dr", "ColorMaze PPO, PLR⊥ replaying every rollout / domain randomization (target >= 0.8: at most 25 % slower per step)"),
    ("ppo/colormaze_accel", "ppo/colormaze_dr", "ColorMaze PPO, ACCEL / domain randomization, per environment step (edit and new rollouts are not learned from)"),
)


def parse_sections(only: Sequence[str] | None) -> list[str]:
    """The sections asked for (comma-separated or repeated names), in run order."""
    if not only:
        return list(DEFAULT_SECTIONS)
    asked = {item.strip() for value in only for item in value.split(",") if item.strip()}
    unknown = sorted(asked - set(SECTIONS))
    if unknown:
        raise BenchError(f"--only {','.join(unknown)}: unknown section(s); valid ones: {', '.join(SECTIONS)}")
    return [s for s in SECTIONS if s in asked]

def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    import gymnasium
    import stable_baselines3
    import torch

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        import minigrid

        minigrid_version = str(getattr(minigrid, "__version__", "unknown"))
    except ImportError:
        minigrid_version = None
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "minigrid": minigrid_version,
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None

def ratios(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {row["id"]: row for row in rows}
    out = []
    for num, den, label in RATIOS:
        if num in by_id and den in by_id:
            out.append({"label": label, "numerator": num, "denominator": den, "value": by_id[num]["median"] / by_id[den]["median"]})
    return out


def run_bench(
    *,
    sections: Sequence[str] = DEFAULT_SECTIONS,
    repeats: int = 5,
    quick: bool = False,
    skip_minigrid: bool = False,
    reproduction: str = "maze-misgeneralization",
    reproduce_modes: Sequence[str] | None = None,
    command: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the sections asked for; the JSON-ready record (meta, results, ratios, notes).
    ``progress`` is called with the partial record after every figure."""
    if repeats < 1:
        raise BenchError(f"--repeats {repeats}: must be at least 1")
    minigrid_version = None if skip_minigrid else require_minigrid()
    notes = []
    if skip_minigrid:
        notes.append("MiniGrid rows skipped (--skip-minigrid): no baselines, so no ratios against MiniGrid")
    if reproduce_modes is None:
        reproduce_modes = ["quick"] if quick else ["quick", "full"]
    meta = {
        **machine(),
        "minigrid": minigrid_version,
        "command": command or shlex.join(sys.argv),
        "sections": list(sections),
        "repeats": repeats,
        "quick": quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "loadavg_start": loadavg(),
    }
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()

    def record(partial: bool) -> dict[str, Any]:
        meta["loadavg_end"] = loadavg()
        meta["bench_seconds"] = round(time.perf_counter() - started, 1)
        meta["partial"] = partial
        return {"meta": meta, "results": rows, "ratios": ratios(rows), "notes": notes}

    if "time_to_result" in sections:
        notes.append("time to result: one run per mode (no repeats); peak RSS is the largest single process of the run's tree")
    runs = {
        "env": lambda: bench_env(repeats, quick, not skip_minigrid),
        "ppo": lambda: bench_ppo(repeats, quick, not skip_minigrid),
        "time_to_result": lambda: bench_time_to_result(reproduction, reproduce_modes),
    }
    for section in SECTIONS:
        if section in sections:
            for row in runs[section]():
                rows.append(row)
                if progress is not None:
                    progress(record(partial=True))  # a killed run keeps what it measured
    return record(partial=False)

__all__ = ["DEFAULT_SECTIONS", "RATIOS", "SECTIONS", "machine", "parse_sections", "ratios", "run_bench"]
