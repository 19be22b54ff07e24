"""The measurements the RLHF studies add to the over-optimization stages
(:mod:`goodhart.experiments.overoptimization`), each optional in a study's spec:

* ``behaviour``: what the final policies do in the rater's terms (salient events per episode,
  the share of steps outside each oversight region), the reward models' correlation with the
  salient event on a fixed segment set, and the ensemble's disagreement on the states the
  final and the initial policies visit (:mod:`~goodhart.experiments.reward_learning.behaviour`);
* ``baseline``: a policy trained on the salient event alone (Singhal et al.'s length-only
  reward), and how much of a reward-model policy's proxy gain it reproduces;
* ``best_of_n``: best-of-n sampling from the initial policy against each objective, the second
  optimisation method of Gao et al. (:mod:`~goodhart.experiments.reward_learning.best_of_n`);
* ``checks``: declared comparisons between conditions, each "above by more than the
  intervals": the lower end of one interval over seeds above the upper end of the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from goodhart.experiments.config import Strict
from goodhart.experiments.engine.checks import CheckResult
from goodhart.experiments.metrics import across_seeds, interval
from goodhart.experiments.reward_learning.raters import RaterConfig
from goodhart.experiments.reward_learning.behaviour import episode_behaviour, episode_segments, salience_correlation, state_disagreement
from goodhart.experiments.reward_learning.reward_model import load_reward_model
from goodhart.experiments.reward_learning.sources import collect_pool, source_policy
from goodhart.experiments.seeds import BEST_OF_N_LEVEL_SEED, HELD_OUT_LEVEL_SEED, RLHF_SEGMENT_LEVEL_SEED


class BehaviourSpec(Strict):
    """Measure the final policies' behaviour on ``episodes`` whole episodes each, and the
    reward models on a fixed pool of ``segments`` segments of the preference sources."""

    episodes: int = Field(64, ge=1)
    segments: int = Field(1200, ge=2)


class BaselineSpec(Strict):
    """A PPO run per seed from the same start, trained on the env's reward with ``set``
    (overrides that make it reward the salient event alone), measured by the reward models
    of condition ``against``."""

    name: str = "salient-only"
    set: dict[str, Any] = Field(default_factory=dict)
    against: str = Field(description="the condition whose reward model measures the baseline and whose proxy gain it is compared with")


class BestOfNSpec(Strict):
    """Best-of-n from the initial policy: ``per_level`` episodes on each of ``levels`` levels,
    scored by the reward models of ``labels`` labels of rater ``rater`` under each objective
    of ``objectives``; the curve at every n of ``ns``."""

    labels: int = Field(ge=1)
    rater: str | None = None
    objectives: list[Literal["mean", "worst", "uncertainty", "single"]] = Field(min_length=1)
    uncertainty_coef: float = Field(1.0, ge=0)
    levels: int = Field(8, ge=1)
    per_level: int = Field(256, ge=2)
    ns: list[int] = Field(min_length=2)
    falls: str | None = Field(None, description="objective whose true return must fall at large n (check)")
    holds: str | None = Field(None, description="objective whose true return must not fall at large n by more than its interval (check)")


class StudyCheck(Strict):
    """``condition``'s ``value`` above ``than``'s by more than their intervals over seeds (any
    of several conditions, given as a list). Values: ``final_true``, ``final_proxy``,
    ``behaviour.<key>``, ``disagreement_final``, ..., as in the record's condition entries."""

    text: str
    condition: str | list[str]
    value: str
    than: str
    than_value: str | None = None


# ----------------------------------------------------------------------- behaviour
@dataclass(frozen=True)
class BehaviourJob:
    """Measure one seed: the runs' final policies and the start, under the seed's reward models."""

    env: str
    env_kwargs: dict[str, Any]
    policies: dict[str, str]  # name -> policy spec (model stem, oracle, random)
    models: dict[str, str]  # model key -> reward model stem
    sources: list[str]
    spec: BehaviourSpec
    seed: int
    out: Path


