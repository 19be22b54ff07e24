"""Training curves: the proxy and the true return over training, and the numbers read off them.

A run's ``episodes.csv`` holds every finished training episode. Its curve is the mean return of
the episodes that ended in each of ``CURVE_BINS`` equal windows of environment steps (the same
windows for every seed of a policy, from the end of the warm-up, when only episodes that ended
early can have ended (:func:`warm_up`), to the last episode of any of them); a policy's curve
is the mean of its seeds' curves. ``curves.png`` draws these, and the evaluator records
numbers read off them as the pseudo-distribution ``TRAINING``, so that checks can read them
like any other metric (``distribution: training``):

    true_return_peak               the highest bin of the mean true-return curve
    true_return_peak_step          where it is (environment steps, the bin's centre)
    true_return_final              the mean true return over the last FINAL_SHARE of training
    true_return_final_over_peak    final / peak: <= 0.5 means it fell to half its peak or lower
    proxy_return_peak, proxy_return_final, proxy_return_final_over_peak
                                   the same for the env's proxy (its ``PROXY_RETURN`` outcome)
    proxy_return_at_true_peak      the proxy in the bin where the true return peaked
    proxy_return_rise_after_true_peak
                                   proxy final - proxy at the true peak: > 0 means the proxy
                                   kept rising after the true objective peaked

Each is the statistic of the mean curve; ``per_seed`` holds the statistic of each seed's own
curve, and the interval bootstraps the seeds (the mean curve of resampled seeds), with the same
rules as :func:`goodhart.experiments.metrics.across_seeds` (fewer than 3 seeds: their range).
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.experiments.config import read_yaml
from goodhart.experiments.metrics import BOOTSTRAP_RESAMPLES, CI_LEVEL, MIN_SEEDS_FOR_CI, defined, seed_summary

ALARM_FILE = "alarm.json"  # a run's divergence alarm, written when it fires (goodhart.experiments.alarm_monitor)
TRAINING = "training"  # the pseudo-distribution of these numbers in a results record
CURVE_BINS = 50
FINAL_SHARE = 0.1  # "final": the last 10 % of training (the last 5 of 50 bins; of fewer, the nearest whole number)
STATISTICS = (
    "true_return_peak",
    "true_return_peak_step",
    "true_return_final",
    "true_return_final_over_peak",
    "proxy_return_peak",
    "proxy_return_final",
    "proxy_return_final_over_peak",
    "proxy_return_at_true_peak",
    "proxy_return_rise_after_true_peak",
)


def episode_rows(run: Path) -> list[dict[str, str]]:
    """A run folder's ``episodes.csv`` rows, in order (none if it has logged none)."""
    path = run / "episodes.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def has_episodes(run: Path) -> bool:
    """Whether a run folder logged a finished training episode after the warm-up."""
    rows = episode_rows(run)
    return bool(rows) and max(int(r["timestep"]) for r in rows) >= warm_up(rows)


def read_episodes(run: Path, proxy: str) -> dict[str, np.ndarray]:
    """``timestep``, ``true`` and ``proxy`` (the ``proxy`` column) of a run's training
    episodes, without the warm-up (see :func:`warm_up`)."""
    rows = episode_rows(run)
    if not rows:
        raise ValueError(f"{run / 'episodes.csv'}: no training episodes")
    if proxy not in rows[0]:
        raise ValueError(f"{run / 'episodes.csv'}: no {proxy!r} column (the env's proxy return)")
    timestep = np.array([int(r["timestep"]) for r in rows])
    start = warm_up(rows)
    kept = timestep >= start
    return {
        "start": np.array(start),
        "timestep": timestep[kept],
        "true": np.array([float(r["true_return"]) for r in rows])[kept],
        "proxy": np.array([float(r[proxy]) for r in rows])[kept],
    }


def warm_up(rows: Sequence[Mapping[str, str]]) -> int:
    """The first timestep at which every env copy could have finished an episode of the
    run's longest length: before it, only episodes that ended early have ended (in the mazes,
    those that reached the goal), and their mean would be biased. ``timestep`` counts the
    steps of all ``n_envs`` copies, so that is the longest episode times the copies (0 if the
    log has no ``steps`` and ``env`` columns)."""
    if "steps" not in rows[0] or "env" not in rows[0]:
        return 0
    copies = max(int(r["env"]) for r in rows) + 1
    return max(int(r["steps"]) for r in rows) * copies


