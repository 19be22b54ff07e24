"""The red team: level sets on disk, policies played on given levels, oracle regret, the search
itself, and the commands that play what it found."""

from __future__ import annotations

import json

import numpy as np
import pytest
from goodhart.agents import pretrained
from goodhart.agents.policies import OraclePolicy, run_episodes, run_levels
from goodhart.cli import app
from goodhart.envs import core_class
from goodhart.envs.core.level_sets import LevelSetError, load_level_set, save_level_set
from goodhart.envs.core.maze import path_distances
from goodhart.experiments.evaluate import evaluate, reference_subject
from goodhart.experiments.redteam import RedTeamError, RedTeamSpec, run_redteam
from typer.testing import CliRunner

COLOR = "goodhart/ColorMaze-v0"
CORNER = "goodhart/CornerMaze-v0"


def levels_of(env_id: str, count: int, distribution: str = "shifted", seed: int = 0) -> dict[str, np.ndarray]:
    core = core_class(env_id)(1, distribution=distribution)
    return core.generate_levels([np.random.default_rng([seed, k]) for k in range(count)])


def goodhart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


# ------------------------------------------------------------------ level sets
def test_a_level_set_round_trips_bit_for_bit(tmp_path):
    levels = levels_of(COLOR, 5)
    per_level = {"score": [0.5, 0.25, 0.0, 1.0, 0.125], "origin": ["generated"] * 5}
    save_level_set(tmp_path / "set", COLOR, {"cue_size": 3}, levels, per_level, {"note": "hand-made"})
    loaded = load_level_set(tmp_path / "set")
    assert loaded.env_id == COLOR and loaded.env_kwargs == {"cue_size": 3} and loaded.count == 5
    assert loaded.per_level == per_level and loaded.meta == {"note": "hand-made"} and loaded.name == "levels:set"
    assert list(loaded.levels) == list(levels)
    for key, values in levels.items():
        assert loaded.levels[key].dtype == values.dtype
        np.testing.assert_array_equal(loaded.levels[key], values)


def test_a_broken_level_set_fails_with_one_line(tmp_path):
    with pytest.raises(LevelSetError, match="not a level set .no levels.npz"):
        load_level_set(tmp_path)
    levels = levels_of(COLOR, 3)
    with pytest.raises(LevelSetError, match="different lengths"):
        save_level_set(tmp_path / "a", COLOR, {}, {**levels, "goal": levels["goal"][:2]})
    save_level_set(tmp_path / "b", COLOR, {}, {**levels, "extra": np.zeros(3)})
    with pytest.raises(LevelSetError, match="are not goodhart/ColorMaze-v0's") as err:
        load_level_set(tmp_path / "b")
    assert "\n" not in str(err.value)
    save_level_set(tmp_path / "c", COLOR, {}, levels)
    np.savez(tmp_path / "c" / "levels.npz", **{**levels, "goal": levels["goal"][:2]})
    with pytest.raises(LevelSetError, match="different lengths"):
        load_level_set(tmp_path / "c")


# ------------------------------------------------------------- playing levels
def test_run_episodes_plays_exactly_the_given_levels_in_order():
    """The goal oracle reaches the goal on every level, each in its own shortest path length:
    outcome k is level k's, across batches (max_batch smaller than the set)."""
    levels = levels_of(COLOR, 23)
    outcomes = run_episodes(OraclePolicy("goal"), COLOR, {}, distribution="train", episodes=1, level_seed=0,
                            max_batch=8, levels=levels)
    distances = [path_distances(w, tuple(g))[tuple(p)] for w, g, p in zip(levels["walls"], levels["goal"], levels["pos"])]
    assert len(outcomes) == 23 and all(o["reached_goal"] for o in outcomes)
    assert [o["steps_to_goal"] for o in outcomes] == distances


def test_levels_of_another_size_are_refused():
    with pytest.raises(LevelSetError, match="another size"):
        run_episodes(OraclePolicy("goal"), COLOR, {"size": 4}, distribution="train", episodes=1, level_seed=0, levels=levels_of(COLOR, 2))


