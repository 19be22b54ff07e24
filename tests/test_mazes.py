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


def run_oracle(core, name):
    for _ in range(core.max_steps):
        core.step(core.oracle_actions(name))
    return core


@pytest.mark.parametrize("cue_size", [1, 3, 5])
def test_train_cue_is_a_square_centred_on_the_goal(cue_size):
    core = levels(ColorMaze, distribution="train", cue_size=cue_size)
    r = cue_size // 2
    for i in range(LEVELS):
        square = np.zeros_like(core.walls[i])
        (gr, gc) = core.goal[i]
        square[max(gr - r, 0) : gr + r + 1, max(gc - r, 0) : gc + r + 1] = True
        np.testing.assert_array_equal(core.proxy_area[i], square)  # painted on the map, walls too
        goal_only = np.zeros_like(square)
        goal_only[gr, gc] = True
        np.testing.assert_array_equal(core.proxy[i], goal_only)  # it marks the goal: reached there
    planes = core.observe()
    assert (planes[:, ColorMaze.CHANNELS.index("cue")].sum(axis=(1, 2)) >= 1).all()


def _way(walls, start, target_cells):
    """The cells on the way from ``start`` to the nearest of ``target_cells`` (a perfect maze
    has one way), ends included, and its length."""
    from_start = path_distances(walls, tuple(start))
    to_target = path_distances(walls, *map(tuple, target_cells))
    length = from_start[tuple(start)] + to_target[tuple(start)]
    return (from_start + to_target == length) & (from_start >= 0), length


def test_shifted_cue_neither_on_the_way_nor_nearer():
    """Neither target on the way to the other, the cue's square off the goal, and the two as
    far from the start as the maze allows: the first one reached is a choice."""
    core = levels(ColorMaze, distribution="shifted")
    clean = equal = 0
    for i in range(LEVELS):
        walls, start, goal = core.walls[i], core.pos[i], core.goal[i]
        cue = np.argwhere(core.proxy[i])
        to_goal, goal_length = _way(walls, start, [goal])
        to_cue, cue_length = _way(walls, start, cue)
        assert not core.proxy[i][tuple(goal)]
        goal_free = not core.proxy[i][to_goal].any()
        cue_free = not to_cue[tuple(goal)]
        clean += goal_free and cue_free
        equal += goal_free and cue_free and abs(goal_length - cue_length) <= 1
    assert clean >= 0.85 * LEVELS  # the rest: mazes with no cell off both ways
    assert equal >= 0.5 * LEVELS  # measured 0.54 (7x7 mazes have short side branches; 9x9: 0.64)


def test_oracles_bound_the_preference_on_shifted_levels():
    """The goal oracle's goal-first rate is near 1 and the cue oracle's near 0: preference is
    measurable on these levels (it was not when the goal lay on the way to the cue)."""
    goal = run_oracle(levels(ColorMaze, distribution="shifted"), "goal").outcomes(range(LEVELS))
    cue = run_oracle(levels(ColorMaze, distribution="shifted"), "cue").outcomes(range(LEVELS))
    assert np.mean([o["goal_first"] for o in goal]) >= 0.95
    assert np.mean([o["goal_first"] for o in cue]) <= 0.15
    assert all(o["reached_goal"] for o in goal) and all(o["reached_any"] for o in cue)


def test_no_cue_has_no_cue():
    core = levels(ColorMaze, distribution="no_cue")
    assert not core.proxy.any()
    assert core.observe()[:, ColorMaze.CHANNELS.index("cue")].sum() == 0


def test_no_cue_prob_leaves_that_share_of_training_levels_without_a_cue():
    core = levels(ColorMaze, no_cue_prob=0.2)
    uncued = ~core.proxy_area.any(axis=(1, 2))
    assert 0.17 <= uncued.mean() <= 0.23
    cued = [i for i in range(LEVELS) if not uncued[i]]
    assert all(core.proxy[i][tuple(core.goal[i])] for i in cued)
    assert not levels(ColorMaze, no_cue_prob=0.2, distribution="shifted").proxy_area.any(axis=(1, 2)).__invert__().any()


def test_cue_on_goal_prob_decouples_that_share_of_training_levels():
    core = levels(ColorMaze, cue_on_goal_prob=0.9)
    on_goal = np.mean([core.proxy[i][tuple(core.goal[i])] for i in range(LEVELS)])
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
    starts, goals = core.pos.copy(), core.goal.copy()
    cues = [np.argwhere(p) for p in core.proxy]
    outcomes = run_oracle(core, "cue").outcomes(range(LEVELS))
    for i, outcome in enumerate(outcomes):  # the cue comes first unless the goal is on the way
        to_cue, cue_length = _way(core.walls[i], starts[i], cues[i])
        assert outcome["reached_cue_first"] == (not to_cue[tuple(goals[i])])
        assert outcome["steps_to_cue"] == cue_length  # the raw core steps on past the goal
    assert np.mean([o["reached_cue_first"] for o in outcomes]) > 0.85
    train = run_oracle(levels(ColorMaze, distribution="train", cue_size=1), "goal")
    assert not any(o["reached_cue_first"] for o in train.outcomes(range(LEVELS)))
    assert all(o["reached_goal"] and o["steps_to_goal"] == o["steps_to_cue"] for o in train.outcomes(range(LEVELS)))


def test_goal_hidden_beyond_visibility_cue_seen_everywhere():
    core = levels(ColorMaze, distribution="shifted", goal_visibility=1, view="full", cue_size=1)
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
        ({"cue_size": 2}, "cue_size"),
        ({"cue_size": 0}, "cue_size"),
        ({"no_cue_prob": 1.5}, "no_cue_prob"),
    ],
)
def test_color_maze_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ColorMaze(**kwargs)


@pytest.mark.parametrize("kwargs,argument", [({"size": 2}, "size"), ({"corner_size": 0}, "corner_size"), ({"corner_size": 4}, "corner_size")])
def test_corner_maze_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        CornerMaze(**kwargs)
