"""The results record, typed: what ``results.json`` holds, and the one place that walks it.

Every kind of experiment writes one record (``results.json``, through
:func:`goodhart.experiments.evaluate.write_results` or the kind's own numbers) with the same
envelope for what ran and what was expected of it (:class:`ExperimentInfo`: name, quick mode,
failed runs, timings, the checks with their verdicts). A sweep's record is an evaluation
(:class:`Record`: per policy, per distribution, per metric a :class:`Stats`); the
over-optimization study's holds its conditions' curves and fits instead
(:class:`OveroptimizationRecord`). The records stay plain JSON, readable without this
package; the types say what is in them, and the accessors below are how reports, plots and
checks read an evaluation, so no reader spells out the nesting.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

from goodhart.experiments.engine.checks import CheckResult

TRAINED = "trained"


class Stats(TypedDict, total=False):
    """A metric across training seeds (or a reference policy's episodes), from
    :func:`goodhart.experiments.metrics.across_seeds`: ``mean``, ``iqm``, ``per_seed``,
    ``range`` and the 95 % interval ``ci95`` of kind ``interval`` (seeds, range, episodes)."""

    mean: float
    iqm: float
    per_seed: list[float]
    range: list[float]
    ci95: list[float]
    interval: str


class TrainingCurves(TypedDict):
    """The mean training curve of a trained policy's seeds (:mod:`goodhart.experiments.curves`);
    for runs trained with a divergence alarm also ``alarms``: per seed, the step it fired (or None)."""

    steps: list[float]
    true: list[list[float]]
    proxy: list[list[float]]
    final_from: float
    final_bins: int
    proxy_is_true: bool


class PolicyEntry(TypedDict, total=False):
    """One policy of an evaluation: ``kind`` (trained or reference), where it came from, its
    seeds, and ``metrics[distribution][metric]``; a trained one also its training curves."""

    kind: str
    source: str
    trained_on: str | None
    seeds: list[int]
    env_kwargs: dict[str, Any]
    runs: list[str]
    metrics: dict[str, dict[str, Stats]]
    identical: list[list[str]]
    constant: list[str]
    training_curves: TrainingCurves


class ExperimentInfo(TypedDict, total=False):
    """What ran: the sweep section of a sweep's record."""

    name: str
    quick: bool
    train_seconds: int
    wall_seconds: int
    failed_runs: list[str]


class Knob(TypedDict, total=False):
    """A knob sweep: each condition's plotted knob value, the plotted metrics, the recovery."""

    key: str
    label: str
    complement: bool
    values: dict[str, float]
    metrics: list[list[str]]
    recovery: dict[str, Any] | None


class Record(TypedDict, total=False):
    """An evaluation (``goodhart evaluate``, and every sweep): the env, its level sets, the
    policies; a sweep adds ``sweep``, ``checks`` and maybe ``knob``."""

    env: str
    distributions: list[str]
    episodes: int
    level_seed: int
    capability: str
    preference: str
    flags: list[str]
    policies: dict[str, PolicyEntry]
    sweep: ExperimentInfo
    checks: list[dict[str, Any]]
    knob: Knob


class OveroptimizationRecord(TypedDict, total=False):
    """The over-optimization study: per condition its curves against d, fits and peak
    (``conditions``), the reference policies, and the same envelope keys as a sweep's
    (name, quick, failed runs, timings as ``seconds``, checks)."""

    name: str
    quick: bool
    seeds: list[int]
    env: str
    env_kwargs: dict[str, Any]
    rater: dict[str, Any]
    sources: list[str]
    conditions: dict[str, dict[str, Any]]
    references: dict[str, dict[str, Stats]]
    failed_runs: list[str]
    seconds: dict[str, int]
    checks: list[dict[str, Any]]


def folder_name(name: str, quick: bool = False, trainer: str | None = None) -> str:
    """A reproduction's folder name, by default and in docs/results: ``NAME``, ``-quick`` added
    in quick mode and ``-TRAINER`` under a trainer other than the shipped one
    (``results/NAME-quick-example``)."""
    return name + ("-quick" if quick else "") + (f"-{trainer}" if trainer else "")


def check_records(checks: Iterable[CheckResult]) -> list[dict[str, Any]]:
    """The checks as a record stores them: ``{"text", "pass"}`` each."""
    return [{"text": text, "pass": bool(passed)} for text, passed in checks]


# ------------------------------------------------------------------ reading an evaluation
def policies(record: Record) -> dict[str, PolicyEntry]:
    return record["policies"]


def entry(record: Record, name: str) -> PolicyEntry:
    return record["policies"][name]


def trained_names(record: Record) -> list[str]:
    return [name for name, e in record["policies"].items() if e["kind"] == TRAINED]


def reference_names(record: Record) -> list[str]:
    return [name for name, e in record["policies"].items() if e["kind"] != TRAINED]


def metrics(record: Record, name: str, distribution: str) -> dict[str, Stats]:
    """Every metric of policy ``name`` on ``distribution`` (or the pseudo-distribution of its
    training curves); empty if it has none there."""
    return record["policies"][name]["metrics"].get(distribution, {})


def stats(record: Record, name: str, distribution: str, metric: str) -> Stats | None:
    """``metric`` of policy ``name`` on ``distribution``; None if the record has no such number."""
    return record["policies"].get(name, {}).get("metrics", {}).get(distribution, {}).get(metric)


def mean(record: Record, name: str, distribution: str, metric: str) -> float:
    return record["policies"][name]["metrics"][distribution][metric]["mean"]


def curves(record: Record, name: str) -> TrainingCurves | None:
    """The training curves of policy ``name`` (None: a reference policy, or runs without
    episode logs)."""
    return record["policies"][name].get("training_curves")


def with_curves(record: Record) -> list[str]:
    return [name for name, e in record["policies"].items() if "training_curves" in e]


def knob(record: Record) -> Knob | None:
    return record.get("knob")


def intervals_used(record: Record) -> set[str]:
    """The kinds of interval of every number in the record."""
    return {s.get("interval", "none") for e in record["policies"].values() for d in e["metrics"].values() for s in d.values()}
