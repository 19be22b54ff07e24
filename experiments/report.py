"""Reports of evaluation results: Markdown tables and matplotlib plots.

Plots: ``bars.png`` (train vs. shifted per policy, with 95 % CIs), ``curves.png`` (the
Goodhart curve: proxy and true return over training, per trained policy), and for sweeps
``knob.png`` (metrics against the swept knob).
"""

from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.agents.files import write_atomic
from goodhart.envs import core_class

HEADLINE = ("capability", "preference", "true_return", "return")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fmt(stats: Mapping[str, Any]) -> str:
    """``mean [low, high]`` with two decimals (``n/a`` where undefined)."""
    mean, (low, high) = stats["mean"], stats["ci95"]
    if math.isnan(mean):
        return "n/a"
    if math.isnan(low):
        return f"{mean:.2f}"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def metric_columns(record: Mapping[str, Any]) -> list[str]:
    """The headline metrics, then the env's own outcome metrics (no step counts)."""
    core = core_class(record["env"])
    own = [m for m in core.OUTCOMES if not m.startswith("steps_to_") and m not in (core.CAPABILITY,)]
    return [*HEADLINE, *own]


def markdown(record: Mapping[str, Any], title: str, checks: Sequence[tuple[str, bool]] = ()) -> str:
    core = core_class(record["env"])
    lines = [
        f"# {title}",
        "",
        f"Environment `{record['env']}`; {record['episodes']} episodes per distribution on fixed levels "
        f"(level seed {record['level_seed']}), the same for every policy. Cells: mean over training seeds "
        "[95 % bootstrap CI]; one seed: CI over episodes.",
        "",
        f"- **capability**: rate of `{core.CAPABILITY}` (reached the intended target or its proxy).",
        f"- **preference**: rate of `{core.PREFERENCE}` among the capable episodes (the intended target rather than the proxy).",
        "- **true_return** is the true objective, **return** the proxy reward.",
        "",
    ]
    if checks:
        lines += ["## Expected effects", ""]
        lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks]
        lines.append("")
    columns = metric_columns(record)
    for dist in record["distributions"]:
        lines += [f"## Distribution `{dist}`", "", "| policy | seeds | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
        for name, entry in record["policies"].items():
            cells = [fmt(entry["metrics"][dist][c]) if c in entry["metrics"][dist] else "" for c in columns]
            lines.append(f"| {name} | {len(entry['seeds']) if entry['kind'] == 'trained' else '-'} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Per-seed values", "", "| policy | distribution | metric | per seed | IQM |", "|---|---|---|---|---|"]
    for name, entry in record["policies"].items():
        if entry["kind"] != "trained":
            continue
        for dist in record["distributions"]:
            for metric in HEADLINE:
                stats = entry["metrics"][dist][metric]
                values = ", ".join("n/a" if math.isnan(v) else f"{v:.2f}" for v in stats["per_seed"])
                lines.append(f"| {name} | {dist} | {metric} | {values} | {stats['iqm']:.2f} |")
    return "\n".join(lines) + "\n"


def bar_plot(record: Mapping[str, Any], path: Path, metrics: Sequence[str] = ("capability", "preference", "true_return")) -> None:
    """Per metric, a group of bars per policy: one bar per distribution, with 95 % CIs."""
    plt = _pyplot()
    policies, dists = list(record["policies"]), record["distributions"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    width = 0.8 / len(dists)
    for ax, metric in zip(axes[0], metrics):
        for k, dist in enumerate(dists):
            stats = [record["policies"][p]["metrics"][dist][metric] for p in policies]
            means = np.array([s["mean"] for s in stats])
            lows = np.array([s["ci95"][0] for s in stats])
            highs = np.array([s["ci95"][1] for s in stats])
            errors = np.nan_to_num(np.vstack([means - lows, highs - means]), nan=0.0).clip(min=0)
            x = np.arange(len(policies)) + (k - (len(dists) - 1) / 2) * width
            ax.bar(x, np.nan_to_num(means), width, yerr=errors, capsize=3, label=dist)
        ax.set_xticks(np.arange(len(policies)), policies, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def training_curve(run: Path, bins: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(timesteps, proxy return, true return) of a run's training episodes, binned by time."""
    with (run / "episodes.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = np.array([int(r["timestep"]) for r in rows])
    proxy = np.array([float(r["return"]) for r in rows])
    true = np.array([float(r["true_return"]) for r in rows])
    edges = np.linspace(0, steps.max() + 1, bins + 1)
    which = np.digitize(steps, edges) - 1
    keep = [b for b in range(bins) if np.any(which == b)]
    centres = np.array([(edges[b] + edges[b + 1]) / 2 for b in keep])
    return centres, np.array([proxy[which == b].mean() for b in keep]), np.array([true[which == b].mean() for b in keep])


def curve_plot(runs: Mapping[str, Sequence[Path]], path: Path) -> None:
    """The Goodhart curve of each trained policy: proxy return (left axis) and true return
    (right axis) over training, mean over seeds with the seeds' range shaded."""
    plt = _pyplot()
    runs = {name: [r for r in folders if (r / "episodes.csv").exists()] for name, folders in runs.items()}
    runs = {name: folders for name, folders in runs.items() if folders}
    if not runs:
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 3.4), squeeze=False)
    for ax, (name, folders) in zip(axes[0], runs.items()):
        curves = [training_curve(r) for r in folders]
        n = min(len(c[0]) for c in curves)
        x = curves[0][0][:n]
        proxy = np.array([c[1][:n] for c in curves])
        true = np.array([c[2][:n] for c in curves])
        twin = ax.twinx()
        ax.plot(x, proxy.mean(0), color="tab:orange", label="proxy return")
        ax.fill_between(x, proxy.min(0), proxy.max(0), color="tab:orange", alpha=0.2)
        twin.plot(x, true.mean(0), color="tab:blue", label="true return")
        twin.fill_between(x, true.min(0), true.max(0), color="tab:blue", alpha=0.2)
        ax.set_xlabel("timesteps")
        ax.set_ylabel("proxy return", color="tab:orange")
        twin.set_ylabel("true return", color="tab:blue")
        ax.set_title(f"{name} ({len(folders)} seed{'s' if len(folders) > 1 else ''})")
    fig.tight_layout()
    _save(fig, path)


def knob_plot(record: Mapping[str, Any], knob: str, values: Mapping[str, float], path: Path, metrics: Sequence[tuple[str, str]]) -> None:
    """Metrics (``(distribution, metric)`` pairs) against the swept knob, with 95 % CIs;
    ``values`` maps each policy (condition) to its knob value."""
    plt = _pyplot()
    names = sorted(values, key=lambda n: values[n])
    x = np.array([values[n] for n in names])
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    for dist, metric in metrics:
        stats = [record["policies"][n]["metrics"][dist][metric] for n in names]
        means = np.array([s["mean"] for s in stats])
        errors = np.nan_to_num(np.vstack([means - [s["ci95"][0] for s in stats], [s["ci95"][1] for s in stats] - means]), nan=0.0).clip(min=0)
        ax.errorbar(x, means, yerr=errors, marker="o", capsize=3, label=f"{dist}: {metric}")
    ax.set_xlabel(textwrap.fill(knob, 60))  # long labels would run off the figure
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    fig.clf()


def write_report(record: Mapping[str, Any], out: Path, title: str, checks: Sequence[tuple[str, bool]] = (), extra: str = "") -> Path:
    """report.md, bars.png and (for trained policies with run folders) curves.png in ``out``."""
    bar_plot(record, out / "bars.png")
    runs = {name: [Path(r) for r in entry["runs"]] for name, entry in record["policies"].items() if entry["runs"]}
    curve_plot(runs, out / "curves.png")
    text = markdown(record, title, checks)
    text += "\n![train vs. shifted](bars.png)\n"
    if (out / "curves.png").exists():
        text += "\n![training curves: proxy and true return](curves.png)\n"
    text += extra
    write_atomic(out / "report.md", lambda tmp: tmp.write_text(text))
    return out / "report.md"
