"""The evaluator on reference policies, its level sets and result files, and a reproduction
end to end at a tiny budget."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from goodhart.agents.policies import OraclePolicy, RandomPolicy, run_episodes
from goodhart.cli import app
from goodhart.experiments.config import ConfigError, EvalConfig
from goodhart.experiments.defaults import DISTRIBUTIONS
from goodhart.experiments.evaluate import evaluate, read_results, resolve_subjects, write_results
from goodhart.experiments.metrics import across_seeds, summarize
from goodhart.experiments.reproduce import check_text, measure, run_sweep
from goodhart.experiments.seeds import EVAL_LEVEL_SEED, HELD_OUT_LEVEL_SEED
from goodhart.experiments.sweep import Check, EvalSpec, load_spec, reproduction_path


def means(record, policy, dist):
    return {k: v["mean"] for k, v in record["policies"][policy]["metrics"][dist].items()}


@pytest.fixture(scope="module")
def maze_record():
    subjects = resolve_subjects(["oracle-goal", "oracle-cue", "random"], "goodhart/ColorMaze-v0")
    return evaluate(subjects, ["train", "shifted", "no_cue"], episodes=200, level_seed=123)


def test_goal_oracle_reaches_every_goal_random_far_lower(maze_record):
    for dist in ("train", "shifted", "no_cue"):
        assert means(maze_record, "oracle-goal", dist)["reached_goal"] == 1.0
        assert means(maze_record, "random", dist)["reached_goal"] < 0.7
    shifted = means(maze_record, "oracle-goal", "shifted")
    # neither target is on the way to the other, except in the rare mazes with no room for it
    assert shifted["reached_cue_first"] <= 0.05 and shifted["preference"] >= 0.95
    cue = means(maze_record, "oracle-cue", "shifted")
    assert cue["capability"] == 1.0 and cue["reached_cue_first"] >= 0.85 and cue["preference"] <= 0.15
    assert cue["preference"] == pytest.approx(1.0 - cue["reached_cue_first"])


def test_capability_and_preference_are_separate(maze_record):
    random = means(maze_record, "random", "shifted")
    capable = random["capability"]
    assert 0 < capable < 1
    assert random["goal_first"] == pytest.approx(random["preference"] * capable)


def test_farming_oracle_beats_the_racer_on_score_and_loses_on_truth():
    subjects = resolve_subjects(["oracle-racer", "oracle-farmer"], "goodhart/LoopRace-v0")
    record = evaluate(subjects, ["train", "shifted"], episodes=8, level_seed=0)
    for dist in ("train", "shifted"):
        racer, farmer = means(record, "oracle-racer", dist), means(record, "oracle-farmer", dist)
        assert farmer["score"] >= 1.5 * racer["score"]
        assert farmer["true_return"] == 0.0 < racer["true_return"] == 3.0
        assert racer["preference"] == 1.0 and farmer["preference"] == 0.0


def test_level_sets_are_fixed_by_the_level_seed():
    def levels(seed):
        return run_episodes(OraclePolicy("goal"), "goodhart/ColorMaze-v0", {}, distribution="shifted", episodes=50, level_seed=seed)

    assert levels(5) == levels(5)
    assert levels(5) != levels(6000)
    random = [run_episodes(RandomPolicy(), "goodhart/ColorMaze-v0", {}, distribution="train", episodes=50, level_seed=5) for _ in range(2)]
    assert random[0] == random[1]


def test_results_files_round_trip_and_are_written_atomically(maze_record, tmp_path):
    write_results(maze_record, tmp_path)
    again = read_results(tmp_path)
    assert again["policies"]["random"]["metrics"]["train"]["reached_goal"]["mean"] == means(maze_record, "random", "train")["reached_goal"]
    json.loads((tmp_path / "results.json").read_text())
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0] == "policy,seed,distribution,metric,value" and len(rows) > 30
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_across_seeds_statistics():
    stats = across_seeds([0.1, 0.5, 0.6, 0.7, 0.9])
    assert stats["mean"] == pytest.approx(0.56)
    assert stats["iqm"] == pytest.approx(np.mean([0.5, 0.6, 0.7]))
    assert stats["ci95"][0] < stats["mean"] < stats["ci95"][1]
    one = across_seeds([0.5], (np.array([1.0, 0.0] * 50), np.ones(100)))
    assert one["ci95"][0] < 0.5 < one["ci95"][1]
    assert math.isnan(summarize([{"steps_to_goal": -1}])["steps_to_goal"])


def test_evaluate_command_writes_report_and_plots(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "random", "oracle-goal", "--env", "goodhart/CornerMaze-v0", "--episodes", "20", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("results.json", "results.csv", "report.md", "bars.png"):
        assert (tmp_path / name).exists(), name
    assert "| oracle-goal |" in (tmp_path / "report.md").read_text()


def test_evaluate_command_rejects_bad_input(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "oracle-goal", "--env", "goodhart/ColorMaze-v0", "--distributions", "mars", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "mars" in result.output
    result = CliRunner().invoke(app, ["evaluate", "no/such/run", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "no/such/run" in result.output


def test_a_reproduction_runs_end_to_end_at_a_tiny_budget(tmp_path, monkeypatch):
    """The pipeline, not the science: train, evaluate, check, report. The output folder is
    given relative to the working directory, as the command's default is; the record's run
    paths are relative to the output folder all the same."""
    spec = load_spec(reproduction_path("maze-misgeneralization"))
    spec.quick.set = {"total_timesteps": 256, "n_envs": 4, "ppo.n_steps": 64, "ppo.batch_size": 64, "ppo.n_epochs": 1, "eval.freq": 0}
    spec.quick.episodes = 16
    spec.quick.seeds = 1
    monkeypatch.chdir(tmp_path.parent)
    report, failed, checks = run_sweep(spec, Path(tmp_path.name), quick=True, workers=1)
    assert failed == [] and report.exists()
    record = read_results(tmp_path)
    assert set(record["policies"]) == {"ppo", "random", "oracle-goal", "oracle-cue"}
    runs = record["policies"]["ppo"]["runs"]
    assert runs == ["runs/ppo/seed0"] and str(tmp_path) not in (tmp_path / "results.json").read_text()
    assert len(checks) == len(spec.checks)
    text = report.read_text()
    assert "## Expected effects" in text and "curves.png" in text
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"].values()] == ["done"]


def test_checks_use_their_quick_threshold_in_quick_mode():
    record = {"policies": {"ppo": {"metrics": {"train": {"reached_goal": across_seeds([0.92])}}}}}
    check = Check(text="train goal rate >= 0.95", policy="ppo", distribution="train", metric="reached_goal", op=">=", value=0.95, quick_value=0.9)
    assert not measure(check, record)[1] and measure(check, record, quick=True)[1]
    assert check_text(check, quick=True) == "train goal rate >= 0.95 (quick mode: >= 0.9)"
    assert check_text(check, quick=False) == "train goal rate >= 0.95"


@pytest.mark.parametrize(
    "content,expected",
    [
        ("name: x\nconfig: colormaze.yaml\nevaluate:\n  episode: 5\n", "evaluate.episode: unknown key; allowed here: ['distributions', 'level_seed', 'deterministic', 'episodes', 'references']"),
        ("name: x\nconfig: colormaze.yaml\nchecks:\n  - {text: t, policy: p, distribution: train, metric: m, op: '=='}\n", "checks.0.op"),
        ("name: x\nconfig: colormaze.yaml\nevaluate:\n  level_seed: -1\n", "evaluate.level_seed: Input should be greater than or equal to 0 (got -1)"),
    ],
)
def test_sweep_files_report_errors_as_run_configs_do(tmp_path, content, expected):
    """One schema base and one way of reporting: the file, the key, what is allowed."""
    bad = tmp_path / "sweep.yaml"
    bad.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_spec(bad)
    assert str(err.value).startswith(f"{bad}: ") and expected in str(err.value) and "\n" not in str(err.value)


def test_evaluation_defaults_are_written_once():
    """The evaluation level set and distributions of runs, sweeps and the evaluator agree."""
    assert EvalConfig().level_seed == EVAL_LEVEL_SEED == inspect.signature(evaluate).parameters["level_seed"].default
    assert EvalConfig().distributions == EvalSpec().distributions == list(DISTRIBUTIONS)


def test_reproductions_evaluate_on_the_held_out_levels():
    """A sweep's evaluation defaults to the held-out levels, and no reproduction sets another."""
    assert EvalSpec().level_seed == HELD_OUT_LEVEL_SEED != EVAL_LEVEL_SEED
    folder = Path(__file__).parents[1] / "experiments" / "reproductions"
    seeds = {path.name: (yaml.safe_load(path.read_text()).get("evaluate") or {}).get("level_seed") for path in folder.glob("*.yaml")}
    assert {name: seed for name, seed in seeds.items() if seed is not None} == {}


def test_a_check_can_compare_a_policy_across_distributions():
    def stat(mean):
        return {"mean": mean, "ci95": [mean, mean]}

    metrics = {"supervised": {"violated": stat(0.1)}, "unsupervised": {"violated": stat(0.8)}}
    record = {"policies": {"ppo": {"metrics": metrics}, "oracle-safe": {"metrics": {"unsupervised": {"violated": stat(0.0)}}}}}
    above = Check(text="more violations unwatched", policy="ppo", distribution="unsupervised", metric="violated", op=">=", than_distribution="supervised", factor=3.0)
    line, ok = measure(above, record)
    assert ok and "on `supervised`" in line
    assert not measure(above.model_copy(update={"factor": 9.0}), record)[1]
    assert measure(above.model_copy(update={"than": "oracle-safe", "than_distribution": None, "op": ">"}), record)[1]