def behaviour_stage(job: BehaviourJob, progress: Any) -> None:
    """Per policy: its behaviour, and each reward model's disagreement on its states; per
    reward model: its correlation with the salient event on a fixed segment pool."""
    from goodhart.agents.files import write_json

    models = {key: load_reward_model(stem) for key, stem in job.models.items()}
    pool = collect_pool(job.env, job.env_kwargs, job.sources, job.spec.segments, 20, RLHF_SEGMENT_LEVEL_SEED)
    record: dict[str, Any] = {"policies": {}, "correlation": {key: salience_correlation(m, pool) for key, m in models.items()}}
    for name, spec in job.policies.items():
        episodes = episode_segments(source_policy(spec, job.env), job.env, job.env_kwargs, job.spec.episodes, HELD_OUT_LEVEL_SEED)
        record["policies"][name] = {
            **episode_behaviour(episodes),
            "disagreement": {key: state_disagreement(m, episodes) for key, m in models.items() if len(m.nets) > 1},
        }
    write_json(job.out, record)
    print(f"measured {job.out}")


def behaviour_summary(per_seed: Sequence[Mapping[str, Any]], policy: str, model_key: str) -> dict[str, Any]:
    """A policy's behaviour across seeds, with the disagreement of model ``model_key`` on it."""
    rows = [s["policies"][policy] for s in per_seed if policy in s["policies"]]
    if not rows:
        return {}
    out = {key: across_seeds([r[key] for r in rows]) for key in rows[0] if key != "disagreement"}
    if all(model_key in r["disagreement"] for r in rows):
        out["disagreement"] = across_seeds([r["disagreement"][model_key] for r in rows])
    return out


# -------------------------------------------------------------------------- checks
def lookup(entry: Mapping[str, Any], value: str) -> Mapping[str, Any] | None:
    """A dotted value (``behaviour.salient``) of a condition's record entry."""
    node: Any = entry
    for part in value.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) and "mean" in node else None


def study_checks(record: Mapping[str, Any], declared: Sequence[StudyCheck]) -> list[CheckResult]:
    """Each declared check on the record: PASS where the lower end of (any of) the
    conditions' interval is above the upper end of ``than``'s. Checks of conditions the run
    did not train (quick mode) are left out."""
    from goodhart.experiments.columns import fmt

    checks = []
    entries = {**record["conditions"], **({record["baseline"]["name"]: record["baseline"]} if record.get("baseline") else {})}
    for check in declared:
        names = [check.condition] if isinstance(check.condition, str) else list(check.condition)
        if check.than not in entries or not any(n in entries for n in names):
            continue  # a condition this run did not train (quick mode)
        names = [n for n in names if n in entries]
        other = lookup(entries.get(check.than, {}), check.than_value or check.value)
        own = {n: lookup(entries.get(n, {}), check.value) for n in names}
        if other is None or any(v is None for v in own.values()):
            checks.append(CheckResult(f"{check.text} — not measured: the record lacks {check.value} of {', '.join(names)} or of {check.than}", False))
            continue
        passed = any(interval(v)[0] > interval(other)[1] for v in own.values())
        shown = "; ".join(f"{n} {fmt(v)}" for n, v in own.items())
        checks.append(CheckResult(f"{check.text} — measured {check.value}: {shown}; {check.than} {fmt(other)}", passed))
    return checks


def curve_checks(curves: Mapping[str, Any], spec: BestOfNSpec) -> list[CheckResult]:
    """Best-of-n: the ``falls`` objective's true return at the largest n is below its peak's
    interval; the ``holds`` objective's true return at the largest n is within its interval of
    its peak (it falls by no more than its interval)."""
    from goodhart.experiments.columns import fmt

    checks = []
    n = spec.ns[-1]
    if spec.falls and spec.falls in curves:
        c = curves[spec.falls]
        checks.append(CheckResult(f"best-of-n, {spec.falls}: the true return falls at large n: at n={n} {fmt(c['last_true'])} is below the "
                                  f"interval of its peak (n={c['peak_n']}) {fmt(c['peak_true'])}", c["last_true"]["mean"] < interval(c["peak_true"])[0]))
    if spec.holds and spec.holds in curves:
        c = curves[spec.holds]
        checks.append(CheckResult(f"best-of-n, {spec.holds}: the true return does not fall at large n by more than its interval: its peak "
                                  f"(n={c['peak_n']}) {c['peak_true']['mean']:.2f} is within the interval at n={n} {fmt(c['last_true'])}",
                                  c["peak_true"]["mean"] <= interval(c["last_true"])[1]))
    return checks


# ----------------------------------------------------------------------- best-of-n
@dataclass(frozen=True)
class BestOfNJob:
    """Best-of-n for one seed: its start policy's episodes scored by its reward model."""

    env: str
    env_kwargs: dict[str, Any]
    policy: str
    model: str
    spec: BestOfNSpec
    seed: int
    out: Path


