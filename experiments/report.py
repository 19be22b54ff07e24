"""Reports of evaluation results: the finding in numbers, then the tables, and the plots.

``report.md`` opens with one sentence that states the finding in numbers: the experiment's
headline (:mod:`goodhart.experiments.headline`, named in its spec or a default). Then
``## Result``: whether the expected effects hold (a reproduction), then for each trained policy
(the headline's first) its env's ``HEADLINE`` metrics on every distribution (the headline's
first; a metric every policy has the same value of is named last, once) against the reference
policies, and what its training curves did; for a knob sweep, the metrics against the knob and
the recovery statistic instead. Everything is read from the results record and the env's
hooks. Then: the policies and what each was trained on, each expected effect with its measured
value and threshold, a table per distribution, the probes' pass rates (where the record has a
probe set's, :mod:`goodhart.experiments.probes`), the training-curve numbers, per-seed values,
and what the intervals are. ``summary`` is the short table ``goodhart evaluate`` prints. The
plots are drawn by :mod:`goodhart.experiments.plots`.
(:func:`goodhart.experiments.reproduce.rerender` writes a results folder's report and figures
again from its ``results.json``: ``goodhart report DIR``.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from goodhart.agents.files import write_atomic, write_json
from goodhart.agents.policies import ORACLE_PREFIX, RANDOM
from goodhart.experiments.columns import columns, core_of, fmt, headline_metrics, is_rate, label, number, own_reward_equals, share, steps, unit, words
from goodhart.experiments import results
from goodhart.experiments.curves import FINAL_SHARE, TRAINING
from goodhart.experiments.engine.checks import CheckResult, checks_section
from goodhart.experiments.headline import Headline, default_headline, headline as headline_of
from goodhart.experiments.metrics import INTERVALS, MIN_SEEDS_FOR_CI
from goodhart.experiments.curricula import CURRICULUM, STATISTICS as CURRICULUM_STATISTICS
from goodhart.experiments.plots import bar_plot, curriculum_plot, curve_plot, knob_plot, same_for_all
from goodhart.experiments.probes import ProbeRecord, probe_rows, read_probes
from goodhart.experiments.trainers import trained_by

Checks = Sequence[CheckResult]


def _seeds(entry: Mapping[str, Any]) -> str:
    n = len(entry["seeds"])
    return f"{n} seed{'s' if n != 1 else ''}"


def _value(record: Mapping[str, Any], metric: str, stats: Mapping[str, Any]) -> str:
    """``0.63 [0.61, 0.65] of episodes``, ``174.95 [...] points per episode``."""
    return f"{fmt(stats)} {unit(record, metric)}"


def _against(record: Mapping[str, Any], dist: str, metric: str) -> str:
    refs = [f"{n} {number(results.mean(record, n, dist, metric))}" for n in results.reference_names(record)]
    return f" (against {', '.join(refs)})" if refs else ""


def _first(items: Sequence[str], first: str | None) -> list[str]:
    """``items`` with ``first`` (if one of them) moved to the front."""
    return [first, *(i for i in items if i != first)] if first in items else list(items)


def policy_sentences(record: Mapping[str, Any], name: str, compare: bool = True, headline: Headline | None = None) -> list[str]:
    """Bullets: the headline metrics of ``name`` on each distribution (with the reference
    policies' means; the headline's distribution and metric first; a metric every policy has
    the same value of there, last and once), and its training curves' peak and end."""
    core, entry = core_of(record), results.entry(record, name)
    lines = []
    mine = headline is not None and headline.policy == name
    dists = _first(record["distributions"], headline.distribution if mine else None)
    wanted = headline_metrics(record)
    if mine and headline.distribution in record["distributions"]:
        wanted = list(dict.fromkeys([headline.metric, *wanted]))
    everyone = list(results.policies(record))
    for dist in dists:
        parts, same = [], []
        for metric in wanted:
            stats = results.metrics(record, name, dist)[metric]
            verb = "in " if is_rate(record, metric) else ""
            value = same_for_all(record, everyone, dist, metric) if compare and len(everyone) > 1 else None
            if value is not None:
                same.append(f"{words(core, metric)} {value} for every policy")
                continue
            parts.append(f"{words(core, metric)} {verb}{_value(record, metric, stats)}" + (_against(record, dist, metric) if compare else ""))
        lines.append(f"  - on `{dist}` levels: " + "; ".join(parts + same) + ".")
    training = results.metrics(record, name, TRAINING)
    if training:
        true_unit = core.UNITS.get("true_return", "")
        peak, final, fraction = (training[k] for k in ("true_return_peak", "true_return_final", "true_return_final_over_peak"))
        text = (
            f"  - during training (mean curve of {_seeds(entry)}): the true return peaked at {fmt(peak)}{' ' + true_unit if true_unit else ''} "
            f"at {steps(training['true_return_peak_step']['mean'])} steps and ended at {fmt(final)} over the last "
            f"{share(FINAL_SHARE)} of training, {fmt(fraction)} of its peak"
        )
        if results.curves(record, name)["proxy_is_true"]:
            text += "; the proxy is the true return here."
        else:
            text += (
                f"; the proxy ({core.PROXY_RETURN}) went from {fmt(training['proxy_return_at_true_peak'])} at that peak "
                f"to {fmt(training['proxy_return_final'])} at the end."
            )
        lines.append(text)
    return lines


