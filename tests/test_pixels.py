"""Pixels (``obs_mode="rgb"``) as a training observation: train with periodic evaluation,
evaluate, record a demo, save and load, export, and the network's input in [0, 1]. Resume of
a pixel run and the checks of network.tile are in tests/test_training.py, beside the planes'."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from goodhart.agents.model_io import export_sb3_zip, load_policy, save_model
from goodhart.agents.networks import GridCNN, network_input
from goodhart.agents.policies import ModelPolicy
from goodhart.agents.ppo import GridPPO, build_ppo
from goodhart.cli import app
from goodhart.envs import make_vec
from goodhart.experiments.config import TILE_CHANNELS

COLOR = "goodhart/ColorMaze-v0"
RGB = {"obs_mode": "rgb"}
NETWORK = {"channels": [8], "strides": [1], "features_dim": 16, "net_arch": [], "tile": 4, "tile_channels": 4}


def goodhart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def observations(n: int = 16, **kwargs) -> np.ndarray:
    return make_vec(COLOR, n, seed=123, distribution="shifted", **RGB, **kwargs).reset()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny pixel run of ``goodhart train``, evaluated at 512 steps and at the end (1024)."""
    out = tmp_path_factory.mktemp("runs")
    code, text = goodhart(
        "train", "--env", COLOR, "--set", "env_kwargs.obs_mode=rgb", "--timesteps", "1024", "--out", str(out),
        "--set", "eval.freq=512", "--set", "eval.episodes=8", "--set", "n_envs=4", "--set", "ppo.n_steps=64",
        "--set", "ppo.batch_size=128", "--set", "ppo.n_epochs=2", "--no-progress",
    )
    assert code == 0, text
    return out / "colormaze" / "seed0"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny PPO on pixels, in memory and saved as ``<dir>/model``."""
    torch.set_num_threads(1)
    ppo = {"n_steps": 32, "batch_size": 64, "n_epochs": 1}
    model = build_ppo(make_vec(COLOR, 4, seed=0, **RGB), ppo=ppo, network=NETWORK, seed=0)
    model.learn(128)
    stem = tmp_path_factory.mktemp("model") / "model"
    save_model(model, stem, {"env": COLOR, "env_kwargs": RGB, "network": NETWORK, "ppo": ppo})
    return model, stem


def test_pixel_run_evaluates_periodically_and_at_the_end(run):
    rows = (run / "eval.csv").read_text().splitlines()
    steps = [row.split(",")[:2] for row in rows[1:]]
    assert steps == [[str(t), d] for t in (512, 1024) for d in ("train", "shifted", "no_cue")]
    network = load_policy(run / "model").config["network"]
    assert (network["tile"], network["tile_channels"]) == (4, TILE_CHANNELS)  # the env's rgb_tile, resolved


def test_pixel_model_is_evaluated_beside_random(run, tmp_path):
    code, out = goodhart("evaluate", str(run), "random", "--episodes", "10", "--distributions", "train", "--out", str(tmp_path))
    assert code == 0, out
    report = (tmp_path / "report.md").read_text()
    assert "| colormaze | 1 |" in report and "| random |" in report


def test_pixel_policy_is_recorded(run, tmp_path):
    code, out = goodhart("record", "maze", "--model", str(run / "model"), "--out", str(tmp_path / "rgb.gif"),
                         "--max-steps", "4", "--episodes", "1", "--scale", "0.4")
    assert code == 0, out
    assert "5 frames" in out and (tmp_path / "rgb.gif").stat().st_size > 0


def test_saved_pixel_model_acts_as_the_trained_one(trained):
    model, stem = trained
    loaded = load_policy(stem)
    assert loaded.policy.observation_space.shape == make_vec(COLOR, 1, **RGB).observation_space.shape == (52, 52, 3)
    obs = observations()
    with torch.no_grad():
        tensor, _ = model.policy.obs_to_tensor(obs)
        in_training = model.policy.get_distribution(tensor).distribution.probs.numpy()
    np.testing.assert_array_equal(ModelPolicy(loaded).probabilities(obs, make_vec(COLOR, len(obs), **RGB)), in_training)
    live = type(loaded)(policy=model.policy, config=loaded.config, env_id=COLOR)
    for deterministic in (True, False):
        actions = []
        for policy in (ModelPolicy(loaded, deterministic), ModelPolicy(live, deterministic)):
            policy.reset(5)
            actions.append(policy.act(obs, make_vec(COLOR, len(obs), **RGB)))
        np.testing.assert_array_equal(*actions)


def test_exported_pixel_zip_predicts_on_raw_observations(trained, tmp_path):
    from stable_baselines3 import PPO

    _, stem = trained
    export_sb3_zip(stem, tmp_path / "model.zip")
    obs = observations()
    expected = ModelPolicy(load_policy(stem)).probabilities(obs, make_vec(COLOR, len(obs), **RGB))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = PPO.load(tmp_path / "model.zip", device="cpu")
        ours = GridPPO.load(tmp_path / "model.zip", env=make_vec(COLOR, 2, **RGB), device="cpu")
    for reloaded in (plain, ours):
        with torch.no_grad():
            tensor, _ = reloaded.policy.obs_to_tensor(obs)
            np.testing.assert_array_equal(reloaded.policy.get_distribution(tensor).distribution.probs.numpy(), expected)
    ours.learn(64)  # trains on the env's pixels as they come


def test_network_input_of_pixels_is_in_unit_range_channels_first():
    obs = observations()
    x = network_input(torch.from_numpy(obs), pixels=True)
    assert x.shape == (16, 3, 52, 52) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(x.numpy(), obs.transpose(0, 3, 1, 2) / np.float32(255))


def test_first_layer_sees_pixels_in_unit_range_and_cells_in_its_output(trained):
    model, _ = trained
    cnn = model.policy.features_extractor
    assert isinstance(cnn, GridCNN) and cnn.pixels
    seen = {}
    cnn.cnn[0].register_forward_pre_hook(lambda _m, args: seen.update(x=args[0]))
    cnn.cnn[0].register_forward_hook(lambda _m, _a, out: seen.update(y=out))
    with torch.no_grad():
        model.policy.obs_to_tensor(observations())  # warm SB3's conversion path
        tensor, _ = model.policy.obs_to_tensor(observations())
        model.policy.get_distribution(tensor)
    assert 0.0 <= seen["x"].min() and seen["x"].max() <= 1.0 and seen["x"].max() > 0.9  # the background is near white
    assert seen["y"].shape[-2:] == (13, 13)  # one output per cell of the 13x13 agent-centred view


def test_planes_are_fed_unchanged():
    obs = make_vec(COLOR, 4, seed=0).reset()
    assert np.array_equal(network_input(torch.from_numpy(obs), pixels=False).numpy(), obs)


def test_pixel_network_needs_a_tile_and_planes_take_none():
    pixels, planes = make_vec(COLOR, 1, **RGB).observation_space, make_vec(COLOR, 1).observation_space
    with pytest.raises(ValueError, match="need tile="):
        GridCNN(pixels)
    with pytest.raises(ValueError, match="for pixel observations"):
        GridCNN(planes, tile=4)


def test_pixel_config_differs_from_the_planes_config_only_in_what_the_agent_sees():
    """colormaze_rgb.yaml is colormaze.yaml on pixels: a change to one must reach the other."""
    from goodhart.experiments.config import CONFIG_DIR, read_yaml, validate

    planes = validate(read_yaml(CONFIG_DIR / "colormaze.yaml"), "colormaze.yaml").model_dump()
    pixels = validate(read_yaml(CONFIG_DIR / "colormaze_rgb.yaml"), "colormaze_rgb.yaml").model_dump()
    assert pixels["env_kwargs"] == {**planes["env_kwargs"], "obs_mode": "rgb", "rgb_tile": 4}
    assert pixels["network"] == {**planes["network"], "tile": 4, "tile_channels": TILE_CHANNELS}
    for key in set(planes) - {"env_kwargs", "network"}:
        assert pixels[key] == planes[key], key


@pytest.mark.parametrize("tile", [4, 2])
def test_paint_fills_floors_and_draws_objects_in_the_middle_of_their_cell(tile):
    core = make_vec(COLOR, 1, **RGB).core
    channel = {name: k for k, name in enumerate(core.CHANNELS)}
    planes = np.zeros((1, len(core.CHANNELS), 2, 2), np.uint8)
    planes[0, channel["cue"], 0, 0] = planes[0, channel["goal"], 0, 0] = 1  # the goal on the cue
    planes[0, channel["goal"], 1, 1] = 1  # the goal on bare floor
    image = core.paint(planes, tile)
    assert image.shape == (1, 2 * tile, 2 * tile, 3) and image.dtype == np.uint8
    cue, goal, floor = (np.array(c, np.uint8) for c in (core.COLOURS["cue"], core.COLOURS["goal"], core.BACKGROUND))
    middle = slice(tile // 4, tile - tile // 4) if tile >= 3 else slice(0, tile)
    cell = image[0, :tile, :tile]
    assert (cell[middle, middle] == goal).all()
    assert (cell[0, 0] == cue).all() if tile >= 3 else (cell == goal).all()  # the cue shows around the goal
    assert (image[0, :tile, tile:] == floor).all() and (image[0, tile:, :tile] == floor).all()
    assert (image[0, tile:, tile:][middle, middle] == goal).all()
