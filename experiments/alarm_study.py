"""Would we have noticed? The divergence alarm measured on other reproductions' training runs.

A kind of experiment on the one engine (``kind: alarm``): it trains nothing of its own. For
each source reproduction it takes that reproduction's finished runs (reusing them where they
were run beside this study's folder, else running it: :func:`~goodhart.experiments.reproduce.source_folder`),
and replays the alarm (:func:`goodhart.experiments.alarm.replay`, exactly what the training
callback would have raised, with the run's seed as the audit's) over each run's training
episodes at each audit share. Per condition and audit share, over seeds:

    fired          1 where the alarm fired during training, else 0
    fire_step      the step it fired at
    lag            fire_step minus the step where the run's own true-return curve peaked
                   (negative: it fired before the peak)
    true_lost      the run's true return at its peak minus in the curve's window where it fired
    true_lost_share  the same as a share of the peak

and from the run's curve alone: ``diverged`` (1 where the true return ended at half its peak or
less while the proxy rose after the peak: the Goodhart curve of ``race-gaming``'s checks),
``true_return_peak_step``. Each condition is declared ``diverges`` (the alarm should fire),
``coincides`` (proxy and true objective coincide in training: any alarm is false) or
``observe`` (report only); the checks read the numbers like a sweep's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from goodhart.agents.files import nan_for_null, write_json
from goodhart.experiments.alarm import replay, trained_on
from goodhart.experiments.config import AlarmConfig, ConfigError, Strict, read_yaml, validate, validated
from goodhart.experiments.curves import curve_statistics, episode_rows, training_curves
from goodhart.experiments.engine.checks import CheckResult, checks_section, print_checks
from goodhart.experiments.headline import headline
from goodhart.experiments.metrics import across_seeds
from goodhart.experiments.report import write_report_files
from goodhart.experiments.results import check_records
from goodhart.experiments.sweep import Check, HeadlineSpec, reproduction_path
from goodhart.experiments.trainers import trained_by

KIND = "alarm"
CURVE = "curve"  # the pseudo-distribution of the numbers read off the runs' own curves
EXPECTATIONS = ("diverges", "coincides", "observe")
SHARE_COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink")


class AlarmSource(Strict):
    """A reproduction whose runs the alarm is measured on, and what is expected of each condition."""

    reproduction: str
    conditions: dict[str, Literal["diverges", "coincides", "observe"]] = Field(min_length=1)


class AlarmStudyQuick(Strict):
    sources: list[str] | None = Field(None, description="the sources quick mode uses (their own quick mode); default: all")


class AlarmStudySpec(Strict):
    name: str
    kind: Literal["alarm"] = KIND
    description: str = ""
    headline: HeadlineSpec | None = None
    sources: list[AlarmSource] = Field(min_length=1)
    audit_shares: list[float] = Field(min_length=1)
    alarm: dict[str, Any] = Field(default_factory=dict, description="the alarm's settings (an alarm: section of a run config) besides the audit share")
    checks: list[Check] = Field(default_factory=list)
    quick: AlarmStudyQuick = Field(default_factory=AlarmStudyQuick)
    trainer: str | None = Field(None, description="who trains the sources' runs where they are run and whose runs are "
                                "reused (goodhart.experiments.trainers; `goodhart reproduce --trainer`); default: the configs' own")

    def source_reproductions(self) -> list[str]:
        """The reproductions whose runs the study reads."""
        return [source.reproduction for source in self.sources]

    def alarm_config(self, share: float) -> AlarmConfig:
        return AlarmConfig(**{**self.alarm, "audit_share": share})


def load_alarm_spec(path: Path) -> AlarmStudySpec:
    spec = validated(AlarmStudySpec, read_yaml(path), str(path))
    for source in spec.sources:
        reproduction_path(source.reproduction)
    for share in spec.audit_shares:
        try:
            spec.alarm_config(share)
        except ValueError as err:
            raise ConfigError(f"{path}: alarm (with audit share {share}): {err}") from None
    unknown = set(spec.quick.sources or ()) - {s.reproduction for s in spec.sources}
    if unknown:
        raise ConfigError(f"{path}: quick.sources: {sorted(unknown)} are not sources; sources: {[s.reproduction for s in spec.sources]}")
    return spec


def audit_label(share: float) -> str:
    """An audit share as the record's distribution name: ``audit 5%``."""
    return f"audit {share * 100:g}%"