def knob_sentences(record: Mapping[str, Any]) -> list[str]:
    """The knob's metrics at every tested value, and the recovery statistic."""
    core, knob = core_of(record), results.knob(record)
    if knob.get("series"):
        return series_sentences(record)
    order = sorted(knob["values"], key=lambda c: knob["values"][c])
    lines = [f"Against the {knob['label']}:", ""]
    for dist, metric in knob["metrics"]:
        points = []
        for k, cond in enumerate(order):
            stats = results.metrics(record, cond, dist)[metric]
            shown = fmt(stats) if k in (0, len(order) - 1) else number(stats["mean"])
            points.append(f"{shown} at {knob['values'][cond]:g}")
        lines.append(f"- `{dist}` {words(core, metric)}: " + ", ".join(points) + _against(record, dist, metric) + ".")
    recovery = knob.get("recovery")
    if recovery:
        lines += ["", recovery_sentence(record)]
    return lines


def series_sentences(record: Mapping[str, Any]) -> list[str]:
    """A knob swept under several series (methods): each metric per series at every tested
    value, each series' recovery, and with curricula how often each trained on
    distinguishing levels."""
    core, knob = core_of(record), results.knob(record)
    lines = [f"Against the {knob['label']}, per method:", ""]
    for dist, metric in knob["metrics"]:
        lines.append(f"- `{dist}` {words(core, metric)}{_against(record, dist, metric)}:")
        for series, conds in knob["series"].items():
            conds = sorted(conds, key=lambda c: knob["values"][c])
            points = ", ".join(f"{fmt(results.metrics(record, c, dist)[metric])} at {knob['values'][c]:g}" for c in conds)
            lines.append(f"  - {series}: {points}")
    found = knob.get("recoveries") or {}
    if found:
        first = next(iter(found.values()))
        lines += ["", f"**Recovery** (the smallest {knob['label']} at which `{first['distribution']}` {words(core, first['metric'])} "
                  f"recovers at least half of the distance from {first['baseline']}'s {number(first['baseline_mean'])} to "
                  f"{first['target']:g}, that is reaches {number(first['halfway'])}):", ""]
        for series, r in found.items():
            at = f"**{r['recovered_at']:g}** ({number(r['recovered_mean'])})" if r["recovered_at"] is not None else (
                f"**none of the tested values** (the closest: {number(r['best']['mean'])} at {r['best']['value']:g})" if r["best"] else "**none**")
            lines.append(f"- {series}: {at}")
    played = [(series, conds) for series, conds in knob["series"].items() if any(results.metrics(record, c, CURRICULUM) for c in conds)]
    if played:
        lines += ["", f"How often each method learned from distinguishing levels ({CURRICULUM_STATISTICS['played_distinguishing']}; "
                  f"checks read it as distribution `{CURRICULUM}`), against the share the generator gives:", ""]
        for series, conds in played:
            conds = sorted((c for c in conds if results.metrics(record, c, CURRICULUM)), key=lambda c: knob["values"][c])
            points = ", ".join(f"{fmt(results.metrics(record, c, CURRICULUM)['played_distinguishing'])} at {knob['values'][c]:g}" for c in conds)
            lines.append(f"- {series}: {points}")
    return lines


def recovery_sentence(record: Mapping[str, Any]) -> str:
    core, knob = core_of(record), results.knob(record)
    r = knob["recovery"]
    what = f"`{r['distribution']}` {words(core, r['metric'])}"
    text = (
        f"**Recovery:** the smallest {knob['label']} at which {what} recovers at least half of the distance from the "
        f"{knob['values'][r['baseline']]:g} condition's {number(r['baseline_mean'])} to {r['target']:g} (that is, reaches "
        f"{number(r['halfway'])}): "
    )
    if r["recovered_at"] is None:
        best = r["best"]
        return text + f"**none of the tested values** (the closest: {number(best['mean'])} at {best['value']:g})."
    return text + f"**{r['recovered_at']:g}** ({number(r['recovered_mean'])})."


