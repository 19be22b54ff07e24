"""The report's plots, drawn from a results record (matplotlib, Agg, written atomically).

``bars.png``   each policy on each distribution: the env's headline metrics, capability,
               preference and the true return, a panel each with its own scale and unit
``curves.png`` the Goodhart curve of each trained policy: the env's proxy (top) and the true
               return (bottom) over training on one step axis, each seed thin, their mean
               bold, the true return's peak and the final window marked
``knob.png``   a sweep's metrics against its knob, with the recovery statistic if asked for
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.agents.files import write_atomic
from goodhart.experiments import results
from goodhart.experiments.columns import column_of, core_of, headline_metrics, is_rate, label, one_per_column, share, steps, unit, words
from goodhart.experiments.curves import FINAL_SHARE, TRAINING, nanmean
from goodhart.experiments.metrics import INTERVALS, interval

PROXY_COLOUR, TRUE_COLOUR = "tab:orange", "tab:blue"


DPI = 110


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend: plots are files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | os.PathLike[str]) -> None:
    """The one way the project saves a figure: a PNG at ``DPI``, written atomically (a killed
    process leaves the old file or the new one). A pyplot figure is closed after (pyplot keeps
    every figure it made until then); a figure made with the object API (``Figure()``, the
    teaching figures) is not pyplot's, so pyplot is not even imported for it."""
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    if fig.canvas.manager is not None:
        pyplot().close(fig)




def _axis_unit(record: Mapping[str, Any], metric: str) -> str:
    if metric == "preference":
        return "share of capable episodes"
    return "share of episodes" if is_rate(record, metric) else unit(record, metric)


def _errors(stats: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Means and (2, n) error-bar lengths from each metric's interval (0 where none)."""
    means = np.array([s["mean"] for s in stats], dtype=float)
    bounds = np.array([interval(s) for s in stats], dtype=float).reshape(-1, 2)
    errors = np.nan_to_num(np.vstack([means - bounds[:, 0], bounds[:, 1] - means]), nan=0.0).clip(min=0)
    return means, errors


def _intervals_used(record: Mapping[str, Any], policies: Sequence[str], dist: str) -> str:
    """What the error bars of ``policies`` on ``dist`` are, in words, per kind of policy."""
    parts = []
    for kind, who in (("trained", "trained policies"), ("reference", "reference policies")):
        kinds = {results.metrics(record, p, dist)["capability"].get("interval", "none") for p in policies if results.entry(record, p)["kind"] == kind}
        shown = [INTERVALS[k] for k in ("seeds", "range", "episodes") if k in kinds]
        if shown:
            parts.append(f"{who}: {' or '.join(shown)}")
    return "; ".join(parts) or "none"


def bar_metrics(record: Mapping[str, Any]) -> list[str]:
    """The env's headline metrics, capability, preference, the true return and the proxy, one
    per table column."""
    return one_per_column(record, [*headline_metrics(record), "capability", "preference", "true_return", core_of(record).PROXY_RETURN])


def bar_plot(record: Mapping[str, Any], path: Path) -> None:
    """Per metric a panel: a group of bars per policy, one bar per distribution, with the
    metric's interval as error bars; the legend in a free panel or below the panels."""
    plt = pyplot()
    metrics = bar_metrics(record)
    policies, dists = list(results.policies(record)), record["distributions"]
    ncols = 2 if len(metrics) == 4 else min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.3 * nrows + 0.8), squeeze=False, layout="constrained")
    width = 0.8 / len(dists)
    for ax, metric in zip(axes.flat, metrics):
        for k, dist in enumerate(dists):
            means, errors = _errors([results.metrics(record, p, dist)[metric] for p in policies])
            x = np.arange(len(policies)) + (k - (len(dists) - 1) / 2) * width
            ax.bar(x, means, width, yerr=errors, capsize=2, label=dist, color=f"C{k}")
            for xi in x[np.isnan(means)]:  # undefined (e.g. a preference without capable episodes)
                ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=6, color="0.4", rotation=90)
        column = column_of(record, metric)
        ax.set_title(textwrap.fill(column[0] if column else metric, 42), fontsize=10)
        ax.set_ylabel(_axis_unit(record, metric))
        if is_rate(record, metric):
            ax.set_ylim(0, 1.05)
        ax.set_xticks(np.arange(len(policies)), policies, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    title = "level distribution"
    free = list(axes.flat)[len(metrics):]
    for ax in free:
        ax.axis("off")
    if free:
        free[0].legend(handles, names, loc="center", title=title, fontsize=9, frameon=False)
    else:
        fig.legend(handles, names, loc="outside lower center", ncol=len(dists), title=title, fontsize=9, frameon=False)
    note = f"bars: the mean; error bars: {_intervals_used(record, policies, dists[0])}"
    if len(note) > 50 * ncols:
        note = note.replace("; ", "\n")
    fig.suptitle(f"{record['env']}: each policy on each level distribution\n{note}", fontsize=9)
    save_png(fig, path)


def _steps_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: steps(v)))


