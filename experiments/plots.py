"""The report's plots, drawn from a results record (matplotlib, Agg, written atomically).

``bars.png``   each policy on each distribution: the env's headline metrics, capability,
               preference and the true return, a panel each with its own scale and unit
``curves.png`` the Goodhart curve of each trained policy: the env's proxy (top) and the true
               return (bottom) over training on one step axis, each seed thin, their mean
               bold, the true return's peak and the final window marked
``knob.png``   a sweep's metrics against its knob, with the recovery statistic if asked for
               (swept under several methods: a panel per metric, a line per method)
``curriculum.png`` with level curricula: the share of distinguishing levels learned from
               against the knob, per method, beside the diagonal (the amplification plot)

Each figure is built by a function that returns it (``bar_figure``, ``curve_figure``,
``knob_figure``) and written by one that saves it (``bar_plot``, ...) under :func:`fonts`:
the reports are read in docs about ``DOCS_WIDTH_PX`` wide, so the text is sized for the
figure as shown there, whatever its size in inches. Every figure has a title naming the
experiment and, where it has one, its headline (:mod:`goodhart.experiments.headline`).
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.agents.files import write_atomic
from goodhart.experiments import results
from goodhart.experiments.columns import column_of, core_of, headline_metrics, is_rate, label, number, one_per_column, share, steps, unit, words
from goodhart.experiments.curricula import CURRICULUM
from goodhart.experiments.curves import FINAL_SHARE, TRAINING, nanmean
from goodhart.experiments.metrics import INTERVALS, interval

PROXY_COLOUR, TRUE_COLOUR = "tab:orange", "tab:blue"
ALARM_COLOUR = "tab:red"  # where a divergence alarm fired


DPI = 110
DOCS_WIDTH_PX = 700  # how wide the docs show a figure
TEXT_PX = 12  # the body text's height on screen, there


def fonts(width_in: float, px: float = TEXT_PX) -> dict[str, Any]:
    """matplotlib's font sizes for a figure ``width_in`` inches wide, such that its text is
    about ``px`` pixels high when the docs shrink it to ``DOCS_WIDTH_PX`` (never below 8 pt)."""
    base = max(8.0, px * 72 * max(width_in * DPI, DOCS_WIDTH_PX) / DPI / DOCS_WIDTH_PX)
    return {
        "font.size": base, "axes.titlesize": base, "axes.labelsize": base, "xtick.labelsize": 0.9 * base,
        "ytick.labelsize": 0.9 * base, "legend.fontsize": 0.9 * base, "legend.title_fontsize": base,
        "figure.titlesize": 1.15 * base,
    }


def write_figure(build: Callable[[], Any], path: Path, width_in: float) -> None:
    """Build a figure ``width_in`` inches wide under :func:`fonts` and save it."""
    plt = pyplot()
    with plt.rc_context(fonts(width_in)):
        fig = build()
        if fig is not None:
            save_png(fig, path)


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


def figure_title(record: Mapping[str, Any], what: str, headline: Any = None) -> str:
    """A figure's title: the experiment (its name, else its env) and, with a headline, its
    phenomenon; then what the figure shows."""
    name = record["sweep"]["name"] if "sweep" in record else record.get("name") or record["env"]
    quick = (record.get("sweep") or record).get("quick")
    first = f"{name}{' (quick)' if quick else ''}" + (f": {headline.phenomenon}" if headline is not None else "")
    return f"{first}\n{what}"


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


def _is_bar_metric(record: Mapping[str, Any], headline: Any) -> bool:
    return headline is not None and headline.distribution in record["distributions"]


def bar_metrics(record: Mapping[str, Any], headline: Any = None) -> list[str]:
    """The headline's metric (where it is an evaluated one), the env's headline metrics,
    capability, preference, the true return and the proxy, one per table column."""
    first = [headline.metric] if _is_bar_metric(record, headline) else []
    return one_per_column(record, [*first, *headline_metrics(record), "capability", "preference", "true_return", core_of(record).PROXY_RETURN])


def same_for_all(record: Mapping[str, Any], policies: Sequence[str], dist: str, metric: str) -> str | None:
    """The value (as printed) of ``metric`` on ``dist`` if every policy has the same mean there
    (e.g. a preference of 1.00 where the proxy and the goal coincide), else None."""
    shown = {number(results.metrics(record, p, dist)[metric]["mean"]) for p in policies}
    return shown.pop() if len(shown) == 1 else None


def panel_title(record: Mapping[str, Any], metric: str) -> str:
    """What a bar panel shows, in words."""
    core = core_of(record)
    if metric == "capability":
        return f"capability: reached the {core.INTENDED_NAME} or the {core.PROXY_NAME}"
    if metric == "preference":
        return f"preference: the {core.INTENDED_NAME} first, of the capable episodes"
    column = column_of(record, metric)
    return " = ".join(label(core, m).replace("_", " ") for m in (column[1] if column else [metric]))


def bar_figure(record: Mapping[str, Any], headline: Any = None) -> Any:
    """Per metric a panel (the headline's first): a group of bars per policy, one bar per
    distribution, with the metric's interval as error bars. A distribution where every policy
    has the same value (nothing to compare) is not drawn but named under the panel; the
    headline's bar is outlined."""
    plt = pyplot()
    metrics = bar_metrics(record, headline)
    policies, dists = list(results.policies(record)), record["distributions"]
    ncols = 1 if len(metrics) == 1 else 2
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(BAR_WIDTH, 3.2 * nrows + 1.5), squeeze=False, layout="constrained")
    for i, (ax, metric) in enumerate(zip(axes.flat, metrics)):
        trivial = {d: same_for_all(record, policies, d, metric) for d in dists}
        drawn = [d for d in dists if trivial[d] is None]
        width = 0.8 / max(len(drawn), 1)
        for k, dist in enumerate(drawn):
            means, errors = _errors([results.metrics(record, p, dist)[metric] for p in policies])
            x = np.arange(len(policies)) + (k - (len(drawn) - 1) / 2) * width
            bars = ax.bar(x, means, width, yerr=errors, capsize=2, label=dist, color=f"C{dists.index(dist)}")
            if i == 0 and _is_bar_metric(record, headline) and dist == headline.distribution and headline.policy in policies:
                bars[policies.index(headline.policy)].set(edgecolor="black", linewidth=1.8)
            for xi in x[np.isnan(means)]:  # undefined (e.g. a preference without capable episodes)
                ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize="x-small", color="0.4", rotation=90)
        headline_panel = i == 0 and _is_bar_metric(record, headline)
        title = f"headline ({headline.distribution}): {panel_title(record, metric)}" if headline_panel else panel_title(record, metric)
        ax.set_title(textwrap.fill(title, 44), fontweight="bold" if headline_panel else None)
        ax.set_ylabel(_axis_unit(record, metric))
        if is_rate(record, metric):
            ax.set_ylim(0, 1.05)
        ax.set_xticks(np.arange(len(policies)), policies, rotation=25, ha="right")
        ax.grid(axis="y", alpha=0.3)
        left_out = [d for d in dists if trivial[d] is not None]
        if left_out:
            values = {trivial[d] for d in left_out}
            same = f"{values.pop()} for every policy" if len(values) == 1 else "the same for every policy"
            ax.set_xlabel(textwrap.fill(f"not drawn: {', '.join(left_out)} ({same})", 50), fontsize="small", color="0.35")
    from matplotlib.patches import Patch

    handles = [Patch(color=f"C{k}", label=dist) for k, dist in enumerate(dists)]
    title = "level distribution"
    free = list(axes.flat)[len(metrics):]
    for ax in free:
        ax.axis("off")
    if free:
        free[0].legend(handles=handles, loc="center", title=title, frameon=False)
    else:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(dists), title=title, frameon=False)
    note = f"bars: the mean; error bars: {_intervals_used(record, policies, dists[0])}"
    if len(note) > 80:
        note = note.replace("error bars: ", "error bars:\n", 1).replace("; reference", ";\nreference")
    fig.suptitle(figure_title(record, "each policy on each level distribution", headline) + "\n" + note)
    return fig