def opening(record: Mapping[str, Any], checks: Checks, headline: Headline | None = None) -> list[str]:
    """``## Result``: the finding in numbers (the headline's policy and distribution first)."""
    lines = ["## Result", ""]
    if checks:
        held = sum(ok for _, ok in checks)
        if held == len(checks):
            lines.append(f"All {len(checks)} expected effects hold (see below).")
        else:
            failed = "; ".join(text.split(" — ")[0] for text, ok in checks if not ok)
            lines.append(f"{held} of {len(checks)} expected effects hold; not: {failed}.")
        lines.append("")
    if results.knob(record):
        return lines + knob_sentences(record) + [""]
    trained = results.trained_names(record)
    for name in _first(trained or list(results.policies(record)), headline.policy if headline else None):
        entry = results.entry(record, name)
        about = f"trained on {entry.get('trained_on') or 'a reward not recorded'}, {_seeds(entry)}" if entry["kind"] == "trained" else "reference policy"
        lines.append(f"- **{name}** ({about}):")
        lines += policy_sentences(record, name, compare=bool(trained), headline=headline)
    return lines + [""]


def policies_section(record: Mapping[str, Any]) -> list[str]:
    """Who played, and what each trained policy was trained on."""
    core = core_of(record)
    shown = [m for _, column in columns(record) for m in column]
    lines = ["## Policies", ""]
    for name, entry in results.policies(record).items():
        if entry["kind"] == results.TRAINED:
            same = " and ".join(words(core, m) for m in own_reward_equals(record, name, shown))
            if core.PROXY_RETURN == "return":
                equals = "; its reward is the env's proxy" + (f", equal to {same} in every evaluated episode" if same else "")
            else:
                equals = f"; its reward equalled {same} in every evaluated episode" if same else ""
            by = trained_by([entry])
            lines.append(f"- **{name}**: trained on {entry.get('trained_on') or 'a reward not recorded'}{' by ' + by if by else ''}{equals}; {_seeds(entry)} ({', '.join(map(str, entry['seeds']))}); `{entry['source']}`")
        else:
            base, _, eps = name.partition("@")
            what = "uniformly random actions" if base == RANDOM else f"the env's scripted `{base.removeprefix(ORACLE_PREFIX)}` policy"
            what += f" with a share {eps} of random actions" if eps else ""
            lines.append(f"- **{name}**: reference, {what}")
    return lines + [""]


def intervals_note(record: Mapping[str, Any]) -> list[str]:
    used = results.intervals_used(record)
    lines = [
        "## How to read the numbers",
        "",
        f"Each policy plays the same {record['episodes']} fixed levels per distribution (level seed {record['level_seed']}). "
        "A cell is the mean over training seeds (for a reference policy: over its episodes) with an interval:",
        "",
    ]
    text = {
        "seeds": f"`[low, high]` with >= {MIN_SEEDS_FOR_CI} training seeds: a 95 % percentile bootstrap CI over the seeds (2000 resamples of the seeds' values): how far the mean could move with other training seeds",
        "range": "`(range low, high)` with 2 training seeds: their two values; a bootstrap over two values only gives back their range, so no CI is claimed",
        "episodes": "`[low, high]` with one seed or a reference policy: a 95 % bootstrap CI over the evaluation episodes: level-sampling noise only, not the variation between training runs",
    }
    lines += [f"- {line}." for kind, line in text.items() if kind in used]
    core = core_of(record)
    lines += [
        "",
        f"**capability**: the rate of `{core.CAPABILITY}` (reached the {core.INTENDED_NAME} or the {core.PROXY_NAME}); "
        f"**preference**: the rate of `{core.PREFERENCE}` among the capable episodes (the {core.INTENDED_NAME} rather than the {core.PROXY_NAME}). "
        f"**proxy** is the env's own proxy (`{core.PROXY_RETURN}`) whatever a policy was trained on; **own reward** the reward a policy was trained on. "
        "Columns that were equal in every episode are shown once, headed with all their names.",
        "",
    ]
    return lines


