"""Running a sweep end to end: train every run, evaluate every condition beside the reference
policies on the same levels (and on the sweep's probe set, if it names one), check the expected
effects, and write the report."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from goodhart.envs import core_class
from goodhart.experiments import results
from goodhart.experiments.alarm_study import KIND as ALARM_KIND, load_alarm_spec, rerender_alarm_study, run_alarm_study
from goodhart.experiments.config import ConfigError, RunConfig, TrainerRefused, read_yaml
from goodhart.experiments.evaluate import EvaluationError, Subject, evaluate, read_results, reference_subject, trained_subject, write_results
from goodhart.experiments.columns import fmt, number
from goodhart.experiments.curricula import CURRICULUM, STATISTICS as CURRICULUM_STATISTICS
from goodhart.experiments.curves import STATISTICS, TRAINING
from goodhart.experiments.metrics import interval, recovery
from goodhart.experiments.report import summary, write_report
from goodhart.experiments.engine import JobsFailed, Manifest, make_backend
from goodhart.experiments.engine.checks import CheckResult, print_checks
from goodhart.experiments.overoptimization import load_overoptimization_spec, rerender_overoptimization, run_overoptimization
from goodhart.experiments.probes import load_probe_set, run_probes
from goodhart.experiments.steering import KIND as STEERING_KIND, load_steering_spec, rerender_steering, run_steering
from goodhart.experiments.sweep import Check, RecoveryCheck, Run, SweepSpec, assignments, condition_name, expand, load_spec, reproduction_path, train_runs


OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}


def check_text(check: Check, quick: bool) -> str:
    if check.quick_value is not None and quick and check.threshold(quick) != check.threshold(False):
        return f"{check.text} (quick mode: {check.op} {check.quick_value:g})"
    return check.text


def measure(check: Check, record: dict[str, Any], quick: bool = False) -> CheckResult:
    """Whether ``check`` holds in ``record`` (for each of its policies), and its line for the
    report: the check's text, then each measured value (with its interval) and the threshold
    it was held to (for a comparison with another policy: that policy's mean, times the
    factor; with ``beyond_ci``, its interval's far end)."""
    parts, ok = [], True
    for index, policy in enumerate(check.policies):
        part, passed = _measure_one(check, record, quick, policy, index)
        parts.append(part)
        ok = ok and passed
    return CheckResult(f"{check_text(check, quick)} — " + "; ".join(parts), ok)


def _measure_one(check: Check, record: dict[str, Any], quick: bool, policy: str, index: int) -> tuple[str, bool]:
    def stats(name: str, distribution: str = check.distribution) -> results.Stats | None:
        return results.stats(record, name, distribution, check.metric)

    own = stats(policy)
    if own is None:
        return f"not measured: no {check.metric} of {policy} on `{check.distribution}` in the results", False
    value = own["mean"]
    if not check.relative:
        bound = check.threshold(quick, index)
        required = f"{check.op} {bound:g}" if bound is not None else "a value (none given)"
    else:
        than, than_distribution = check.than or policy, check.than_distribution or check.distribution
        other = stats(than, than_distribution)
        if other is None:
            return f"not measured: no {check.metric} of {than} on `{than_distribution}` in the results", False
        bound = check.factor * other["mean"]
        scaled = f"{check.factor:g} x " if check.factor != 1 else ""
        where = f" on `{than_distribution}`" if than_distribution != check.distribution else ""
        required = f"{check.op} {scaled}{than}'s {number(other['mean'])}{where}" + (f" = {number(bound)}" if scaled else "")
        if check.beyond_ci:
            upward = check.op in (">", ">=")
            own_low, own_high = interval(own)
            other_low, other_high = interval(other)
            value, bound = (own_low, check.factor * other_high) if upward else (own_high, check.factor * other_low)
            required = (f"its 95 % interval {'above' if upward else 'below'} {scaled}{than}'s {fmt(other)}{where}: "
                        f"{'lower' if upward else 'upper'} bound {number(value)} {check.op} {number(bound)}")
    ok = not (math.isnan(value) or bound is None or math.isnan(bound)) and OPS[check.op](value, bound)
    return f"measured: {policy}'s {check.metric} on `{check.distribution}` {fmt(own)}; required {required}", ok


def recovery_checks(spec: SweepSpec, record: dict[str, Any]) -> list[CheckResult]:
    """The sweep's recovery checks measured on its record: those whose ``than`` series and at
    least one of whose ``series`` it has (quick mode trains fewer), on the series it has."""
    found = (results.knob(record) or {}).get("recoveries") or {}
    return [measure_recovery(c.model_copy(update={"series": [s for s in c.series if s in found]}), record)
            for c in spec.recovery_checks if c.than in found and any(s in found for s in c.series)]


def measure_recovery(check: RecoveryCheck, record: dict[str, Any]) -> CheckResult:
    """A :class:`RecoveryCheck` on the knob record's recoveries per series."""
    knob = results.knob(record) or {}
    found = knob.get("recoveries") or {}
    largest = max(knob.get("values", {}).values(), default=math.nan)
    missing = [s for s in [*check.series, check.than] if s not in found]
    if missing:
        return CheckResult(f"{check.text} — not measured: no recovery of {missing} in the results", False)

    def at(series: str) -> tuple[float, str]:
        r = found[series]["recovered_at"]
        return (math.inf, f"{series}: beyond {largest:g}") if r is None else (float(r), f"{series}: {r:g}")

    than_at, shown = at(check.than)
    beyond = math.isinf(than_at)  # beyond the largest value: any tested value is below it
    bound = check.factor * (largest if beyond else than_at)
    values = [at(s) for s in check.series]
    ok = any(v < bound or (not beyond and v <= bound) for v, _ in values if not math.isinf(v))
    text = ", ".join(t for _, t in values)
    return CheckResult(f"{check.text} — recovered at {text}; required at most {check.factor:g} x ({shown}) = {bound:g}", ok)


def metric_names(env: str) -> set[str]:
    """The metrics a results record has for every distribution of ``env``."""
    core = core_class(env)
    return {"return", "true_return", "steps", *core.OUTCOMES, "capability", "preference"}


def check_evaluation(spec: SweepSpec, cfg: RunConfig, source: str) -> None:
    """The sweep's evaluation, checks, knob metrics and knob recovery name distributions,
    metrics and reference policies of its env (checked before training, not after)."""
    valid = core_class(cfg.env).DISTRIBUTIONS
    for dist in spec.evaluate.distributions:
        if dist not in valid:
            raise ConfigError(f"{source}: evaluate.distributions: {dist!r} is not a distribution of {cfg.env}; valid ones: {list(valid)}")
    for name in spec.evaluate.references:
        try:
            reference_subject(name, cfg.env, cfg.env_kwargs)
        except EvaluationError as err:
            raise ConfigError(f"{source}: evaluate.references: {err}") from None
    metrics, evaluated = metric_names(cfg.env), spec.evaluate.distributions
    pseudo = {TRAINING: set(STATISTICS), CURRICULUM: set(CURRICULUM_STATISTICS)}
    for i, check in enumerate(spec.checks):
        allowed = pseudo.get(check.distribution, metrics)
        if check.distribution not in pseudo and check.distribution not in evaluated:
            raise ConfigError(f"{source}: checks.{i}.distribution: {check.distribution!r} is not evaluated; expected one of {[*evaluated, *pseudo]}")
        if isinstance(check.value, list) and len(check.value) != len(check.policies):
            raise ConfigError(f"{source}: checks.{i}.value: {len(check.value)} bounds for {len(check.policies)} policies; give one, or one each")
        if check.metric not in allowed:
            raise ConfigError(f"{source}: checks.{i}.metric: {check.metric!r} is not a metric of {check.distribution!r}; valid ones: {sorted(allowed)}")
    wanted = [(f"knob_metrics.{i}", d, m) for i, (d, m) in enumerate(spec.knob_metrics)]
    if spec.knob_recovery:
        wanted.append(("knob_recovery", spec.knob_recovery.distribution, spec.knob_recovery.metric))
    for where, dist, metric in wanted:
        if dist not in evaluated:
            raise ConfigError(f"{source}: {where}: distribution {dist!r} is not evaluated; expected one of {evaluated}")
        if metric not in metrics:
            raise ConfigError(f"{source}: {where}: {metric!r} is not a metric of {cfg.env}; valid ones: {sorted(metrics)}")
    if spec.knob_recovery:
        if spec.knob is None:
            raise ConfigError(f"{source}: knob_recovery needs a knob (knob: KEY, a key of grid:)")
        values = [knob_value(spec, a[spec.knob]) for a in assignments(spec) if spec.knob in a]
        if 0.0 not in values:
            raise ConfigError(f"{source}: knob_recovery: no condition has {knob_label(spec)} at 0, the baseline it recovers from; values: {values}")


def knob_label(spec: SweepSpec) -> str:
    return spec.knob_label or (f"1 - {spec.knob}" if spec.knob_complement else spec.knob)


def knob_value(spec: SweepSpec, value: Any) -> float:
    """A knob's value as plotted: ``1 - value`` with ``knob_complement`` (rounded off float
    noise, so that 1 - 0.9 is 0.1)."""
    return round(1.0 - float(value), 12) if spec.knob_complement else float(value)


def knob_record(spec: SweepSpec, record: dict[str, Any], conditions: dict[str, list[Run]]) -> dict[str, Any]:
    """The record's knob section: the knob, each condition's plotted value, the plotted metrics
    (default: capability and preference on ``shifted``), and the recovery statistic. With
    other keys swept beside the knob (methods), also ``series``: each series' display name ->
    its conditions, and ``recoveries``: each series' recovery statistic, from the baseline
    series' condition at 0 (``knob_recovery.baseline``) or its own."""
    values = {cond: knob_value(spec, runs_[0].extra["assignment"][spec.knob]) for cond, runs_ in conditions.items()}
    dists = spec.evaluate.distributions
    shifted = "shifted" if "shifted" in dists else dists[-1]
    metrics = [list(m) for m in spec.knob_metrics] or [[shifted, "capability"], [shifted, "preference"]]
    knob: dict[str, Any] = {"key": spec.knob, "label": knob_label(spec), "complement": spec.knob_complement, "values": values, "metrics": metrics, "recovery": None}
    series: dict[str, list[str]] = {}
    for cond, runs_ in conditions.items():
        rest = condition_name({k: v for k, v in runs_[0].extra["assignment"].items() if k != spec.knob})
        series.setdefault(spec.series_labels.get(rest, rest), []).append(cond)
    wanted = spec.knob_recovery
    if wanted and [wanted.distribution, wanted.metric] not in metrics:
        metrics.insert(0, [wanted.distribution, wanted.metric])
    if len(series) > 1:
        knob["series"] = series
        if wanted:
            knob["recoveries"] = series_recoveries(spec, record, values, series)
        return knob
    if wanted:
        means = {value: results.mean(record, cond, wanted.distribution, wanted.metric) for cond, value in values.items()}
        baseline = [cond for cond, value in values.items() if value == 0.0]
        if baseline:  # else the baseline's runs all failed: no statistic
            knob["recovery"] = {**wanted.model_dump(), "baseline": baseline[0], **recovery(means, wanted.target)}
    return knob


def series_recoveries(spec: SweepSpec, record: dict[str, Any], values: dict[str, float], series: dict[str, list[str]]) -> dict[str, Any]:
    """Per series, :func:`recovery` of its means against the baseline's mean at knob 0; a
    series with its own condition at 0 (not the baseline) may recover there already."""
    wanted = spec.knob_recovery
    baseline = spec.series_labels.get(wanted.baseline, wanted.baseline) if wanted.baseline else None
    found: dict[str, Any] = {}
    for label, conds in series.items():
        base_series = series.get(baseline, conds)
        base = [c for c in base_series if values[c] == 0.0]
        if not base:
            continue
        base_mean = results.mean(record, base[0], wanted.distribution, wanted.metric)
        means = {values[c]: results.mean(record, c, wanted.distribution, wanted.metric) for c in conds}
        own_zero = means.pop(0.0, None) if base[0] not in conds else None
        r = recovery({**means, 0.0: base_mean}, wanted.target)
        if own_zero is not None and (own_zero >= r["halfway"] if wanted.target >= base_mean else own_zero <= r["halfway"]):
            r |= {"recovered_at": 0.0, "recovered_mean": own_zero}
        found[label] = {**wanted.model_dump(), "baseline": base[0], **r}
    return found


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
    retry_failed: bool = False,
    source: str = "sweep",
    origins: dict[str, str] | None = None,
) -> tuple[Path, list[str], list[tuple[str, bool]]]:
    """Train, evaluate and report; returns the report path, the runs that failed and the
    expected effects with whether each holds. Every run's config is validated (``origins``:
    config key -> the flag that set it, for the error) before anything is created."""
    started = time.time()
    runs = expand(spec, out, quick=quick, seeds=seeds, source=source, origins=origins)
    check_evaluation(spec, runs[0].config, source)
    probe_set = load_probe_set(spec.probes, runs[0].config.env) if spec.probes else None  # its errors before training
    executor = make_backend(backend, workers, address)
    out.mkdir(parents=True, exist_ok=True)
    failed = train_runs(runs, out, Manifest(out), executor, max_attempts=max_attempts, retry_failed=retry_failed)
    trained_for = time.time() - started
    episodes = (spec.quick.episodes if quick else None) or spec.evaluate.episodes
    subjects: list[Subject] = []
    conditions: dict[str, list] = {}
    for run in runs:
        if run.status == "done":
            conditions.setdefault(run.condition, []).append(run)
    for condition, done in conditions.items():
        subjects.append(trained_subject(condition, [r.folder for r in done], spec.evaluate.deterministic))
    if not subjects:
        raise JobsFailed(f"no run of {spec.name} finished ({len(failed)} failed; see {out / 'manifest.json'}); "
                         "fix the cause, then re-run with --retry-failed")
    for name in spec.evaluate.references:
        subjects.append(reference_subject(name, subjects[0].env_id, subjects[0].env_kwargs))
    record = evaluate(subjects, spec.evaluate.distributions, episodes, spec.evaluate.level_seed)
    if probe_set is not None:
        record["probes"] = run_probes(subjects, probe_set, level_seed=spec.evaluate.level_seed)
    record["sweep"] = {"name": spec.name, "quick": quick, "train_seconds": round(trained_for), "failed_runs": [r.id for r in failed]}
    write_results(record, out)
    checks = sweep_checks(spec, record, quick)
    record["checks"] = results.check_records(checks)
    if spec.knob:
        record["knob"] = knob_record(spec, record, conditions)
        checks += recovery_checks(spec, record)
        record["checks"] = results.check_records(checks)
    elapsed = time.time() - started
    record["sweep"]["wall_seconds"] = round(elapsed)
    record = write_results(record, out)
    extra = runs_line(len(runs), len(failed), elapsed, trained_for)
    report = write_report(record, out, report_title(spec.name, quick), checks, extra, about=spec.description, headline=spec)
    print(summary(record), file=sys.stderr)
    print_checks(checks)
    return report, [r.id for r in failed], checks


