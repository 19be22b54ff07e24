"""Reports that state the result: the opening in numbers, checks with their measured values,
columns named and merged from the env's hooks, honest intervals, training-curve statistics,
the knob's recovery statistic, and the plots."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from goodhart.agents.policies import OraclePolicy, RandomPolicy
from goodhart.cli import app
from goodhart.experiments.columns import columns, fmt
from goodhart.experiments.config import ConfigError
from goodhart.experiments.curves import TRAINING, training_curves, training_metrics
from goodhart.experiments.evaluate import Subject, evaluate, read_results, resolve_subjects, trained_on, write_results
from goodhart.experiments.metrics import across_seeds, recovery, same_columns
from goodhart.experiments.report import markdown, summary, write_report
from goodhart.experiments.reproduce import check_evaluation, knob_record, measure
from goodhart.experiments.sweep import Check, KnobRecovery, Run, SweepSpec, load_spec, reproduction_path

MAZE = "goodhart/ColorMaze-v0"


def write_episodes(folder, true, proxy, steps_per_episode=100):
    """A fake run folder: episodes.csv with one episode per entry of ``true``/``proxy``."""
    folder.mkdir(parents=True)
    with (folder / "episodes.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestep", "env", "return", "true_return", "score"])
        for i, (t, p) in enumerate(zip(true, proxy)):
            writer.writerow([(i + 1) * steps_per_episode, 0, p, t, p])
    return folder


def rise_and_fall(n=1000, peak_at=0.3, top=2.0, end=0.5, noise=0.0, seed=0):
    """A true return that rises linearly to ``top`` at ``peak_at`` of training, then falls to
    ``end``; the proxy rises all along."""
    x = np.linspace(0, 1, n)
    true = np.where(x < peak_at, top * x / peak_at, top + (end - top) * (x - peak_at) / (1 - peak_at))
    true = true + np.random.default_rng(seed).normal(0, noise, n)
    return true, 100 * x


def test_two_seeds_give_their_range_not_a_ci_three_a_bootstrap_one_its_episodes():
    two = across_seeds([0.6, 0.7])
    assert two["interval"] == "range" and two["range"] == [0.6, 0.7] and all(math.isnan(v) for v in two["ci95"])
    assert fmt(two) == "0.65 (range 0.60, 0.70)"
    three = across_seeds([0.6, 0.7, 0.9])
    assert three["interval"] == "seeds" and three["ci95"][0] < three["mean"] < three["ci95"][1]
    one = across_seeds([0.5], (np.array([1.0, 0.0] * 50), np.ones(100)))
    assert one["interval"] == "episodes" and one["ci95"][0] < 0.5 < one["ci95"][1]


def test_same_columns_groups_metrics_equal_in_every_episode():
    outcomes = [{"return": 1.0, "true_return": 1.0, "reached_goal": True, "laps": 0, "steps_to_goal": 3},
                {"return": 0.0, "true_return": 0.0, "reached_goal": False, "laps": 0, "steps_to_goal": -1}]
    groups, constant = same_columns(outcomes)
    assert groups == [["return", "true_return", "reached_goal"]] and constant == ["laps"]


@pytest.fixture(scope="module")
def maze_record(tmp_path_factory):
    """Three 'trained' seeds (random policies) with fake training runs, beside the references."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for seed in range(3):
        true, _ = rise_and_fall(top=0.8, end=0.3, noise=0.05, seed=seed)
        runs[seed] = write_episodes(root / f"seed{seed}", true, true)  # a maze: proxy = true
    trained = Subject("ppo", "trained", MAZE, {}, {s: RandomPolicy(seed=s) for s in range(3)}, source="fake", runs=runs)
    references = resolve_subjects(["random", "oracle-goal", "oracle-cue"], MAZE)
    return evaluate([trained, *references], ["train", "shifted"], episodes=40, level_seed=7)


def test_columns_identical_by_construction_are_shown_once(maze_record):
    headers = [h for h, _ in columns(maze_record)]
    assert "proxy = true return = reached_goal" in headers
    assert not any(h in ("true return", "reached_goal", "own reward") for h in headers)


