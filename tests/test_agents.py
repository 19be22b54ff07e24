"""Reference policies, batched episode runs, and model files that load safely."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from goodhart.agents.files import nan_for_null, write_atomic, write_json
from goodhart.agents.model_io import (
    FORMAT,
    LoadedModel,
    ModelFileError,
    export_sb3_zip,
    load_policy,
    save_model,
)
from goodhart.agents.policies import (
    EpsilonPolicy,
    ModelPolicy,
    OraclePolicy,
    Policy,
    RandomPolicy,
    policy_from_name,
    reference_policies,
    run_episodes,
)
from goodhart.agents.ppo import build_ppo
from goodhart.envs import ENVS, core_class, make_vec

COLOR = "goodhart/ColorMaze-v0"
TINY_NETWORK = {"channels": [8], "strides": [1], "features_dim": 16, "net_arch": []}
OTHER_NETWORK = {"channels": [4], "strides": [1], "features_dim": 8, "net_arch": [8]}


def _train(network: dict, seed: int = 0):
    torch.set_num_threads(1)
    model = build_ppo(
        make_vec(COLOR, 4, seed=seed),
        ppo=dict(n_steps=32, batch_size=64, n_epochs=1),
        network=network,
        seed=seed,
    )
    model.learn(128)
    return model


def _config(network: dict) -> dict:
    return {"env": COLOR, "env_kwargs": {}, "network": network, "ppo": dict(n_steps=32, batch_size=64, n_epochs=1)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny PPO on ColorMaze, saved as ``<dir>/model``."""
    model = _train(TINY_NETWORK)
    stem = tmp_path_factory.mktemp("model") / "model"
    save_model(model, stem, _config(TINY_NETWORK))
    return model, stem


