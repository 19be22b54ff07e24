"""Level curricula: the env's curriculum hooks, the level buffer, the regret scores, PLR⊥'s
update gate, ACCEL's edits and resuming a curriculum where it stopped."""

from __future__ import annotations

import numpy as np
import pytest
from goodhart.agents.curriculum.buffer import LevelBuffer
from goodhart.agents.curriculum.scores import LevelRollout, score_levels
from goodhart.agents.checkpoint import list_checkpoints, read_checkpoint
from goodhart.envs import core_class, make_vec
from goodhart.envs.core.grid import declares
from goodhart.envs.core.maze import path_distances
from goodhart.experiments.config import ConfigError, validate
from goodhart.experiments.train import CURRICULUM_KEY, train

COLOR = "goodhart/ColorMaze-v0"


def levels_of(count: int, distribution: str = "train", seed: int = 0, env_id: str = COLOR) -> dict[str, np.ndarray]:
    return core_class(env_id)(1, distribution=distribution).generate_levels([np.random.default_rng([seed, k]) for k in range(count)])


def small_run(tmp_path, name: str, **curriculum) -> tuple:
    data = {
        "env": COLOR, "n_envs": 4, "total_timesteps": 640, "checkpoint_freq": 128, "seed": 3,
        "ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
        "network": {"channels": [4], "strides": [1], "features_dim": 16, "net_arch": []},
        "eval": {"freq": 0}, "curriculum": curriculum,
    }
    return validate(data, "test"), tmp_path / name


# ------------------------------------------------------------------ the env's hooks
def test_a_level_played_back_is_the_level_stored():
    venv = make_vec(COLOR, 3, seed=5)
    first = venv.reset()
    stored = venv.core.level_arrays()
    venv.step_async(np.zeros(3, dtype=np.int64))
    venv.step_wait()
    again = venv.play_levels(stored)
    np.testing.assert_array_equal(again, first)
    for key, values in venv.core.level_arrays().items():
        np.testing.assert_array_equal(values, stored[key])


def test_a_held_level_is_replayed_after_every_episode():
    venv = make_vec(COLOR, 2, seed=0)
    venv.reset()
    held = levels_of(2, "shifted")
    venv.play_levels(held)
    oracle = venv.core
    for _ in range(150):  # the goal oracle ends an episode every few steps
        venv.step_async(oracle.oracle_actions("goal"))
        venv.step_wait()
        for key, values in oracle.level_arrays().items():
            np.testing.assert_array_equal(values, held[key])
    venv.release_levels()
    venv.step_async(np.zeros(2, dtype=np.int64))
    venv.step_wait()


def test_the_optimal_return_is_the_shortest_paths_discounted():
    levels = levels_of(20)
    core = core_class(COLOR)(1)
    got = core.optimal_return(levels, 0.9)
    for k in range(20):
        d = path_distances(levels["walls"][k], tuple(levels["goal"][k]))[tuple(levels["pos"][k])]
        assert got[k] == pytest.approx(0.9 ** (d - 1))


def test_distinguishing_levels_are_those_with_the_cue_away_from_the_goal():
    core = core_class(COLOR)(1)
    assert not core.distinguishing(levels_of(30, "train")).any()
    assert core.distinguishing(levels_of(30, "shifted")).all()


def test_edits_keep_the_level_whole():
    core = core_class(COLOR)(1)
    rng = np.random.default_rng(0)
    levels = levels_of(10)
    for k in range(10):
        level = {key: values[k] for key, values in levels.items()}
        for name in core.EDITS:
            edited = core.edit_level(level, name, rng)
            assert set(edited) == set(level)
            reach = path_distances(edited["walls"], tuple(edited["pos"]))
            assert np.all((reach >= 0) | edited["walls"]), name  # every free cell reachable
            assert reach[tuple(edited["goal"])] >= core.min_goal_distance or name == "toggle_wall"
    moved = [core.distinguishing({k: v[None] for k, v in core.edit_level({key: values[0] for key, values in levels.items()}, "move_cue", rng).items()})[0] for _ in range(20)]
    assert any(moved)  # moving the cue makes distinguishing levels from a training level


def test_an_env_without_the_hooks_says_so():
    race = core_class("goodhart/LoopRace-v0")
    assert not declares(race, "optimal_return") and declares(core_class(COLOR), "optimal_return")
    with pytest.raises(ConfigError, match="does not compute"):
        validate({"env": "goodhart/LoopRace-v0", "curriculum": {"method": "plr", "score": "oracle"}}, "test")
    with pytest.raises(ConfigError, match="declares no edits"):
        validate({"env": "goodhart/LoopRace-v0", "curriculum": {"method": "accel", "score": "pvl"}}, "test")
    with pytest.raises(ConfigError, match="not edits of ColorMaze"):
        validate({"env": COLOR, "curriculum": {"method": "accel", "edits": ["teleport"]}}, "test")