def curve_plot(record: Mapping[str, Any], path: Path) -> None:
    """The Goodhart curve of every trained policy with training curves (see
    :mod:`goodhart.experiments.curves`): a block per policy, the proxy above the true return
    on the same step axis (one panel where they are the same in every episode)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = pyplot()
    core = core_of(record)
    names = results.with_curves(record)
    if not names:
        return
    ncols = min(3, len(names))
    nblocks = math.ceil(len(names) / ncols)
    both = any(not results.curves(record, n)["proxy_is_true"] for n in names)
    fig = plt.figure(figsize=(max(5.0 * ncols, 7.5), (4.6 if both else 2.9) * nblocks + 1.0), layout="constrained")
    blocks = fig.subfigures(nblocks, ncols, squeeze=False)
    true_unit = core.UNITS.get("true_return")
    true_column = column_of(record, "true_return")
    true_name = true_column[0] if true_column else "true return"
    for block, name in zip(blocks.flat, names):
        curves, training = results.curves(record, name), results.metrics(record, name, TRAINING)
        x = np.asarray(curves["steps"])
        rows = [("true", TRUE_COLOUR)] if curves["proxy_is_true"] else [("proxy", PROXY_COLOUR), ("true", TRUE_COLOUR)]
        axes = block.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
        peak_step = training["true_return_peak_step"]["mean"]
        seeds = len(curves["true"])
        for ax, (which, colour) in zip(axes, rows):
            per_seed = np.asarray(curves[which], dtype=float)
            for curve in per_seed:
                ax.plot(x, curve, color=colour, lw=0.7, alpha=0.4)
            ax.plot(x, nanmean(per_seed, axis=0), color=colour, lw=2.2)
            ax.axvspan(curves["final_from"], x[-1] + (x[1] - x[0]) / 2 if len(x) > 1 else x[-1], color="0.5", alpha=0.15, lw=0)
            ax.axvline(peak_step, color="0.3", ls=":", lw=1)
            ax.grid(alpha=0.3)
            if which == "true":
                peak, final = training["true_return_peak"]["mean"], training["true_return_final"]["mean"]
                ax.plot([peak_step], [peak], marker="v", color="black", ms=7, zorder=5, ls="")
                ratio_ = training["true_return_final_over_peak"]["mean"]
                ax.set_title(f"peak {peak:.2f} at {steps(peak_step)}; final {final:.2f} ({ratio_:.2f} x peak)", fontsize=8, loc="right")
                if true_column and any(is_rate(record, m) for m in true_column[1]):
                    ax.set_ylim(-0.02, 1.05)  # a share of episodes, e.g. the goal reached
                shown = "proxy = " + true_name if curves["proxy_is_true"] and not true_name.startswith("proxy") else true_name
                ax.set_ylabel(textwrap.fill(shown, 28) + f"\n({true_unit + ' ' if true_unit else ''}per episode)", color=TRUE_COLOUR, fontsize=9)
            else:
                rise = training["proxy_return_rise_after_true_peak"]["mean"]
                ax.set_title(f"final {training['proxy_return_final']['mean']:.2f}; {rise:+.2f} after the true peak", fontsize=8, loc="right")
                ax.set_ylabel(f"{label(core, core.PROXY_RETURN)}\n({unit(record, core.PROXY_RETURN)})", color=PROXY_COLOUR, fontsize=9)
        axes[-1].set_xlabel("environment steps")
        _steps_axis(axes[-1])
        block.suptitle(f"{name}: trained on {results.entry(record, name)['trained_on']}, {seeds} seed{'s' if seeds != 1 else ''}", fontsize=10)
    for block in list(blocks.flat)[len(names):]:
        block.set_visible(False)
    handles = [
        Line2D([], [], color="0.2", lw=2.2, label="mean over seeds"),
        Line2D([], [], color="0.2", lw=0.7, alpha=0.5, label="each seed"),
        Line2D([], [], color="black", marker="v", ls="", label="peak of the mean true return"),
        Line2D([], [], color="0.3", ls=":", label="the peak's step"),
        Patch(color="0.5", alpha=0.3, label=f"final {share(FINAL_SHARE)} of training"),
    ]
    if both:
        handles[:0] = [Patch(color=PROXY_COLOUR, label=f"proxy ({core.PROXY_RETURN})"), Patch(color=TRUE_COLOUR, label="true return")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)
    bins = len(results.curves(record, names[0])["steps"])
    fig.suptitle(f"Training curves: each episode's return, binned into {bins} windows of steps", fontsize=10)
    save_png(fig, path)


def knob_plot(record: Mapping[str, Any], path: Path) -> None:
    """The knob metrics of a sweep (:func:`results.knob`) against the knob, with intervals; the
    recovery statistic's half-way level and where it is reached."""
    plt = pyplot()
    core, knob = core_of(record), results.knob(record)
    names = sorted(knob["values"], key=lambda n: knob["values"][n])
    x = np.array([knob["values"][n] for n in names])
    fig, ax = plt.subplots(figsize=(6.4, 5.0), layout="constrained")
    colours = {}
    for k, (dist, metric) in enumerate(knob["metrics"]):
        means, errors = _errors([results.metrics(record, n, dist)[metric] for n in names])
        line = ax.errorbar(x, means, yerr=errors, marker="osD^v"[k % 5], ls=("-", "--", "-.", ":")[k % 4], capsize=3, color=f"C{k}", label=f"{dist}: {words(core, metric)}")
        colours[(dist, metric)] = line[0].get_color()
    positive = x[x > 0]
    if len(positive) and positive.max() / positive.min() >= 10:
        ax.set_xscale("symlog", linthresh=positive.min(), linscale=0.6)
    ax.set_xticks(x, [f"{v:g}" for v in x], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel(textwrap.fill(knob["label"], 80), fontsize=9)
    ax.set_ylabel("share of episodes" if all(is_rate(record, m) for _, m in knob["metrics"]) else "mean per episode")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    recovery = knob.get("recovery")
    if recovery:
        colour = colours.get((recovery["distribution"], recovery["metric"]), "0.3")
        found = f"first reached at {recovery['recovered_at']:g}" if recovery["recovered_at"] is not None else "reached at no tested value"
        ax.axhline(recovery["halfway"], color=colour, ls=(0, (2, 2)), lw=1,
                   label=f"half-way from {recovery['baseline_mean']:.2f} (at 0) to {recovery['target']:g}: {recovery['halfway']:.2f}, {found}")
        if recovery["recovered_at"] is not None:
            ax.axvline(recovery["recovered_at"], color=colour, ls=(0, (2, 2)), lw=1)
    handles, labels = ax.get_legend_handles_labels()
    lines = len(knob["metrics"])  # the metrics first (errorbar handles come after plain lines)
    order = [*range(len(handles) - lines, len(handles)), *range(len(handles) - lines)]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    ax.set_title(f"{record['sweep']['name'] if 'sweep' in record else record['env']}: mean over seeds; error bars: {_intervals_used(record, names, knob['metrics'][0][0])}", fontsize=9)
    save_png(fig, path)
