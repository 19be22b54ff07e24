"""Reward model over-optimization (Gao, Schulman & Hilton, 2022) reproduced in a gridworld.

A kind of experiment on the one engine (:mod:`goodhart.experiments.engine`), the stages of
``goodhart reproduce reward-model-overoptimization``; its spec is a YAML file in
``experiments/reproductions/`` with ``kind: overoptimization``. For every seed, each stage a
set of jobs run ``workers`` at a time, resumable like every engine stage:

0. ``clone`` (with an ``sft`` section): the starting policy pi_init, the run's network cloned
   from demonstrations (what ``goodhart rlhf clone`` does), as RLHF starts from a supervised
   model;
1. ``collect``: segments from a fixed mix of policies, pairs labelled by a distorted simulated
   rater (``preferences``), the largest label count once: smaller counts are its first labels;
2. ``fit``: one reward model per label count (``reward_model``; what ``goodhart rlhf fit``
   does);
3. PPO from pi_init against each fixed reward model (and, for the ``kl`` condition, with a KL
   penalty towards pi_init), measuring at step 0 and every ``measure.eval_freq`` steps d =
   sqrt(KL(pi || pi_init)) on a fixed state set, d along the policy's own episodes (the KL
   between the two policies' distributions of episodes, Gao et al.'s sequence-level KL), and
   the learned (proxy), env and true returns on fixed levels (``reward_model.csv`` of each
   run); the sweep's training jobs;
4. the reference policies (``references``, and pi_init) on the same levels, with the return
   each reward model gives them.

Then, per condition: the proxy and the true return against both d, Gao et al.'s RL form
``R(d) = d (alpha - beta log d)`` fitted by least squares to each seed's true return
(measured from the initial policy's), the coefficients with 95 % bootstrap CIs over seeds,
the peak, what the final policies do (the env's outcomes), the expected effects as PASS/FAIL
checks, ``report.md``, ``results.json`` and ``overoptimization.png``.
"""

from __future__ import annotations

import copy
import json
import math
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field, ValidationError

from goodhart.agents.files import nan_for_null, write_json
from goodhart.agents.model_io import model_paths
from goodhart.envs import core_class
from goodhart.experiments.config import ConfigError, IteratedConfig, RunConfig, Strict, apply_override, config_path, read_yaml, validate, validated
from goodhart.experiments.engine import Backend, Job, JobsFailed, LocalBackend, Manifest, run_jobs
from goodhart.experiments.engine.checks import CheckResult, checks_section, print_checks
from goodhart.experiments.headline import headline
from goodhart.experiments.metrics import across_seeds, interval
from goodhart.experiments.report import write_report_files
from goodhart.experiments.results import OveroptimizationRecord, check_records
from goodhart.experiments.reward_learning.cloning import CloneConfig
from goodhart.experiments.reward_learning.dataset import load_dataset, save_dataset
from goodhart.experiments.reward_learning.raters import RaterConfig, rare_distortions
from goodhart.experiments.reward_learning.reward_model import FitConfig, fit_reward_model, load_reward_model, save_reward_model
from goodhart.experiments.reward_learning.sources import clone_demonstrations, collect_preferences, source_policy
from goodhart.experiments.reward_learning.training import measure_policy
from goodhart.experiments.rlhf_measures import (
    BaselineSpec,
    BehaviourJob,
    BehaviourSpec,
    BestOfNSpec,
    StudyCheck,
    BestOfNJob,
    behaviour_stage,
    behaviour_summary,
    best_of_n_record,
    best_of_n_stage,
    curve_checks,
    plot_best_of_n,
    report_sections,
    study_checks,
)
from goodhart.experiments.sweep import ExperimentSpec, QuickSpec, Run, seed_list, train_runs
from goodhart.experiments.trainers import trained_by

KIND = "overoptimization"


class SFTSpec(Strict):
    """The policy every run starts from: cloned from demonstrations (goodhart rlhf clone)."""

    sources: list[str] = Field(min_length=1)
    episodes: int = Field(200, ge=1)
    epochs: int = Field(CloneConfig.epochs, ge=1)


class PreferencesSpec(Strict):
    sources: list[str] = Field(min_length=1)
    length: int = Field(20, ge=1)
    rater: dict[str, Any] = Field(default_factory=dict)


class FitSpec(Strict):
    network: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(FitConfig.epochs, ge=1)
    ensemble: int = Field(1, ge=1)
    bootstrap: bool = Field(False, description="each member fitted on its own resample of the pairs")
    scale: float = Field(1.0, gt=0, description="reward_model.scale of the PPO runs")


class MeasureSpec(Strict):
    eval_freq: int = Field(10_000, ge=1)
    eval_episodes: int = Field(32, ge=1)
    eval_states: int = Field(2000, ge=1)


class KLSpec(Strict):
    labels: int = Field(ge=1)
    kl_coef: float = Field(gt=0)


class ConditionSpec(Strict):
    """One condition of a study that names its conditions: PPO against the reward model of
    ``labels`` labels of rater ``rater`` (a key of the spec's ``raters``; default the
    preferences' rater), combined by ``objective``, with an optional KL penalty and an optional
    iterated mode (the ``reward_model.iterated`` options but the dataset: its labels are added
    to the model's own)."""

    labels: int = Field(ge=1)
    rater: str | None = None
    kl_coef: float = Field(0.0, ge=0)
    objective: Literal["mean", "worst", "uncertainty", "single"] = "mean"
    uncertainty_coef: float = Field(1.0, ge=0)
    iterated: dict[str, Any] | None = None


class OveroptimizationQuick(QuickSpec):
    """Quick mode: the sweep's (seeds, set) and smaller label counts, KL condition and
    measurements."""

    seeds: int | list[int] = 2
    labels: list[int] | None = None
    kl: KLSpec | None = None
    measure: MeasureSpec | None = None


class OveroptimizationSpec(ExperimentSpec):
    kind: Literal["overoptimization"] = KIND
    sft: SFTSpec | None = None
    references: list[str] = Field(default_factory=lambda: ["random"])
    preferences: PreferencesSpec
    reward_model: FitSpec = Field(default_factory=FitSpec)
    labels: list[int] = Field(default_factory=list, description="Gao et al.'s label-count conditions (or: conditions)")
    kl: KLSpec | None = None
    raters: dict[str, dict[str, Any]] = Field(default_factory=dict, description="named raters the conditions choose from")
    conditions: dict[str, ConditionSpec] = Field(default_factory=dict, description="instead of labels: the conditions, by name")
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    behaviour: BehaviourSpec | None = None
    baseline: BaselineSpec | None = None
    best_of_n: BestOfNSpec | None = None
    checks: list[StudyCheck] = Field(default_factory=list, description="declared comparisons (with conditions; labels has its own checks)")
    quick: OveroptimizationQuick = Field(default_factory=OveroptimizationQuick)