BAR_WIDTH = 8.0  # inches: two panels side by side


def bar_plot(record: Mapping[str, Any], path: Path, headline: Any = None) -> None:
    write_figure(lambda: bar_figure(record, headline), path, BAR_WIDTH)


def _steps_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: steps(v)))


def curve_width(record: Mapping[str, Any]) -> float:
    return 4.6 * min(2, len(results.with_curves(record))) + 0.4


def curve_figure(record: Mapping[str, Any], headline: Any = None) -> Any:
    """The Goodhart curve of every trained policy with training curves (see
    :mod:`goodhart.experiments.curves`): a block per policy (two per row), the proxy above the
    true return on the same step axis (one panel where they are the same in every episode).
    None without training curves."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = pyplot()
    core = core_of(record)
    names = results.with_curves(record)
    if not names:
        return None
    ncols = min(2, len(names))
    nblocks = math.ceil(len(names) / ncols)
    both = any(not results.curves(record, n)["proxy_is_true"] for n in names)
    fig = plt.figure(figsize=(curve_width(record), (4.8 if both else 3.0) * nblocks + 1.9), layout="constrained")
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
            for fired in curves.get("alarms") or ():
                if fired is not None:
                    ax.axvline(fired, color=ALARM_COLOUR, lw=1.2, ls="--")
            if which == "true":
                peak, final = training["true_return_peak"]["mean"], training["true_return_final"]["mean"]
                ax.plot([peak_step], [peak], marker="v", color="black", ms=7, zorder=5, ls="")
                ratio_ = training["true_return_final_over_peak"]["mean"]
                shown = "proxy = " + true_name if curves["proxy_is_true"] and not true_name.startswith("proxy") else true_name
                ax.set_title(textwrap.fill(shown, 30), loc="left", color=TRUE_COLOUR)
                ax.set_title(f"peak {number(peak, True)} at {steps(peak_step)}\nfinal {number(final, True)} ({ratio_:.2f} x peak)", fontsize="small", loc="right")
                if true_column and any(is_rate(record, m) for m in true_column[1]):
                    ax.set_ylim(-0.02, 1.05)  # a share of episodes, e.g. the goal reached
                ax.set_ylabel(f"{true_unit or 'return'} per episode")
            else:
                rise = training["proxy_return_rise_after_true_peak"]["mean"]
                ax.set_title(label(core, core.PROXY_RETURN), loc="left", color=PROXY_COLOUR)
                ax.set_title(f"final {number(training['proxy_return_final']['mean'], True)}\n{rise:+.1f} after the true peak", fontsize="small", loc="right")
                ax.set_ylabel(unit(record, core.PROXY_RETURN))
        axes[-1].set_xlabel("environment steps")
        _steps_axis(axes[-1])
        block.suptitle(textwrap.fill(f"{name}: trained on {results.entry(record, name)['trained_on']}, {seeds} seed{'s' if seeds != 1 else ''}", 34), fontweight="bold", fontsize="medium")
    for block in list(blocks.flat)[len(names):]:
        block.set_visible(False)
    handles = [
        Line2D([], [], color="0.2", lw=2.2, label="mean over seeds"),
        Line2D([], [], color="0.2", lw=0.7, alpha=0.5, label="each seed"),
        Line2D([], [], color="black", marker="v", ls="", label="peak of the mean true return"),
        Line2D([], [], color="0.3", ls=":", label="the peak's step"),
        Patch(color="0.5", alpha=0.3, label=f"final {share(FINAL_SHARE)} of training"),
    ]
    if any(f is not None for n in names for f in results.curves(record, n).get("alarms") or ()):
        handles.append(Line2D([], [], color=ALARM_COLOUR, lw=1.2, ls="--", label="divergence alarm (a seed's)"))
    if both:
        handles[:0] = [Patch(color=PROXY_COLOUR, label=f"proxy ({core.PROXY_RETURN})"), Patch(color=TRUE_COLOUR, label="true return")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3 if ncols == 2 else 2), frameon=False)
    bins = len(results.curves(record, names[0])["steps"])
    fig.suptitle(figure_title(record, f"training curves: each episode's return, binned into {bins} windows of steps", headline))
    return fig


def curve_plot(record: Mapping[str, Any], path: Path, headline: Any = None) -> None:
    write_figure(lambda: curve_figure(record, headline), path, curve_width(record))


KNOB_WIDTH = 6.8


def knob_figure(record: Mapping[str, Any], headline: Any = None) -> Any:
    """The knob metrics of a sweep (:func:`results.knob`) against the knob, with intervals; the
    recovery statistic's half-way level and where it is reached."""
    plt = pyplot()
    core, knob = core_of(record), results.knob(record)
    if knob.get("series"):
        return series_figure(record, [tuple(m) for m in knob["metrics"]], headline)
    names = sorted(knob["values"], key=lambda n: knob["values"][n])
    x = np.array([knob["values"][n] for n in names])
    fig, ax = plt.subplots(figsize=(KNOB_WIDTH, 6.0), layout="constrained")
    colours = {}
    for k, (dist, metric) in enumerate(knob["metrics"]):
        means, errors = _errors([results.metrics(record, n, dist)[metric] for n in names])
        line = ax.errorbar(x, means, yerr=errors, marker="osD^v"[k % 5], ls=("-", "--", "-.", ":")[k % 4], capsize=3, color=f"C{k}", label=f"{dist}: {words(core, metric)}")
        colours[(dist, metric)] = line[0].get_color()
    _knob_axis(ax, x, knob["label"])
    ax.set_ylabel("share of episodes" if all(is_rate(record, m) for _, m in knob["metrics"]) else "mean per episode")
    ax.set_ylim(-0.02, 1.02)
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
    fig.legend([handles[i] for i in order], [textwrap.fill(labels[i], 60) for i in order], loc="outside lower center", ncol=1, frameon=False)
    ax.set_title(textwrap.fill(f"mean over seeds; error bars: {_intervals_used(record, names, knob['metrics'][0][0])}", 64))
    fig.suptitle(figure_title(record, "the metrics against the knob", headline))
    return fig