# ------------------------------------------------------------------ buffer and scores
def test_the_buffer_keeps_the_highest_scores_and_samples_by_rank():
    buffer = LevelBuffer(3)
    levels = levels_of(5)
    admitted = buffer.admit(levels, np.array([0.1, 0.5, 0.2, 0.9, 0.05]), np.zeros(5), np.zeros(5, bool), clock=0)
    assert admitted == 4 and buffer.size == 3
    assert sorted(buffer.scores) == pytest.approx([0.2, 0.5, 0.9])
    stored = buffer.take(np.array([int(np.argmax(buffer.scores))]))
    np.testing.assert_array_equal(stored["walls"][0], levels["walls"][3])
    p = buffer.probabilities(temperature=0.3, staleness=0.0, clock=0)
    assert p[np.argmax(buffer.scores)] > 0.85 and p.sum() == pytest.approx(1.0)
    assert len(set(buffer.sample(np.random.default_rng(0), 3, 0.3, 0.3, 1))) == 3  # a batch of distinct levels


def test_the_oracle_regret_of_the_goal_oracle_is_zero():
    levels = levels_of(8, "shifted")
    venv = make_vec(COLOR, 8, seed=0)
    venv.reset()
    venv.play_levels(levels)
    gamma, t = 0.99, np.zeros(8, dtype=int)
    returns, running = [[] for _ in range(8)], np.zeros(8)
    while min(len(r) for r in returns) < 2:
        venv.step_async(venv.core.oracle_actions("goal"))
        _, _, dones, infos = venv.step_wait()
        running += gamma ** t * np.array([i["true_reward"] for i in infos])
        t += 1
        for i in np.flatnonzero(dones):
            returns[i].append(running[i])
            running[i], t[i] = 0.0, 0
    rollout = LevelRollout(np.zeros((1, 8)), np.zeros((1, 8)), returns, returns, [[True] * len(r) for r in returns])
    optimal = venv.core.optimal_return(levels, gamma)
    np.testing.assert_allclose(score_levels("oracle", rollout, optimal), 0.0, atol=1e-12)
    np.testing.assert_allclose(score_levels("learnability", rollout), 0.0)


# ------------------------------------------------------------------ training
def test_plr_robust_learns_only_from_replayed_levels(tmp_path):
    cfg, folder = small_run(tmp_path, "plr", method="plr", score="pvl", replay_prob=0.5)
    train(cfg, folder, progress_bar=False)
    import csv

    rows = list(csv.DictReader((folder / "curriculum.csv").open()))
    kinds = [r["kind"] for r in rows]
    assert "new" in kinds and "replay" in kinds
    assert all(r["learned"] == ("1" if r["kind"] == "replay" else "0") for r in rows)
    state = read_checkpoint(list_checkpoints(folder / "checkpoints")[-1])
    assert state["n_updates"] == kinds.count("replay")  # one epoch per learned rollout, none on the others


def test_accel_plays_the_replayed_levels_edited(tmp_path):
    cfg, folder = small_run(tmp_path, "accel", method="accel", score="oracle", replay_prob=1.0)
    train(cfg, folder, progress_bar=False)
    import csv

    kinds = [r["kind"] for r in csv.DictReader((folder / "curriculum.csv").open())]
    assert kinds[0] == "new" and all(b == "edit" for a, b in zip(kinds, kinds[1:]) if a == "replay")


def test_a_resumed_curriculum_continues_its_buffer(tmp_path):
    whole_cfg, whole = small_run(tmp_path, "whole", method="accel", score="oracle")
    train(whole_cfg, whole, progress_bar=False)
    part_cfg, part = small_run(tmp_path, "part", method="accel", score="oracle")
    train(part_cfg.model_copy(update={"total_timesteps": 320}), part, progress_bar=False)
    assert CURRICULUM_KEY in read_checkpoint(list_checkpoints(part / "checkpoints")[-1])
    train(part_cfg, part, resume=True, progress_bar=False)
    assert (whole / "curriculum.csv").read_text() == (part / "curriculum.csv").read_text()
    assert (whole / "model.safetensors").read_bytes() == (part / "model.safetensors").read_bytes()


def test_dr_only_counts_it_trains_exactly_as_without_a_curriculum(tmp_path):
    counted_cfg, counted = small_run(tmp_path, "dr", method="dr")
    train(counted_cfg, counted, progress_bar=False)
    train(counted_cfg.model_copy(update={"curriculum": None}), tmp_path / "plain", progress_bar=False)
    assert (counted / "model.safetensors").read_bytes() == (tmp_path / "plain" / "model.safetensors").read_bytes()
    assert (counted / "curriculum.csv").is_file() and not (tmp_path / "plain" / "curriculum.csv").exists()