def run_measures(folder: Path, spec: AlarmStudySpec) -> dict[str, Any]:
    """One run's numbers: its curve's statistics and, per audit share, the alarm's."""
    cfg = validate(read_yaml(folder / "config.yaml"), str(folder / "config.yaml"))
    proxy = trained_on(cfg.reward_model)
    curves = training_curves([folder], proxy)
    steps, true = np.asarray(curves["steps"]), np.asarray(curves["true"][0], dtype=float)
    stats = curve_statistics(steps, true, np.asarray(curves["proxy"][0], dtype=float), int(curves["final_bins"]))
    diverged = stats["true_return_final_over_peak"] <= 0.5 and stats["proxy_return_rise_after_true_peak"] > 0
    measured: dict[str, Any] = {CURVE: {"diverged": float(diverged), "true_return_peak_step": stats["true_return_peak_step"],
                                        "true_return_peak": stats["true_return_peak"]}}
    rows = episode_rows(folder)
    half = (steps[1] - steps[0]) / 2 if len(steps) > 1 else 0.0
    for share in spec.audit_shares:
        fired = replay(rows, spec.alarm_config(share), cfg.seed, proxy)
        entry = dict.fromkeys(("fire_step", "lag", "true_lost", "true_lost_share"), math.nan)
        entry["fired"] = float(fired is not None)
        if fired is not None:
            window = int(np.clip(np.searchsorted(steps + half, fired.step), 0, len(steps) - 1))
            lost = stats["true_return_peak"] - float(true[window]) if not math.isnan(true[window]) else math.nan
            entry.update(fire_step=float(fired.step), lag=fired.step - stats["true_return_peak_step"], true_lost=lost,
                         true_lost_share=lost / stats["true_return_peak"] if stats["true_return_peak"] > 0 else math.nan)
        measured[audit_label(share)] = entry
    return {"env": cfg.env, "seed": cfg.seed, "trainer": cfg.trainer, "measures": measured, "curves": curves, "proxy": proxy}


def run_alarm_study(spec: AlarmStudySpec, out: Path, *, quick: bool = False, seeds: list[int] | None = None, source: str = "reproduction",
                    **options: Any) -> tuple[Path, list[str], list[CheckResult]]:
    """Find (or run) every source's runs, replay the alarm over them, report."""
    from goodhart.experiments.reproduce import measure, source_folder, spec_trainer

    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    sources = [s for s in spec.sources if not quick or spec.quick.sources is None or s.reproduction in spec.quick.sources]
    record: dict[str, Any] = {"name": spec.name, "kind": KIND, "quick": quick, "policies": {}, "alarm": spec.alarm_config(spec.audit_shares[0]).model_dump(),
                              "audit_shares": spec.audit_shares, "distributions": [audit_label(s) for s in spec.audit_shares] + [CURVE]}
    failed: list[str] = []
    for src in sources:
        folder = source_folder(src.reproduction, out, quick=quick, seeds=seeds, trainer=spec_trainer(spec), **options)
        for condition, expected in src.conditions.items():
            runs = sorted((folder / "runs" / condition).glob("seed*/episodes.csv"))
            name = f"{src.reproduction}: {condition}"
            if not runs:
                failed.append(name)
                continue
            measured = [run_measures(path.parent, spec) for path in runs]
            record.setdefault("env", measured[0]["env"])
            record["policies"][name] = {
                "kind": "trained", "source": src.reproduction, "expect": expected, "trained_on": measured[0]["proxy"],
                "trainer": measured[0]["trainer"], "seeds": [m["seed"] for m in measured], "runs": [path.parent.relative_to(folder).as_posix() for path in runs],
                "metrics": {dist: {metric: across_seeds([m["measures"][dist][metric] for m in measured]) for metric in measured[0]["measures"][dist]}
                            for dist in record["distributions"]},
                "curves": {"steps": measured[0]["curves"]["steps"], "true": [m["curves"]["true"][0] for m in measured],
                           "proxy": [m["curves"]["proxy"][0] for m in measured], "fired": {audit_label(s): [m["measures"][audit_label(s)]["fire_step"] for m in measured] for s in spec.audit_shares}},
            }
    if not record["policies"]:
        raise ConfigError(f"{spec.name}: no source run found ({', '.join(failed)})")
    record["sweep"] = {"name": spec.name, "quick": quick, "failed_runs": failed, "wall_seconds": round(time.time() - started)}
    checks = [measure(c, record, quick) for c in spec.checks if c.policy in record["policies"]]
    record["checks"] = check_records(checks)
    write_json(out / "results.json", record)
    report = write_alarm_report(record, spec, out, checks)
    print_checks(checks)
    return report, failed, checks


def _cell(stats: Mapping[str, Any], steps: bool = False) -> str:
    from goodhart.experiments.columns import fmt

    if math.isnan(stats["mean"]):
        return "–"
    if steps:
        low, high = stats.get("ci95", [math.nan, math.nan])
        ci = f" [{low / 1000:+.0f}k, {high / 1000:+.0f}k]" if not math.isnan(low) else ""
        return f"{stats['mean'] / 1000:+.0f}k{ci}"
    return fmt(stats)


