"""Sweeps: conditions (a grid of config values) x seeds, trained in parallel, then evaluated.

A sweep is a YAML file (the reproductions in ``experiments/reproductions/`` are sweeps)::

    name: maze-diversity
    description: ...
    config: colormaze.yaml            # the base run config (relative to agents/configs/)
    set: {total_timesteps: 250000}    # fixed overrides
    grid:                             # one condition per combination
      env_kwargs.cue_on_goal_prob: [1.0, 0.98, 0.9]
    # or, instead of a grid, the conditions listed, each its own assignment:
    # conditions: [{env_kwargs.size: 3}, {env_kwargs.size: 4, total_timesteps: 1000000}]
    seeds: 5
    evaluate: {distributions: [train, shifted], episodes: 500, references: [random]}
    knob: env_kwargs.cue_on_goal_prob # plot metrics against it
    knob_complement: true             # ... as 1 - knob, labelled knob_label
    knob_label: share of decoupled training levels
    knob_metrics: [[shifted, reached_goal], [shifted, reached_cue_first]]  # default: shifted capability, preference
    knob_recovery: {distribution: shifted, metric: reached_goal, target: 1.0}
                                      # the smallest knob value recovering half the way to target
    series_labels: {method=dr: DR}    # conditions that differ beside the knob: one line (series) each
    recovery_checks: [...]            # one series recovers at <= factor x another's knob value
    probes: colormaze                 # a probe set (envs/probes/NAME.yaml, or a file), played by every policy
    checks: [...]                     # expected effects, reported PASS/FAIL with what was measured
    quick: {seeds: 1, set: {total_timesteps: 100000}, episodes: 200}

Its folder::

    manifest.json         every run with its status (pending/running/done/failed/interrupted, error)
    configs/<run>.yaml    the resolved config of each run
    runs/<condition>/seed<k>/   each run's folder (see goodhart.experiments.train)
    runs/<condition>/seed<k>.log   its log, written as it trains
    results.json, results.csv, report.md, bars.png, curves.png, knob.png
                          (results.json's ``probes``: the probe set's pass rates, with ``probes:``)

Each run is a training job of the experiment engine (:mod:`goodhart.experiments.engine`):
its own process, at most ``workers`` at a time, one torch thread each; a crash fails that run
only. Re-running the same sweep skips finished runs, resumes interrupted ones from their
checkpoints and retries failed ones up to ``max_attempts`` times (``retry_failed``: again,
after they used them up); a finished run whose budget was raised since (``--timesteps``) is
extended. Every run's config is validated before the sweep folder is created.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from goodhart.agents.files import write_atomic
from goodhart.experiments.config import ConfigError, LevelSets, RunConfig, Strict, apply_override, config_path, continued, dump, read_yaml, validate, validated
from goodhart.experiments.engine import Backend, Job, Manifest, run_jobs
from goodhart.experiments.seeds import HELD_OUT_LEVEL_SEED
from goodhart.experiments.train import TrainSpec, steps_taken, train_stage
from goodhart.experiments.trainers import TRAINER_SECTIONS

REPRODUCTIONS_DIR = Path(__file__).parent / "reproductions"


class EvalSpec(LevelSets):
    """The evaluation after a sweep: its level sets, episodes per distribution, and the
    reference policies evaluated beside the trained ones. Its levels default to the held-out
    set (no run trains or evaluates on them while training), so a result is never measured on
    levels its model was selected on."""

    level_seed: int = Field(HELD_OUT_LEVEL_SEED, ge=0)
    episodes: int = Field(200, ge=1)
    references: list[str] = Field(default_factory=lambda: ["random"])


class Check(Strict):
    """An expected effect: ``policy``'s ``metric`` on ``distribution`` compared (``op``) with
    ``value`` (``quick_value`` in quick mode, if given: fewer steps reach less), or with
    ``factor`` times the mean of another policy (``than``), of the same or of another
    distribution (``than_distribution``): e.g. a policy's violation rate without a supervisor
    against its own with one."""

    text: str
    policy: str | list[str] = Field(description="a policy, or several: the check holds for each of them")
    distribution: str
    metric: str
    op: str = Field(pattern=r"^(>=|<=|>|<)$")
    value: float | list[float] | None = Field(None, description="the bound; with several policies, one for all or one each")
    quick_value: float | None = None
    than: str | None = None
    than_distribution: str | None = None
    factor: float = 1.0
    beyond_ci: bool = Field(False, description="compared with another policy: the 95 % intervals must not overlap "
                            "(with >: this policy's lower bound above the other's upper bound), not only the means")

    @property
    def policies(self) -> list[str]:
        return [self.policy] if isinstance(self.policy, str) else list(self.policy)

    def threshold(self, quick: bool, index: int = 0) -> float | None:
        """The fixed bound of the mode for the ``index``-th policy: ``quick_value`` in quick mode
        if given, else ``value`` (its ``index``-th entry, given one per policy)."""
        if quick and self.quick_value is not None:
            return self.quick_value
        return self.value[index] if isinstance(self.value, list) else self.value

    @property
    def relative(self) -> bool:
        """Compared with another mean (of ``than`` and/or on ``than_distribution``), not a value."""
        return self.than is not None or self.than_distribution is not None


class KnobRecovery(Strict):
    """The recovery statistic of a knob sweep: the smallest knob value (as plotted, so after
    ``knob_complement``) whose mean ``metric`` on ``distribution`` recovers at least half of
    the distance from the baseline condition's mean to ``target``. The baseline is the
    condition whose knob is plotted at 0 (e.g. no decoupled training levels); the grid must
    have one."""

    distribution: str
    metric: str
    target: float = 1.0
    baseline: str | None = Field(None, description="with several series (methods): the series whose condition at 0 is "
                                 "every series' baseline, e.g. domain randomization's; default: each series its own")


class RecoveryCheck(Strict):
    """An expected effect on the recovery statistics of a knob swept under several series
    (methods): one of ``series`` recovers at a knob value at most ``factor`` times that of
    ``than`` (a series that never recovers in the tested range recovers beyond its largest value)."""

    text: str
    series: list[str] = Field(min_length=1)
    than: str
    factor: float = Field(1.0, gt=0)


class QuickSpec(Strict):
    seeds: int | list[int] = 1
    set: dict[str, Any] = Field(default_factory=dict)
    episodes: int | None = Field(None, ge=1)
    conditions: list[str] | None = Field(None, description="the conditions (names or labels) quick mode trains; default: all")


class HeadlineSpec(Strict):
    """The experiment's finding in one number (see :mod:`goodhart.experiments.headline`): the
    phenomenon in a few words; ``policy``'s ``metric`` on ``distribution`` (for the
    over-optimization study: a condition's number at a moment of training, ``initial``,
    ``peak`` or ``final``); optionally compared with another policy's (``than``), another
    distribution's (``than_distribution``) or another metric's (``than_metric``) mean; more
    numbers for the sentence (``also``: a metric on the same distribution, or a
    ``[distribution, metric]`` pair); the sentence as a template (``{value}``, ``{than}``,
    ``{also[0]}``, ...)."""

    phenomenon: str = Field(min_length=1)
    policy: str
    distribution: str
    metric: str
    than: str | None = None
    than_distribution: str | None = None
    than_metric: str | None = None
    also: list[str | tuple[str, str]] = Field(default_factory=list)
    sentence: str | None = None

    @field_validator("sentence")
    @classmethod
    def _states_the_number(cls, value: str | None) -> str | None:
        from goodhart.experiments.headline import check_template

        check_template(value)
        return value


class ExperimentSpec(Strict):
    """What every kind of experiment's spec file has: its name, its kind (which stages run
    it), what it shows, its headline, the run config its runs start from with fixed
    overrides, and seeds."""

    name: str
    kind: str
    description: str = ""
    headline: HeadlineSpec | None = None
    config: str = Field(description="the base run config (relative to agents/configs/)")
    set: dict[str, Any] = Field(default_factory=dict)
    seeds: int | list[int] = Field(5, description="a count (seeds 0..n-1) or a list of seeds")


class SweepSpec(ExperimentSpec):
    kind: Literal["sweep"] = "sweep"
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    conditions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="instead of a grid: the conditions, each an assignment {key: value} (for "
        "conditions that differ in several keys at once, e.g. a second maze size with its own budget)",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="condition -> display name")
    evaluate: EvalSpec = Field(default_factory=EvalSpec)
    knob: str | None = None
    knob_metrics: list[tuple[str, str]] = Field(default_factory=list)
    knob_complement: bool = Field(False, description="plot against 1 - knob (e.g. a share of levels from a probability)")
    knob_label: str | None = Field(None, description="the knob plot's x-axis label; default: the knob (or '1 - knob')")
    knob_recovery: KnobRecovery | None = None
    series_labels: dict[str, str] = Field(default_factory=dict, description="with a knob and other swept keys: each "
                                          "series (the conditions that differ only in the knob, named by the other keys' "
                                          "values, e.g. method=plr,score=oracle) -> its display name; one line each in the plots")
    recovery_checks: list[RecoveryCheck] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    quick: QuickSpec = Field(default_factory=QuickSpec)
    probes: str | None = Field(None, description="a probe set (a name in envs/probes/, or a file) played by every trained "
                               "condition and reference policy on the evaluation's level seed; its table goes into the report")


@dataclass
class Run:
    """One training run of a sweep."""

    condition: str
    seed: int
    config: RunConfig
    folder: Path
    status: str = "pending"
    error: str = ""
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.condition}/seed{self.seed}"


def load_spec(path: Path) -> SweepSpec:
    spec = validated(SweepSpec, read_yaml(path), str(path))
    if spec.grid and spec.conditions:
        raise ConfigError(f"{path}: grid and conditions: give one of them (conditions lists every condition itself)")
    return spec


def assignments(spec: SweepSpec) -> list[dict[str, Any]]:
    """The sweep's conditions as assignments {config key: value}: the grid's combinations or
    the listed conditions (one empty assignment, ``base``, if neither)."""
    if spec.conditions:
        return [dict(c) for c in spec.conditions]
    keys = list(spec.grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(spec.grid[k] for k in keys))]


def reproduction_names() -> list[str]:
    """The reproductions: the spec files in ``experiments/reproductions/``, by name."""
    return sorted(p.stem for p in REPRODUCTIONS_DIR.glob("*.yaml"))


def reproduction_path(name: str) -> Path:
    path = REPRODUCTIONS_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown reproduction {name!r}; available: {reproduction_names()}")
    return path


def condition_name(assignment: dict[str, Any]) -> str:
    """``key=value`` pairs (last part of each dotted key), joined by commas; ``base`` if none."""
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in assignment.items()) or "base"


def seed_list(seeds: int | list[int]) -> list[int]:
    """A count n means seeds 0..n-1."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"seeds={seeds} is not allowed; expected a count >= 1 or a list of seeds")
        return list(range(seeds))
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"seeds={seeds} is not allowed; expected a non-empty list of seeds >= 0")
    return list(seeds)