def best_of_n_stage(job: BestOfNJob, progress: Any) -> None:
    """Sample the start's episodes once and write every objective's curve over ``ns``."""
    from goodhart.agents.files import write_json
    from goodhart.experiments.reward_learning.best_of_n import curve, sample_episodes

    spec = job.spec
    model = load_reward_model(job.model)
    scores = sample_episodes(source_policy(job.policy, job.env), model, job.env, job.env_kwargs, levels=spec.levels, per_level=spec.per_level,
                             level_seed=BEST_OF_N_LEVEL_SEED, seed=job.seed, objectives=spec.objectives,
                             uncertainty_coef=spec.uncertainty_coef)
    curves = curve(scores.scores, scores.true_return, spec.ns)
    write_json(job.out, {objective: {key: np.asarray(v).tolist() for key, v in c.items()} for objective, c in curves.items()})
    print(f"best-of-n {job.out}: {spec.levels} x {spec.per_level} episodes")


def best_of_n_record(per_seed: Sequence[Mapping[str, Any]], spec: BestOfNSpec) -> dict[str, Any]:
    """Per objective across seeds: the true and proxy returns at every n, the peak and the
    largest n, and Gao et al.'s best-of-n fit gain = d (alpha - beta d) per seed."""
    from goodhart.experiments.reward_learning.best_of_n import fit_best_of_n

    out: dict[str, Any] = {"ns": list(spec.ns), "levels": spec.levels, "per_level": spec.per_level, "curves": {}}
    for objective in spec.objectives:
        true = np.array([s[objective]["true_return"] for s in per_seed])
        proxy = np.array([s[objective]["proxy"] for s in per_seed])
        d = np.array(per_seed[0][objective]["d"])
        fits = [fit_best_of_n(d, row - row[0]) for row in true]
        peak = int(np.argmax(true.mean(axis=0)))
        out["curves"][objective] = {
            "d": d.tolist(), "true_return": true.tolist(), "proxy": proxy.tolist(),
            "peak_n": spec.ns[peak], "peak_true": across_seeds(true[:, peak].tolist()), "last_true": across_seeds(true[:, -1].tolist()),
            "first_true": across_seeds(true[:, 0].tolist()), "last_proxy": across_seeds(proxy[:, -1].tolist()),
            "alpha": across_seeds([f[0] for f in fits]), "beta": across_seeds([f[1] for f in fits]),
        }
    return out


# -------------------------------------------------------------------------- report
def _ci(stats: Mapping[str, Any] | None) -> str:
    from goodhart.experiments.columns import fmt

    return fmt(stats) if stats else "—"


