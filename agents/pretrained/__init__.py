"""Small trained policies shipped with the package, for the teaching demos.

Each is ``<name>.safetensors`` + ``<name>.json`` (the safe model format of
:mod:`goodhart.agents.model_io`; the JSON embeds the config that trained it) and
``<name>.eval.json``, its evaluation summary on a fixed level set (mean outcomes per
distribution). ``scripts/train_demo_policies.py`` regenerates them from the shipped configs.

======================  ======================  ==========================================
name                    env                     trained on
======================  ======================  ==========================================
``race_score``          goodhart/LoopRace-v0    the game's score: farms the lagoon
``race_progress``       goodhart/LoopRace-v0    lap progress (the true objective): races
``colormaze``           goodhart/ColorMaze-v0   the goal, with the cue on it: follows the cue
``cornermaze``          goodhart/CornerMaze-v0  the goal, always top-right: goes to the corner
======================  ======================  ==========================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from goodhart.agents.model_io import LoadedModel, load_policy

FOLDER = Path(__file__).resolve().parent

# name -> the shipped config in goodhart/experiments/configs/ that trains it
CONFIGS = {
    "race_score": "looprace.yaml",
    "race_progress": "looprace_progress.yaml",
    "colormaze": "colormaze.yaml",
    "cornermaze": "cornermaze.yaml",
}
NAMES = tuple(CONFIGS)


def _check(name: str) -> None:
    if name not in CONFIGS:
        raise ValueError(f"{name!r} is not a shipped policy; valid ones: {list(NAMES)}")


def path(name: str) -> Path:
    """The file stem of the shipped policy ``name`` (``.../pretrained/<name>``), to pass to
    :func:`goodhart.agents.model_io.load_policy` or ``--model``."""
    _check(name)
    return FOLDER / name


def available() -> list[str]:
    """The shipped policies whose files are present."""
    return [name for name in NAMES if (FOLDER / f"{name}.json").is_file()]


def load(name: str) -> LoadedModel:
    """The shipped policy ``name``, loaded (raises ``ModelFileError`` if its files are
    missing, e.g. not generated yet)."""
    return load_policy(path(name))


def evaluation(name: str) -> dict[str, Any]:
    """The evaluation summary shipped with ``name``: ``{"level_seed", "episodes",
    "deterministic", "distributions": {distribution: {outcome: mean}}}``."""
    _check(name)
    return json.loads((FOLDER / f"{name}.eval.json").read_text(encoding="utf-8"))


__all__ = ["CONFIGS", "NAMES", "available", "evaluation", "load", "path"]