def parse_seeds(text: str) -> list[int]:
    """``0-4`` (inclusive), ``0,3,7`` or ``5`` (the one seed 5)."""
    try:
        if "-" in text:
            low, high = (int(x) for x in text.split("-", 1))
            seeds = list(range(low, high + 1))
        else:
            seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected a range like 0-4 or a list like 0,3,7") from None
    return seed_list(seeds)


def expand(
    spec: SweepSpec,
    out: Path,
    quick: bool = False,
    seeds: list[int] | None = None,
    source: str = "sweep",
    origins: dict[str, str] | None = None,
) -> list[Run]:
    """Every (condition, seed) run of the sweep, each with its validated config. ``origins``:
    config key -> the command-line flag that set it (named in errors instead of ``source``)."""
    base = read_yaml(config_path(spec.config))
    seeds = seeds or seed_list(spec.quick.seeds if quick else spec.seeds)
    overrides = {**spec.set, **(spec.quick.set if quick else {})}
    runs = []
    for raw in assignments(spec):
        configs = []
        for seed in seeds:
            data = json.loads(json.dumps(base))
            for key, value in {**overrides, **raw, "seed": seed}.items():
                apply_override(data, f"{key}={json.dumps(value)}", source)
            configs.append(validate(data, f"{source} ({condition_name(raw)}, seed {seed})", origins))
        assignment = validated_assignment(raw, configs[0])
        condition = spec.labels.get(condition_name(assignment), condition_name(assignment))
        if quick and spec.quick.conditions is not None and not {condition, condition_name(assignment)} & set(spec.quick.conditions):
            continue
        runs.extend(Run(condition, seed, cfg, out / "runs" / condition / f"seed{seed}", extra={"assignment": assignment}) for seed, cfg in zip(seeds, configs))
    return runs


