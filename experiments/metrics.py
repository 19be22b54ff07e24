"""Metrics of episode outcomes: per-episode ratios, summaries, and statistics across seeds.

Every metric is a ratio of per-episode sums, so that conditional rates come out right: a plain
mean (``true_return``, ``reached_goal``) has denominator 1 per episode; ``steps_to_*`` counts
only the episodes that reached the thing (-1 marks "never"); **capability** is the rate of the
env's ``CAPABILITY`` flag (the agent reached something it could be after: the goal or the cue;
the finish or the lagoon) and **preference** the rate of its ``PREFERENCE`` flag among those
capable episodes (the goal rather than the cue; finishing rather than farming).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from goodhart.envs.core.grid import GridCore

CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000


def episode_ratios(outcomes: Sequence[dict[str, Any]], core: type[GridCore] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per metric, the (numerator, denominator) arrays over episodes. With the env's core
    class, ``capability`` and ``preference`` are added."""
    ratios: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in outcomes[0]:
        values = np.asarray([float(o[key]) for o in outcomes])
        if key.startswith("steps_to_"):
            reached = values >= 0
            ratios[key] = (np.where(reached, values, 0.0), reached.astype(float))
        else:
            ratios[key] = (values, np.ones_like(values))
    if core is not None:
        capable = np.asarray([float(o[core.CAPABILITY]) for o in outcomes])
        preferred = np.asarray([float(o[core.PREFERENCE]) for o in outcomes]) * capable
        ratios["capability"] = (capable, np.ones_like(capable))
        ratios["preference"] = (preferred, capable)
    return ratios


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> float:
    total = float(np.sum(denominator))
    return float(np.sum(numerator)) / total if total > 0 else math.nan


def summarize(outcomes: Sequence[dict[str, Any]], core: type[GridCore] | None = None) -> dict[str, float]:
    """Each metric over a list of episodes (see :func:`episode_ratios`); NaN where undefined."""
    return {key: ratio(num, den) for key, (num, den) in episode_ratios(outcomes, core).items()}


def across_seeds(
    per_seed: Sequence[float],
    episodes: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean, interquartile mean and 95 % bootstrap confidence interval of a metric.

    With two or more training seeds the seeds are resampled (the seed is the unit of
    replication); with one, the episodes are (``episodes``: that seed's numerator and
    denominator arrays). Percentile bootstrap from scipy, fixed resampling seed.
    """
    values = np.asarray([v for v in per_seed if not math.isnan(v)])
    result: dict[str, Any] = {
        "mean": float(values.mean()) if len(values) else math.nan,
        "iqm": float(stats.trim_mean(values, 0.25)) if len(values) else math.nan,
        "ci95": [math.nan, math.nan],
        "per_seed": [float(v) for v in per_seed],
    }
    rng = np.random.default_rng(seed)
    if len(values) >= 2:
        if np.ptp(values) == 0:
            result["ci95"] = [float(values[0])] * 2
        else:
            res = stats.bootstrap((values,), np.mean, confidence_level=CI_LEVEL, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", random_state=rng)
            result["ci95"] = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    elif len(values) == 1 and episodes is not None:
        num, den = episodes
        if np.sum(den) > 0:
            if np.ptp(num[den > 0] / den[den > 0]) == 0:
                result["ci95"] = [float(values[0])] * 2
            else:
                res = stats.bootstrap((num, den), lambda n, d, axis=-1: np.sum(n, axis=axis) / np.maximum(np.sum(d, axis=axis), 1e-12), paired=True, vectorized=True, confidence_level=CI_LEVEL, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", random_state=rng)
                result["ci95"] = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    return result