def report_sections(record: Mapping[str, Any]) -> list[str]:
    """The report's sections for the measurements a study made (none for those it did not)."""
    lines: list[str] = []
    entries = record["conditions"]
    raters = record.get("raters") or {}
    if raters:
        def distorted(options: Mapping[str, Any]) -> str:
            default = RaterConfig().to_dict()
            changed = [f"{k}={v}" for k, v in options.items() if v != default.get(k)]
            return ", ".join(changed) or "none: it orders segments exactly by their true return"

        lines += ["## Raters", "", "| rater | distortions | conditions |", "|---|---|---|",
                  *[f"| {name} | {distorted(options)} | {', '.join(c for c, e in entries.items() if e.get('rater') == name)} |" for name, options in raters.items()], ""]
    if any(e.get("distortion_shares") for e in entries.values()):
        lines += ["## Where the rater's distortions could act", "",
                  "The share of the segments behind each reward model's labels in which each of its rater's distortions could change a "
                  "segment's value (a salient event seen, a step outside the watched region); near 0, the labels are an undistorted rater's.", "",
                  "| condition | " + " | ".join(sorted({k for e in entries.values() for k in e.get("distortion_shares", {})})) + " |",
                  "|---|" + "---|" * len({k for e in entries.values() for k in e.get("distortion_shares", {})})]
        names = sorted({k for e in entries.values() for k in e.get("distortion_shares", {})})
        lines += [f"| {c} | " + " | ".join(_ci(e.get("distortion_shares", {}).get(n)) for n in names) + " |" for c, e in entries.items()]
        lines.append("")
    if any("behaviour" in e for e in entries.values()):
        sample = next(e["behaviour"] for e in entries.values() if "behaviour" in e)
        watched = {options.get("oversight_region") for options in [record.get("rater") or {}, *(raters.values())]} - {None}
        regions = [k for k in sample if k.startswith("outside_") and k.split("_", 1)[1] in watched]  # the regions a rater of the study watches
        head = ["salient events per episode", *[f"share of steps {k.replace('_', ' the ', 1)}" for k in regions], "true return"]
        lines += ["## What the final policies do, in the rater's terms", "",
                  "Whole episodes of each final policy on held-out levels: the env's salient event (what a biased rater over-rewards) per "
                  "episode and the share of steps outside the oversight region a rater watches (what it cannot see). "
                  "RM-salient correlation: Pearson's r between the condition's reward model's return and the salient-event count on a fixed "
                  "pool of segments of the preference sources (held-out levels), the analogue of reward-length correlation (Singhal et al. 2023). "
                  "Disagreement: the members' standard deviation of the normalised reward, on the final policy's states and on pi_init's.", "",
                  "| policy | " + " | ".join(head) + " | RM-salient correlation | disagreement, final | disagreement, pi_init |",
                  "|---|" + "---|" * (len(head) + 3)]
        rows = [(c, e.get("behaviour", {}), e.get("correlation"), e.get("disagreement_final"), e.get("disagreement_initial")) for c, e in entries.items()]
        baseline = record.get("baseline")
        if baseline:
            rows.append((f"{baseline['name']} (baseline)", baseline.get("behaviour", {}), None, None, None))
        rows += [(name, b, None, None, None) for name, b in (record.get("behaviour_references") or {}).items()]
        for name, b, corr, final, initial in rows:
            cells = [_ci(b.get("salient")), *[_ci(b.get(k)) for k in regions], _ci(b.get("true_return"))]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {_ci(corr)} | {_ci(final)} | {_ci(initial)} |")
        lines.append("")
        if baseline:
            lines += [f"The {baseline['name']} baseline (PPO from pi_init on the salient event alone) reaches a proxy return of "
                      f"{_ci(baseline['final_proxy'])} under the reward models of `{baseline['against']}`: {_ci(baseline['share_of_gain'])} of that "
                      "condition's proxy gain over pi_init (1: the salient event explains all of it).", ""]
    bon = record.get("best_of_n")
    if bon:
        lines += ["## Best-of-n", "",
                  f"From pi_init, {bon['per_level']} episodes on each of {bon['levels']} levels; best-of-n keeps the episode the objective scores highest, "
                  "KL(best-of-n || pi_init) = log n - (n - 1)/n, d = its square root (Gao et al.). The true return of the kept episode, by n "
                  "(unbiased over all n-subsets of the samples):", "",
                  "| objective | " + " | ".join(f"n={n}" for n in bon["ns"]) + " | peak n | alpha | beta |",
                  "|---|" + "---|" * (len(bon["ns"]) + 3)]
        for objective, c in bon["curves"].items():
            true = np.array(c["true_return"])
            cells = [f"{v:.2f}" for v in true.mean(axis=0)]
            lines.append(f"| {objective} | " + " | ".join(cells) + f" | {c['peak_n']} | {_ci(c['alpha'])} | {_ci(c['beta'])} |")
        lines += ["", "Means over seeds; alpha, beta: fits of gain = d (alpha - beta d) per seed (gain since n = 1).", ""]
    return lines


def best_of_n_figure(record: Mapping[str, Any], headline: Any = None) -> Any:
    """best_of_n.png: the true return and the proxy of best-of-n against d, one line per objective."""
    from goodhart.experiments.plots import figure_title, pyplot

    plt = pyplot()
    bon = record["best_of_n"]
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.8), layout="constrained")
    for objective, c in bon["curves"].items():
        d = np.array(c["d"])
        for ax, key in zip(axes, ("true_return", "proxy"), strict=True):
            values = np.array(c[key])
            mean = values.mean(axis=0)
            line, = ax.plot(d, mean, marker=".", label=objective)
            if len(values) > 1:
                ax.fill_between(d, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15, lw=0)
    axes[0].set_title("the true return of the kept episode\n(band: range over seeds)")
    axes[0].set_ylabel("true return")
    axes[1].set_title("the objective's own score of the kept episode")
    axes[1].set_ylabel("reward model return (objective)")
    for ax in axes:
        ax.set_xlabel("d = sqrt(log n - (n - 1)/n)")
        ax.grid(alpha=0.3)
    axes[1].legend(title="objective")
    fig.suptitle(figure_title(record, "best-of-n from pi_init against each objective", headline))
    return fig


def plot_best_of_n(record: Mapping[str, Any], path: Path, headline: Any = None) -> None:
    from goodhart.experiments.plots import write_figure

    write_figure(lambda: best_of_n_figure(record, headline), path, 10.0)