def sweep_checks(spec: SweepSpec, record: dict[str, Any], quick: bool) -> list[CheckResult]:
    """The sweep's expected effects measured on its record (those whose policies it has)."""
    evaluated = results.policies(record)
    return [measure(c, record, quick) for c in spec.checks if all(p in evaluated for p in c.policies) and (c.than is None or c.than in evaluated)]


def runs_line(runs: int, failed: int, wall: float, train: float) -> str:
    """The report's closing line: how many runs, how many failed, and the time taken."""
    return f"\nRuns: {runs} ({failed} failed); wall time {wall:.0f} s (training {train:.0f} s).\n"


def report_title(name: str, quick: bool) -> str:
    return f"{name}{' (quick)' if quick else ''}"


def load_reproduction(name: str) -> tuple[Any, Path]:
    """The spec of reproduction ``name`` (of the kind its file names in ``kind:``; default: a
    sweep) and its file."""
    path = reproduction_path(name)
    kind = read_yaml(path).get("kind", "sweep")
    if kind not in KINDS:
        raise ConfigError(f"{path}: kind: {kind!r} is not a kind of experiment; valid ones: {sorted(KINDS)}")
    return KINDS[kind].load(path), path


def with_trainer(spec: Any, trainer: str) -> Any:
    """``spec`` with every run trained by ``trainer`` (goodhart.experiments.trainers); each
    run's config.yaml records it. A study of other reproductions' runs (an alarm) names the
    trainer of its sources in its own ``trainer`` field, having no run config of its own."""
    if "trainer" in type(spec).model_fields:
        return spec.model_copy(update={"trainer": trainer})
    return spec.model_copy(update={"set": {**spec.set, "trainer": trainer}})


