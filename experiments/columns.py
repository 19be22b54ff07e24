"""What a report calls each metric of a results record, in which column, and how it prints.

Names come from the env's hooks, never from its id: ``PROXY_RETURN`` is always "proxy" (the
env's own proxy, e.g. the race's game score, whatever reward the policy was trained on),
``true_return`` always "true return", and ``return`` (the reward each policy was trained on)
"own reward". Metrics equal in every evaluated episode of every policy (and not constant
throughout) are one column, headed with all their names: the coloured-cue maze's proxy, true
return and ``reached_goal`` are the same 0/1 per episode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from goodhart.envs import core_class
from goodhart.envs.core.grid import GridCore
from goodhart.experiments import results
from goodhart.experiments.metrics import interval

DERIVED = ("capability", "preference")  # rates the evaluator adds to the env's outcomes


def core_of(record: Mapping[str, Any]) -> type[GridCore]:
    return core_class(record["env"])


def is_rate(record: Mapping[str, Any], metric: str) -> bool:
    """A share of episodes (a flag outcome, capability, preference) rather than an amount."""
    return metric in DERIVED or metric in record.get("flags", ())


def label(core: type[GridCore], metric: str) -> str:
    """A column or axis name: ``proxy: score``, ``true return``, ``own reward``, or the metric."""
    if metric == core.PROXY_RETURN:
        return "proxy" if metric == "return" else f"proxy: {metric}"
    return {"true_return": "true return", "return": "own reward"}.get(metric, metric)


def words(core: type[GridCore], metric: str) -> str:
    """A metric in a sentence: ``score (the proxy)``, ``true return``, ``reached cue first``."""
    if metric == core.PROXY_RETURN:
        return "proxy return" if metric == "return" else f"{metric.replace('_', ' ')} (the proxy)"
    return {"return": "own reward"}.get(metric, metric.replace("_", " "))


def unit(record: Mapping[str, Any], metric: str) -> str:
    """``of episodes`` for rates, else the env's unit (``laps``) or nothing, ``per episode``."""
    if is_rate(record, metric):
        return "of episodes"
    own = core_of(record).UNITS.get(metric, "")
    return f"{own} per episode" if own else "per episode"


def number(value: float, short: bool = False) -> str:
    """A number as every report, check and figure prints it: two decimals, ``n/a`` where
    undefined; ``short`` (figure titles, where space is scarce): one decimal from 10 on."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.1f}" if short and abs(value) >= 10 else f"{value:.2f}"


def fmt(stats: Mapping[str, Any]) -> str:
    """``mean [low, high]`` for a CI, ``mean (range low, high)`` for two seeds' range
    (``mean (both seeds)`` if they agree), or the mean alone; two decimals, ``n/a`` where
    undefined."""
    mean = stats["mean"]
    if math.isnan(mean):
        return number(mean)
    low, high = interval(stats)
    if math.isnan(low):
        return number(mean)
    if stats.get("interval") == "range":
        return f"{mean:.2f} (range {low:.2f}, {high:.2f})" if f"{low:.2f}" != f"{high:.2f}" else f"{mean:.2f} (both seeds)"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def steps(value: float) -> str:
    """Environment steps, short: ``120k``, ``1.5M``."""
    if math.isnan(value):
        return "n/a"
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.0f}"


def _same(record: Mapping[str, Any], a: str, b: str) -> bool:
    """``a`` and ``b`` were equal in every episode of every policy, and not constant throughout."""
    entries = list(results.policies(record).values())
    if a in DERIVED or b in DERIVED or not entries:
        return False
    together = all(any(a in group and b in group for group in entry.get("identical", ())) for entry in entries)
    return together and any(a not in entry.get("constant", ()) for entry in entries)


def own_reward_equals(record: Mapping[str, Any], name: str, shown: Sequence[str]) -> list[str]:
    """The shown metrics that policy ``name``'s own reward (``return``) equalled in every
    episode it played."""
    for group in results.entry(record, name).get("identical", ()):
        if "return" in group:
            return [m for m in group if m != "return" and m in shown]
    return []


def columns(record: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """The table's columns: ``(header, metrics)``, the first metric holding the values.

    Capability and preference, the proxy, the true return, each policy's own reward (only
    where some trained policy's reward is none of the shown columns), then the env's own
    outcomes (no step counts); metrics equal per episode share a column."""
    core = core_of(record)
    candidates = ["capability", "preference", core.PROXY_RETURN, "true_return"]
    own = [m for m in core.OUTCOMES if not m.startswith("steps_to_") and m != core.CAPABILITY]
    candidates += [m for m in own if m not in candidates]
    if "return" not in candidates:
        if any(not own_reward_equals(record, n, candidates) for n in results.trained_names(record)):
            candidates.insert(4, "return")
    merged: list[list[str]] = []
    for metric in candidates:
        for column in merged:
            if _same(record, column[0], metric):
                column.append(metric)
                break
        else:
            merged.append([metric])
    return [(" = ".join(label(core, m) for m in column), column) for column in merged]


def share(fraction: float) -> str:
    """``10 %``."""
    return f"{fraction * 100:g} %"


def column_of(record: Mapping[str, Any], metric: str) -> tuple[str, list[str]] | None:
    """The column that shows ``metric`` (None if the report shows it nowhere)."""
    return next((c for c in columns(record) if metric in c[1]), None)


def one_per_column(record: Mapping[str, Any], metrics: Sequence[str]) -> list[str]:
    """``metrics`` in order, leaving out each that a merged column already shows."""
    seen, result = set(), []
    for metric in metrics:
        column = column_of(record, metric)
        key = column[1][0] if column else metric
        if key not in seen:
            seen.add(key)
            result.append(metric)
    return result


def headline_metrics(record: Mapping[str, Any]) -> list[str]:
    """The env's ``HEADLINE`` metrics, one per column (the figures' headline *text* is
    :func:`goodhart.experiments.teaching.figures.headline`)."""
    return one_per_column(record, core_of(record).HEADLINE)