def load_overoptimization_spec(path: Path) -> OveroptimizationSpec:
    spec = validated(OveroptimizationSpec, read_yaml(path), str(path))
    if bool(spec.labels) == bool(spec.conditions):
        raise ConfigError(f"{path}: give one of labels (Gao et al.'s label counts) and conditions (named conditions)")
    try:
        for rater in [spec.preferences.rater, *spec.raters.values()]:
            RaterConfig.from_dict(rater)
        FitConfig(network=spec.reward_model.network)
        for name, condition in spec.conditions.items():
            if condition.rater is not None and condition.rater not in spec.raters:
                raise ValueError(f"condition {name}: rater {condition.rater!r} is not one of raters {list(spec.raters)}")
            if condition.iterated is not None:
                IteratedConfig(dataset="-", **condition.iterated)
        for check in spec.checks:
            for name in ([check.condition] if isinstance(check.condition, str) else check.condition) + [check.than]:
                if name not in spec.conditions and not (spec.baseline and name == spec.baseline.name):
                    raise ValueError(f"check {check.text!r}: {name!r} is not a condition")
        if spec.baseline is not None and spec.baseline.against not in spec.conditions:
            raise ValueError(f"baseline.against: {spec.baseline.against!r} is not a condition")
        for name in spec.quick.conditions or []:
            if name not in spec.conditions:
                raise ValueError(f"quick.conditions: {name!r} is not a condition")
    except (ValueError, ValidationError) as err:
        raise ConfigError(f"{path}: {' '.join(str(err).split())[:300]}") from None
    return spec


# -------------------------------------------------------------------------- stages
@dataclass(frozen=True)
class CloneJob:
    config: RunConfig
    sft: SFTSpec
    out: Path


def clone_stage(job: CloneJob, progress: Any) -> None:
    """Clone one seed's starting policy (the run config's network and seed)."""
    fit = CloneConfig(epochs=job.sft.epochs, seed=job.config.seed)
    record = clone_demonstrations(job.config, job.sft.sources, job.sft.episodes, fit, job.out)
    print(f"cloned {job.out}: train NLL {record['train_nll']:.3f}")


@dataclass(frozen=True)
class CollectJob:
    env: str
    env_kwargs: dict[str, Any]
    preferences: PreferencesSpec
    labels: int
    seed: int
    out: Path


def collect_stage(job: CollectJob, progress: Any) -> None:
    """Collect one seed's segments and label ``labels`` pairs of them."""
    rater = RaterConfig.from_dict(job.preferences.rater)
    dataset = collect_preferences(job.env, job.env_kwargs, job.preferences.sources, labels=job.labels, rater=rater,
                                  length=job.preferences.length, seed=job.seed)
    save_dataset(dataset, job.out)
    shares = dataset.info["distortion_shares"]
    print(f"collected {job.out}: {len(dataset)} labels; segments each rater distortion can act on: {shares}")
    for line in rare_distortions(shares):
        print(line)


@dataclass(frozen=True)
class FitJob:
    data: Path
    labels: int
    fit: FitConfig
    out: Path


def fit_stage(job: FitJob, progress: Any) -> None:
    """Fit one reward model on the first ``labels`` labels of a seed's dataset."""
    dataset = load_dataset(job.data).first(job.labels)
    model = fit_reward_model(dataset, job.fit)
    save_dataset(dataset, f"{job.out}_data")  # the labels it was fitted on: where an iterated run adds its own
    save_reward_model(model, job.out)
    print(f"fitted {job.out}: held-out accuracy {model.meta['accuracy']['held_out']:.3f}")


def _done(stem: Path) -> bool:
    return model_paths(stem)[1].exists()


def _collected(stem: Path, labels: int) -> bool:
    return stem.with_suffix(".json").exists() and load_dataset(stem).labels.size >= labels


def _stage(jobs: list[Job], manifest: Manifest, backend: Backend, title: str, retry_failed: bool) -> None:
    """Run one stage; later stages need all of its outputs, so a failure stops the experiment."""
    failed = run_jobs(jobs, manifest, backend, title=title, max_attempts=2, retry_failed=retry_failed)
    if failed:
        raise JobsFailed(f"{len(failed)} of {len(jobs)} {title} jobs failed; first: {failed[0].id}: {failed[0].error}")


class Condition(NamedTuple):
    """What one condition trains against: the reward model of ``labels`` labels of ``rater``
    (``""``: the preferences' rater), its objective, the KL penalty, the iterated mode."""

    labels: int
    kl_coef: float = 0.0
    rater: str = ""
    objective: str = "mean"
    uncertainty_coef: float = 1.0
    iterated: Mapping[str, Any] | None = None

    @property
    def model_key(self) -> str:
        """The fitted reward model it starts from: ``labels=N`` or ``RATER, labels=N``."""
        return f"{self.rater + ', ' if self.rater else ''}labels={self.labels}"


def conditions(labels: Sequence[int], kl: KLSpec | None) -> dict[str, Condition]:
    """Gao et al.'s conditions: condition name -> the label count (and a KL penalty)."""
    out = {f"labels={n}": Condition(n) for n in sorted(labels)}
    if kl is not None:
        out[f"labels={kl.labels},kl={kl.kl_coef:g}"] = Condition(kl.labels, kl.kl_coef)
    return out


def study_plan(spec: OveroptimizationSpec, quick: bool) -> dict[str, Condition]:
    """The conditions to run: named ones (quick mode: ``quick.conditions`` of them), or Gao
    et al.'s from the label counts."""
    if spec.conditions:
        keep = spec.quick.conditions if quick and spec.quick.conditions else list(spec.conditions)
        return {name: Condition(c.labels, c.kl_coef, c.rater or "", c.objective, c.uncertainty_coef, c.iterated)
                for name, c in spec.conditions.items() if name in keep}
    label_counts = spec.quick.labels if quick and spec.quick.labels else spec.labels
    return conditions(label_counts, spec.quick.kl if quick and spec.quick.kl is not None else spec.kl)