def trainer_refusal(spec: Any, trainer: str) -> str | None:
    """Why ``trainer`` cannot train ``spec``'s runs (``does not train with curriculum``; a study
    names the source that it cannot train), or None where it can: checked on the run configs
    alone, before anything is trained."""
    from goodhart.experiments.overoptimization import check_ppo_config
    from goodhart.experiments.sweep import expand

    spec = with_trainer(spec, trainer)
    try:
        if spec.kind == "sweep":
            expand(spec, Path("unused"), quick=True)
        elif spec.kind == "overoptimization":
            check_ppo_config(spec, quick=True)
        else:  # a study of other reproductions' runs: those must be trainable
            for name in spec.source_reproductions():
                reason = trainer_refusal(load_reproduction(name)[0], trainer)
                if reason:
                    return f"{name}: {reason}"
    except TrainerRefused as err:
        return err.reason
    except ConfigError as err:
        return str(err)
    return None


def run_reproduction(spec: Any, out: Path, **options: Any) -> tuple[Path, list[str], list[tuple[str, bool]]]:
    """Run a reproduction of any kind; its report, failed runs and checks."""
    return KINDS[spec.kind].run(spec, out, **options)


def load_spec_named(name_or_path: str) -> Any:
    """An experiment's spec: a reproduction's name, or a spec file of any kind."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return KINDS[read_yaml(path).get("kind", "sweep")].load(path)
    return load_reproduction(name_or_path)[0]


def rerender(folder: Path, spec: Any = None, title: str | None = None, about: str | None = None) -> Path:
    """Write ``folder``'s report.md and figures again from its results.json, without training
    anything, with the re-renderer of the experiment's kind. ``spec`` (default: the
    reproduction the record names, if there is one) gives the kind, the description (``about``
    overrides it), the headline and, for an older sweep record that has none stored, the
    expected effects (measured again on the record). Returns the report's path."""
    raw = json.loads((folder / "results.json").read_text())
    name = raw.get("name") if "conditions" in raw else (raw.get("sweep") or {}).get("name")
    if spec is None and name:
        try:
            spec = load_spec_named(name)
        except ConfigError:
            spec = None  # a sweep of one's own (goodhart sweep FILE): no spec to read
    if spec is None and "conditions" in raw:
        raise ConfigError(f"{folder}: the over-optimization study {name!r} has no spec to re-render its report with")
    kind = spec.kind if spec is not None else "sweep"
    return KINDS[kind].rerender(folder, raw, spec, title=title, about=about)