@pytest.mark.parametrize("env_id", [COLOR, CORNER])
def test_the_goal_oracles_regret_is_zero(env_id):
    levels = levels_of(env_id, 40)
    core = core_class(env_id)(1)
    played = run_levels(OraclePolicy("goal"), env_id, {}, levels, episodes=2, gamma=0.97, max_batch=16)
    regret = core.optimal_return(levels, 0.97)[:, None] - played.discounted
    assert np.abs(regret).max() < 1e-9 and played.discounted.min() > 0


# ------------------------------------------------------------------ red team
def test_redteam_finds_levels_and_writes_them(tmp_path):
    spec = RedTeamSpec(str(pretrained.path("colormaze")), budget=40, episodes=2, edit_rounds=1, children=2, keep=4, seed=3)
    result = run_redteam(spec, tmp_path / "a")
    for name in ("redteam.json", "redteam.md", "levels/levels.npz", "levels/levels.json"):
        assert (tmp_path / "a" / name).is_file(), name
    record = json.loads((tmp_path / "a" / "redteam.json").read_text())
    assert set(record["groups"]) == {"random", "random edits", "found"}
    assert record["outcomes"] == ["reached_any", "goal_first", "reached_cue_first", "reached_goal"]
    found = load_level_set(result.level_set)
    assert found.count == 4 and found.env_id == COLOR
    scores = found.per_level["score"]
    assert scores == sorted(scores, reverse=True) and min(scores) >= max(0.0, record["groups"]["random"]["regret"]["mean"])
    assert found.per_level["distinguishing"] == core_class(COLOR)(1).distinguishing(found.levels).tolist()
    again = run_redteam(spec, tmp_path / "b")  # reproducible from the seed
    for key, values in found.levels.items():
        np.testing.assert_array_equal(load_level_set(again.level_set).levels[key], values)
    assert "| found | 4 |" in result.report.read_text()


def test_redteam_refuses_oracle_regret_without_an_optimal_return(tmp_path):
    race = str(pretrained.path("race_score"))
    with pytest.raises(RedTeamError, match="does not compute a level's optimal return") as err:
        run_redteam(RedTeamSpec(race, budget=4, keep=2), tmp_path)
    assert "\n" not in str(err.value)
    code, out = goodhart("redteam", race, "--budget", "4", "--keep", "2", "--out", str(tmp_path))
    assert code == 2 and out.startswith("error: ") and out.count("\n") == 1, out


def test_redteam_command_and_playing_what_it_found(tmp_path, monkeypatch):
    code, out = goodhart("redteam", str(pretrained.path("colormaze")), "--budget", "16", "--episodes", "1", "--edit-rounds", "0",
                         "--keep", "2", "--set", "env_kwargs.cue_size=1", "--out", str(tmp_path / "rt"))
    assert code == 0 and "found: 2 levels" in out and "report: " in out, out
    assert load_level_set(tmp_path / "rt" / "levels").env_kwargs["cue_size"] == 1
    code, out = goodhart("redteam", str(pretrained.path("colormaze")), "--set", "ppo.gamma=0.5", "--out", str(tmp_path / "x"))
    assert code == 2 and "only env knobs" in out
    # The evaluator and the demos play the level set, in order.
    level_set = load_level_set(tmp_path / "rt" / "levels")
    subject = reference_subject("oracle-goal", COLOR, {})
    record = evaluate([subject], [], episodes=3, level_sets={level_set.name: level_set.levels})
    assert record["distributions"] == ["levels:rt"]
    assert record["policies"]["oracle-goal"]["metrics"]["levels:rt"]["reached_goal"]["mean"] == 1.0
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    code, out = goodhart("record", COLOR, "--levels", str(tmp_path / "rt" / "levels"), "--episodes", "2", "--out", str(tmp_path / "f.gif"))
    assert code == 0 and "episode 2 (level 1 of levels:rt)" in out, out