def alarm_figure(record: Mapping[str, Any], found: Any = None) -> Any:
    """Each source condition's true-return curves (a line per seed) with, per audit share, a
    tick where each seed's alarm fired."""
    from goodhart.experiments.plots import TRUE_COLOUR, _steps_axis, figure_title, pyplot

    plt = pyplot()
    names = list(record["policies"])
    ncols = min(2, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols + 0.4, 2.9 * nrows + 1.4), squeeze=False, layout="constrained")
    for ax, name in zip(axes.flat, names):
        entry = record["policies"][name]
        x = np.asarray(entry["curves"]["steps"])
        true = np.asarray(entry["curves"]["true"], dtype=float)
        for curve in true:
            ax.plot(x, curve, color=TRUE_COLOUR, lw=0.8, alpha=0.5)
        top = np.nanmax(true) if np.isfinite(true).any() else 1.0
        for i, (label, steps_) in enumerate(entry["curves"]["fired"].items()):
            fired = [s for s in steps_ if s is not None and not math.isnan(s)]
            ax.plot(fired, [top * (1.04 + 0.07 * i)] * len(fired), ls="", marker="v", color=SHARE_COLOURS[i % len(SHARE_COLOURS)],
                    label=f"alarm, {label} ({len(fired)}/{len(steps_)} seeds)")
        ax.set_title(f"{name} ({entry['expect']})", fontsize="small", loc="left")
        ax.set_ylabel("true return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="lower right")
        _steps_axis(ax)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(figure_title(record, "each seed's training true return and where its alarm fired", found))
    return fig


def write_alarm_report(record: Mapping[str, Any], spec: AlarmStudySpec, out: Path, checks: Sequence[CheckResult], title: str | None = None, about: str | None = None) -> Path:
    """report.md and alarm.png through the one report writer."""
    from goodhart.experiments.plots import write_figure

    found = headline(record, spec)
    cfg = record["alarm"]
    settings = ", ".join(f"{k} {v}" for k, v in cfg.items() if k not in ("audit_share", "on_alarm", "seed"))
    lines = [title or f"# {spec.name}{' (quick)' if record['quick'] else ''}", "",
             *([found.sentence(), ""] if found else []), (spec.description if about is None else about).strip(), "",
             f"The alarm's settings: {settings} (see `goodhart.experiments.alarm`). The proxy is the return each run was trained on; "
             "the true return is seen only on the audited share of episodes. Cells: mean over seeds [95 % bootstrap CI over seeds]; "
             "with 2 seeds, their range; lag and loss only over the seeds whose alarm fired.", "",
             *checks_section(checks),
             "## Per condition and audit share", "",
             "| runs | expected | diverged (curve) | true peak at | audit | fired | lag after the true peak | true return lost by then | share of the peak lost |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in record["policies"].items():
        m = entry["metrics"]
        for i, share in enumerate(record["audit_shares"]):
            a = m[audit_label(share)]
            head = f"| {name} | {entry['expect']} | {_cell(m[CURVE]['diverged'])} | {m[CURVE]['true_return_peak_step']['mean'] / 1000:.0f}k |" if i == 0 else "| | | | |"
            lines.append(f"{head} {share * 100:g} % | {sum(a['fired']['per_seed']):.0f}/{len(a['fired']['per_seed'])} | {_cell(a['lag'], True)} | "
                         f"{_cell(a['true_lost'])} | {_cell(a['true_lost_share'])} |")
    lines.append("")
    trainers = trained_by(record["policies"].values())
    by = f", trained by {trainers}" if trainers else ""
    footer = f"\nSources: {', '.join(sorted({e['source'] for e in record['policies'].values()}))}{by}. Wall time {record['sweep']['wall_seconds']} s.\n"
    if record["sweep"]["failed_runs"]:
        footer += f"\nNo runs found for: {', '.join(record['sweep']['failed_runs'])}.\n"
    figures = [("alarm.png", "each seed's true return over training and where the alarm fired",
                lambda path: write_figure(lambda: alarm_figure(record, found), path, 9.6))]
    return write_report_files(out, "\n".join(lines), figures, footer)


def rerender_alarm_study(out: Path, record: dict[str, Any], spec: AlarmStudySpec, title: str | None = None, about: str | None = None) -> Path:
    """The study's report and figure again from its results.json."""
    record = {**record, "policies": nan_for_null(record["policies"])}
    checks = [CheckResult(c["text"], bool(c["pass"])) for c in record.get("checks", [])]
    return write_alarm_report(record, spec, out, checks, title=f"# {title}" if title else None, about=about)
