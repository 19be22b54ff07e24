"""The evaluator: policies on fixed, seeded level sets per distribution, with statistics.

Every policy (a trained model, every seed of a run, or a reference policy) plays the same
levels: for a distribution, episode ``j`` of copy ``i`` is the level drawn from seed
``level_seed + i``, whatever the policy does. Results are written atomically:

    results.json   per policy, distribution and metric: mean, interval, IQM, per-seed values
    results.csv    tidy: one row per policy x seed x distribution x metric
    report.md      the result in words, then tables (written by goodhart.experiments.report)
    *.png          plots

Besides the metrics of each distribution, a trained policy whose every seed has a run folder
with training episodes gets the pseudo-distribution ``training``: numbers read off its training curves (the true
return's peak and final value, the proxy's; see :mod:`goodhart.experiments.curves`), which
reproduction checks read like any metric. Each policy's record also says what it was trained
on (``trained_on``) and which metrics were equal in every one of its episodes
(``identical``; ``constant``: the metrics that never changed), so that reports show a column
that is another one by construction only once.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from goodhart.agents.files import nan_for_null, write_atomic, write_json
from goodhart.agents.model_io import ModelFileError, find_policies, load_policy, looked_for
from goodhart.agents.policies import ModelPolicy, Policy, is_reference_name, policy_from_name, reference_names, run_episodes
from goodhart.envs import core_class
from goodhart.envs.core.grid import Levels
from goodhart.envs.core.level_sets import cycled
from goodhart.experiments.curricula import CURRICULUM, curriculum_metrics, has_curriculum
from goodhart.experiments.curves import TRAINING, has_episodes, training_curves, training_metrics
from goodhart.experiments.metrics import across_seeds, episode_ratios, ratio, same_columns
from goodhart.experiments.seeds import EVAL_LEVEL_SEED


class EvaluationError(ValueError):
    """Bad input to the evaluator; the message says which."""


@dataclass
class Subject:
    """A policy to evaluate: a name, and one Policy per training seed (one for references)."""

    name: str
    kind: str  # "trained" or "reference"
    env_id: str
    env_kwargs: dict[str, Any]
    seeds: dict[int, Policy]
    source: str = ""
    runs: dict[int, Path] = field(default_factory=dict)  # seed -> run folder, for training curves
    reward_model: str | None = None  # the learned reward model it was trained on, if any
    trainer: str | None = None  # who trained it (goodhart.experiments.trainers); None for references


def trained_subject(name: str, folders_or_models: Sequence[Path], deterministic: bool) -> Subject:
    """A trained policy's seeds as one Subject. Its paths are kept absolute, so that
    :func:`write_results` can record them relative to the results folder whatever the working
    directory was."""
    folders_or_models = [Path(path).absolute() for path in folders_or_models]
    seeds: dict[int, Policy] = {}
    env_id, env_kwargs, runs = None, None, {}
    for index, path in enumerate(folders_or_models):
        loaded = load_policy(path / "model" if path.is_dir() else path)
        kwargs = {k: v for k, v in loaded.config.get("env_kwargs", {}).items() if k != "distribution"}
        if env_id is None:
            env_id, env_kwargs = loaded.env_id, kwargs
        elif (loaded.env_id, kwargs) != (env_id, env_kwargs):
            raise EvaluationError(f"{path}: its env or env_kwargs differ from the other seeds of {name!r}")
        seed = int(loaded.config.get("seed", index))
        seeds[seed] = ModelPolicy(loaded, deterministic=deterministic, name=name)
        if path.is_dir():
            runs[seed] = path
    learned = (loaded.config.get("reward_model") or {}).get("path")
    return Subject(name, "trained", env_id, env_kwargs, seeds, source=str(folders_or_models[0]), runs=runs, reward_model=learned,
                   trainer=loaded.config.get("trainer", "shipped"))  # a model from before trainers were named: shipped


def resolve_subject(spec: str, deterministic: bool = False) -> Subject | str:
    """A trained Subject from a run folder (all its ``seed*`` folders), a seed folder or a
    model file; or the string itself if it names a reference policy (resolved later, once the
    env is known)."""
    path = Path(spec)
    try:
        stems = find_policies(path)
    except ModelFileError:
        if is_reference_name(spec):
            return spec
        raise EvaluationError(f"{spec}: not a run folder, a seed folder, a model file, or a reference policy (random, oracle-<name>); looked for {looked_for(spec)}") from None
    if path.is_dir() and stems[0].parent != path:  # a run folder: every seed
        return trained_subject(path.name, [stem.parent for stem in stems], deterministic)
    if path.is_dir():  # a seed folder
        return trained_subject(path.parent.name if path.name.startswith("seed") else path.name, [path], deterministic)
    return trained_subject(stems[0].name, stems, deterministic)


def reference_subject(name: str, env_id: str, env_kwargs: dict[str, Any]) -> Subject:
    """A reference policy (``random``, ``oracle-<name>``, optionally ``@EPS``) on ``env_id``;
    an EvaluationError naming the env's reference policies if it has no such policy."""
    if not is_reference_name(name):
        raise EvaluationError(f"{name}: not a reference policy of {env_id}; its reference policies: {', '.join(reference_names(env_id))}")
    try:
        policy = policy_from_name(name, env_id)
    except ValueError as err:
        raise EvaluationError(str(err)) from None
    return Subject(name, "reference", env_id, env_kwargs, {0: policy}, source="reference")