def test_the_report_opens_with_the_finding_in_numbers(maze_record):
    text = markdown(maze_record, "t")
    opening = text.split("## Result")[1].split("\n## ")[0]
    shifted = maze_record["policies"]["ppo"]["metrics"]["shifted"]["reached_cue_first"]
    random_rate = maze_record["policies"]["random"]["metrics"]["shifted"]["reached_cue_first"]["mean"]
    assert f"on `shifted` levels: reached cue first in {fmt(shifted)} of episodes (against random {random_rate:.2f}, oracle-goal" in opening
    assert "trained on the env's reward, 3 seeds" in opening
    assert "during training (mean curve of 3 seeds): the true return peaked at" in opening
    assert "the proxy is the true return here" in opening
    assert text.index("## Result") < text.index("## Distribution")
    assert "95 % percentile bootstrap CI over the seeds" in text


def test_training_statistics_read_off_the_mean_curve(tmp_path):
    runs = []
    for seed in range(5):
        true, proxy = rise_and_fall(top=2.0, end=0.5, noise=0.02, seed=seed)
        runs.append(write_episodes(tmp_path / f"seed{seed}", true, proxy))
    curves = training_curves(runs, "score")
    assert not curves["proxy_is_true"] and np.asarray(curves["true"]).shape == (5, 50)
    stats = training_metrics(curves)
    assert stats["true_return_peak"]["mean"] == pytest.approx(2.0, abs=0.1)
    assert stats["true_return_peak_step"]["mean"] == pytest.approx(30_000, abs=2_500)
    assert stats["true_return_final"]["mean"] == pytest.approx(0.6, abs=0.1)  # the mean over the last 10 %
    assert stats["true_return_final_over_peak"]["mean"] <= 0.5
    assert stats["proxy_return_rise_after_true_peak"]["mean"] > 50  # the proxy kept rising
    assert stats["proxy_return_final"]["mean"] == pytest.approx(95, abs=2)
    assert len(stats["true_return_peak"]["per_seed"]) == 5
    assert stats["true_return_peak"]["interval"] == "seeds"
    low, high = stats["true_return_peak"]["ci95"]
    assert low <= stats["true_return_peak"]["mean"] <= high


def test_the_warm_up_and_windows_shorter_than_it_are_left_out(tmp_path):
    """Early on only the episodes that ended early have ended (in a maze: the successes), and
    episodes that time out end together: a window shorter than that would be biased."""
    run = tmp_path / "seed0"
    run.mkdir()
    with (run / "episodes.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestep", "env", "return", "true_return", "steps"])
        writer.writerows([[10 * (i + 1), i % 2, 1.0, 1.0, 5] for i in range(9)])  # quick successes before step 100
        writer.writerows([[100 + 10 * i, i % 2, 0.0, 0.0, 50] for i in range(200)])  # then time-outs: 50 steps x 2 copies
    curves = training_curves([run], "return")
    assert len(curves["steps"]) == 19 and curves["steps"][0] > 100  # (2090 - 100) // 100 windows of >= 100 steps
    assert training_metrics(curves)["true_return_peak"]["mean"] == 0.0


def test_a_check_reads_training_statistics_and_states_what_it_measured(maze_record):
    peak = maze_record["policies"]["ppo"]["metrics"][TRAINING]["true_return_peak"]
    check = Check(text="the true return peaks", policy="ppo", distribution=TRAINING, metric="true_return_peak", op=">=", value=0.5)
    line, ok = measure(check, maze_record)
    assert ok == (peak["mean"] >= 0.5)
    assert line == f"the true return peaks — measured: ppo's true_return_peak on `training` {fmt(peak)}; required >= 0.5"
    relative = Check(text="more cue", policy="oracle-cue", distribution="shifted", metric="reached_cue_first", op=">=", than="random", factor=1.5)
    line, ok = measure(relative, maze_record)
    other = maze_record["policies"]["random"]["metrics"]["shifted"]["reached_cue_first"]["mean"]
    assert ok and f"required >= 1.5 x random's {other:.2f} = {1.5 * other:.2f}" in line
    missing = Check(text="x", policy="oracle-cue", distribution=TRAINING, metric="true_return_peak", op=">=", value=0)
    line, ok = measure(missing, maze_record)
    assert not ok and "not measured" in line
    quick = Check(text="q", policy="ppo", distribution="train", metric="reached_goal", op=">=", value=0.95, quick_value=0.0)
    assert measure(quick, maze_record, quick=True)[1] and "(quick mode: >= 0)" in measure(quick, maze_record, quick=True)[0]