def rater_options(spec: OveroptimizationSpec, rater: str) -> dict[str, Any]:
    return spec.raters[rater] if rater else spec.preferences.rater


def run_overoptimization(spec: OveroptimizationSpec, out: Path, *, quick: bool = False, seeds: list[int] | None = None,
                         workers: int = 1, backend: Backend | None = None, retry_failed: bool = False,
                         source: str = "reproduction") -> tuple[Path, list[str], list[tuple[str, bool]]]:
    """Clone, collect, fit, train and measure (stages of jobs on the engine), then fit the
    curves and report; returns the report path, the failed runs and the checks."""
    started = time.time()
    seeds = seeds or seed_list(spec.quick.seeds if quick else spec.seeds)
    measure = spec.quick.measure if quick and spec.quick.measure is not None else spec.measure
    plan = study_plan(spec, quick)
    base = base_config(spec)
    overrides = {**spec.set, **(spec.quick.set if quick else {})}
    probe = _run_config(base, overrides, {}, seeds[0], source)  # the env and network of every run
    check_ppo_config(spec, quick, source)
    env_kwargs = dict(probe.env_kwargs)
    backend = backend or LocalBackend(workers)
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out)
    timings: dict[str, float] = {}

    # 0. the starting policies (SFT), one per seed, cloned from demonstrations
    t0 = time.time()
    starts: dict[int, Path] = {}
    if spec.sft is not None:
        jobs = []
        for seed in seeds:
            starts[seed] = stem = out / "sft" / f"seed{seed}"
            clone = probe.model_copy(update={"seed": seed, "reward_model": None, "init": None})
            jobs.append(Job(f"clone/seed{seed}", clone_stage, CloneJob(clone, spec.sft, stem), stem.with_suffix(".log"), lambda s=stem: _done(s)))
        _stage(jobs, manifest, backend, "clone", retry_failed)
    timings["clone"] = time.time() - t0

    # 1. preferences, once per seed and rater at the rater's largest label count
    t0 = time.time()
    raters = sorted({c.rater for c in plan.values()} | ({spec.best_of_n.rater or ""} if spec.best_of_n else set()))
    data: dict[tuple[str, int], Path] = {}
    jobs = []
    for rater in raters:
        most = max([c.labels for c in plan.values() if c.rater == rater]
                   + ([spec.best_of_n.labels] if spec.best_of_n and (spec.best_of_n.rater or "") == rater else []))
        preferences = spec.preferences.model_copy(update={"rater": rater_options(spec, rater)})
        for seed in seeds:
            data[(rater, seed)] = stem = out / "preferences" / rater / f"seed{seed}" if rater else out / "preferences" / f"seed{seed}"
            jobs.append(Job(f"collect/{rater + '/' if rater else ''}seed{seed}", collect_stage, CollectJob(probe.env, env_kwargs, preferences, most, seed, stem),
                            stem.with_suffix(".log"), lambda s=stem, n=most: _collected(s, n)))
    _stage(jobs, manifest, backend, "collect", retry_failed)
    timings["collect"] = time.time() - t0

    # 2. reward models, one per rater, label count and seed
    t0 = time.time()
    jobs, models = [], {}
    network = {**FitConfig().network, **spec.reward_model.network}
    wanted = {(c.rater, c.labels) for c in plan.values()} | ({(spec.best_of_n.rater or "", spec.best_of_n.labels)} if spec.best_of_n else set())
    for rater, n in sorted(wanted):
        for seed in seeds:
            models[(Condition(n, rater=rater).model_key, seed)] = stem = out / "reward_models" / rater / f"labels{n}" / f"seed{seed}"
            fit = FitConfig(network=network, ensemble=spec.reward_model.ensemble, bootstrap=spec.reward_model.bootstrap,
                            epochs=spec.reward_model.epochs, seed=seed)
            jobs.append(Job(f"fit/{rater + '/' if rater else ''}labels={n}/seed{seed}", fit_stage, FitJob(data[(rater, seed)], n, fit, stem),
                            stem.with_suffix(".log"), lambda s=stem: _done(s)))
    _stage(jobs, manifest, backend, "fit", retry_failed)
    timings["fit"] = time.time() - t0

    # 3. PPO against each model (and the baseline on the salient event alone)
    t0 = time.time()
    runs = []
    for condition, c in plan.items():
        for seed in seeds:
            model = models[(c.model_key, seed)]
            rm = {"path": str(model), "scale": spec.reward_model.scale, "kl_coef": c.kl_coef, "objective": c.objective,
                  "uncertainty_coef": c.uncertainty_coef, **measure.model_dump()}
            if c.iterated is not None:
                rm["iterated"] = {**c.iterated, "dataset": f"{model}_data"}
            start = {"init": str(starts[seed])} if seed in starts else {}
            cfg = _run_config(base, {**overrides, **start}, rm, seed, f"{source} ({condition}, seed {seed})")
            runs.append(Run(condition, seed, cfg, out / "runs" / condition / f"seed{seed}", extra={"labels": c.labels, "kl_coef": c.kl_coef}))
    baseline_runs = []
    if spec.baseline is not None:
        for seed in seeds:
            start = {"init": str(starts[seed])} if seed in starts else {}
            cfg = _run_config(base, {**overrides, **spec.baseline.set, **start}, {}, seed, f"{source} ({spec.baseline.name}, seed {seed})")
            baseline_runs.append(Run(spec.baseline.name, seed, cfg, out / "runs" / spec.baseline.name / f"seed{seed}"))
    failed = [run.id for run in train_runs(runs + baseline_runs, out, manifest, backend, retry_failed=retry_failed)]
    timings["train"] = time.time() - t0

    # 4. measurements beside the curves
    t0 = time.time()
    per_seed_behaviour = _behaviour(spec, plan, runs, baseline_runs, models, starts, seeds, probe, env_kwargs, out, manifest, backend, retry_failed)
    bon = _best_of_n(spec, models, starts, seeds, probe, env_kwargs, out, manifest, backend, retry_failed, quick)
    timings["measure"] = time.time() - t0

    # 5. analysis
    record = analyse(runs, plan, models)
    record["references"] = measure_references(runs, plan, [*spec.references, *(["sft"] if starts else [])], starts)
    if per_seed_behaviour:
        add_behaviour(record, plan, per_seed_behaviour, spec, runs, baseline_runs, models)
    if bon is not None:
        record["best_of_n"] = bon
    earlier = earlier_seconds(out / "results.json")
    timings = {k: v + earlier.get(k, 0) for k, v in timings.items()}
    record.update({
        "name": spec.name, "quick": quick, "seeds": seeds, "env": probe.env, "env_kwargs": env_kwargs,
        "rater": RaterConfig.from_dict(spec.preferences.rater).to_dict(),
        "raters": {name: RaterConfig.from_dict(options).to_dict() for name, options in spec.raters.items()},
        "sources": spec.preferences.sources, "failed_runs": failed,
        "seconds": {k: round(v) for k, v in timings.items()},
    })
    checks = all_checks(record, plan, spec)
    record["checks"] = check_records(checks)
    record["seconds"]["wall"] = round(time.time() - started + earlier.get("wall", 0))
    write_json(out / "results.json", record)
    report = write_overoptimization_report(record, spec, out, checks)
    print_checks(checks)
    return report, failed, checks