def validated_assignment(assignment: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """The condition's values as the run's config holds them once validated: ``reward=true``
    read from YAML as the boolean True is the knob's string ``'true'``, and names the
    condition so."""
    data = cfg.model_dump()
    spelled = {}
    for key, value in assignment.items():
        if cfg.trainer != "shipped" and key.split(".")[0] in TRAINER_SECTIONS:
            spelled[key] = value  # the trainer replaced it: the condition keeps its name
            continue
        node: Any = data
        for part in key.split("."):
            node = node.get(part, value) if isinstance(node, dict) else value
        spelled[key] = node
    return spelled


def sweep_from_file(
    path: Path,
    grid: list[str],
    seeds: str | None,
    overrides: list[str] = (),
    timesteps: int | None = None,
) -> tuple[SweepSpec, list[int] | None, dict[str, str]]:
    """A sweep from a sweep YAML or from a run config, with ``--grid`` entries
    (``key=v1,v2``), ``--seeds``, ``--set`` overrides (``key=value``) and ``--timesteps``
    applied (the last two to every run, over the sweep's own ``set`` and ``quick.set``). Also
    returns which config key each flag set, for errors that name the flag."""
    data = read_yaml(path)
    if "config" in data:
        spec = load_spec(path)
        if not config_path(spec.config).exists():
            spec.config = str((path.parent / spec.config).resolve())
    else:
        cfg = validate(data, str(path))
        spec = SweepSpec(name=path.stem, config=str(path.resolve()), seeds=[cfg.seed], evaluate=EvalSpec(distributions=cfg.eval.distributions))
    origins: dict[str, str] = {}
    if grid and spec.conditions:
        raise ConfigError(f"--grid: {path} lists its conditions; a grid cannot be added to them")
    for entry in grid:
        key, sep, values = entry.partition("=")
        if not sep or not values:
            raise ConfigError(f"--grid {entry!r}: expected key=v1,v2,... e.g. env_kwargs.cue_on_goal_prob=1.0,0.9")
        try:
            spec.grid[key] = [yaml.safe_load(v) for v in values.split(",")]
        except yaml.YAMLError as err:
            raise ConfigError(f"--grid {entry!r}: a value is not valid YAML ({str(err).splitlines()[0]})") from None
        origins[key] = f"--grid {entry}"
    flags: dict[str, Any] = {}
    for assignment in overrides:
        parsed: dict[str, Any] = {}
        key = apply_override(parsed, assignment)
        for part in key.split("."):
            parsed = parsed[part]
        flags[key], origins[key] = parsed, f"--set {assignment}"
    if timesteps is not None:
        flags["total_timesteps"], origins["total_timesteps"] = timesteps, "--timesteps"
    for key, value in flags.items():
        if key in spec.grid or any(key in c for c in spec.conditions):
            raise ConfigError(f"{origins[key]}: {key} is swept by the sweep's conditions; drop it from them or from the flag")
        spec.set.pop(key, None)  # re-inserted last: applied after the sweep's own overrides
        spec.set[key] = value
        spec.quick.set.pop(key, None)
    numeric = [k for k, vs in spec.grid.items() if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vs)]
    if spec.knob is None and len(spec.grid) == 1 and numeric:
        spec.knob = numeric[0]
    return spec, parse_seeds(seeds) if seeds else None, origins