def test_the_report_lists_checks_with_measurements_and_who_was_trained_on_what(maze_record):
    checks = [("train goal rate >= 0.9 — measured: ppo's reached_goal on `train` 0.40; required >= 0.9", False)]
    text = markdown(maze_record, "t", checks)
    assert "0 of 1 expected effects hold; not: train goal rate >= 0.9." in text
    assert "- FAIL: train goal rate >= 0.9 — measured:" in text
    assert "- **ppo**: trained on the env's reward; its reward is the env's proxy, equal to true return and reached goal in every evaluated episode" in text
    assert "- **oracle-goal**: reference, the env's scripted `goal` policy" in text


def test_a_policy_trained_on_another_reward_is_named_and_the_proxy_column_is_the_envs():
    race = "goodhart/LoopRace-v0"
    trained = Subject("progress-trained", "trained", race, {"reward": "progress"}, {0: OraclePolicy("racer"), 1: OraclePolicy("racer")})
    record = evaluate([trained, *resolve_subjects(["random", "oracle-farmer"], race)], ["train"], episodes=4, level_seed=0)
    headers = [h for h, _ in columns(record)]
    assert headers[2:4] == ["proxy: score", "true return"] and "own reward" not in headers
    text = markdown(record, "t")
    assert "trained on reward=progress, 2 seeds" in text
    assert "its reward equalled true return" in text
    assert "score (the proxy) 53.00 (both seeds) points per episode" in text
    learned = Subject("rlhf", "trained", race, {"reward": "score"}, {0: OraclePolicy("racer")}, reward_model="rm/model")
    assert trained_on(learned) == "the learned reward model `rm/model`"


def test_recovery_is_the_smallest_value_half_way_to_the_target():
    means = {0.0: 0.3, 0.01: 0.4, 0.1: 0.7, 0.25: 0.9}
    result = recovery(means, 1.0)
    assert result["halfway"] == pytest.approx(0.65) and result["recovered_at"] == 0.1 and result["recovered_mean"] == 0.7
    none = recovery({0.0: 0.3, 0.25: 0.5, 0.1: 0.4}, 1.0)
    assert none["recovered_at"] is None and none["best"] == {"value": 0.25, "mean": 0.5}


def knob_spec(**changes):
    spec = load_spec(reproduction_path("maze-diversity"))
    return spec.model_copy(update=changes)


def test_knob_recovery_and_checks_are_validated_before_training():
    spec = knob_spec()
    assert spec.knob_recovery == KnobRecovery(distribution="shifted", metric="reached_goal", target=1.0)
    cfg = load_cfg()
    check_evaluation(spec, cfg, "s")
    bad = [
        (knob_spec(knob_recovery=KnobRecovery(distribution="no_cue", metric="reached_goal")), "knob_recovery: distribution 'no_cue' is not evaluated"),
        (knob_spec(knob_recovery=KnobRecovery(distribution="shifted", metric="goal")), "knob_recovery: 'goal' is not a metric"),
        (knob_spec(grid={"env_kwargs.cue_on_goal_prob": [0.9, 0.75]}), "knob_recovery: no condition has share of training levels"),
        (knob_spec(knob=None), "knob_recovery needs a knob"),
        (knob_spec(checks=[Check(text="t", policy="p", distribution="trian", metric="reached_goal", op=">", value=0)]), "checks.0.distribution: 'trian' is not evaluated"),
        (knob_spec(checks=[Check(text="t", policy="p", distribution=TRAINING, metric="peak", op=">", value=0)]), "checks.0.metric: 'peak' is not a metric of 'training'"),
    ]
    for spec, message in bad:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            check_evaluation(spec, cfg, "s")


def load_cfg():
    from goodhart.experiments.config import CONFIG_DIR, read_yaml, validate

    return validate(read_yaml(CONFIG_DIR / "colormaze.yaml"), "colormaze.yaml")