def base_config(spec: OveroptimizationSpec) -> dict[str, Any]:
    """The run config (as read) that every run of the study starts from."""
    return read_yaml(config_path(spec.config))


def check_ppo_config(spec: OveroptimizationSpec, quick: bool = False, source: str = "reproduction") -> None:
    """Validate what the PPO stage will ask of its run config (a reward model, a cloned start),
    so that a trainer that cannot do it is refused before the earlier stages run: a ConfigError."""
    overrides = {**spec.set, **(spec.quick.set if quick else {}), **({"init": "sft"} if spec.sft else {})}
    _run_config(base_config(spec), overrides, {"path": "reward_model"}, 0, source)


def earlier_seconds(path: Path) -> dict[str, float]:
    """The stage and wall times an earlier run into the same folder recorded (none: {}), so
    that a resumed study reports the time all its runs took, not the last one's."""
    return json.loads(path.read_text()).get("seconds", {}) if path.is_file() else {}


def all_checks(record: Mapping[str, Any], plan: Mapping[str, Condition], spec: OveroptimizationSpec) -> list[CheckResult]:
    """Gao et al.'s checks for a label-count study; the declared ones and best-of-n's otherwise."""
    checks = overoptimization_checks(record, plan) if spec.labels else []
    checks += study_checks(record, spec.checks)
    if spec.best_of_n is not None and record.get("best_of_n"):
        checks += curve_checks(record["best_of_n"]["curves"], spec.best_of_n)
    return checks


def _behaviour(spec, plan, runs, baseline_runs, models, starts, seeds, probe, env_kwargs, out, manifest, backend, retry_failed) -> list[dict[str, Any]]:
    """The behaviour stage: one job per seed (see :mod:`goodhart.experiments.rlhf_measures`)."""
    if spec.behaviour is None:
        return []
    jobs, outputs = [], []
    keys = sorted({c.model_key for c in plan.values()})
    for seed in seeds:
        policies = {r.condition: str(r.folder / "model") for r in runs + baseline_runs if r.seed == seed and r.status == "done"}
        if seed in starts:
            policies["sft"] = str(starts[seed])
        policies.update({name: name for name in spec.references})
        target = out / "behaviour" / f"seed{seed}.json"
        job = BehaviourJob(probe.env, env_kwargs, policies, {k: str(models[(k, seed)]) for k in keys}, list(spec.preferences.sources),
                           spec.behaviour, seed, target)
        jobs.append(Job(f"behaviour/seed{seed}", behaviour_stage, job, target.with_suffix(".log"), lambda t=target: t.exists()))
        outputs.append(target)
    _stage(jobs, manifest, backend, "behaviour", retry_failed)
    return [nan_for_null(json.loads(t.read_text())) for t in outputs]


def _best_of_n(spec, models, starts, seeds, probe, env_kwargs, out, manifest, backend, retry_failed, quick) -> dict[str, Any] | None:
    """The best-of-n stage: one job per seed, from its start policy (see :mod:`goodhart.experiments.rlhf_measures`)."""
    bon = spec.best_of_n
    if bon is None:
        return None
    if not starts:
        raise ConfigError(f"{spec.name}: best_of_n samples from the start policy: give an sft section")
    key = Condition(bon.labels, rater=bon.rater or "").model_key
    jobs, outputs = [], []
    for seed in seeds:
        target = out / "best_of_n" / f"seed{seed}.json"
        job = BestOfNJob(probe.env, env_kwargs, str(starts[seed]), str(models[(key, seed)]), bon, seed, target)
        jobs.append(Job(f"best_of_n/seed{seed}", best_of_n_stage, job, target.with_suffix(".log"), lambda t=target: t.exists()))
        outputs.append(target)
    _stage(jobs, manifest, backend, "best-of-n", retry_failed)
    return best_of_n_record([nan_for_null(json.loads(t.read_text())) for t in outputs], bon)


def add_behaviour(record: dict[str, Any], plan: Mapping[str, Condition], per_seed: Sequence[Mapping[str, Any]], spec: OveroptimizationSpec,
                  runs: Sequence[Run], baseline_runs: Sequence[Run], models: Mapping) -> None:
    """Per condition: its final policies' behaviour, the disagreement of its reward model on
    them and on the start's states, its model's correlation with the salient event; the
    reference policies' behaviour; the baseline against its condition."""
    for name, c in plan.items():
        entry = record["conditions"].get(name)
        if entry is None:
            continue
        entry["behaviour"] = behaviour_summary(per_seed, name, c.model_key)
        start = behaviour_summary(per_seed, "sft", c.model_key)
        if "disagreement" in entry["behaviour"] and "disagreement" in start:
            entry["disagreement_final"], entry["disagreement_initial"] = entry["behaviour"]["disagreement"], start["disagreement"]
        entry["correlation"] = across_seeds([s["correlation"][c.model_key] for s in per_seed])
    record["behaviour_references"] = {name: behaviour_summary(per_seed, name, "") for name in ["sft", *spec.references]
                                      if any(name in s["policies"] for s in per_seed)}
    if spec.baseline is not None and baseline_runs:
        record["baseline"] = baseline_record(spec.baseline, plan, record, per_seed, runs, baseline_runs, models)


def baseline_record(baseline: BaselineSpec, plan: Mapping[str, Condition], record: Mapping[str, Any], per_seed: Sequence[Mapping[str, Any]],
                    runs: Sequence[Run], baseline_runs: Sequence[Run], models: Mapping) -> dict[str, Any]:
    """The salient-only policies measured by condition ``against``'s reward models: their proxy
    return, and its gain over the start's as a share of that condition's final gain."""
    c = plan[baseline.against]
    proxies, shares = [], []
    entry = record["conditions"][baseline.against]
    for run in baseline_runs:
        if run.status != "done":
            continue
        rm_cfg = next(r.config for r in runs if r.condition == baseline.against and r.seed == run.seed)
        model = load_reward_model(models[(c.model_key, run.seed)]).with_objective(c.objective, c.uncertainty_coef)
        policy = source_policy(str(run.folder / "model"), run.config.env)
        row = measure_policy(policy, rm_cfg, model, rm_cfg.reward_model.scale, rm_cfg.reward_model.eval_episodes)
        proxies.append(row["reward_model_return"])
        k = entry["seeds"].index(run.seed)
        start, final = entry["proxy_return"][k][0], entry["proxy_return"][k][-1]
        shares.append((row["reward_model_return"] - start) / (final - start) if final != start else math.nan)
    return {"name": baseline.name, "against": baseline.against, "final_proxy": across_seeds(proxies), "share_of_gain": across_seeds(shares),
            "behaviour": behaviour_summary(per_seed, baseline.name, c.model_key)}
def _run_config(base: Mapping[str, Any], overrides: Mapping[str, Any], reward_model: Mapping[str, Any], seed: int, source: str) -> RunConfig:
    data = copy.deepcopy(dict(base))
    for key, value in {**overrides, "seed": seed}.items():
        apply_override(data, f"{key}={json.dumps(value)}", source)
    if reward_model:
        data["reward_model"] = dict(reward_model)
    return validate(data, source)