def record_checks(record: dict[str, Any], spec: Any) -> list[CheckResult]:
    """A record's expected effects: those stored in it, or, for an older sweep record that has
    none stored, ``spec``'s measured again on it (none without a spec)."""
    if "checks" in record:
        return [CheckResult(c["text"], bool(c["pass"])) for c in record["checks"]]
    if spec is not None and spec.kind == "sweep":
        return sweep_checks(spec, record, bool((record.get("sweep") or {}).get("quick")))
    return []


def folder_checks(folder: Path, spec: Any) -> list[CheckResult]:
    """The expected effects of the results in ``folder`` (see :func:`record_checks`)."""
    raw = json.loads((folder / "results.json").read_text())
    return record_checks(raw if "checks" in raw else read_results(folder), spec)


def rerender_sweep(folder: Path, raw: dict[str, Any], spec: SweepSpec | None, title: str | None = None, about: str | None = None) -> Path:
    """A sweep's report again from its record (``raw``, as read; its NaNs restored here)."""
    record = read_results(folder)
    name = (raw.get("sweep") or {}).get("name")
    info = record.get("sweep") or {}
    quick = bool(info.get("quick"))
    checks = record_checks(record, spec)
    extra = ""
    if "wall_seconds" in info:
        runs = sum(len(results.entry(record, n)["seeds"]) for n in results.trained_names(record)) + len(info.get("failed_runs", []))
        extra = runs_line(runs, len(info.get("failed_runs", [])), info["wall_seconds"], info.get("train_seconds", 0))
    if title is None:
        title = report_title(name, quick) if name else f"Evaluation on {record['env']}"
    if about is None:
        about = spec.description if spec is not None else ""
    return write_report(record, folder, title, checks, extra, about=about, headline=spec)