def distribution_tables(record: Mapping[str, Any]) -> list[str]:
    shown = columns(record)
    lines = []
    for dist in record["distributions"]:
        lines += [f"## Distribution `{dist}`", "", "| policy | seeds | " + " | ".join(h for h, _ in shown) + " |", "|---" * (len(shown) + 2) + "|"]
        for name, entry in results.policies(record).items():
            metrics = results.metrics(record, name, dist)
            cells = [fmt(metrics[column[0]]) if column[0] in metrics else "" for _, column in shown]
            lines.append(f"| {name} | {len(entry['seeds']) if entry['kind'] == results.TRAINED else '-'} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


TRAINING_COLUMNS = (
    ("true return: peak", "true_return_peak"),
    ("at step", "true_return_peak_step"),
    (f"final (last {share(FINAL_SHARE)})", "true_return_final"),
    ("final / peak", "true_return_final_over_peak"),
    ("proxy at the true peak", "proxy_return_at_true_peak"),
    ("proxy final", "proxy_return_final"),
    ("proxy rise after the true peak", "proxy_return_rise_after_true_peak"),
)


def training_table(record: Mapping[str, Any]) -> list[str]:
    names = [n for n in results.trained_names(record) if results.metrics(record, n, TRAINING)]
    if not names:
        return []
    core = core_of(record)
    lines = [
        "## Training curves",
        "",
        f"Read off the mean training curve over seeds (episodes binned in {len(results.curves(record, names[0])['steps'])} "
        f"equal windows of steps; `final`: the last {share(FINAL_SHARE)} of training); checks read them as distribution `{TRAINING}`. "
        f"Proxy: `{core.PROXY_RETURN}`.",
        "",
        "| policy | seeds | " + " | ".join(h for h, _ in TRAINING_COLUMNS) + " |",
        "|---" * (len(TRAINING_COLUMNS) + 2) + "|",
    ]
    for name in names:
        stats = results.metrics(record, name, TRAINING)
        cells = [steps(stats[m]["mean"]) if m.endswith("_step") else fmt(stats[m]) for _, m in TRAINING_COLUMNS]
        lines.append(f"| {name} | {len(results.entry(record, name)['seeds'])} | " + " | ".join(cells) + " |")
    return lines + [""]


def per_seed_table(record: Mapping[str, Any]) -> list[str]:
    metrics = list(dict.fromkeys(["capability", "preference", *headline_metrics(record)]))
    lines = ["## Per-seed values", "", "| policy | distribution | metric | per seed | IQM |", "|---|---|---|---|---|"]
    core = core_of(record)
    for name in results.trained_names(record):
        rows = [(dist, m) for dist in record["distributions"] for m in metrics]
        rows += [(TRAINING, m) for _, m in TRAINING_COLUMNS if results.metrics(record, name, TRAINING)]
        for dist, metric in rows:
            stats = results.metrics(record, name, dist)[metric]
            show = steps if metric.endswith("_step") else number
            values = ", ".join(show(v) for v in stats["per_seed"])
            lines.append(f"| {name} | {dist} | {label(core, metric) if dist != TRAINING else metric} | {values} | {show(stats['iqm'])} |")
    return lines + [""]


def markdown(record: Mapping[str, Any], title: str, checks: Checks = (), about: str = "", headline: Headline | None = None) -> str:
    """The report: the title, the finding in one sentence (``headline``, default: the record's
    default headline), what the experiment is (``about``), then the sections."""
    headline = headline or default_headline(record)
    lines = [f"# {title}", ""] + ([headline.sentence(), ""] if headline else []) + ([about.strip(), ""] if about else [])
    lines += opening(record, checks, headline)
    lines += policies_section(record)
    lines += checks_section(checks)
    lines += distribution_tables(record)
    lines += probes_section(record)
    lines += training_table(record)
    lines += per_seed_table(record)
    lines += intervals_note(record)
    return "\n".join(lines)


def summary(record: Mapping[str, Any]) -> str:
    """A plain-text table for the terminal: policy x distribution, the headline metrics."""
    core = core_of(record)
    metrics = list(dict.fromkeys([*headline_metrics(record), "preference"]))
    header = ["policy", "distribution", *(label(core, m) for m in metrics)]
    rows = [header]
    for name in results.policies(record):
        for dist in record["distributions"]:
            rows.append([name, dist, *(fmt(results.metrics(record, name, dist)[m]) for m in metrics)])
    return text_table(rows)


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells as aligned plain text, the first row a header underlined with dashes."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def probes_section(record: Mapping[str, Any]) -> list[str]:
    """``## Probes``: the record's probe set, each policy's pass rate on each probe (nothing
    without a probes section)."""
    section = read_probes(record)
    return probe_table(section) if section is not None else []


def probe_table(section: ProbeRecord) -> list[str]:
    """A probe run as markdown: the set, what a cell is, a row per probe."""
    rows = probe_rows(section)
    description = section["description"]
    about = f": {description}" + ("" if description.endswith((".", "?", "!")) else ".") if description else "."
    lines = [
        "## Probes",
        "",
        f"The probe set `{section['set']}` of {section['env']}{about} Each probe is a fixed set of levels and the behaviour "
        "a policy that learned the intended goal would show on them; a cell is the share of episodes that showed it, with "
        f"its interval ({intervals_in(section)}).",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|---" * len(rows[0]) + "|",
    ]
    for name, expect, *cells in rows[1:]:
        lines.append(f"| {name} | `{expect}` | " + " | ".join(cells) + " |")
    return lines + [""]


def intervals_in(section: ProbeRecord) -> str:
    """What the intervals of a probe run are, per kind used: ``ppo: 95 % bootstrap CI over
    seeds; random, oracle-goal: 95 % bootstrap CI over episodes``."""
    used: dict[str, list[str]] = {}
    for name, entry in section["policies"].items():
        for stats in entry["passed"].values():
            kind = stats.get("interval", "none")
            if name not in used.setdefault(kind, []):
                used[kind].append(name)
    return "; ".join(f"{', '.join(names)}: {INTERVALS[kind]}" for kind, names in used.items())


def probe_summary(section: ProbeRecord) -> str:
    """The probe run as a plain-text table for the terminal, under a line saying what it is."""
    head = (f"probe set {section['set']} on {section['env']}: each policy's share of episodes that passed, "
            f"with its interval ({intervals_in(section)})")
    return head + "\n\n" + text_table(probe_rows(section))


def write_probe_report(section: ProbeRecord, out: Path) -> Path:
    """``probes.json`` (the run) and ``probes.md`` (its table) in ``out``; the table's path."""
    write_json(out / "probes.json", section)
    trained = [name for name, entry in section["policies"].items() if entry["kind"] == results.TRAINED]
    title = f"# Probes of {', '.join(trained)}" if trained else f"# Probes of the reference policies of {section['env']}"
    text = "\n".join([title, "", *probe_table(section)[2:]])
    write_atomic(out / "probes.md", lambda tmp: tmp.write_text(text))
    return out / "probes.md"


def write_report(record: Mapping[str, Any], out: Path, title: str, checks: Checks = (), extra: str = "", about: str = "",
                 headline: Any = None) -> Path:
    """report.md of an evaluation (``about``: what the experiment is, under the title;
    ``extra``: appended; ``headline``: a :class:`Headline`, or the spec or ``HeadlineSpec``
    naming it, default: the record's default one) with bars.png, and where the record has them
    curves.png (training curves) and knob.png (a sweep's knob), in ``out``."""
    found = headline if isinstance(headline, Headline) else headline_of(record, headline)
    figures: list[Figure] = [("bars.png", "each policy on each distribution", lambda path: bar_plot(record, path, found))]
    if results.with_curves(record):
        figures.append(("curves.png", "training curves: proxy and true return", lambda path: curve_plot(record, path, found)))
    knob = results.knob(record)
    if knob:
        figures.append(("knob.png", f"metrics against the {knob['label']}", lambda path: knob_plot(record, path, found)))
        if any(results.metrics(record, n, CURRICULUM) for n in results.trained_names(record)):
            figures.append(("curriculum.png", "the share of distinguishing levels learned from, per method",
                            lambda path: curriculum_plot(record, path, found)))
    if found is not None and found.distribution == TRAINING and len(figures) > 1:
        figures.insert(0, figures.pop(1))  # the headline is read off the training curves
    return write_report_files(out, markdown(record, title, checks, about, found), figures, extra)


Figure = tuple[str, str, Callable[[Path], None]]  # file name, caption, draw(path)


def write_report_files(out: Path, text: str, figures: Sequence[Figure] = (), extra: str = "") -> Path:
    """The one writer of a report, for every kind of experiment: each figure drawn into
    ``out`` and shown under ``text``, then ``extra``; report.md written whole (atomically)."""
    for name, caption, draw in figures:
        draw(out / name)
        text += f"\n![{caption}]({name})\n"
    text += extra
    write_atomic(out / "report.md", lambda tmp: tmp.write_text(text))
    return out / "report.md"