# ------------------------------------------------------------------------ analysis
def read_curve(folder: Path) -> dict[str, np.ndarray]:
    """A run's measurements (reward_model.csv), one array per column."""
    import csv

    with (folder / "reward_model.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(r[key]) if r[key] not in ("", "nan") else math.nan for r in rows]) for key in rows[0]}


def fit_gao(d: np.ndarray, gain: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(alpha, beta)`` of ``gain = d (alpha - beta log d)`` over points d > 0."""
    keep = d > 0
    d, gain = d[keep], gain[keep]
    features = np.stack([d, -d * np.log(d)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(features, gain, rcond=None)
    return float(alpha), float(beta)


def gao_peak(alpha: float, beta: float) -> tuple[float, float]:
    """``(d*, R(d*))`` of the fitted form: d* = exp(alpha / beta - 1), R* = beta d* (beta > 0)."""
    if beta <= 0:
        return math.nan, math.nan
    d_star = math.exp(min(alpha / beta - 1, 50))
    return d_star, beta * d_star


def analyse(runs: Sequence[Run], plan: Mapping[str, Condition], models: Mapping) -> dict[str, Any]:
    """Per condition: the mean curves (d, proxy, true, env score per measurement), per-seed
    fits, the peak and the final values, with 95 % bootstrap CIs over seeds."""
    out: dict[str, Any] = {"conditions": {}}
    for condition, c in plan.items():
        n, kl_coef = c.labels, c.kl_coef
        done = [r for r in runs if r.condition == condition and r.status == "done" and (r.folder / "reward_model.csv").exists()]
        if not done:
            continue
        curves = [read_curve(r.folder) for r in done]
        k = min(len(c["timestep"]) for c in curves)
        stack = {key: np.array([c[key][:k] for c in curves]) for key in ("timestep", "d", "d_trajectory", "true_return", "return", "reward_model_return")}
        gain = stack["true_return"] - stack["true_return"][:, :1]
        fits = [fit_gao(stack["d"][s], gain[s]) for s in range(len(done))]
        alphas, betas = [f[0] for f in fits], [f[1] for f in fits]
        traj_fits = [fit_gao(stack["d_trajectory"][s], gain[s]) for s in range(len(done))]
        env_outcomes = [key for key in core_class(done[0].config.env).OUTCOMES if key in curves[0]]
        mean_true = stack["true_return"].mean(axis=0)
        peak = int(np.argmax(mean_true))
        accuracy = [nan_for_null(load_reward_model(models[(c.model_key, r.seed)]).meta["accuracy"]) for r in done]
        entry = {
            "labels": n, "kl_coef": kl_coef, "rater": c.rater, "objective": c.objective, "seeds": [r.seed for r in done],
            "trainer": done[0].config.trainer,
            "timestep": stack["timestep"][0].tolist(),
            "d": stack["d"].tolist(), "d_trajectory": stack["d_trajectory"].tolist(), "true_return": stack["true_return"].tolist(),
            "proxy_return": stack["reward_model_return"].tolist(), "env_return": stack["return"].tolist(),
            "peak_index": peak,
            "peak_true": across_seeds(stack["true_return"][:, peak].tolist()),
            "peak_d": across_seeds(stack["d"][:, peak].tolist()),
            "peak_proxy": across_seeds(stack["reward_model_return"][:, peak].tolist()),
            "final_true": across_seeds(stack["true_return"][:, -1].tolist()),
            "final_proxy": across_seeds(stack["reward_model_return"][:, -1].tolist()),
            "final_d": across_seeds(stack["d"][:, -1].tolist()),
            "peak_d_trajectory": across_seeds(stack["d_trajectory"][:, peak].tolist()),
            "final_d_trajectory": across_seeds(stack["d_trajectory"][:, -1].tolist()),
            "final_outcomes": {key: across_seeds([float(c[key][k - 1]) for c in curves]) for key in env_outcomes},
            "initial_true": across_seeds(stack["true_return"][:, 0].tolist()),
            "drop": across_seeds((stack["true_return"][:, peak] - stack["true_return"][:, -1]).tolist()),
            "alpha": across_seeds(alphas), "beta": across_seeds(betas),
            "alpha_trajectory": across_seeds([f[0] for f in traj_fits]), "beta_trajectory": across_seeds([f[1] for f in traj_fits]),
            "held_out_accuracy": across_seeds([a["held_out"] for a in accuracy]),
            "held_out_accuracy_vs_true": across_seeds([a["held_out_vs_true"] for a in accuracy]),
        }
        entry["distortion_shares"] = distortion_record([models[(c.model_key, r.seed)] for r in done])
        entry["fit_peak_d"], entry["fit_peak_gain"] = gao_peak(entry["alpha"]["mean"], entry["beta"]["mean"])
        entry["fit_peak_d_trajectory"], _ = gao_peak(entry["alpha_trajectory"]["mean"], entry["beta_trajectory"]["mean"])
        out["conditions"][condition] = entry
    return out


def distortion_record(models: Sequence[Path]) -> dict[str, Any]:
    """Across seeds, the share of the segments each rater distortion could act on in the labels
    the reward models were fitted on (recorded beside each model by the fit stage)."""
    shares = [json.loads(Path(f"{stem}_data.json").read_text()).get("distortion_shares", {}) for stem in models
              if Path(f"{stem}_data.json").is_file()]
    names = sorted({name for s in shares for name in s})
    return {name: across_seeds([s[name] for s in shares if name in s]) for name in names}


def measure_references(runs: Sequence[Run], plan: Mapping[str, Condition], names: Sequence[str],
                       starts: Mapping[int, Path]) -> dict[str, Any]:
    """The reference policies ``names`` (``random``, ``oracle-<name>``; ``sft``: each seed's
    starting policy) on the runs' measurement levels, per seed: their true and env returns and
    the return each fixed reward model gives them (the model of every condition without a KL
    penalty or refits, under its objective, keyed by the condition); across seeds."""
    measured = [name for name, c in plan.items() if c.kl_coef == 0 and c.iterated is None]
    seeds = sorted({r.seed for r in runs if r.status == "done"})
    values = {name: {"true_return": [], "return": [], **{k: [] for k in measured}} for name in names}
    for seed in seeds:
        for condition in measured:
            run = next((r for r in runs if r.seed == seed and r.condition == condition and r.status == "done"), None)
            if run is None:
                continue
            cfg, spec = run.config, run.config.reward_model
            model = load_reward_model(spec.path).with_objective(spec.objective, spec.uncertainty_coef)
            for name in names:
                policy = source_policy(str(starts[seed]) if name == "sft" else name, cfg.env)
                row = measure_policy(policy, cfg, model, spec.scale, spec.eval_episodes)
                values[name][condition].append(row["reward_model_return"])
                if condition == measured[0]:
                    values[name]["true_return"].append(row["true_return"])
                    values[name]["return"].append(row["return"])
    return {name: {key: across_seeds(v) for key, v in rows.items() if v} for name, rows in values.items()}


def overoptimization_checks(record: Mapping[str, Any], plan: Mapping[str, Condition]) -> list[CheckResult]:
    """The expected effects, per condition without a KL penalty, and across label counts."""
    checks: list[CheckResult] = []
    entries = record["conditions"]
    spread = "95 % CI" if len(record["seeds"]) > 2 else f"with {len(record['seeds'])} seeds, their range"
    plain = [name for name, c in plan.items() if c.kl_coef == 0 and name in entries]
    for condition in plain:
        e = entries[condition]
        checks.append(CheckResult(f"{condition}: the true return first rises: its peak's interval ({spread}) is above the "
                       f"initial policy's ({_ci(e['peak_true'])} vs {e['initial_true']['mean']:.2f})",
                       interval(e["peak_true"])[0] > e["initial_true"]["mean"]))
        checks.append(CheckResult(f"{condition}: the proxy (reward model) return at the end exceeds its value at the true return's peak "
                       f"({e['final_proxy']['mean']:.2f} vs {e['peak_proxy']['mean']:.2f})",
                       e["final_proxy"]["mean"] > e["peak_proxy"]["mean"]))
        checks.append(CheckResult(f"{condition}: the final true return is below the peak's interval ({spread}) "
                       f"({e['final_true']['mean']:.2f} vs peak {_ci(e['peak_true'])})",
                       e["final_true"]["mean"] < interval(e["peak_true"])[0]))
        checks.append(CheckResult(f"{condition}: the fitted R(d) turns down: beta > 0 with its interval ({spread}) above 0 "
                       f"({_ci(e['beta'])})",
                       interval(e["beta"])[0] > 0))
    for condition, (n, kl, *_) in plan.items():
        base = f"labels={n}"
        if kl == 0 or condition not in entries or base not in entries:
            continue
        e, without = entries[condition], entries[base]
        checks.append(CheckResult(f"{condition}: the KL penalty keeps the policy closer to pi_init (final d {e['final_d']['mean']:.2f} vs {without['final_d']['mean']:.2f} without)",
                       e["final_d"]["mean"] < without["final_d"]["mean"]))
        checks.append(CheckResult(f"{condition}: the KL penalty ends with more true return ({e['final_true']['mean']:.2f} vs {without['final_true']['mean']:.2f} without; "
                       f"true return at its best d {e['peak_true']['mean']:.2f})",
                       e["final_true"]["mean"] > without["final_true"]["mean"]))
    if len(plain) >= 2:
        low, high = entries[plain[0]], entries[plain[-1]]
        checks.append(CheckResult(f"more labels, a higher true peak: {plain[-1]} peaks at {high['peak_true']['mean']:.2f}, {plain[0]} at {low['peak_true']['mean']:.2f}",
                       high["peak_true"]["mean"] > low["peak_true"]["mean"]))
    return checks


# ---------------------------------------------------------------------------- output
OVEROPTIMIZATION_WIDTH = 10.0  # inches; the docs show it about 700 px wide (see plots.fonts)
D_AXES = {
    "d": ("d", "", "d = sqrt(KL(pi || pi_init)), fixed states"),
    "d_trajectory": ("d_trajectory", "_trajectory", "d along the policy's episodes"),
}


def _data_limits(ax, values: Sequence[np.ndarray], pad: float = 0.08) -> None:
    """The y-axis from the data's range (not from a fitted curve's extrapolation)."""
    finite = np.concatenate([np.ravel(v)[np.isfinite(np.ravel(v))] for v in values]) if values else np.array([])
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        margin = pad * (high - low) if high > low else 0.5
        ax.set_ylim(low - margin, high + margin)


def fit_curve(d: np.ndarray, alpha: float, beta: float, points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The fitted ``R(d) = d (alpha - beta log d)`` over the measured range of ``d`` only."""
    finite = np.asarray(d, dtype=float)[np.isfinite(d)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    grid = np.linspace(max(low, 1e-6), max(high, 1e-6), points)
    return grid, grid * (alpha - beta * np.log(grid))


def _against_d(axes: Sequence[Any], entries: Mapping[str, Any], key: str, colours: Sequence[str]) -> None:
    """Left: the proxy against d; right: the true return gained since pi_init against d, each
    seed's points, the mean curve and the fitted R(d) over the measured range."""
    name, suffix, words_ = D_AXES[key]
    gains, proxies = [], []
    for k, (condition, e) in enumerate(entries.items()):
        colour, style = colours[k % len(colours)], "--" if e["kl_coef"] else "-"
        proxy, true, d = np.array(e["proxy_return"]), np.array(e["true_return"]), np.array(e[name])
        gain = true - true[:, :1]
        axes[0].plot(d.mean(0), proxy.mean(0), style, color=colour, marker=".", label=condition)
        axes[1].scatter(d.reshape(-1), gain.reshape(-1), s=7, color=colour, alpha=0.3, lw=0)
        axes[1].plot(d.mean(0), gain.mean(0), style, color=colour, marker=".", label=condition)
        grid, fitted = fit_curve(d, e[f"alpha{suffix}"]["mean"], e[f"beta{suffix}"]["mean"])
        axes[1].plot(grid, fitted, ":", color=colour, linewidth=1.5, gid="fit")
        gains += [gain, gain.mean(0)]
        proxies.append(proxy.mean(0))
    _data_limits(axes[1], gains)
    _data_limits(axes[0], proxies)
    axes[0].set_title(textwrap.fill("the proxy (the reward model's return) keeps rising with d", 42))
    axes[0].set_ylabel("reward model return")
    axes[1].set_title("the true return gained rises, then falls\ndots: seeds; dotted: fit d (α - β log d)")
    axes[1].set_ylabel("true return gained since pi_init (laps)")
    for ax in axes:
        ax.set_xlabel(textwrap.fill(words_, 48))
        ax.grid(alpha=0.3)


def overoptimization_figure(record: Mapping[str, Any], headline: Any = None) -> Any:
    """overoptimization.png: the proxy and the true return gained against d on the fixed
    states (with the fitted R(d), drawn over the measured d only), both returns over training,
    and the true return at the start, at its peak and at the end against the label count."""
    from goodhart.experiments.plots import figure_title, pyplot

    plt = pyplot()
    entries = record["conditions"]
    fig, axes = plt.subplots(2, 2, figsize=(OVEROPTIMIZATION_WIDTH, 9.6), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    _against_d(axes[0], entries, "d", colours)
    twin = axes[1, 0].twinx()
    for k, (condition, e) in enumerate(entries.items()):
        colour, style = colours[k % len(colours)], "--" if e["kl_coef"] else "-"
        steps_ = np.array(e["timestep"]) / 1000
        axes[1, 0].plot(steps_, np.array(e["true_return"]).mean(0), style, color=colour, lw=2)
        twin.plot(steps_, np.array(e["proxy_return"]).mean(0), style, color=colour, alpha=0.35, linewidth=1)
    axes[1, 0].set_title(textwrap.fill("over training: the true return (bold) and the reward model's (faint)", 42))
    axes[1, 0].set_xlabel("training steps (thousands)")
    axes[1, 0].set_ylabel("true return (laps)")
    twin.set_ylabel("reward model return (faint)")
    axes[1, 0].grid(alpha=0.3)
    plain = [(e["labels"], e) for e in entries.values() if not e["kl_coef"]]
    by_condition = len({n for n, _ in plain}) < len(plain)  # named conditions that share a label count: one point each
    if by_condition:
        plain = [(k, e) for k, e in enumerate(entries.values())]
    ax = axes[1, 1]
    if plain:
        labels = [n for n, _ in plain]
        for key, marker, name, colour, style in (("peak_true", "o", "at its peak", "0.1", "-"), ("final_true", "X", "at the end", "0.45", "--"),
                                                 ("initial_true", "s", "of pi_init", "0.7", ":")):
            means = np.array([e[key]["mean"] for _, e in plain])
            lows = np.array([interval(e[key])[0] for _, e in plain])
            highs = np.array([interval(e[key])[1] for _, e in plain])
            errors = np.nan_to_num(np.vstack([means - lows, highs - means]), nan=0.0).clip(min=0)
            ax.errorbar(labels, means, yerr=errors, marker=marker, ls="none" if by_condition else style, capsize=3, label=name, color=colour)
        if by_condition:
            ax.set_xticks(labels, [textwrap.fill(c, 12) for c in entries], fontsize="small")
        else:
            ax.set_xscale("log")
            ax.set_xticks(labels, [str(n) for n in labels])  # the label counts, not log decades
            ax.minorticks_off()
        ax.legend(title="true return", loc="best")
    ax.set_title(textwrap.fill("the true return at its peak and at the end, by " + ("condition" if by_condition else "label count (no KL penalty)"), 42))
    ax.set_xlabel("condition" if by_condition else "preference labels")
    ax.set_ylabel("true return (laps)")
    ax.grid(alpha=0.3)
    handles, names = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), title="condition (dashed: with a KL penalty)", frameon=False)
    fig.suptitle(figure_title(record, "PPO against a fixed reward model: the proxy and the true return against d = sqrt(KL)", headline))
    return fig


def episodes_figure(record: Mapping[str, Any], headline: Any = None) -> Any:
    """overoptimization_episodes.png: the proxy and the true return gained against d along the
    policy's own episodes (Gao et al.'s sequence-level KL), with the fitted R(d)."""
    from goodhart.experiments.plots import figure_title, pyplot

    plt = pyplot()
    entries = record["conditions"]
    fig, axes = plt.subplots(1, 2, figsize=(OVEROPTIMIZATION_WIDTH, 5.6), layout="constrained")
    _against_d(axes, entries, "d_trajectory", plt.rcParams["axes.prop_cycle"].by_key()["color"])
    handles, names = axes[1].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), title="condition (dashed: with a KL penalty)", frameon=False)
    fig.suptitle(figure_title(record, "the same against d along the policy's episodes", headline))
    return fig