class Kind(NamedTuple):
    """A kind of experiment: how its spec file is read, what runs it on the engine, and what
    writes its report again from its results.json (``goodhart report``)."""

    load: Callable[[Path], Any]
    run: Callable[..., tuple[Path, list[str], list[CheckResult]]]
    rerender: Callable[..., Path]


KINDS: dict[str, Kind] = {
    "sweep": Kind(load_spec, run_sweep, rerender_sweep),
    "overoptimization": Kind(load_overoptimization_spec, run_overoptimization, rerender_overoptimization),
    ALARM_KIND: Kind(load_alarm_spec, run_alarm_study, rerender_alarm_study),
    STEERING_KIND: Kind(load_steering_spec, run_steering, rerender_steering),
}


def spec_trainer(spec: Any) -> str | None:
    """The trainer :func:`with_trainer` set on ``spec``, or None: its runs use the configs'."""
    return spec.trainer if "trainer" in type(spec).model_fields else spec.set.get("trainer")


def source_folder(name: str, out: Path, *, quick: bool = False, seeds: list[int] | None = None, trainer: str | None = None,
                  **options: Any) -> Path:
    """The folder of reproduction ``name``'s finished runs (``runs/<condition>/seed<k>/``), for
    an experiment that studies them (the divergence alarm, the cue vector) rather than training
    its own: the reproduction's own default folder beside ``out`` (``<out>/../NAME``, with the
    suffixes of :func:`~goodhart.experiments.results.folder_name` for quick mode and
    ``trainer``) when it has been run there in the same mode, with runs of every seed in
    ``seeds`` if given, else ``name`` reproduced now, under ``trainer``, into
    ``<out>/sources/NAME`` (resumable like any reproduction).
    ``options``: those of :func:`run_reproduction` (workers, backend, ...)."""
    beside = out.parent / results.folder_name(name, quick, trainer)
    record = beside / "results.json"
    if record.is_file():
        info = json.loads(record.read_text())
        ran_quick = (info.get("sweep") or info).get("quick")
        ran_seeds = {int(run.name[4:]) for run in beside.glob("runs/*/seed*") if run.is_dir() and run.name[4:].isdigit()}
        if bool(ran_quick) == quick and ran_seeds and (seeds is None or set(seeds) <= ran_seeds):
            print(f"{name}: reusing the runs in {beside}", file=sys.stderr)
            return beside
    folder = out / "sources" / name
    print(f"{name}: no finished {'quick ' if quick else ''}reproduction at {beside}; running it into {folder}", file=sys.stderr)
    spec, path = load_reproduction(name)
    if trainer is not None:
        spec = with_trainer(spec, trainer)
    run_reproduction(spec, folder, quick=quick, seeds=seeds, **{**options, "source": str(path)})
    return folder