def _probs(policy, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        obs_tensor, _ = policy.obs_to_tensor(obs)
        return policy.get_distribution(obs_tensor).distribution.probs.numpy()


def _batch_of_observations(n: int = 16) -> np.ndarray:
    env = make_vec(COLOR, n, seed=123, distribution="shifted")
    return env.reset()


# ------------------------------------------------------------- policies
@pytest.mark.parametrize("distribution", ["train", "shifted"])
def test_goal_oracle_always_reaches_the_goal_and_random_rarely(distribution):
    oracle = run_episodes(OraclePolicy("goal"), COLOR, {}, distribution=distribution, episodes=200, level_seed=0)
    assert len(oracle) == 200
    assert all(o["reached_goal"] for o in oracle)
    random = run_episodes(RandomPolicy(), COLOR, {}, distribution=distribution, episodes=200, level_seed=0)
    assert len(random) == 200
    assert np.mean([o["reached_goal"] for o in random]) < 0.7


def test_cue_oracle_is_fooled_on_shifted_levels():
    """In training the cue marks the goal, and the oracle reaches both at once; on shifted
    levels it walks to the nearest cell of the cue patch, elsewhere, and the goal is missed."""
    train = run_episodes(OraclePolicy("cue"), COLOR, {}, distribution="train", episodes=100, level_seed=0)
    shifted = run_episodes(OraclePolicy("cue"), COLOR, {}, distribution="shifted", episodes=100, level_seed=0)
    assert np.mean([o["reached_goal"] for o in train]) > 0.9
    assert np.mean([o["reached_cue_first"] for o in shifted]) > 0.8  # 0.9 on these levels
    assert np.mean([o["reached_goal"] for o in shifted]) < 0.2  # 0.1: a few goals lie beside its route


@pytest.mark.parametrize("name", ["random", "oracle-goal"])
def test_same_level_seed_gives_the_same_outcomes(name):
    runs = [
        run_episodes(reference_policies(COLOR)[name], COLOR, {}, distribution="shifted", episodes=50, level_seed=7)
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_different_level_seed_gives_different_levels():
    policy = OraclePolicy("goal")
    a = run_episodes(policy, COLOR, {}, distribution="train", episodes=50, level_seed=0)
    b = run_episodes(policy, COLOR, {}, distribution="train", episodes=50, level_seed=1000)
    assert [o["steps_to_goal"] for o in a] != [o["steps_to_goal"] for o in b]


def test_levels_are_ordered_by_episode_then_copy():
    policy = OraclePolicy("goal")
    kwargs = dict(distribution="train", level_seed=3)
    small = run_episodes(policy, COLOR, {}, episodes=3, max_batch=3, **kwargs)
    more = run_episodes(policy, COLOR, {}, episodes=7, max_batch=3, **kwargs)
    assert len(more) == 7
    assert more[:3] == small  # episode 0 of copies 0, 1, 2 come first
    # copy i's second level is what a single copy seeded level_seed + i plays second
    single = run_episodes(policy, COLOR, {}, episodes=2, max_batch=1, distribution="train", level_seed=4)
    assert more[4] == single[1]


def test_keyword_distribution_wins_over_env_kwargs():
    policy = OraclePolicy("cue")
    a = run_episodes(policy, COLOR, {"distribution": "train"}, distribution="shifted", episodes=40, level_seed=0)
    b = run_episodes(policy, COLOR, {}, distribution="shifted", episodes=40, level_seed=0)
    assert a == b


@pytest.mark.parametrize("env_id", list(ENVS))
def test_reference_policies_run_on_every_env(env_id):
    policies = reference_policies(env_id)
    assert set(policies) == {"random"} | {f"oracle-{name}" for name in core_class(env_id).ORACLES}
    for name, policy in policies.items():
        assert isinstance(policy, Policy)
        assert policy.name == name
        outcomes = run_episodes(policy, env_id, {}, distribution="train", episodes=5, level_seed=0)
        assert len(outcomes) == 5
        assert {"return", "true_return", "steps", *core_class(env_id).OUTCOMES} <= set(outcomes[0])


@pytest.mark.parametrize("env_id", list(ENVS))
def test_reference_probabilities_are_what_act_does(env_id):
    venv = make_vec(env_id, 16, seed=0, distribution="shifted")
    obs = venv.reset()
    for name, policy in reference_policies(env_id).items():
        probs = policy.probabilities(obs, venv)
        assert probs.shape == (16, venv.action_space.n) and np.allclose(probs.sum(axis=1), 1)
        if name != "random":  # an oracle: all of it on the action it takes
            assert np.array_equal(probs.argmax(axis=1), policy.act(obs, venv)) and np.allclose(probs.max(axis=1), 1)


def test_a_policy_name_means_the_same_everywhere(trained, tmp_path):
    """random, oracle-<name>, a policy file, each with @EPS; anything else is one line that
    names the env's reference policies."""
    race = "goodhart/LoopRace-v0"
    assert isinstance(policy_from_name("random", race), RandomPolicy)
    assert isinstance(policy_from_name("oracle-farmer", race), OraclePolicy)
    sloppy = policy_from_name("oracle-racer@0.3", race)
    assert isinstance(sloppy, EpsilonPolicy) and sloppy.epsilon == 0.3 and sloppy.name == "oracle-racer@0.3"
    _, stem = trained
    assert isinstance(policy_from_name(str(stem), COLOR), ModelPolicy)
    for name, says in [
        ("oracle-goal", "has no oracle 'goal'; its reference policies: random, oracle-racer, oracle-farmer"),
        (str(tmp_path / "nothing"), "not a policy file, nor one of goodhart/LoopRace-v0's reference policies: random, oracle-racer"),
        (str(stem), f"a policy of {COLOR}, not {race}"),
        ("random@1.5", "'1.5' after @ is not a share of random actions in [0, 1]"),
        ("oracle-racer@x", "'x' after @ is not a share of random actions"),
    ]:
        with pytest.raises(ValueError) as err:
            policy_from_name(name, race)
        assert str(err.value).startswith(repr(name)) and says in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------- files
def test_json_is_written_whole_with_undefined_numbers_as_null(tmp_path):
    data = {"mean": math.nan, "ci": [math.inf, -math.inf, 0.5], "n": 3, "nested": {"x": (math.nan,)}}
    write_json(tmp_path / "r.json", data)

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    read = json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse)
    assert read == {"mean": None, "ci": [None, None, 0.5], "n": 3, "nested": {"x": [None]}}
    back = nan_for_null(read)
    assert math.isnan(back["mean"]) and back["n"] == 3 and back["ci"][2] == 0.5


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomic(path, crash)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


# ----------------------------------------------------------- model files
def test_saved_model_files(trained):
    _, stem = trained
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["format"] == FORMAT
    assert meta["config"]["network"] == TINY_NETWORK
    assert meta["observation_space"]["shape"] == list(make_vec(COLOR, 1).observation_space.shape)
    assert meta["action_space"] == {"type": "Discrete", "n": 4}
    assert {"torch", "stable_baselines3", "safetensors"} <= set(meta["versions"])
    assert len(meta["weights_sha256"]) == 64
    assert sorted(p.name for p in stem.parent.iterdir()) == ["model.json", "model.safetensors"]


@pytest.mark.parametrize("suffix", ["", ".safetensors", ".json"])
def test_loaded_policy_gives_the_same_action_probabilities(trained, suffix):
    model, stem = trained
    loaded = load_policy(str(stem) + suffix)
    assert isinstance(loaded, LoadedModel)
    assert loaded.env_id == COLOR
    assert loaded.config["network"] == TINY_NETWORK
    assert not loaded.policy.training
    obs = _batch_of_observations()
    np.testing.assert_array_equal(_probs(loaded.policy, obs), _probs(model.policy, obs))
    for name, tensor in model.policy.state_dict().items():
        assert torch.equal(loaded.policy.state_dict()[name], tensor), name


def test_model_policy_runs_and_is_reproducible(trained):
    _, stem = trained
    loaded = load_policy(stem)
    sampled = [
        run_episodes(ModelPolicy(loaded), COLOR, {}, distribution="train", episodes=20, level_seed=5) for _ in range(2)
    ]
    assert len(sampled[0]) == 20
    assert sampled[0] == sampled[1]
    greedy = run_episodes(ModelPolicy(loaded, deterministic=True), COLOR, {}, distribution="train", episodes=20, level_seed=5)
    assert len(greedy) == 20
    venv = make_vec(COLOR, 8, seed=0)
    obs = venv.reset()
    probs = ModelPolicy(loaded, deterministic=True).probabilities(obs, venv)
    np.testing.assert_allclose(probs, _probs(loaded.policy, obs), rtol=1e-6)
    assert np.array_equal(ModelPolicy(loaded, deterministic=True).act(obs, venv), probs.argmax(axis=1))


def test_model_policy_rejects_observations_of_another_shape(trained):
    _, stem = trained
    with pytest.raises(ValueError, match="do not fit the model"):
        run_episodes(ModelPolicy(load_policy(stem)), COLOR, {"view": "full"}, distribution="train", episodes=2, level_seed=0)


def _copy_model(stem: Path, tmp_path: Path) -> Path:
    new = tmp_path / "copy"
    for suffix in (".safetensors", ".json"):
        (tmp_path / f"copy{suffix}").write_bytes(stem.with_suffix(suffix).read_bytes())
    return new


def _rehash(stem: Path) -> None:
    """Make the JSON's sha256 match the weights file, to reach the checks past it."""
    import hashlib

    meta_path = stem.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["weights_sha256"] = hashlib.sha256(stem.with_suffix(".safetensors").read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))


