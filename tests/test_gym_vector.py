"""Gymnasium's vector API: ``gymnasium.make_vec`` gives the batched core of every registered env,
which steps exactly like Gymnasium's own same-step ``SyncVectorEnv`` of single envs."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.utils.env_match import check_environments_match
from gymnasium.vector import AutoresetMode

from goodhart.envs import ENVS
from goodhart.envs.core.gym_vector_env import GridVectorEnv

CASES = [(env_id, dist) for env_id, core in ENVS.items() for dist in core.DISTRIBUTIONS]


def sync(env_id: str, n: int, **kwargs) -> gym.vector.VectorEnv:
    """Gymnasium's own vectorisation of ``n`` single envs, in the same autoreset mode."""
    return gym.make_vec(env_id, n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs)


def random_actions(n: int, steps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(4, size=(steps, n))


@pytest.mark.parametrize("env_id", list(ENVS))
def test_make_vec_picks_the_batched_core_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        envs = gym.make_vec(env_id, 3)
        explicit = gym.make_vec(env_id, 3, vectorization_mode="vector_entry_point")
    assert type(envs) is GridVectorEnv and type(explicit) is GridVectorEnv
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert envs.spec.id == env_id and envs.spec.kwargs["vectorization_mode"] == "vector_entry_point"
    reference = sync(env_id, 3)
    assert envs.observation_space == reference.observation_space and envs.action_space == reference.action_space
    assert envs.single_observation_space == reference.single_observation_space
    assert envs.single_action_space == reference.single_action_space
    obs, info = envs.reset(seed=0)
    assert envs.observation_space.contains(obs) and info == {}


@pytest.mark.parametrize("env_id,dist", CASES)
def test_steps_like_gymnasiums_sync_wrapper_of_single_envs(env_id, dist):
    """Copy i replays a single env seeded s + i through its autoresets: observations, rewards,
    flags, final observations and the ended episodes' infos are identical (dtypes included)."""
    n, steps, seed = 4, 220, 11
    ours, theirs = gym.make_vec(env_id, n, distribution=dist), sync(env_id, n, distribution=dist)
    assert data_equivalence(ours.reset(seed=seed), theirs.reset(seed=seed), exact=True)
    ended = 0
    for actions in random_actions(n, steps):
        obs, reward, terminated, truncated, info = ours.step(actions)
        obs_s, reward_s, terminated_s, truncated_s, info_s = theirs.step(actions)
        assert data_equivalence((obs, reward, terminated, truncated), (obs_s, reward_s, terminated_s, truncated_s), exact=True)
        if "true_reward" in info_s:  # the sync wrapper's top level holds the copies that did not reset
            kept = info_s["_true_reward"]
            np.testing.assert_array_equal(info["true_reward"][kept], info_s["true_reward"][kept])
        done = terminated | truncated
        if done.any():
            ended += int(done.sum())
            for key in ("final_obs", "_final_obs", "final_info", "_final_info"):
                assert data_equivalence(info[key], info_s[key], exact=True), key
            assert data_equivalence(info["outcome"], info_s["final_info"]["outcome"], exact=True)
            np.testing.assert_array_equal(info["true_reward"][done], info_s["final_info"]["true_reward"][done])
        else:
            assert "outcome" not in info and "final_obs" not in info
    assert ended >= 1


@pytest.mark.parametrize("env_id", list(ENVS))
def test_gymnasium_environment_match_check(env_id):
    """Gymnasium's own equivalence check (one copy: it is written for single envs)."""
    check_environments_match(gym.make_vec(env_id, 1), sync(env_id, 1), num_steps=300, seed=3, info_comparison="skip")


@pytest.mark.parametrize("env_id", list(ENVS))
def test_outcome_is_delivered_per_copy(env_id):
    n = 6
    envs = gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec(env_id, n))
    expected = {"return", "true_return", "steps", *ENVS[env_id].OUTCOMES}
    envs.reset(seed=5)
    true_so_far, ended = np.zeros(n), 0
    for actions in random_actions(n, 400, seed=2):
        _, _, terminated, truncated, info = envs.step(actions)
        assert info["true_reward"].shape == (n,) and info["true_reward"].dtype == np.float64 and info["_true_reward"].all()
        true_so_far += info["true_reward"]
        done = terminated | truncated
        if not done.any():
            continue
        ended += int(done.sum())
        outcome = info["outcome"]
        np.testing.assert_array_equal(info["_outcome"], done)
        assert {k for k in outcome if not k.startswith("_")} == expected
        for key in expected:
            np.testing.assert_array_equal(outcome[f"_{key}"], done)
        # Gymnasium's episode statistics (same-step aware) agree with the env's own outcome
        np.testing.assert_allclose(info["episode"]["r"][done], outcome["return"][done])
        np.testing.assert_array_equal(info["episode"]["l"][done], outcome["steps"][done])
        np.testing.assert_allclose(true_so_far[done], outcome["true_return"][done])
        true_so_far[done] = 0.0
    assert ended >= n


