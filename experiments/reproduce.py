"""Running a sweep end to end: train every run, evaluate every condition beside the reference
policies on the same levels, check the expected effects, and write the report."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from goodhart.envs import core_class
from goodhart.experiments.config import ConfigError, RunConfig
from goodhart.experiments.evaluate import EvaluationError, Subject, evaluate, reference_subject, trained_subject, write_results
from goodhart.experiments.report import knob_plot, write_report
from goodhart.experiments.sweep import Check, LocalBackend, Manifest, RayBackend, SweepSpec, expand, run_all


def check_passes(check: Check, record: dict[str, Any], quick: bool = False) -> bool:
    def mean(policy: str, distribution: str) -> float:
        return record["policies"][policy]["metrics"][distribution][check.metric]["mean"]

    value = mean(check.policy, check.distribution)
    if check.relative:
        bound = check.factor * mean(check.than or check.policy, check.than_distribution or check.distribution)
    else:
        bound = check.threshold(quick)
    if math.isnan(value) or bound is None or math.isnan(bound):
        return False
    return {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[check.op]


def check_text(check: Check, quick: bool) -> str:
    if check.threshold(quick) != check.value:
        return f"{check.text} (quick mode: {check.op} {check.quick_value:g})"
    return check.text


def check_evaluation(spec: SweepSpec, cfg: RunConfig, source: str) -> None:
    """The sweep's evaluation names distributions and reference policies of its env (checked
    before training, not after)."""
    valid = core_class(cfg.env).DISTRIBUTIONS
    for dist in spec.evaluate.distributions:
        if dist not in valid:
            raise ConfigError(f"{source}: evaluate.distributions: {dist!r} is not a distribution of {cfg.env}; valid ones: {list(valid)}")
    for name in spec.evaluate.references:
        try:
            reference_subject(name, cfg.env, cfg.env_kwargs)
        except EvaluationError as err:
            raise ConfigError(f"{source}: evaluate.references: {err}") from None


def run_sweep(
    spec: SweepSpec,
    out: Path,
    *,
    quick: bool = False,
    seeds: list[int] | None = None,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    max_attempts: int = 2,
    source: str = "sweep",
    origins: dict[str, str] | None = None,
) -> tuple[Path, list[str], list[tuple[str, bool]]]:
    """Train, evaluate and report; returns the report path, the runs that failed and the
    expected effects with whether each holds. Every run's config is validated (``origins``:
    config key -> the flag that set it, for the error) before anything is created."""
    started = time.time()
    runs = expand(spec, out, quick=quick, seeds=seeds, source=source, origins=origins)
    check_evaluation(spec, runs[0].config, source)
    executor = RayBackend(workers, address) if backend == "ray" else LocalBackend(workers)
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out, runs)
    run_all(runs, manifest, out, executor, max_attempts)
    trained_for = time.time() - started
    failed = [r for r in runs if r.status != "done"]
    for run in failed:
        print(f"run {run.id} failed after {run.attempts} attempt(s): {run.error}", file=sys.stderr)
    episodes = (spec.quick.episodes if quick else None) or spec.evaluate.episodes
    subjects: list[Subject] = []
    conditions: dict[str, list] = {}
    for run in runs:
        if run.status == "done":
            conditions.setdefault(run.condition, []).append(run)
    for condition, done in conditions.items():
        subjects.append(trained_subject(condition, [r.folder for r in done], spec.evaluate.deterministic))
    if not subjects:
        raise RuntimeError(f"no run of {spec.name} finished; see {out / 'manifest.json'}")
    for name in spec.evaluate.references:
        subjects.append(reference_subject(name, subjects[0].env_id, subjects[0].env_kwargs))
    record = evaluate(subjects, spec.evaluate.distributions, episodes, spec.evaluate.level_seed)
    record["sweep"] = {"name": spec.name, "quick": quick, "train_seconds": round(trained_for), "failed_runs": [r.id for r in failed]}
    write_results(record, out)
    checks = [
        (check_text(c, quick), check_passes(c, record, quick))
        for c in spec.checks
        if c.policy in record["policies"] and (c.than is None or c.than in record["policies"])
    ]
    extra = ""
    if spec.knob:
        values = {cond: float(runs_[0].extra["assignment"][spec.knob]) for cond, runs_ in conditions.items()}
        label = spec.knob_label or (f"1 - {spec.knob}" if spec.knob_complement else spec.knob)
        if spec.knob_complement:
            values = {cond: 1.0 - value for cond, value in values.items()}
        last = spec.evaluate.distributions[-1]
        knob_plot(record, label, values, out / "knob.png", spec.knob_metrics or [(last, "capability"), (last, "preference")])
        extra = f"\n![metrics against {label}](knob.png)\n"
    elapsed = time.time() - started
    title = f"{spec.name}{' (quick)' if quick else ''}"
    extra += f"\n{spec.description}\n\nRuns: {len(runs)} ({len(failed)} failed); wall time {elapsed:.0f} s (training {trained_for:.0f} s).\n"
    report = write_report(record, out, title, checks, extra)
    record["sweep"]["wall_seconds"] = round(elapsed)
    write_results(record, out)
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {text}", file=sys.stderr)
    return report, [r.id for r in failed], checks
