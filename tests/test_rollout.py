"""``rollout``: a batched policy driving a core directly replays the envs' own episodes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from goodhart.envs import ENVS, core_class, make_vec
from goodhart.envs.core.rollout import reset_levels, rollout


@pytest.mark.parametrize("env_id", list(ENVS))
def test_autoreset_replays_the_vec_env(env_id):
    """Copy ``i`` seeded ``seed + i`` and reset from its own generator: the SB3 VecEnv's levels,
    its rewards and flags, and (one step later, once reset) its observations."""
    n, seed, length = 4, 11, 150
    venv = make_vec(env_id, n, seed=seed, max_steps=30)
    moves = iter(np.random.default_rng(0).integers(0, venv.action_space.n, size=(length, n)))
    obs, ends = venv.reset(), 0
    steps = rollout(core_class(env_id)(n, max_steps=30), lambda _: next(moves), range(seed, seed + n), autoreset=True)
    for _, step in zip(range(length), steps):
        np.testing.assert_array_equal(step.obs, obs)
        obs, reward, done, infos = venv.step(step.actions)
        np.testing.assert_array_equal(step.reward.astype(np.float32), reward)
        np.testing.assert_array_equal(step.true_reward, [info["true_reward"] for info in infos])
        np.testing.assert_array_equal(step.ended, done)
        assert step.live.all()
        ends += int(done.sum())
    assert ends >= n  # copies were reset, some more than once


@pytest.mark.parametrize("env_id", list(ENVS))
def test_one_episode_per_copy_plays_each_seeds_level(env_id):
    """Without auto-reset, copy ``i`` plays ``gym.make(env_id).reset(seed=seeds[i])``'s episode
    once (a repeated seed gives the same level), ends once, and the steps stop with the last."""
    seeds = [3, 8, 8, 20]
    n = len(seeds)
    core = core_class(env_id)(n, max_steps=40)
    rng = np.random.default_rng(1)
    steps = list(rollout(core, lambda obs: rng.integers(0, len(core.ACTIONS), size=len(obs)), seeds))
    for i, seed in enumerate(seeds):
        env = gym.make(env_id, max_steps=40)
        obs, info = env.reset(seed=seed)
        played = [step for step in steps if step.live[i]]
        for t, step in enumerate(played):
            np.testing.assert_array_equal(step.obs[i], obs)
            obs, reward, terminated, truncated, info = env.step(int(step.actions[i]))
            assert (step.reward[i], step.terminated[i], step.truncated[i]) == (reward, terminated, truncated)
            assert step.ended[i] == (t == len(played) - 1)
        assert "outcome" in info  # the copy's episode ended where the env's did
    assert steps[-1].ended.any() and not steps[-1].live[~steps[-1].ended].any()
    assert all(step.live.any() for step in steps)


def test_reset_levels_wants_a_seed_per_copy():
    with pytest.raises(ValueError, match="3 seeds for a core of 2 copies"):
        reset_levels(core_class("goodhart/ColorMaze-v0")(2), [0, 1, 2])
