"""ColorMaze and CornerMaze: the level distributions and their guarantees, over many levels."""

from __future__ import annotations

import numpy as np
import pytest

from goodhart.envs import ColorMaze, CornerMaze
from goodhart.envs.core.maze import path_distances

LEVELS = 1000


def levels(core_cls, **kwargs):
    core = core_cls(LEVELS, **kwargs)
    core.reset(range(LEVELS), [np.random.default_rng(s) for s in range(LEVELS)])
    return core


def cue_cells(core):
    return [tuple(np.argwhere(core.proxy[i])[0]) for i in range(core.num_envs)]


def run_oracle(core, name):
    for _ in range(core.max_steps):
        core.step(core.oracle_actions(name))
    return core


def test_train_cue_always_on_the_goal():
    core = levels(ColorMaze, distribution="train")
    assert core.proxy.sum(axis=(1, 2)).tolist() == [1] * LEVELS
    assert cue_cells(core) == [tuple(g) for g in core.goal]


def test_shifted_cue_never_on_the_goal_and_far_from_it():
    core = levels(ColorMaze, distribution="shifted")
    off_path = 0
    for i, cue in enumerate(cue_cells(core)):
        assert cue != tuple(core.goal[i]) and cue != tuple(core.pos[i])
        from_goal = path_distances(core.walls[i], tuple(core.goal[i]))
        from_start = path_distances(core.walls[i], tuple(core.pos[i]))
        on_path = from_start[cue] + from_goal[cue] == from_start[tuple(core.goal[i])]
        off_path += not on_path
        if not on_path:
            candidates = (from_start + from_goal != from_start[tuple(core.goal[i])]) & ~core.walls[i]
            assert from_goal[cue] >= min(core.cue_min_distance, from_goal[candidates].max())
    assert off_path >= 0.99 * LEVELS


def test_no_cue_has_no_cue():
    core = levels(ColorMaze, distribution="no_cue")
    assert not core.proxy.any()
    assert core.observe()[:, ColorMaze.CHANNELS.index("cue")].sum() == 0


def test_cue_on_goal_prob_decouples_that_share_of_training_levels():
    core = levels(ColorMaze, cue_on_goal_prob=0.9)
    on_goal = np.mean([cue == tuple(g) for cue, g in zip(cue_cells(core), core.goal)])
    assert 0.87 <= on_goal <= 0.93


@pytest.mark.parametrize("core_cls", [ColorMaze, CornerMaze])
@pytest.mark.parametrize("dist", ["train", "shifted"])
def test_goal_reachable_and_oracle_reaches_it_everywhere(core_cls, dist):
    core = levels(core_cls, distribution=dist)
    for i in range(LEVELS):
        assert path_distances(core.walls[i], tuple(core.pos[i]))[tuple(core.goal[i])] > 0
    run_oracle(core, "goal")
    assert (core.steps_to_goal >= 0).all()


def test_corner_maze_train_goal_in_corner_shifted_anywhere():
    train = levels(CornerMaze, distribution="train")
    assert train.proxy[np.arange(LEVELS), train.goal[:, 0], train.goal[:, 1]].all()
    assert not train.proxy[np.arange(LEVELS), train.pos[:, 0], train.pos[:, 1]].any()
    shifted = levels(CornerMaze, distribution="shifted")
    assert shifted.proxy[np.arange(LEVELS), shifted.goal[:, 0], shifted.goal[:, 1]].mean() < 0.2


def test_outcomes_tell_cue_first_from_goal():
    core = levels(ColorMaze, distribution="shifted")
    starts, goals, cues = core.pos.copy(), core.goal.copy(), cue_cells(core)
    outcomes = run_oracle(core, "cue").outcomes(range(LEVELS))
    for i, outcome in enumerate(outcomes):  # the cue comes first unless the goal is on the way
        from_start = path_distances(core.walls[i], tuple(starts[i]))
        from_goal = path_distances(core.walls[i], tuple(goals[i]))
        goal_on_the_way = from_start[tuple(goals[i])] + from_goal[cues[i]] == from_start[cues[i]]
        assert outcome["reached_cue_first"] == (not goal_on_the_way)
        assert outcome["steps_to_cue"] == from_start[cues[i]]  # the raw core steps on past the goal
    assert np.mean([o["reached_cue_first"] for o in outcomes]) > 0.5
    train = run_oracle(levels(ColorMaze, distribution="train"), "goal")
    assert not any(o["reached_cue_first"] for o in train.outcomes(range(LEVELS)))
    assert all(o["reached_goal"] and o["steps_to_goal"] == o["steps_to_cue"] for o in train.outcomes(range(LEVELS)))


def test_goal_hidden_beyond_visibility_cue_seen_everywhere():
    core = levels(ColorMaze, distribution="shifted", goal_visibility=1, view="full")
    planes = core.observe()
    goal_seen = planes[:, ColorMaze.CHANNELS.index("goal")].sum(axis=(1, 2)) == 1
    near = np.abs(core.goal - core.pos).max(axis=1) <= 1
    np.testing.assert_array_equal(goal_seen, near)
    assert (planes[:, ColorMaze.CHANNELS.index("cue")].sum(axis=(1, 2)) == 1).all()
    assert (core.planes(reveal=True)[:, ColorMaze.CHANNELS.index("goal")].sum(axis=(1, 2)) == 1).all()


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"size": 1}, "size"),
        ({"cue_on_goal_prob": 1.5}, "cue_on_goal_prob"),
        ({"cue_on_goal_prob": -0.1}, "cue_on_goal_prob"),
        ({"goal_visibility": -1}, "goal_visibility"),
        ({"cue_min_distance": 0}, "cue_min_distance"),
        ({"min_goal_distance": -2}, "min_goal_distance"),
    ],
)
def test_color_maze_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ColorMaze(**kwargs)


@pytest.mark.parametrize("kwargs,argument", [({"size": 2}, "size"), ({"corner_size": 0}, "corner_size"), ({"corner_size": 4}, "corner_size")])
def test_corner_maze_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        CornerMaze(**kwargs)