def resolve_subjects(specs: Sequence[str], env_id: str | None, deterministic: bool = False, env_kwargs: dict | None = None) -> list[Subject]:
    """Subjects for the command line's arguments. Reference policies run on the env (and
    knobs) of the trained policies given with them, or on ``env_id``."""
    resolved = [resolve_subject(s, deterministic) for s in specs]
    trained = [s for s in resolved if isinstance(s, Subject)]
    if trained:
        env_id = env_id or trained[0].env_id
        env_kwargs = trained[0].env_kwargs if env_kwargs is None else env_kwargs
        for subject in trained:
            if subject.env_id != env_id:
                raise EvaluationError(f"{subject.source}: trained on {subject.env_id}, not {env_id}")
    if env_id is None:
        raise EvaluationError("reference policies need --env ID (or a trained policy beside them)")
    core_class(env_id)
    return [s if isinstance(s, Subject) else reference_subject(s, env_id, env_kwargs or {}) for s in resolved]


def trained_on(subject: Subject) -> str | None:
    """The reward a trained policy was trained on, in words: a learned reward model's file,
    else ``reward=<value>`` where the env has a ``reward`` knob (its default if the config
    left it out), else "the env's reward"; None for reference policies."""
    if subject.kind != "trained":
        return None
    if subject.reward_model:
        return f"the learned reward model `{subject.reward_model}`"
    if "reward" in subject.env_kwargs:
        return f"reward={subject.env_kwargs['reward']}"
    knob = inspect.signature(core_class(subject.env_id)).parameters.get("reward")
    if knob is not None and knob.default is not inspect.Parameter.empty:
        return f"reward={knob.default} (the default)"
    return "the env's reward"