def knob_plot(record: Mapping[str, Any], path: Path, headline: Any = None) -> None:
    write_figure(lambda: knob_figure(record, headline), path, KNOB_WIDTH)


def _knob_axis(ax: Any, x: np.ndarray, label: str | None, narrow: bool = False) -> None:
    """The knob's axis: its tested values as ticks, on a symmetric log scale when they span
    a factor of 10 or more (a log axis with 0 on it), labelled ``label`` if given; on a
    ``narrow`` panel, crowded log ticks are turned."""
    positive = x[x > 0]
    if len(positive) and positive.max() / positive.min() >= 10:
        ax.set_xscale("symlog", linthresh=positive.min(), linscale=0.6)
    turned = narrow and len(x) > 3 and ax.get_xscale() == "symlog"
    ax.set_xticks(x, [f"{v:g}" for v in x], rotation=45 if turned else 0)
    ax.minorticks_off()
    if label:
        ax.set_xlabel(textwrap.fill(label, 72))
    ax.grid(alpha=0.3)


def series_figure(record: Mapping[str, Any], metrics: Sequence[tuple[str, str]], headline: Any = None) -> Any:
    """A knob swept under several series (methods): one panel per metric, one line per series
    with intervals, each reference policy's mean as a horizontal line, and where each series
    recovers (:func:`goodhart.experiments.reproduce.series_recoveries`) on the recovery's metric."""
    plt = pyplot()
    core, knob = core_of(record), results.knob(record)
    fig, axes = plt.subplots(1, len(metrics), figsize=(KNOB_WIDTH, 4.2 + 0.3 * len(knob["series"])), layout="constrained", squeeze=False, sharey=True)
    recoveries = knob.get("recoveries") or {}
    references = results.reference_names(record)
    for ax, (dist, metric) in zip(axes[0], metrics):
        for k, (series, conds) in enumerate(knob["series"].items()):
            conds = sorted(conds, key=lambda c: knob["values"][c])
            x = np.array([knob["values"][c] for c in conds])
            means, errors = _errors([results.metrics(record, c, dist)[metric] for c in conds])
            ax.errorbar(x, means, yerr=errors, marker="osD^v"[k % 5], capsize=3, color=f"C{k}", label=series)
            found = recoveries.get(series)
            if found and (found["distribution"], found["metric"]) == (dist, metric) and found["recovered_at"] is not None:
                ax.plot([found["recovered_at"]], [found["recovered_mean"]], marker="*", ms=14, color=f"C{k}", ls="none")
        for j, ref in enumerate(references):
            stats = results.metrics(record, ref, dist).get(metric)
            if stats is not None:
                ax.axhline(stats["mean"], color="0.4", ls=("--", ":", "-.")[j % 3], lw=1, label=f"reference: {ref}")
        _knob_axis(ax, np.array(sorted(set(knob["values"].values()))), None, narrow=True)
        ax.set_title(textwrap.fill(f"{dist}: {words(core, metric)}", 28))
        ax.set_ylim(-0.02, 1.02)
    axes[0][len(metrics) // 2].set_xlabel(textwrap.fill(knob["label"], 80))  # once, under the middle panel
    handles, labels = axes[0][0].get_legend_handles_labels()
    note = "mean over seeds; error bars: " + _intervals_used(record, [c for cs in knob["series"].values() for c in cs], metrics[0][0])
    if recoveries:
        note += "; star: where the series first recovers half the way from the baseline at 0 to the target"
    fig.legend(handles, [textwrap.fill(t, 60) for t in labels], loc="outside lower center", ncol=2, frameon=False, title=textwrap.fill(note, 90))
    fig.suptitle(figure_title(record, "the metrics against the knob, per method", headline))
    return fig


def curriculum_figure(record: Mapping[str, Any], headline: Any = None) -> Any:
    """The amplification plot: the share of distinguishing levels among the episodes PPO
    learned from against the knob, per series, with the diagonal (what the generator gives)."""
    plt = pyplot()
    knob = results.knob(record)
    series = knob.get("series") or {"trained": list(knob["values"])}
    fig, ax = plt.subplots(figsize=(KNOB_WIDTH, 5.0), layout="constrained")
    x_all = np.array(sorted(set(knob["values"].values())))
    ax.plot(x_all, x_all, color="0.5", ls="--", lw=1, label="the diagonal: the generator's share (no amplification)")
    for k, (name, conds) in enumerate(series.items()):
        conds = sorted((c for c in conds if results.stats(record, c, CURRICULUM, "played_distinguishing")), key=lambda c: knob["values"][c])
        if not conds:
            continue
        x = np.array([knob["values"][c] for c in conds])
        means, errors = _errors([results.stats(record, c, CURRICULUM, "played_distinguishing") for c in conds])
        ax.errorbar(x, means, yerr=errors, marker="osD^v"[k % 5], capsize=3, color=f"C{k}", label=name)
    _knob_axis(ax, x_all, knob["label"], narrow=True)
    ax.set_yscale("symlog", linthresh=max(x_all[x_all > 0].min(), 1e-4) if (x_all > 0).any() else 1e-3, linscale=0.6)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of distinguishing levels in the episodes learned from")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=1, frameon=False)
    ax.set_title("mean over seeds; error bars: 95 % bootstrap CI over seeds")
    fig.suptitle(figure_title(record, "how often each curriculum trained on distinguishing levels", headline))
    return fig


def curriculum_plot(record: Mapping[str, Any], path: Path, headline: Any = None) -> None:
    write_figure(lambda: curriculum_figure(record, headline), path, KNOB_WIDTH)
