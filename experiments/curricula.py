"""A level curriculum's numbers in a results record: how often its runs trained on levels
where the proxy and the intended target come apart, read from each run's ``curriculum.csv``
(:mod:`goodhart.agents.curriculum`) as the pseudo-distribution ``CURRICULUM``, so that checks,
reports and plots read them like any metric."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from goodhart.agents.curriculum.replay import CURRICULUM_FILE
from goodhart.experiments.metrics import across_seeds

CURRICULUM = "curriculum"  # the pseudo-distribution of these numbers in a results record
STATISTICS = {
    "played_distinguishing": "share of the episodes PPO learned from that were on distinguishing levels",
    "buffer_distinguishing": "share of distinguishing levels in the level buffer at the end",
    "learned_rollouts": "share of rollouts PPO learned from (the rest only scored levels)",
}


def has_curriculum(run: Path) -> bool:
    return (run / CURRICULUM_FILE).is_file()


def run_statistics(run: Path) -> dict[str, float]:
    """The :data:`STATISTICS` of one run (NaN where its env counts no distinguishing levels,
    or a ``dr`` run has no buffer)."""
    with (run / CURRICULUM_FILE).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return dict.fromkeys(STATISTICS, math.nan)
    last = rows[-1]
    return {
        "played_distinguishing": float(last["played_distinguishing"]),
        "buffer_distinguishing": float(last["buffer_distinguishing"]),
        "learned_rollouts": sum(int(r["learned"]) for r in rows) / len(rows),
    }


def curriculum_metrics(runs: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Per statistic, its values over the runs (seeds) with their mean and interval."""
    per_run = [run_statistics(run) for run in runs]
    return {name: across_seeds([s[name] for s in per_run]) for name in STATISTICS}
