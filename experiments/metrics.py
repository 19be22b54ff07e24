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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from goodhart.envs.core.grid import GridCore

CI_LEVEL = 0.95
MIN_SEEDS_FOR_CI = 3  # fewer: the seeds' range, not a bootstrap CI (see across_seeds)
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


def same_columns(outcomes: Sequence[dict[str, Any]]) -> tuple[list[list[str]], list[str]]:
    """Which outcome metrics are one column in disguise: groups (in outcome order) of metrics
    equal in every one of ``outcomes``, and the metrics constant over them. ``steps_to_*``
    (conditional means) are left out. Reports merge a group into one column only where it
    varies somewhere, so that things that are merely both zero for one policy stay apart."""
    keys = [k for k in outcomes[0] if not k.startswith("steps_to_")]
    columns = {k: np.asarray([float(o[k]) for o in outcomes]) + 0.0 for k in keys}  # + 0.0: -0.0 is 0.0
    groups: dict[bytes, list[str]] = {}
    for key, values in columns.items():
        groups.setdefault(values.tobytes(), []).append(key)
    constant = [k for k, values in columns.items() if np.ptp(values) == 0]
    return [g for g in groups.values() if len(g) > 1], constant


def defined(values: Sequence[float]) -> np.ndarray:
    """``values`` without the NaNs, as an array: a seed whose metric is undefined (no capable
    episode, a curve with no episode) drops out of the statistics instead of making them NaN."""
    return np.asarray([v for v in values if not math.isnan(v)])


def seed_summary(per_seed: Sequence[float]) -> dict[str, Any]:
    """What every metric's statistics say without resampling: ``mean``, ``iqm`` (25 % trimmed)
    and ``range`` of the defined seeds (:func:`defined`), ``per_seed`` as given, and no interval
    yet (``ci95`` NaN, ``interval`` "none"). One place, so that :func:`across_seeds` and the
    training curves' statistics (:func:`goodhart.experiments.curves.training_metrics`), which
    add their own intervals, summarise alike and in the same key order."""
    values = defined(per_seed)
    return {
        "mean": float(values.mean()) if len(values) else math.nan,
        "iqm": float(stats.trim_mean(values, 0.25)) if len(values) else math.nan,
        "ci95": [math.nan, math.nan],
        "range": [float(values.min()), float(values.max())] if len(values) else [math.nan, math.nan],
        "interval": "none",
        "per_seed": [float(v) for v in per_seed],
    }


def across_seeds(
    per_seed: Sequence[float],
    episodes: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean, interquartile mean, range and an interval of a metric across training seeds.

    ``interval`` names what ``ci95`` is, because what is honest depends on the count:
    ``"seeds"`` (>= MIN_SEEDS_FOR_CI seeds): a 95 % percentile bootstrap over seeds, the seed
    being the unit of replication; ``"range"`` (2 seeds): no CI (``ci95`` is NaN; resampling
    two values only gives back their range), report ``range`` instead; ``"episodes"`` (one
    seed, ``episodes``: its numerator and denominator arrays): a 95 % bootstrap over that
    seed's evaluation episodes, which shows level-sampling noise only, not training noise.
    Percentile bootstrap from scipy, fixed resampling seed.
    """
    values = defined(per_seed)
    result = seed_summary(per_seed)
    rng = np.random.default_rng(seed)
    if len(values) >= MIN_SEEDS_FOR_CI:
        result["interval"] = "seeds"
        result["ci95"] = bootstrap_mean(values, rng)
    elif len(values) == 2:
        result["interval"] = "range"
    elif len(values) == 1 and episodes is not None:
        num, den = episodes
        if np.sum(den) > 0:
            result["interval"] = "episodes"
            if np.ptp(num[den > 0] / den[den > 0]) == 0:
                result["ci95"] = [float(values[0])] * 2
            else:
                res = stats.bootstrap((num, den), lambda n, d, axis=-1: np.sum(n, axis=axis) / np.maximum(np.sum(d, axis=axis), 1e-12), paired=True, vectorized=True, confidence_level=CI_LEVEL, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", random_state=rng)
                result["ci95"] = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    return result


def bootstrap_mean(values: np.ndarray, rng: np.random.Generator) -> list[float]:
    """95 % percentile bootstrap CI of the mean of ``values`` (a point if they are all equal)."""
    if np.ptp(values) == 0:
        return [float(values[0])] * 2
    res = stats.bootstrap((values,), np.mean, confidence_level=CI_LEVEL, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", random_state=rng)
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def interval(stats_: Mapping[str, Any]) -> tuple[float, float]:
    """The interval to draw or print for a metric's statistics: its CI, or with two seeds
    their range (see :func:`across_seeds`); NaNs where there is none."""
    if stats_.get("interval") == "range":
        low, high = stats_["range"]
    else:
        low, high = stats_["ci95"]
    return float(low), float(high)


INTERVALS = {  # what ``interval`` names, short (plot legends)
    "seeds": "95 % bootstrap CI over seeds",
    "range": "range of the 2 seeds (not a CI)",
    "episodes": "95 % bootstrap CI over episodes",
    "none": "none",
}


def recovery(means: Mapping[float, float], target: float) -> dict[str, Any]:
    """The recovery statistic of a knob: ``means`` maps each knob value to a metric's mean,
    the value 0 being the baseline. ``halfway`` is half the distance from the baseline's mean
    to ``target``; ``recovered_at`` the smallest knob value > 0 whose mean reaches it (None if
    none does), ``best`` the tested value > 0 whose mean came closest to ``target``."""
    baseline = means[0.0]
    halfway = baseline + (target - baseline) / 2
    tested = sorted(v for v in means if v > 0 and not math.isnan(means[v]))
    up = target >= baseline
    reached = [v for v in tested if (means[v] >= halfway if up else means[v] <= halfway)]
    best = min(tested, key=lambda v: abs(target - means[v])) if tested else None
    return {
        "baseline_mean": baseline,
        "halfway": halfway,
        "recovered_at": reached[0] if reached else None,
        "recovered_mean": means[reached[0]] if reached else None,
        "best": {"value": best, "mean": means[best]} if best is not None else None,
    }