def binned(steps: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The mean of ``values`` per window of ``edges`` (NaN where no episode ended)."""
    which = np.clip(np.digitize(steps, edges) - 1, 0, len(edges) - 2)
    sums = np.bincount(which, weights=values, minlength=len(edges) - 1)
    counts = np.bincount(which, minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def training_curves(runs: Sequence[Path], proxy: str, bins: int = CURVE_BINS) -> dict[str, Any]:
    """The binned curves of a policy's runs (one per seed, in order), in ``bins`` windows, or
    fewer where a window would be shorter than the warm-up: all copies start together and
    episodes that time out end together, so shorter windows alternate between early
    successes and time-outs.

    ``steps`` (bins,) the windows' centres; ``true`` and ``proxy`` (seeds, bins) each seed's
    curve, NaN where it had no episode; ``final_from`` the first step of the final window;
    ``proxy_is_true``: the proxy equals the true return in every training episode (then one
    curve stands for both); ``alarms``: per seed, the step its divergence alarm fired (its
    ``alarm.json``, :mod:`goodhart.experiments.alarm`), None where none did; absent where no
    run trained with an alarm."""
    episodes = [read_episodes(run, proxy) for run in runs]
    start = max(int(e["start"]) for e in episodes)
    end = max((int(e["timestep"].max()) for e in episodes if len(e["timestep"])), default=start) + 1
    if start > 0:  # a window no shorter than the warm-up, so that every window holds every copy's episodes
        bins = max(1, min(bins, (end - start) // start))
    edges = np.linspace(start, max(end, start + bins), bins + 1)
    true = np.array([binned(e["timestep"], e["true"], edges) for e in episodes])
    prox = np.array([binned(e["timestep"], e["proxy"], edges) for e in episodes])
    final_bins = max(1, round(bins * FINAL_SHARE))
    curves = {
        "steps": ((edges[:-1] + edges[1:]) / 2).tolist(),
        "true": true.tolist(),
        "proxy": prox.tolist(),
        "final_from": float(edges[bins - final_bins]),
        "final_bins": final_bins,
        "proxy_is_true": all(np.array_equal(e["true"], e["proxy"]) for e in episodes),
    }
    if any(_with_alarm(run) for run in runs):
        curves["alarms"] = [fired_step(run) for run in runs]
    return curves


def _with_alarm(run: Path) -> bool:
    saved = run / "config.yaml"
    return saved.is_file() and bool((read_yaml(saved) or {}).get("alarm"))


def fired_step(run: Path) -> int | None:
    """The step a run's divergence alarm fired at (its ``alarm.json``), None where it did not."""
    path = run / ALARM_FILE
    return int(json.loads(path.read_text())["step"]) if path.is_file() else None


def nanmean(values: np.ndarray, axis: int | None = None) -> Any:
    """``np.nanmean`` without the warning for all-NaN slices (they stay NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _mean_curve(curves: np.ndarray) -> np.ndarray:
    return nanmean(curves, axis=0)


def curve_statistics(steps: np.ndarray, true: np.ndarray, proxy: np.ndarray, final_bins: int) -> dict[str, float]:
    """The :data:`STATISTICS` of one true-return and one proxy curve (bins may be NaN)."""
    if np.all(np.isnan(true)) or np.all(np.isnan(proxy)):
        return dict.fromkeys(STATISTICS, math.nan)
    peak = int(np.nanargmax(true))
    true_final, proxy_final = float(nanmean(true[-final_bins:])), float(nanmean(proxy[-final_bins:]))
    true_peak, proxy_peak = float(true[peak]), float(np.nanmax(proxy))

    def share(final: float, top: float) -> float:
        return final / top if top > 0 else math.nan

    return {
        "true_return_peak": true_peak,
        "true_return_peak_step": float(steps[peak]),
        "true_return_final": true_final,
        "true_return_final_over_peak": share(true_final, true_peak),
        "proxy_return_peak": proxy_peak,
        "proxy_return_final": proxy_final,
        "proxy_return_final_over_peak": share(proxy_final, proxy_peak),
        "proxy_return_at_true_peak": float(proxy[peak]),
        "proxy_return_rise_after_true_peak": proxy_final - float(proxy[peak]),
    }


def training_metrics(curves: Mapping[str, Any], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per statistic: ``mean`` (of the mean curve over seeds), ``per_seed`` (of each seed's
    curve), ``iqm`` of those, ``range`` and the interval of :func:`across_seeds`' rules: with
    >= 3 seeds a 95 % percentile bootstrap of the statistic of the mean curve of resampled
    seeds; with 2, their range."""
    steps = np.asarray(curves["steps"], dtype=float)
    true = np.asarray(curves["true"], dtype=float)
    proxy = np.asarray(curves["proxy"], dtype=float)
    k = int(curves["final_bins"])
    overall = curve_statistics(steps, _mean_curve(true), _mean_curve(proxy), k)
    seeds = [curve_statistics(steps, t, p, k) for t, p in zip(true, proxy)]
    resampled: list[dict[str, float]] = []
    if len(true) >= MIN_SEEDS_FOR_CI:
        rng = np.random.default_rng(seed)
        for _ in range(BOOTSTRAP_RESAMPLES):
            pick = rng.integers(0, len(true), len(true))
            resampled.append(curve_statistics(steps, _mean_curve(true[pick]), _mean_curve(proxy[pick]), k))
    tail = (1 - CI_LEVEL) / 2 * 100
    result = {}
    for name in STATISTICS:
        entry = seed_summary([s[name] for s in seeds])
        entry["mean"] = overall[name]  # the statistic of the mean curve, not the mean of the seeds' statistics
        if len(true) == 2:
            entry["interval"] = "range"
        draws = defined([r[name] for r in resampled])
        if len(draws):
            entry["ci95"] = [float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))]
            entry["interval"] = "seeds"
        result[name] = entry
    return result