def _trained_as_asked(run: Run) -> bool:
    """Whether the run in ``run.folder`` was trained with ``run.config``: not when the sweep's
    budget has been raised since (the run is then extended) or its config changed (training
    then fails, naming the difference)."""
    saved = run.folder / "config.yaml"
    try:
        previous = validate(read_yaml(saved), str(saved))
        return continued(previous, run.config, saved) == previous
    except ConfigError:
        return False


def training_jobs(runs: list[Run], out: Path) -> list[Job]:
    """The engine's jobs that train the runs: each continues its run from its newest
    checkpoint, or starts it; its resolved config is kept in ``configs/`` and its log beside
    its folder. A run is finished when its model is written, trained as asked."""
    jobs = []
    for run in runs:
        config_file = out / "configs" / f"{run.condition}_seed{run.seed}.yaml"
        write_atomic(config_file, lambda tmp, r=run: tmp.write_text(dump(r.config)))
        jobs.append(Job(
            id=run.id, stage=train_stage, spec=TrainSpec(run.config, run.folder), log=run.folder.parent / f"seed{run.seed}.log",
            finished=lambda r=run: (r.folder / "model.json").exists() and _trained_as_asked(r),
            steps=steps_taken(0, run.config.total_timesteps, run.config.n_envs * run.config.ppo.n_steps),
            meta={"condition": run.condition, "seed": run.seed, "folder": str(run.folder)},
        ))
    return jobs


def train_runs(runs: list[Run], out: Path, manifest: Manifest, backend: Backend, *, max_attempts: int = 2, retry_failed: bool = False) -> list[Run]:
    """The training stage of every kind that trains runs: each run's job on the engine, its
    status copied back to the run; the runs that failed, each reported on stderr."""
    jobs = training_jobs(runs, out)
    run_jobs(jobs, manifest, backend, title="train", max_attempts=max_attempts, retry_failed=retry_failed)
    for run, job in zip(runs, jobs):
        run.status, run.error, run.attempts = job.status, job.error, job.attempts
    failed = [run for run in runs if run.status != "done"]
    for run in failed:
        print(f"run {run.id} failed after {run.attempts} attempt(s): {run.error}", file=sys.stderr)
    return failed