@pytest.mark.parametrize("env_id", list(ENVS))
def test_seeding_is_deterministic_and_matches_single_envs(env_id):
    n, seed = 3, 21

    def trajectory(envs, **reset):
        trace = [envs.reset(**reset)[0]]
        for actions in random_actions(n, 120, seed=4):
            obs, reward, terminated, truncated, _ = envs.step(actions)
            trace += [obs, reward, terminated, truncated]
        return trace

    first = trajectory(gym.make_vec(env_id, n), seed=seed)
    assert data_equivalence(first, trajectory(gym.make_vec(env_id, n), seed=seed), exact=True)
    assert data_equivalence(first, trajectory(gym.make_vec(env_id, n), seed=[seed, seed + 1, seed + 2]), exact=True)
    for i in range(n):
        single, _ = gym.make(env_id).reset(seed=seed + i)
        np.testing.assert_array_equal(first[0][i], single)
    if env_id != "goodhart/LoopRace-v0":  # the race's train track is one fixed level
        other = trajectory(gym.make_vec(env_id, n), seed=seed + 100)
        assert not np.array_equal(first[0], other[0])
        envs = gym.make_vec(env_id, n)
        start, _ = envs.reset(seed=seed)
        again, _ = envs.reset()  # no seed: each copy draws its next level
        assert not np.array_equal(start, again)


def test_reset_mask_resets_only_those_copies():
    env_id, n, seed = "goodhart/ColorMaze-v0", 4, 3
    envs = gym.make_vec(env_id, n)
    envs.reset(seed=0)
    for actions in random_actions(n, 5):
        before, *_ = envs.step(actions)
    mask = np.array([False, True, False, True])
    obs, _ = envs.reset(seed=seed, options={"reset_mask": mask})
    np.testing.assert_array_equal(obs[~mask], before[~mask])
    for i in np.flatnonzero(mask):
        np.testing.assert_array_equal(obs[i], gym.make(env_id).reset(seed=seed + int(i))[0])


@pytest.mark.parametrize("env_id", list(ENVS))
def test_render_gives_each_copys_frame_and_close_releases(env_id):
    envs = gym.make_vec(env_id, 2, render_mode="rgb_array")
    envs.reset(seed=8)
    frames = envs.render()
    assert len(frames) == 2
    for i, frame in enumerate(frames):
        single = gym.make(env_id, render_mode="rgb_array")
        single.reset(seed=8 + i)
        np.testing.assert_array_equal(frame, single.render())
    envs.close()
    assert envs.closed


def test_torch_backend_steps_like_numpy():
    pytest.importorskip("torch")
    env_id, n = "goodhart/LoopRace-v0", 5
    cpu, tensors = gym.make_vec(env_id, n), gym.make_vec(env_id, n, backend="torch")
    assert data_equivalence(cpu.reset(seed=1), tensors.reset(seed=1), exact=True)
    for actions in random_actions(n, 220):
        assert data_equivalence(cpu.step(actions), tensors.step(actions), exact=True)


def test_max_episode_steps_is_the_cores_limit():
    envs = gym.make_vec("goodhart/ColorMaze-v0", 2, max_episode_steps=3)
    assert envs.core.max_steps == 3
    envs.reset(seed=0)
    for _ in range(3):
        *_, truncated, info = envs.step(np.zeros(2, dtype=np.int64))
    assert truncated.all() and info["_outcome"].all() and (info["outcome"]["steps"] == 3).all()
    assert gym.make_vec("goodhart/ColorMaze-v0", 2, max_steps=7).core.max_steps == 7
    with pytest.raises(ValueError, match="max_episode_steps"):
        gym.make_vec("goodhart/ColorMaze-v0", 2, max_steps=7, max_episode_steps=5)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda e: e.step(np.zeros(3, dtype=np.int64)), "shape"),
        (lambda e: e.reset(options={"level": 2}), "reset_mask"),
        (lambda e: e.reset(seed=[1, 2, 3]), "seed"),
        (lambda e: e.reset(options={"reset_mask": np.array([1, 0])}), "reset_mask"),
    ],
)
def test_bad_calls_are_one_clear_error(call, match):
    envs = gym.make_vec("goodhart/ColorMaze-v0", 2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        call(envs)


def test_step_before_reset_asks_for_a_reset():
    with pytest.raises(gym.error.ResetNeeded):
        gym.make_vec("goodhart/ColorMaze-v0", 2).step(np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize(
    "kwargs,argument",
    [({"obs_mode": "voxels"}, "obs_mode"), ({"max_steps": 0}, "max_steps"), ({"render_mode": "human"}, "render_mode"), ({"distribution": "nowhere"}, "distribution")],
)
@pytest.mark.parametrize("env_id", list(ENVS))
def test_bad_arguments_name_the_argument(env_id, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        gym.make_vec(env_id, 2, **kwargs)