def plot(record: Mapping[str, Any], path: Path, headline: Any = None) -> None:
    from goodhart.experiments.plots import write_figure

    write_figure(lambda: overoptimization_figure(record, headline), path, OVEROPTIMIZATION_WIDTH)


def plot_episodes(record: Mapping[str, Any], path: Path, headline: Any = None) -> None:
    from goodhart.experiments.plots import write_figure

    write_figure(lambda: episodes_figure(record, headline), path, OVEROPTIMIZATION_WIDTH)


def _ci(stats: Mapping[str, Any]) -> str:
    from goodhart.experiments.columns import fmt

    return fmt(stats)


def write_overoptimization_report(record: OveroptimizationRecord, spec: OveroptimizationSpec, out: Path, checks: Sequence[CheckResult],
                                  title: str | None = None, about: str | None = None) -> Path:
    """report.md, overoptimization.png and overoptimization_episodes.png, through the one
    report writer; the report opens with the headline's sentence (``about``: the description,
    default the spec's)."""
    entries = record["conditions"]
    seconds = record["seconds"]
    found = headline(record, spec)
    start = ("Every run starts from a policy cloned from demonstrations (" + ", ".join(spec.sft.sources)
             + f"; {spec.sft.episodes} episodes, one clone per seed): pi_init, the SFT policy. ") if spec.sft else "Every run starts from a randomly initialised policy (pi_init). "
    trainers = trained_by(entries.values())
    start += f"PPO is {trainers}'s (goodhart.experiments.trainers). " if trainers else ""
    lines = [
        title or f"# {spec.name}{' (quick)' if record['quick'] else ''}",
        "",
        *([found.sentence(), ""] if found else []),
        (spec.description if about is None else about).strip(),
        "",
        f"Env `{record['env']}` {record['env_kwargs']}; "
        f"{'raters ' + ', '.join(record['raters']) + ' (see Raters)' if record.get('raters') else 'rater ' + str(record['rater'])}; segments from {', '.join(record['sources'])}. {start}"
        f"Seeds {record['seeds']}: each has its own demonstrations, preference data, reward models and PPO runs. Cells: mean over seeds [95 % bootstrap CI over seeds]; with 2 seeds, (range low, high): their range, not a CI.",
        "",
        *checks_section(checks),
        "## Per condition",
        "",
        "| condition | RM held-out accuracy | vs. true order | true at start | peak true | d at peak | final true | final d | proxy at peak | final proxy | alpha | beta | fitted peak d |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for condition, e in entries.items():
        lines.append(
            f"| {condition} | {_ci(e['held_out_accuracy'])} | {_ci(e['held_out_accuracy_vs_true'])} | {_ci(e['initial_true'])} | {_ci(e['peak_true'])} | {_ci(e['peak_d'])} | "
            f"{_ci(e['final_true'])} | {_ci(e['final_d'])} | {_ci(e['peak_proxy'])} | {_ci(e['final_proxy'])} | {_ci(e['alpha'])} | {_ci(e['beta'])} | {e['fit_peak_d']:.2f} |"
        )
    lines += [
        "",
        "Peak: the measurement where the mean true return over seeds is highest. d = sqrt(KL(pi || pi_init)) on a fixed set of "
        "evaluation states (visited by the reference policies); alpha, beta: least-squares fits of R(d) = d (alpha - beta log d) to "
        "each seed's true return minus its initial policy's.",
        "",
        "Along the policy's own episodes (d = sqrt of the KL between the two policies' distributions of episodes, the sum over an "
        "episode's steps of KL(pi || pi_init): the sequence-level KL of Gao et al.):",
        "",
        "| condition | d at peak | final d | alpha | beta | fitted peak d |",
        "|---|---|---|---|---|---|",
        *[f"| {c} | {_ci(e['peak_d_trajectory'])} | {_ci(e['final_d_trajectory'])} | {_ci(e['alpha_trajectory'])} | {_ci(e['beta_trajectory'])} | "
          f"{e['fit_peak_d_trajectory']:.2f} |" for c, e in entries.items()],
        "",
    ]
    outcomes = next(iter(entries.values()))["final_outcomes"] if entries else {}
    if outcomes:
        lines += ["What the final policies do (the env's outcomes at the last measurement):", "",
                  "| condition | " + " | ".join(outcomes) + " |", "|---|" + "---|" * len(outcomes),
                  *[f"| {c} | " + " | ".join(_ci(e["final_outcomes"][k]) for k in outcomes) + " |" for c, e in entries.items()], ""]
    lines += report_sections(record)
    references = record.get("references") or {}
    if references:
        counts = [k for k in next(iter(references.values())) if k not in ("true_return", "return")]
        lines += ["## Reference policies", "",
                  "On the same levels; the return each label count's reward models give them (scaled as in training, over the episode):", "",
                  "| policy | true return | env return | " + " | ".join(f"RM return, {k}" for k in counts) + " |",
                  "|---|---|---|" + "---|" * len(counts),
                  *[f"| {name} | {_ci(r['true_return'])} | {_ci(r['return'])} | " + " | ".join(_ci(r[k]) for k in counts) + " |"
                    for name, r in references.items()], ""]
    footer = [
        "",
        f"Wall time {seconds.get('wall', 0)} s: cloning {seconds.get('clone', 0)} s, collecting {seconds['collect']} s, fitting reward models {seconds['fit']} s, "
        f"training and measuring {seconds['train']} s.",
        "",
    ]
    if record["failed_runs"]:
        footer.append(f"Failed runs: {', '.join(record['failed_runs'])}.\n")
    figures = [("overoptimization.png", "proxy and true return against d", lambda path: plot(record, path, found)),
               ("overoptimization_episodes.png", "the same against d along the episodes", lambda path: plot_episodes(record, path, found))]
    if record.get("best_of_n"):
        figures.append(("best_of_n.png", "best-of-n against d", lambda path: plot_best_of_n(record, path, found)))
    return write_report_files(out, "\n".join(lines), figures, "\n".join(footer))


def rerender_overoptimization(out: Path, record: dict[str, Any], spec: OveroptimizationSpec, title: str | None = None, about: str | None = None) -> Path:
    """The study's report and figures again from its results.json (``record``, as read), with
    its checks (measured again where the record has none)."""
    record = {**record, "conditions": nan_for_null(record["conditions"]), "references": nan_for_null(record.get("references") or {})}
    if "checks" in record:
        checks = [CheckResult(c["text"], bool(c["pass"])) for c in record["checks"]]
    else:
        checks = overoptimization_checks(record, {c: Condition(e["labels"], e["kl_coef"]) for c, e in record["conditions"].items()})
    return write_overoptimization_report(record, spec, out, checks, title=f"# {title}" if title else None, about=about)