def evaluate(
    subjects: Sequence[Subject],
    distributions: Sequence[str],
    episodes: int,
    level_seed: int = EVAL_LEVEL_SEED,
    level_sets: Mapping[str, Levels] | None = None,
) -> dict[str, Any]:
    """Run every subject on every distribution's level set; the results record. ``level_sets``
    (name -> levels, e.g. ``levels:<folder>`` -> a saved level set's) are evaluated after the
    distributions, as distributions of their own: levels in order, cycled to ``episodes``
    episodes (each level at least once)."""
    env_id = subjects[0].env_id
    core = core_class(env_id)
    level_sets = {name: cycled(levels, episodes) for name, levels in (level_sets or {}).items()}
    distributions = [*distributions, *level_sets]
    for dist in distributions:
        if dist not in core.DISTRIBUTIONS and dist not in level_sets:
            raise EvaluationError(f"distribution {dist!r} is not one of {env_id}'s: {list(core.DISTRIBUTIONS)}")
    for pseudo in (TRAINING, CURRICULUM):
        if pseudo in core.DISTRIBUTIONS:
            raise EvaluationError(f"{env_id} has a distribution named {pseudo!r}, the name of a record's numbers from training")
    record: dict[str, Any] = {
        "env": env_id,
        "distributions": list(distributions),
        "episodes": episodes,
        "level_seed": level_seed,
        "capability": core.CAPABILITY,
        "preference": core.PREFERENCE,
        "flags": [],
        "policies": {},
    }
    total = sum(len(subject.seeds) for subject in subjects) * len(distributions)
    bar = tqdm(total=total, desc="evaluate", unit="level set", dynamic_ncols=True, file=sys.stderr, disable=None)  # at a terminal
    for subject in subjects:
        seeds = sorted(subject.seeds)
        entry: dict[str, Any] = {
            "kind": subject.kind,
            "source": subject.source,
            "trained_on": trained_on(subject),
            **({"trainer": subject.trainer} if subject.trainer else {}),
            "seeds": seeds,
            "env_kwargs": subject.env_kwargs,
            "runs": [str(subject.runs[s]) for s in seeds if s in subject.runs],
            "metrics": {},
        }
        played: list[dict[str, Any]] = []
        for dist in distributions:
            per_seed: dict[str, list[float]] = {}
            episodes_of: dict[str, tuple] = {}
            for seed in seeds:
                outcomes = run_episodes(subject.seeds[seed], env_id, subject.env_kwargs, distribution=dist, episodes=episodes, level_seed=level_seed,
                                        levels=level_sets.get(dist))
                bar.update()
                played += outcomes
                for metric, (num, den) in episode_ratios(outcomes, core).items():
                    per_seed.setdefault(metric, []).append(ratio(num, den))
                    episodes_of[metric] = (num, den)
            entry["metrics"][dist] = {
                metric: across_seeds(values, episodes_of[metric] if len(values) == 1 else None)
                for metric, values in per_seed.items()
            }
        entry["identical"], entry["constant"] = same_columns(played)
        record["flags"] = sorted(set(record["flags"]) | {k for k, v in played[0].items() if isinstance(v, bool)})
        runs = [subject.runs[s] for s in seeds] if subject.runs and set(subject.runs) == set(seeds) else []
        if runs and all(has_episodes(r) for r in runs):
            curves = training_curves(runs, core.PROXY_RETURN)
            entry["training_curves"] = curves
            entry["metrics"][TRAINING] = training_metrics(curves)
        if runs and all(has_curriculum(r) for r in runs):
            entry["metrics"][CURRICULUM] = curriculum_metrics(runs)
        record["policies"][subject.name] = entry
    bar.close()
    return record


def tidy_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per policy x seed x distribution x metric."""
    rows = []
    for name, entry in record["policies"].items():
        for dist, metrics in entry["metrics"].items():
            for metric, stats in metrics.items():
                for seed, value in zip(entry["seeds"], stats["per_seed"]):
                    rows.append({"policy": name, "seed": seed, "distribution": dist, "metric": metric, "value": value})
    return rows


def write_results(record: dict[str, Any], out: Path) -> dict[str, Any]:
    """results.json and results.csv, each written atomically. Run folders and model files are
    written relative to ``out``, so that the record holds no path of the machine that made it
    and stays true when the results folder is moved together with its runs. Returns the record
    as written, for the report beside it."""
    record = {**record, "policies": {name: _relative_paths(entry, out) for name, entry in record["policies"].items()}}
    write_json(out / "results.json", record)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["policy", "seed", "distribution", "metric", "value"])
    writer.writeheader()
    writer.writerows(tidy_rows(record))
    write_atomic(out / "results.csv", lambda tmp: tmp.write_text(buffer.getvalue()))
    return record


def _relative_paths(entry: dict[str, Any], out: Path) -> dict[str, Any]:
    if entry["kind"] != "trained":
        return entry

    def relative(path: str) -> str:
        if not Path(path).is_absolute():  # written already
            return path
        return Path(os.path.relpath(path, out.resolve())).as_posix()

    return {**entry, "source": relative(entry["source"]), "runs": [relative(run) for run in entry["runs"]]}


def read_results(out: Path) -> dict[str, Any]:
    """A results record written by :func:`write_results` (metrics' nulls back to NaN)."""
    record = json.loads((out / "results.json").read_text())
    for entry in record["policies"].values():
        entry["metrics"] = nan_for_null(entry["metrics"])
        if "training_curves" in entry:
            entry["training_curves"] = nan_for_null(entry["training_curves"])
    return record
