"""The headline of an experiment: the one number that states its finding, as data.

A reproduction names it in its YAML (``headline:``, :class:`goodhart.experiments.sweep.HeadlineSpec`):
the phenomenon in a few words, and the number: a policy, a distribution, a metric, and
optionally what to compare it with (another policy, ``than``; another distribution,
``than_distribution``; another metric, ``than_metric``), more numbers for the sentence
(``also``) and the sentence itself as a template. :func:`headline` reads them off the results
record, so that the report's opening sentence, the README's reproductions table and the docs
pages print the same numbers::

    headline:
      phenomenon: "goal misgeneralization: follows the cue"
      policy: ppo
      distribution: shifted
      metric: reached_cue_first
      than: random
      also: [capability]
      sentence: "On shifted levels the trained agent reaches the cue first in {value} of episodes,
        against {than} for a random walk, while reaching the goal or the cue in {also[0]}."

In the template, ``{value}`` is the number with its 95 % interval (``0.83 [0.80, 0.85]``),
``{than}`` the reference's mean, ``{also[i]}`` the i-th extra number with its interval and
``{also_mean[i]}`` its mean alone, ``{policy}`` and ``{distribution}`` the names. Without a
template the sentence is written from the metric's name and unit.

For a sweep, ``distribution`` is an evaluated distribution or ``training`` (the statistics of
the training curves), ``metric`` a metric of the record. For the over-optimization study,
``policy`` is a condition (``labels=300``) or a reference policy (``random``, ``sft``: the
initial policy), ``distribution`` a moment of training (``initial``, ``peak``: where the mean
true return is highest, ``final``) and ``metric`` one of ``true_return``, ``proxy_return``
(the reward model's), ``d`` (on the fixed states) and ``d_trajectory`` (along the episodes);
``drop`` (distribution ``peak``) is the true return's fall from the peak to the end.

An experiment without a ``headline:`` (``goodhart sweep``, ``goodhart evaluate``) gets a
default one: the first trained policy on the ``shifted`` levels (else the last distribution),
the env's first ``HEADLINE`` metric, against a random walk.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goodhart.agents.policies import ORACLE_PREFIX, RANDOM
from goodhart.experiments import results
from goodhart.experiments.columns import core_of, fmt, headline_metrics, is_rate, number, unit, words
from goodhart.experiments.curves import TRAINING
from goodhart.experiments.metrics import interval

MOMENTS = ("initial", "peak", "final")  # the over-optimization study's "distributions"
CURVE_KEYS = {"true_return": "true", "proxy_return": "proxy", "d": "d", "d_trajectory": "d_trajectory"}
CURVE_WORDS = {"true_return": "true return", "proxy_return": "reward model's return", "d": "d", "d_trajectory": "d along the episodes", "drop": "true return's fall from its peak",
               "behaviour.salient": "salient events per episode"}


class HeadlineError(ValueError):
    """The headline names a number the record does not have."""


@dataclass(frozen=True)
class Headline:
    """The finding in one number: ``policy``'s ``metric`` on ``distribution`` (``value``: mean,
    interval) beside ``reference`` (the mean of what it is compared with, named
    ``reference_name``), and the sentence that states it."""

    phenomenon: str
    policy: str
    distribution: str
    metric: str
    value: Mapping[str, Any]
    reference: float | None = None
    reference_name: str | None = None
    also: tuple[Mapping[str, Any], ...] = ()
    template: str = ""
    from_spec: bool = True
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(self.value["mean"])

    @property
    def ci(self) -> tuple[float, float]:
        """The 95 % interval (with two seeds: their range; NaNs where there is none)."""
        return interval(self.value)

    def number(self) -> str:
        """``0.83 [0.80, 0.85]``: the value with its interval, as the reports print it."""
        return fmt(self.value)

    def sentence(self) -> str:
        """The finding in one sentence, with its numbers."""
        fields = {
            "value": self.number(),
            "than": number(self.reference) if self.reference is not None else "n/a",
            "also": [fmt(s) for s in self.also],
            "also_mean": [number(s["mean"]) for s in self.also],
            "policy": self.policy,
            "distribution": self.distribution,
        }
        text = " ".join(self.template.split()).format(**fields)
        return text[0].upper() + text[1:] if text else text


def headline(record: Mapping[str, Any], spec: Any = None) -> Headline | None:
    """The headline of ``record``: the one ``spec`` names (an experiment's spec with a
    ``headline`` field, or a :class:`HeadlineSpec` itself), or, where it names none or a number
    the record lacks (a quick run without that condition), the default one. None where there
    is no number to state (an evaluation of reference policies only)."""
    try:
        return named_headline(record, spec)
    except HeadlineError:
        return default_headline(record)


def named_headline(record: Mapping[str, Any], spec: Any) -> Headline:
    """The headline ``spec`` names (an experiment's spec or its ``headline``);
    :class:`HeadlineError` where it names none, or a number the record lacks."""
    spec = spec.headline if hasattr(spec, "headline") else spec
    if spec is None:
        raise HeadlineError("no headline named")
    if "conditions" in record:
        return _overoptimization(record, spec)
    return _evaluation(record, spec)


def check_template(template: str | None) -> None:
    """A headline's sentence template must state the number (``{value}``) and use only the
    fields :meth:`Headline.sentence` fills."""
    if template is None:
        return
    known = {"value", "than", "also", "also_mean", "policy", "distribution"}
    used = {name.split("[")[0].split(".")[0] for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if "value" not in used:
        raise ValueError(f"headline sentence {template!r} does not state the number: it has no {{value}}")
    if used - known:
        raise ValueError(f"headline sentence {template!r}: unknown field(s) {sorted(used - known)}; known: {sorted(known)}")


# ------------------------------------------------------------------ an evaluation (a sweep)
def _also_pairs(spec: Any) -> list[tuple[str, str]]:
    pairs = []
    for item in getattr(spec, "also", None) or ():
        pairs.append((spec.distribution, item) if isinstance(item, str) else (str(item[0]), str(item[1])))
    return pairs


def _stats(record: Mapping[str, Any], policy: str, distribution: str, metric: str) -> Mapping[str, Any]:
    found = results.stats(record, policy, distribution, metric)
    if found is None:
        raise HeadlineError(f"the record has no {metric} of {policy} on {distribution!r}")
    return found


def reference_words(name: str) -> str:
    """``a random walk``, ``the goal oracle``, or the policy's name."""
    base, _, eps = name.partition("@")
    if base == RANDOM:
        return "a random walk"
    if base.startswith(ORACLE_PREFIX):
        return f"the {base.removeprefix(ORACLE_PREFIX)} oracle" + (f" with {eps} random actions" if eps else "")
    return name


def _evaluation(record: Mapping[str, Any], spec: Any) -> Headline:
    value = _stats(record, spec.policy, spec.distribution, spec.metric)
    reference, reference_name = None, None
    than, than_dist, than_metric = getattr(spec, "than", None), getattr(spec, "than_distribution", None), getattr(spec, "than_metric", None)
    if than or than_dist or than_metric:
        who, where, what = than or spec.policy, than_dist or spec.distribution, than_metric or spec.metric
        reference = float(_stats(record, who, where, what)["mean"])
        reference_name = ", ".join(p for p in (who if than else "", f"on `{where}`" if than_dist else "", what if than_metric else "") if p)
    also = tuple(_stats(record, spec.policy, d, m) for d, m in _also_pairs(spec))
    template = getattr(spec, "sentence", None) or _evaluation_template(record, spec)
    return Headline(spec.phenomenon, spec.policy, spec.distribution, spec.metric, value, reference, reference_name, also, template,
                    from_spec=not getattr(spec, "default", False))


def _amount(record: Mapping[str, Any], metric: str, distribution: str) -> str:
    """A number's words and unit in a generated sentence: ``reached goal in {} of episodes``."""
    core = core_of(record)
    if distribution == TRAINING:
        return f"{metric.replace('_', ' ')} {{}}"
    if metric == "capability":
        return f"reached the {core.INTENDED_NAME} or the {core.PROXY_NAME} in {{}} of episodes"
    if metric == "preference":
        return f"reached the {core.INTENDED_NAME} first in {{}} of the episodes that reached either"
    if is_rate(record, metric):
        return f"{words(core, metric)} in {{}} of episodes"
    return f"{words(core, metric)} {{}} {unit(record, metric)}"


def _evaluation_template(record: Mapping[str, Any], spec: Any) -> str:
    where = "during training" if spec.distribution == TRAINING else f"on `{spec.distribution}` levels"
    text = f"{where}, {spec.policy} " + _amount(record, spec.metric, spec.distribution).format("{value}")
    than, than_dist, than_metric = getattr(spec, "than", None), getattr(spec, "than_distribution", None), getattr(spec, "than_metric", None)
    if than or than_dist or than_metric:
        whom = [reference_words(than) if than else "", f"on `{than_dist}` levels" if than_dist else "",
                f"for its {than_metric.replace('_', ' ')}" if than_metric else ""]
        text += ", against {than} " + ("for " if than else "") + " ".join(w for w in whom if w)
    pairs = _also_pairs(spec)
    if pairs:
        parts = [_amount(record, m, d).format(f"{{also[{i}]}}") + (f" on `{d}` levels" if d != spec.distribution else "") for i, (d, m) in enumerate(pairs)]
        text += ", and " + ", ".join(parts)
    return text + "."


@dataclass(frozen=True)
class _Default:
    phenomenon: str
    policy: str
    distribution: str
    metric: str
    than: str | None
    default: bool = True
    than_distribution: None = None
    than_metric: None = None
    also: tuple = ()
    sentence: None = None


def default_headline(record: Mapping[str, Any]) -> Headline | None:
    """The headline of a record without a named one (see the module's docstring)."""
    if "conditions" in record:
        plain = [c for c, e in record["conditions"].items() if not e.get("kl_coef")]
        if not plain:
            return None
        spec = _Default("reward model over-optimization", plain[0], "final", "true_return", None)
        return _overoptimization(record, spec, than_distribution="peak")
    trained = results.trained_names(record)
    if not trained:
        return None
    dists = record["distributions"]
    dist = "shifted" if "shifted" in dists else dists[-1]
    metric = headline_metrics(record)[0]
    than = RANDOM if RANDOM in results.policies(record) else None
    spec = _Default(f"{words(core_of(record), metric)} on {dist} levels", trained[0], dist, metric, than)
    try:
        return _evaluation(record, spec)
    except HeadlineError:
        return None


# ------------------------------------------------------------- the over-optimization study
def _curve_stats(record: Mapping[str, Any], policy: str, moment: str, metric: str) -> Mapping[str, Any]:
    """A condition's number at a moment of training, or a reference policy's return."""
    if policy in record.get("conditions", {}):
        entry = record["conditions"][policy]
        if metric.startswith("behaviour."):  # what the final policies do (the RLHF studies' behaviour stage)
            found = (entry.get("behaviour") or {}).get(metric.split(".", 1)[1])
            if moment != "final" or found is None:
                raise HeadlineError(f"the over-optimization record has no {metric} of {policy} at {moment!r} (behaviour is measured at the end)")
            return found
        key = "drop" if metric == "drop" else f"{moment}_{CURVE_KEYS.get(metric, metric)}"
        if moment not in MOMENTS or key not in entry:
            raise HeadlineError(f"the over-optimization record has no {metric} of {policy} at {moment!r}")
        return entry[key]
    reference = (record.get("references") or {}).get(policy, {})
    key = {"true_return": "true_return", "env_return": "return"}.get(metric, metric)
    if key not in reference:
        raise HeadlineError(f"the over-optimization record has no {metric} of {policy}")
    return reference[key]


def _overoptimization(record: Mapping[str, Any], spec: Any, than_distribution: str | None = None) -> Headline:
    value = _curve_stats(record, spec.policy, spec.distribution, spec.metric)
    than = getattr(spec, "than", None)
    than_dist = getattr(spec, "than_distribution", None) or than_distribution
    than_metric = getattr(spec, "than_metric", None)
    reference, reference_name = None, None
    if than or than_dist or than_metric:
        who, moment, what = than or spec.policy, than_dist or spec.distribution, than_metric or spec.metric
        reference = float(_curve_stats(record, who, moment, what)["mean"])
        reference_name = ", ".join(p for p in (who if than else "", moment if than_dist else "", what if than_metric else "") if p)
    pairs = _also_pairs(spec)
    also = tuple(_curve_stats(record, spec.policy, d, m) for d, m in pairs)
    template = getattr(spec, "sentence", None)
    if not template:
        template = (f"against the reward model of {spec.policy}, the {CURVE_WORDS.get(spec.metric, spec.metric)} "
                    f"{'at the end of training' if spec.distribution == 'final' else 'at its ' + spec.distribution} was {{value}}")
        if reference is not None:
            template += " against {than} " + ("for " + than if than else f"at its {than_dist}" if than_dist else f"for its {than_metric}")
        if pairs:
            template += ", and " + ", ".join(f"the {CURVE_WORDS.get(m, m)} at its {d} {{also[{i}]}}" for i, (d, m) in enumerate(pairs))
        template += "."
    return Headline(spec.phenomenon, spec.policy, spec.distribution, spec.metric, value, reference, reference_name, also, template,
                    from_spec=not getattr(spec, "default", False))


def quick_seconds(record: Mapping[str, Any]) -> float | None:
    """The wall time of the run that wrote ``record`` (a sweep's or the over-optimization study's)."""
    seconds = record["sweep"].get("wall_seconds") if "sweep" in record else (record.get("seconds") or {}).get("wall")
    return None if seconds is None else float(seconds)


def duration(seconds: float) -> str:
    """``4 min 05 s``, ``58 s``."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def headline_cell(record: Mapping[str, Any], h: Headline) -> str:
    """The headline number in a table cell: ``reached cue first on `shifted`: 0.82 [0.78, 0.86] (random 0.40)``."""
    what = CURVE_WORDS.get(h.metric, h.metric) if "conditions" in record else words(core_of(record), h.metric)
    cell = f"{what}, `{h.distribution}`: {h.number()}"
    if h.reference is not None and not math.isnan(h.reference):
        name = h.reference_name if "=" in (h.reference_name or "") else (h.reference_name or "").replace("_", " ")
        cell += f" ({name}: {number(h.reference)})"
    return cell


def reproductions_table(results_dir: str | Path, specs: Sequence[tuple[str, Any]], link: str = "{results}/{name}/report.md") -> list[str]:
    """The README's table: a line per reproduction with its phenomenon, its headline number
    from the committed full results (``results_dir/NAME/results.json``) and the wall time of
    its quick mode (``results_dir/NAME-quick/results.json``). A reproduction without either
    file is an error: the table states only measured numbers."""
    folder = Path(results_dir)
    lines = ["| reproduction | phenomenon | headline, full mode (95 % CI) | quick mode |", "|---|---|---|---|"]
    for name, spec in specs:
        full, quick = folder / name / "results.json", folder / f"{name}-quick" / "results.json"
        for path in (full, quick):
            if not path.exists():
                raise FileNotFoundError(f"{name}: no committed results at {path}; run goodhart reproduce {name}"
                                        f"{' --quick' if path is quick else ''} and copy its results.json there")
        record = json.loads(full.read_text())
        h = named_headline(record, spec)
        seconds = quick_seconds(json.loads(quick.read_text()))
        if seconds is None:
            raise HeadlineError(f"{name}: {quick} records no wall time")
        target = link.format(results=folder.as_posix(), name=name)
        lines.append(f"| [`{name}`]({target}) | {h.phenomenon} | {headline_cell(record, h)} | {duration(seconds)} |")
    return lines


def trainers_table(results_dir: str | Path, specs: Sequence[tuple[str, Any]], trainers: Sequence[str],
                   checks: Callable[[Path, Any], Sequence[Any]], refusal: Callable[[Any, str], str | None]) -> list[str]:
    """docs/trainers.md's table: a line per reproduction, a column per trainer, each cell the
    headline number of the committed results trained by that trainer (``NAME`` for
    ``shipped``, ``NAME-TRAINER`` for the others) with its seeds and how many of the
    reproduction's checks hold (``checks(folder, spec)``: each with a ``passed`` flag). Where
    only a quick mode's results are committed (``NAME-quick[-TRAINER]``: a reproduction too
    long to run in full under a slower trainer), the cell is theirs and says so. Where none
    are: why the trainer cannot run it (``refusal(spec, trainer)``), or "not measured". A
    record whose policies (or a learned-reward study's conditions) name another trainer is
    refused (ValueError)."""
    folder = Path(results_dir)
    lines = ["| reproduction | " + " | ".join(trainers) + " |", "|---" * (len(trainers) + 1) + "|"]
    for name, spec in specs:
        cells = []
        for trainer in trainers:
            other = None if trainer == "shipped" else trainer
            full, quick = (folder / results.folder_name(name, q, other) / "results.json" for q in (False, True))
            path = full if full.exists() or not quick.exists() else quick
            if not path.exists():
                reason = refusal(spec, trainer)
                cells.append(f"cannot run: {reason}" if reason else "not measured")
                continue
            record = json.loads(path.read_text())
            entries = [*(record.get("policies") or {}).values(), *(record.get("conditions") or {}).values()]
            by = {entry["trainer"] for entry in entries if "trainer" in entry} - {trainer}
            if by:
                raise ValueError(f"{path}: its policies were trained by {sorted(by)}, not by {trainer} as its folder's name says")
            h = named_headline(record, spec)
            held = checks(path.parent, spec)
            seeds = len(h.value.get("per_seed", []))
            cell = f"{headline_cell(record, h)}; {seeds} seeds" if seeds else headline_cell(record, h)
            cell = f"quick mode: {cell}" if path == quick else cell
            cells.append(f"{cell}; checks {sum(c.passed for c in held)}/{len(held)}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines
