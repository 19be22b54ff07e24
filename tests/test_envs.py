"""Contract tests that every registered environment and distribution must pass."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import goodhart
from goodhart.envs import ENVS, make_vec
from goodhart.envs.core.arrays import to_numpy

CASES = [(env_id, dist) for env_id, core in ENVS.items() for dist in core.DISTRIBUTIONS]

# SB3's checker assumes its own CnnPolicy for any 3-D uint8 box; ours are {0, 1} planes read
# by our own grid CNN, so these two notes do not apply.
SB3_CNN_NOTES = ("upper and lower bounds are not in [0, 255]", "minimal resolution for an image")


def rollout(env: gym.Env, seed: int, steps: int = 200, action_seed: int = 0):
    """Observations, rewards, flags and infos of ``steps`` random steps (resetting as needed)."""
    actions = np.random.default_rng(action_seed).integers(env.action_space.n, size=steps)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(int(a))
        trace.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, _ = env.reset()
            trace.append(obs)
    return trace


def assert_same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0])
            assert x[1:] == y[1:]
        else:
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("env_id,dist", CASES)
def test_gymnasium_checker(env_id, dist):
    gym_check_env(gym.make(env_id, distribution=dist).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id,dist", CASES)
def test_sb3_checker_has_no_warnings_that_matter(env_id, dist):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(gym.make(env_id, distribution=dist))
    notes = [str(w.message) for w in caught if not any(n in str(w.message) for n in SB3_CNN_NOTES)]
    assert notes == []


@pytest.mark.parametrize("env_id,dist", CASES)
def test_seeded_determinism(env_id, dist):
    first = rollout(gym.make(env_id, distribution=dist), seed=7)
    second = rollout(gym.make(env_id, distribution=dist), seed=7)
    assert_same(first, second)
    other = rollout(gym.make(env_id, distribution=dist), seed=8)
    assert any(not np.array_equal(x, y) for x, y in zip(first[:1], other[:1])) or env_id.endswith("LoopRace-v0")


@pytest.mark.parametrize("env_id,dist", CASES)
def test_info_schema(env_id, dist):
    env = gym.make(env_id, distribution=dist)
    core = env.unwrapped.core
    expected = {"return", "true_return", "steps", *core.OUTCOMES}
    ended = 0
    for step in rollout(env, seed=1, steps=400):
        if not isinstance(step, tuple):
            continue
        _, reward, terminated, truncated, info = step
        assert isinstance(info["true_reward"], float)
        assert isinstance(reward, float)
        if terminated or truncated:
            ended += 1
            assert set(info["outcome"]) == expected
            assert all(isinstance(v, bool | int | float) for v in info["outcome"].values())
        else:
            assert "outcome" not in info
    assert ended >= 1


@pytest.mark.parametrize("env_id,dist", CASES)
def test_pickling_keeps_the_episode(env_id, dist):
    env = gym.make(env_id, distribution=dist)
    env.reset(seed=3)
    env.step(1)
    clone = pickle.loads(pickle.dumps(env))
    for a in (2, 1, 0, 3, 2):
        a_out, b_out = env.step(a), clone.step(a)
        np.testing.assert_array_equal(a_out[0], b_out[0])
        assert a_out[1:] == b_out[1:]


@pytest.mark.parametrize("env_id", list(ENVS))
def test_render_modes(env_id):
    frame_env = gym.make(env_id, render_mode="rgb_array")
    frame_env.reset(seed=0)
    frame = frame_env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 4  # walls, agent, objects, text
    text_env = gym.make(env_id, render_mode="ansi")
    text_env.reset(seed=0)
    text = text_env.render()
    h, w = text_env.unwrapped.core.grid_shape
    assert text.count("\n") == h and "A" in text
    human = gym.make(env_id, render_mode="human")
    human.reset(seed=0)
    human.step(0)
    human.close()


@pytest.mark.parametrize("env_id,dist", CASES)
def test_presentation_hooks(env_id, dist):
    """What demos, plots and reports read about an env: names, colours, headline outcomes,
    target masks and the describe line, all declared by the env itself."""
    core_class = ENVS[env_id]
    names = {"return", "true_return", "steps", *core_class.OUTCOMES}
    assert isinstance(core_class.INTENDED_NAME, str) and core_class.INTENDED_NAME
    assert isinstance(core_class.PROXY_NAME, str) and core_class.PROXY_NAME
    assert core_class.HEADLINE and set(core_class.HEADLINE) <= names
    assert core_class.PROXY_RETURN in names
    assert set(core_class.UNITS) <= names and all(isinstance(u, str) and u for u in core_class.UNITS.values())
    assert set(core_class.TARGET_COLOURS) <= {"intended", "proxy"}
    for colour in core_class.TARGET_COLOURS.values():
        assert len(colour) == 3 and all(0 <= c <= 255 for c in colour)
    n = 8
    venv = make_vec(env_id, n, seed=3, distribution=dist)
    venv.reset()
    core = venv.core
    walls = to_numpy(core.walls)
    for i in range(n):
        masks = core.target_cells(i)
        assert set(masks) <= set(core_class.TARGET_COLOURS)
        for mask in masks.values():
            assert mask.dtype == bool and mask.shape == core.grid_shape
            assert mask.any() and not (mask & walls[i]).any()
    ended = 0
    actions = np.random.default_rng(0).integers(len(core.ACTIONS), size=(300, n))
    for step in actions:
        for outcome in core.outcomes(range(n)):
            line = core.describe(outcome, done=False)
            assert isinstance(line, str) and line
        _, infos = venv.step(step)[2:]
        for info in infos:
            if "outcome" in info:
                ended += 1
                outcome = info["outcome"]
                assert isinstance(core.describe(outcome, done=True), str) and core.describe(outcome, done=True)
                assert outcome[core.PROXY_RETURN] == outcome["return"]  # trained on the env's own proxy by default
    assert ended >= 1


def test_a_level_array_cannot_hide_a_hook():
    class Hiding(ENVS["goodhart/ColorMaze-v0"]):
        def _generate(self, rng):
            return {**super()._generate(rng), "target_cells": np.zeros(self.grid_shape, dtype=bool)}

    with pytest.raises(TypeError, match="target_cells"):
        core = Hiding(1)
        core.reset([0], [np.random.default_rng(0)])


@pytest.mark.parametrize("env_id", list(ENVS))
@pytest.mark.parametrize("view", ["full", "agent"])
def test_rgb_observations(env_id, view):
    env = gym.make(env_id, obs_mode="rgb", view=view, rgb_tile=3)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == env.observation_space.shape
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("env_id", list(ENVS))
def test_agent_view_is_centred(env_id):
    env = gym.make(env_id, view="agent")
    obs, _ = env.reset(seed=5)
    core = env.unwrapped.core
    h, w = core.grid_shape
    agent = obs[core.CHANNELS.index("agent")]
    assert obs.shape[1:] == (2 * h - 1, 2 * w - 1)
    assert agent[h - 1, w - 1] == 1 and agent.sum() == 1


@pytest.mark.parametrize("env_id", list(ENVS))
@pytest.mark.parametrize("kwargs", [{"view": "agent"}, {"view": "full"}, {"view": "agent", "obs_mode": "rgb"}])
def test_observing_some_copies_equals_observing_all(env_id, kwargs):
    """The VecEnv re-observes only the copies it reset: that must match the full batch."""
    vec = make_vec(env_id, 6, seed=2, **kwargs)
    vec.reset()
    for action in np.random.default_rng(0).integers(4, size=(30, 6)):
        vec.step(action)
    indices = [4, 1]
    np.testing.assert_array_equal(vec.core.observe(indices), vec.core.observe()[indices])


@pytest.mark.parametrize("env_id", list(ENVS))
def test_vec_env_equals_single_envs(env_id):
    """Copy i of a VecEnv seeded s replays a single env seeded s + i, through auto-resets."""
    n, steps, seed = 4, 150, 11
    actions = np.random.default_rng(0).integers(4, size=(steps, n))
    vec = make_vec(env_id, n, seed=seed)
    singles = [gym.make(env_id) for _ in range(n)]
    vec_obs = vec.reset()
    for i, env in enumerate(singles):
        obs, _ = env.reset(seed=seed + i)
        np.testing.assert_array_equal(vec_obs[i], obs)
    for t in range(steps):
        vec_obs, rewards, dones, infos = vec.step(actions[t])
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, info = env.step(int(actions[t, i]))
            assert rewards[i] == np.float32(reward) and dones[i] == (terminated or truncated)
            assert infos[i]["true_reward"] == info["true_reward"]
            if dones[i]:
                assert infos[i]["outcome"] == info["outcome"]
                assert infos[i]["TimeLimit.truncated"] == (truncated and not terminated)
                np.testing.assert_array_equal(infos[i]["terminal_observation"], obs)
                obs, _ = env.reset()
            np.testing.assert_array_equal(vec_obs[i], obs)


@pytest.mark.parametrize("env_id", list(ENVS))
def test_torch_backend_equals_numpy(env_id):
    torch = pytest.importorskip("torch")
    n, steps = 8, 120
    actions = np.random.default_rng(1).integers(4, size=(steps, n))
    cpu, tensors = make_vec(env_id, n, seed=3), make_vec(env_id, n, seed=3, backend="torch")
    np.testing.assert_array_equal(cpu.reset(), tensors.reset())
    assert isinstance(tensors.core.pos, torch.Tensor)
    for t in range(steps):
        a, b = cpu.step(actions[t]), tensors.step(actions[t])
        for x, y in zip(a[:3], b[:3]):
            np.testing.assert_array_equal(x, y)
        for p, q in zip(a[3], b[3]):
            assert p.keys() == q.keys()
            for key in p:
                assert np.array_equal(p[key], q[key]) if key == "terminal_observation" else p[key] == q[key]


def test_module_prefix_make_in_a_fresh_interpreter():
    code = "import gymnasium as gym; env = gym.make('goodhart:goodhart/ColorMaze-v0'); print(env.reset(seed=0)[0].shape)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("(")


def test_no_bare_top_level_packages_are_installed(tmp_path):
    code = "import importlib.util as u; print([n for n in ('envs', 'agents', 'experiments') if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"
    assert goodhart.envs.__name__ == "goodhart.envs"


def test_gymnasium_users_do_not_load_torch_or_sb3(tmp_path):
    """``import goodhart.envs`` and ``gymnasium.make_vec`` stay light; only the SB3 view
    (``GridVecEnv``, ``make_vec``) loads stable-baselines3, and with it torch."""
    code = (
        "import sys, numpy as np, gymnasium as gym\n"
        "import goodhart.envs\n"
        "env = gym.make_vec('goodhart/ColorMaze-v0', 2, render_mode='rgb_array')\n"
        "env.reset(seed=0); env.step(np.zeros(2, dtype=np.int64)); env.render()\n"
        "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))\n"
        "from goodhart.envs import GridVecEnv, make_vec\n"
        "assert issubclass(GridVecEnv, __import__('stable_baselines3').common.vec_env.VecEnv)\n"
        "print(type(make_vec('goodhart/ColorMaze-v0', 2, seed=0)).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == ["[]", "GridVecEnv"]


@pytest.mark.parametrize("env_id", list(ENVS))
def test_any_max_steps_holds_through_gymnasium_make(env_id):
    """The core alone ends episodes at ``max_steps``: no registered TimeLimit cuts a longer
    limit short (it would end the episode without an outcome)."""
    core = ENVS[env_id]
    limit = core.DEFAULT_MAX_STEPS + 7
    env = gym.make(env_id, max_steps=limit)
    assert env.spec.max_episode_steps is None
    env.reset(seed=0)
    for step in range(1, limit + 1):
        _, _, terminated, truncated, info = env.step(0)
        if terminated or truncated:
            break
    if not terminated:
        assert step == limit and truncated and "outcome" in info


@pytest.mark.parametrize("env_id", list(ENVS))
def test_unknown_distribution_lists_the_valid_ones(env_id):
    with pytest.raises(ValueError, match="valid ones") as err:
        gym.make(env_id, distribution="nowhere")
    for name in ENVS[env_id].DISTRIBUTIONS:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"obs_mode": "voxels"}, "obs_mode"),
        ({"view": "side"}, "view"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": -5}, "max_steps"),
        ({"render_mode": "vr"}, "render_mode"),
    ],
)
@pytest.mark.parametrize("env_id", list(ENVS))
def test_bad_common_arguments(env_id, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        gym.make(env_id, **kwargs)


def numeric_knobs(core, kind: str) -> list[str]:
    """Arguments of the core and its bases annotated ``kind`` (``int``, ``float``), ``| None`` or not."""
    names = []
    for cls in core.__mro__:
        if "__init__" in vars(cls):
            for p in inspect.signature(cls.__init__).parameters.values():
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and kind in str(p.annotation).split(" | "):
                    names.append(p.name)
    return sorted(set(names))


def test_numeric_knobs_are_found():
    assert numeric_knobs(ENVS["goodhart/ColorMaze-v0"], "int") == [
        "cue_min_distance", "cue_size", "goal_visibility", "max_steps", "min_goal_distance", "num_envs", "rgb_tile", "size",
    ]
    assert numeric_knobs(ENVS["goodhart/ColorMaze-v0"], "float") == ["cue_on_goal_prob", "no_cue_prob"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("env_id", list(ENVS))
def test_numeric_knobs_refuse_nan_and_infinity(env_id, value):
    """One line naming the argument, not numpy's or Python's own error (``cannot convert
    float NaN to integer``, ``OverflowError``), and never an infinite reward."""
    core = ENVS[env_id]
    for name in numeric_knobs(core, "int") + numeric_knobs(core, "float"):
        with pytest.raises(ValueError, match=f"^{name}=") as err:
            core(**{name: value})
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("env_id", list(ENVS))
def test_oracles_on_torch_equal_numpy(env_id):
    """Oracles whose targets change during the episode are searched for on the backend's arrays."""
    pytest.importorskip("torch")
    n = 6
    for name in ENVS[env_id].ORACLES:
        for dist in ENVS[env_id].DISTRIBUTIONS:
            cpu, tensors = make_vec(env_id, n, seed=4, distribution=dist), make_vec(env_id, n, seed=4, distribution=dist, backend="torch")
            cpu.reset(), tensors.reset()
            for _ in range(60):
                a, b = cpu.core.oracle_actions(name), tensors.core.oracle_actions(name)
                np.testing.assert_array_equal(a, b.cpu().numpy())
                cpu.step(a), tensors.step(b.cpu().numpy())