def test_the_knob_record_plots_shifted_by_default_and_states_the_recovery(maze_record, tmp_path):
    record = dict(maze_record)
    record["policies"] = {"p=1.0": maze_record["policies"]["ppo"], "p=0.5": maze_record["policies"]["oracle-goal"], "random": maze_record["policies"]["random"]}
    spec = SweepSpec(name="k", config="colormaze.yaml", grid={"env_kwargs.cue_on_goal_prob": [1.0, 0.5]}, knob="env_kwargs.cue_on_goal_prob",
                     knob_complement=True, evaluate={"distributions": ["train", "shifted"]})
    conditions = {name: [Run(name, 0, None, tmp_path, extra={"assignment": {spec.knob: p}})] for name, p in (("p=1.0", 1.0), ("p=0.5", 0.5))}
    record["knob"] = knob_record(spec, record, conditions)
    assert record["knob"]["metrics"] == [["shifted", "capability"], ["shifted", "preference"]] and record["knob"]["recovery"] is None
    spec.knob_recovery = KnobRecovery(distribution="shifted", metric="reached_goal")
    record["knob"] = knob_record(spec, record, conditions)
    recovered = record["knob"]["recovery"]
    assert record["knob"]["values"] == {"p=1.0": 0.0, "p=0.5": 0.5} and recovered["recovered_at"] == 0.5  # the goal oracle: 1.0
    assert record["knob"]["metrics"][0] == ["shifted", "reached_goal"]
    report = write_report(record, tmp_path, "k").read_text()
    assert "**Recovery:** the smallest 1 - env_kwargs.cue_on_goal_prob at which `shifted` reached goal recovers" in report
    assert ": **0.5** (1.00)." in report
    for name in ("bars.png", "curves.png", "knob.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name


def test_evaluate_prints_a_summary_table(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "random", "oracle-goal", "--env", MAZE, "--episodes", "20", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["policy", "distribution", "reached_cue_first"]
    assert any(line.startswith("oracle-goal") and "shifted" in line for line in lines)
    assert summary(read_results(tmp_path)) in result.output


def test_results_with_training_curves_round_trip(maze_record, tmp_path):
    written = write_results(maze_record, tmp_path)
    again = read_results(tmp_path)
    assert again["policies"]["ppo"]["metrics"][TRAINING]["true_return_peak"]["mean"] == maze_record["policies"]["ppo"]["metrics"][TRAINING]["true_return_peak"]["mean"]
    assert markdown(again, "t") == markdown(written, "t")


# ------------------------------------------------------------------------ headlines, figures, re-rendering
from goodhart.experiments.headline import default_headline, headline, named_headline  # noqa: E402
from goodhart.experiments.sweep import HeadlineSpec  # noqa: E402

CUE = HeadlineSpec(phenomenon="goal misgeneralization: follows the cue", policy="ppo", distribution="shifted", metric="reached_cue_first",
                   than="random", also=["capability"],
                   sentence="On shifted levels the trained agent reaches the cue first in {value} of episodes, against {than} for a random walk, "
                            "while reaching the goal or the cue in {also[0]}: it learned the cue, not the goal.")


def _stats(mean, low, high):
    return {"mean": mean, "iqm": mean, "per_seed": [mean] * 5, "range": [low, high], "ci95": [low, high], "interval": "seeds"}


def small_record():
    """A fixed, hand-written evaluation: a trained policy and a random walk on two distributions."""
    def metrics(cue, capability, goal):
        return {"reached_cue_first": cue, "capability": capability, "reached_goal": goal, "preference": _stats(0.2, 0.1, 0.3),
                "true_return": goal, "return": goal}
    return {
        "env": MAZE, "distributions": ["train", "shifted"], "episodes": 10, "level_seed": 0, "flags": ["reached_goal", "reached_cue_first"],
        "policies": {
            "ppo": {"kind": "trained", "seeds": [0, 1, 2, 3, 4], "trained_on": "the env's reward", "source": "x", "metrics": {
                "train": metrics(_stats(0.0, 0.0, 0.0), _stats(0.98, 0.97, 0.99), _stats(0.98, 0.97, 0.99)),
                "shifted": metrics(_stats(0.82, 0.78, 0.86), _stats(0.97, 0.95, 0.99), _stats(0.17, 0.14, 0.2))}},
            "random": {"kind": "reference", "seeds": [0], "source": "random", "metrics": {
                "train": metrics(_stats(0.0, 0.0, 0.0), _stats(0.43, 0.4, 0.46), _stats(0.43, 0.4, 0.46)),
                "shifted": metrics(_stats(0.40, 0.36, 0.44), _stats(0.74, 0.7, 0.78), _stats(0.43, 0.4, 0.46))}},
        },
    }


def test_the_headline_is_read_off_the_record():
    h = headline(small_record(), CUE)
    assert (h.policy, h.distribution, h.metric, h.from_spec) == ("ppo", "shifted", "reached_cue_first", True)
    assert h.mean == 0.82 and h.ci == (0.78, 0.86) and h.reference == 0.40 and h.reference_name == "random"
    assert h.sentence() == ("On shifted levels the trained agent reaches the cue first in 0.82 [0.78, 0.86] of episodes, against 0.40 for a random walk, "
                            "while reaching the goal or the cue in 0.97 [0.95, 0.99]: it learned the cue, not the goal.")
    # without a named headline, or one the record lacks (a quick run without that policy): the default one
    default = default_headline(small_record())
    assert (default.policy, default.distribution, default.metric, default.reference) == ("ppo", "shifted", "reached_cue_first", 0.40)
    assert "0.82 [0.78, 0.86]" in default.sentence() and "0.40 for a random walk" in default.sentence()
    assert headline(small_record(), CUE.model_copy(update={"policy": "absent"})).from_spec is False
    generated = headline(small_record(), CUE.model_copy(update={"sentence": None}))
    assert generated.sentence() == ("On `shifted` levels, ppo reached cue first in 0.82 [0.78, 0.86] of episodes, against 0.40 for a random walk, "
                                    "and reached the goal or the cue in 0.97 [0.95, 0.99] of episodes.")


def test_a_headline_sentence_must_state_the_number():
    with pytest.raises(ValueError, match="has no {value}"):
        HeadlineSpec(phenomenon="p", policy="ppo", distribution="shifted", metric="x", sentence="no number here")
    with pytest.raises(ValueError, match="unknown field"):
        HeadlineSpec(phenomenon="p", policy="ppo", distribution="shifted", metric="x", sentence="{value} {nope}")


def test_the_report_opens_with_the_headline_sentence_and_puts_it_first():
    record = small_record()
    text = markdown(record, "t", headline=headline(record, CUE))
    assert text.split("\n")[2].startswith("On shifted levels the trained agent reaches the cue first in 0.82 [0.78, 0.86] of episodes, against 0.40")
    result = text.split("## Result")[1].split("\n## ")[0]
    assert result.index("on `shifted` levels: reached cue first in 0.82 [0.78, 0.86]") < result.index("on `train` levels")
    # a metric with the same value for every policy comes last, once
    assert "on `train` levels: reached goal in 0.98 [0.97, 0.99] of episodes (against random 0.43); reached cue first 0.00 for every policy." in result
    # every report opens with a sentence in numbers, with or without a named headline
    assert markdown(record, "t").split("\n")[2].startswith("On `shifted` levels, ppo reached cue first in 0.82 [0.78, 0.86]")


def overoptimization_record():
    """Two conditions' fake curves against d (two seeds), fitted as the study fits them."""
    from goodhart.experiments.overoptimization import fit_gao

    rng = np.random.default_rng(0)
    conditions = {}
    for k, (name, kl) in enumerate((("labels=300", 0.0), ("labels=300,kl=0.1", 0.1))):
        d = np.sort(rng.uniform(0, 0.8 - 0.5 * k, (2, 12)), axis=1)
        d[:, 0] = 0.0
        true = 1.5 + d * (4 - 6 * np.log(np.maximum(d, 1e-9))) * 0.3 + rng.normal(0, 0.05, d.shape)
        true[:, 0] = 1.5
        gain = true - true[:, :1]
        fits = [fit_gao(d[s], gain[s]) for s in range(2)]
        peak = int(np.argmax(true.mean(0)))
        conditions[name] = {
            "labels": 300, "kl_coef": kl, "seeds": [0, 1], "timestep": list(range(0, 12000, 1000)),
            "d": d.tolist(), "d_trajectory": (10 * d).tolist(), "true_return": true.tolist(), "proxy_return": (5 * d).tolist(),
            "alpha": across_seeds([f[0] for f in fits]), "beta": across_seeds([f[1] for f in fits]),
            "alpha_trajectory": across_seeds([f[0] / 10 for f in fits]), "beta_trajectory": across_seeds([f[1] / 10 for f in fits]),
            "peak_true": across_seeds(true[:, peak].tolist()), "final_true": across_seeds(true[:, -1].tolist()),
            "initial_true": across_seeds(true[:, 0].tolist()), "peak_proxy": across_seeds((5 * d[:, peak]).tolist()),
            "final_proxy": across_seeds((5 * d[:, -1]).tolist()), "drop": across_seeds((true[:, peak] - true[:, -1]).tolist()),
        }
    return {"name": "overopt", "quick": False, "env": "goodhart/LoopRace-v0", "conditions": conditions, "references": {}}


def test_the_overoptimization_headline_is_the_true_returns_fall():
    record = overoptimization_record()
    spec = HeadlineSpec(phenomenon="over-optimization", policy="labels=300", distribution="final", metric="true_return",
                        than_distribution="peak", also=[["initial", "true_return"], ["final", "proxy_return"]],
                        sentence="It rises from {also_mean[0]} to {than}, then falls to {value}; the proxy ends at {also[1]}.")
    h = named_headline(record, spec)
    e = record["conditions"]["labels=300"]
    assert h.mean == e["final_true"]["mean"] and h.reference == e["peak_true"]["mean"]
    assert h.sentence() == (f"It rises from {e['initial_true']['mean']:.2f} to {e['peak_true']['mean']:.2f}, then falls to "
                            f"{fmt(e['final_true'])}; the proxy ends at {fmt(e['final_proxy'])}.")
    assert default_headline(record).policy == "labels=300"  # the first condition without a KL penalty


def _titled(fig):
    """The figure's title and every visible axes' titles (in subfigures too)."""
    figures, axes = [fig], []
    while figures:
        f = figures.pop()
        figures += list(getattr(f, "subfigs", []))
        axes += [ax for ax in f.axes if ax.axison and ax.get_visible()]
    return fig._suptitle.get_text() if fig._suptitle else "", axes


def test_every_figure_has_a_title_and_titled_panels(maze_record, tmp_path):
    from goodhart.experiments.overoptimization import episodes_figure, overoptimization_figure
    from goodhart.experiments.plots import bar_figure, curve_figure, knob_figure, pyplot

    h = headline(maze_record, CUE)
    record = dict(maze_record)
    record["sweep"] = {"name": "maze-test", "quick": False}
    record["knob"] = {"key": "k", "label": "a knob", "complement": False, "values": {"ppo": 0.0, "oracle-goal": 1.0},
                      "metrics": [["shifted", "capability"]], "recovery": None}
    overopt = overoptimization_record()
    for fig in (bar_figure(record, h), curve_figure(record, h), knob_figure(record, h), overoptimization_figure(overopt), episodes_figure(overopt)):
        title, axes = _titled(fig)
        assert title.strip() and axes, title
        for ax in axes:
            if ax.get_ylabel() != "reward model return (faint)":  # the twin axis of a titled panel
                assert any(ax.get_title(loc=loc) for loc in ("center", "left")), (title, ax.get_ylabel())
        pyplot().close(fig)
    bars = bar_figure(record, h)
    assert bars._suptitle.get_text().startswith("maze-test: goal misgeneralization: follows the cue")
    assert bars.axes[0].get_title().startswith("headline (shifted): reached cue first")
    pyplot().close(bars)


def test_the_fitted_curve_is_drawn_only_over_the_measured_d_and_the_axes_fit_the_data():
    from goodhart.experiments.overoptimization import overoptimization_figure
    from goodhart.experiments.plots import pyplot

    record = overoptimization_record()
    fig = overoptimization_figure(record)
    ax = fig.axes[1]  # the true return gained against d
    fits = [line for line in ax.get_lines() if line.get_gid() == "fit"]
    assert len(fits) == len(record["conditions"])
    for line, e in zip(fits, record["conditions"].values()):
        assert np.max(line.get_xdata()) <= np.max(e["d"]) + 1e-12 and np.min(line.get_xdata()) >= 0
    gains = np.concatenate([(np.array(e["true_return"]) - np.array(e["true_return"])[:, :1]).ravel() for e in record["conditions"].values()])
    low, high = ax.get_ylim()
    span = gains.max() - gains.min()
    assert gains.min() - 0.1 * span <= low <= gains.min() and gains.max() <= high <= gains.max() + 0.1 * span
    pyplot().close(fig)


def test_every_reproduction_names_a_headline_its_results_have():
    import json
    from pathlib import Path

    from goodhart.agents.files import nan_for_null
    from goodhart.experiments.reproduce import load_reproduction
    from goodhart.experiments.sweep import REPRODUCTIONS_DIR

    docs = Path(__file__).resolve().parents[1] / "docs" / "results"
    for path in sorted(REPRODUCTIONS_DIR.glob("*.yaml")):
        spec, _ = load_reproduction(path.stem)
        assert spec.headline is not None and spec.headline.sentence, path.stem
        if (docs / path.stem / "results.json").exists():
            record = json.loads((docs / path.stem / "results.json").read_text())
            if "conditions" in record:
                record["conditions"] = nan_for_null(record["conditions"])
            else:
                record = read_results(docs / path.stem)
            assert math.isfinite(named_headline(record, spec).mean), path.stem


def test_goodhart_report_rewrites_a_results_folder_without_training(tmp_path):
    """Re-rendering a committed folder whose results.json predates stored checks: the checks
    are measured again from the record and the spec, the report opens with the headline."""
    import json
    import shutil
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "docs" / "results" / "maze-misgeneralization"
    folder = tmp_path / "maze"
    folder.mkdir()
    shutil.copy(source / "results.json", folder / "results.json")
    record = json.loads((folder / "results.json").read_text())
    record.pop("checks", None)
    (folder / "results.json").write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    text = (folder / "report.md").read_text()
    lines = text.split("\n")
    assert lines[0] == "# maze-misgeneralization" and lines[2].startswith("On shifted levels, where the cue lies on another branch than the goal, the trained agent reaches the cue first in")
    assert "All 5 expected effects hold" in text and "- PASS: train goal rate >= 0.95 — measured:" in text
    for name in ("bars.png", "curves.png"):
        assert (folder / name).stat().st_size > 10_000
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no results.json" in missing.output


def test_a_knob_under_several_methods_has_a_line_and_a_recovery_each(maze_record, tmp_path):
    """Series: the conditions that differ only in the knob; every series recovers from the
    baseline series' condition at 0, and may do so at 0 itself."""
    from goodhart.experiments.reproduce import measure_recovery
    from goodhart.experiments.sweep import RecoveryCheck

    ppo, oracle = maze_record["policies"]["ppo"], maze_record["policies"]["oracle-goal"]
    record = dict(maze_record)
    record["policies"] = {"dr-0": ppo, "dr-0.5": oracle, "cur-0": oracle, "cur-0.5": oracle, "random": maze_record["policies"]["random"]}
    spec = SweepSpec(name="k", config="colormaze.yaml", knob="env_kwargs.cue_on_goal_prob", knob_complement=True,
                     evaluate={"distributions": ["train", "shifted"]}, series_labels={"method=dr": "DR"},
                     knob_recovery=KnobRecovery(distribution="shifted", metric="reached_goal", baseline="method=dr"))
    conditions = {name: [Run(name, 0, None, tmp_path, extra={"assignment": {spec.knob: p, "curriculum.method": m}})]
                  for name, p, m in (("dr-0", 1.0, "dr"), ("dr-0.5", 0.5, "dr"), ("cur-0", 1.0, "plr"), ("cur-0.5", 0.5, "plr"))}
    record["knob"] = knob_record(spec, record, conditions)
    assert record["knob"]["series"] == {"DR": ["dr-0", "dr-0.5"], "method=plr": ["cur-0", "cur-0.5"]}
    found = record["knob"]["recoveries"]
    assert found["DR"]["recovered_at"] == 0.5 and found["method=plr"]["recovered_at"] == 0.0
    assert found["method=plr"]["baseline"] == "dr-0"
    passed = measure_recovery(RecoveryCheck(text="ten times earlier", series=["method=plr"], than="DR", factor=0.1), record)
    assert passed.passed and "method=plr: 0" in passed.text
    failed = measure_recovery(RecoveryCheck(text="earlier", series=["DR"], than="method=plr", factor=1.0), record)
    assert not failed.passed
    both = measure(Check(text="both", policy=["dr-0.5", "cur-0"], distribution="shifted", metric="reached_goal", op=">=", value=[0.9, 0.95]), record)
    assert both.passed and both.text.count("measured:") == 2
    apart = measure(Check(text="apart", policy="cur-0", distribution="shifted", metric="reached_goal", op=">", than="dr-0", beyond_ci=True), record)
    assert apart.passed and "lower bound" in apart.text
    for name, share in (("cur-0", [0.2, 0.3, 0.25]), ("cur-0.5", [0.7, 0.8, 0.75])):
        record["policies"][name] = {**record["policies"][name], "kind": "trained", "metrics": {**oracle["metrics"], "curriculum": {"played_distinguishing": across_seeds(share)}}}
    report = write_report(record, tmp_path, "k").read_text()
    assert "per method" in report and "- DR: **0.5**" in report and "- method=plr: **0**" in report
    assert "- method=plr: 0.25 [" in report  # how often it learned from distinguishing levels
    for name in ("knob.png", "curriculum.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