def _assert_rejected(stem: Path, file_name: str, match: str) -> None:
    with pytest.raises(ModelFileError, match=match) as info:
        load_policy(stem)
    assert file_name in str(info.value)


@pytest.mark.parametrize("rehash", [False, True])
def test_corrupt_weights_are_rejected(trained, tmp_path, rehash):
    stem = _copy_model(trained[1], tmp_path)
    weights = stem.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[:8] = b"\xff" * 8  # header length
    weights.write_bytes(bytes(data))
    if rehash:
        _rehash(stem)
    _assert_rejected(stem, "copy.safetensors", "not a readable safetensors file" if rehash else "sha256")


@pytest.mark.parametrize("rehash", [False, True])
def test_truncated_weights_are_rejected(trained, tmp_path, rehash):
    stem = _copy_model(trained[1], tmp_path)
    weights = stem.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-100])
    if rehash:
        _rehash(stem)
    _assert_rejected(stem, "copy.safetensors", "not a readable safetensors file" if rehash else "sha256")


def test_bad_json_is_rejected(trained, tmp_path):
    stem = _copy_model(trained[1], tmp_path)
    stem.with_suffix(".json").write_text('{"format": "goodhart-policy/1", ')
    _assert_rejected(stem, "copy.json", "not valid JSON")


@pytest.mark.parametrize("tag", ["someone-else/1", None])
def test_foreign_format_tag_is_rejected(trained, tmp_path, tag):
    stem = _copy_model(trained[1], tmp_path)
    meta_path = stem.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if tag is None:
        del meta["format"]
    else:
        meta["format"] = tag
    meta_path.write_text(json.dumps(meta))
    _assert_rejected(stem, "copy.json", "format tag")


def test_weights_of_another_network_are_rejected(trained, tmp_path):
    other = _train(OTHER_NETWORK, seed=1)
    other_stem = tmp_path / "other"
    save_model(other, other_stem, _config(OTHER_NETWORK))
    stem = _copy_model(trained[1], tmp_path)
    stem.with_suffix(".safetensors").write_bytes(other_stem.with_suffix(".safetensors").read_bytes())
    _rehash(stem)
    _assert_rejected(stem, "copy.safetensors", "do not fit the network")


@pytest.mark.parametrize("missing", [".json", ".safetensors"])
def test_missing_files_are_rejected(trained, tmp_path, missing):
    stem = _copy_model(trained[1], tmp_path)
    stem.with_suffix(missing).unlink()
    _assert_rejected(stem, f"copy{missing}", "not found")


def test_missing_model_is_rejected(tmp_path):
    _assert_rejected(tmp_path / "nothing", "nothing.json", "not found")


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


# ---------------------------------------------------------------- export
@pytest.mark.parametrize("schedule", [{}, {"ent_coef": 0.03, "ent_coef_final": 0.0}], ids=["constant", "entropy-schedule"])
def test_exported_sb3_zip_loads_with_the_same_policy(trained, tmp_path, schedule):
    from stable_baselines3 import PPO

    model, _ = trained
    stem = tmp_path / "model"
    config = _config(TINY_NETWORK)
    config["ppo"] = {**config["ppo"], **schedule}
    save_model(model, stem, config)
    zip_path = tmp_path / "model.zip"
    export_sb3_zip(stem, zip_path)
    assert zip_path.is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reloaded = PPO.load(zip_path, device="cpu")
    obs = _batch_of_observations()
    np.testing.assert_array_equal(_probs(reloaded.policy, obs), _probs(model.policy, obs))
