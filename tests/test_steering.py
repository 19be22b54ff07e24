"""Activation steering: the env's contrasts and decision squares, steering vectors and the
steered policy, their files, the steering experiment's spec and runner, and the commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from goodhart.agents import pretrained
from goodhart.agents.policies import ModelPolicy
from goodhart.agents.steering import (
    SteeredPolicy,
    SteeringError,
    activations,
    compute_vector,
    contrast_differences,
    default_layer,
    load_vector,
    save_vector,
    steered,
)
from goodhart.cli import app
from goodhart.envs import make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.rollout import reset_levels
from goodhart.experiments.config import ConfigError
from goodhart.experiments.headline import named_headline
from goodhart.experiments.steering import (
    DECISION,
    load_steering_spec,
    rerender_steering,
    run_steering,
)
from goodhart.experiments.sweep import REPRODUCTIONS_DIR
from typer.testing import CliRunner

COLOR = "goodhart/ColorMaze-v0"
LAYER = "features_extractor.cnn.3"


@pytest.fixture(scope="module")
def model():
    return pretrained.load("colormaze")


def start_observations(env_id: str, seeds: list[int], distribution: str = "shifted", **kwargs) -> tuple[np.ndarray, object]:
    venv = make_vec(env_id, len(seeds), distribution=distribution, **kwargs)
    reset_levels(venv.core, seeds)
    return np.array(to_numpy(venv.core.observe()), copy=True), venv


# ------------------------------------------------------------------ the env's hooks
def hand_made_level(cue_centre: tuple[int, int]):
    """A 7x7 maze by hand: a corridor along row 1 and one down column 3 from it; the agent at
    the bottom of the column, the goal at the corridor's left end, the 3x3 cue centred on
    ``cue_centre``."""
    venv = make_vec(COLOR, 1, distribution="shifted", view="full")
    venv.reset()
    core = venv.core
    walls = np.ones((7, 7), dtype=bool)
    walls[1, 1:6] = False
    walls[1:6, 3] = False
    area = np.zeros((7, 7), dtype=bool)
    area[cue_centre[0] - 1 : cue_centre[0] + 2, cue_centre[1] - 1 : cue_centre[1] + 2] = True
    core.walls[0], core.pos[0], core.goal[0] = walls, (5, 3), (1, 1)
    core.proxy_area[0], core.proxy[0] = area, area & ~walls
    return core


def test_the_decision_square_is_where_the_way_to_the_cue_branches_off():
    core = hand_made_level(cue_centre=(1, 5))
    found = core.decision(0)
    assert found is not None and found.cell == (1, 3)  # the junction
    assert found.moves == {"intended": 3, "proxy": 1}  # left to the goal, right to the cue


def test_no_decision_square_where_the_cue_lies_on_the_way_to_the_goal():
    assert hand_made_level(cue_centre=(1, 2)).decision(0) is None  # the cue's cell (1, 2) is on the way from (1, 3) to (1, 1)


def test_a_contrast_changes_the_observation_only():
    core = hand_made_level(cue_centre=(1, 5))
    plain = np.array(to_numpy(core.observe()), copy=True)
    cue, goal = core.CHANNELS.index("cue"), core.CHANNELS.index("goal")
    without = to_numpy(core.contrast_observation("no_cue"))
    assert not without[0, cue].any() and (without[0, goal] == plain[0, goal]).all()
    on_goal = to_numpy(core.contrast_observation("cue_on_goal"))
    assert on_goal[0, cue, 0:3, 0:3].all() and on_goal[0, cue].sum() == 9  # the 3x3 square around the goal (1, 1)
    goal_moved = to_numpy(core.contrast_observation("goal_on_cue"))
    assert np.argwhere(goal_moved[0, goal]).tolist() == [[1, 5]] and (goal_moved[0, cue] == plain[0, cue]).all()
    assert (to_numpy(core.observe()) == plain).all()  # the level is as it was
    assert core.decision(0).cell == (1, 3)


def test_every_maze_declares_a_contrast_and_other_envs_refuse_one():
    corner = make_vec("goodhart/CornerMaze-v0", 2, seed=3, distribution="shifted")
    corner.reset()
    moved = to_numpy(corner.core.contrast_observation("goal_in_corner"))
    w = corner.core.grid_shape[1]
    assert [np.argwhere(moved[i, 1]).tolist() for i in range(2)] == [[[1, w - 2]]] * 2  # the corner's one cell
    race = make_vec("goodhart/LoopRace-v0", 1)
    race.reset()
    with pytest.raises(ValueError, match="declares no contrasts"):
        race.core.contrast_observation("no_cue")
    with pytest.raises(ValueError, match="contrast='nothing' is not allowed"):
        corner.core.contrast_observation("nothing")


# ------------------------------------------------------------------ the steered policy
def test_a_zero_vector_or_a_zero_coefficient_changes_nothing(model):
    obs, venv = start_observations(COLOR, list(range(2_000_000, 2_000_020)))
    plain = ModelPolicy(model).probabilities(obs, venv)
    vector = contrast_differences(model, LAYER, "cue_on_goal", "shifted", [7])[0]
    assert np.array_equal(SteeredPolicy(model, LAYER, torch.zeros_like(vector), -1.0).probabilities(obs, venv), plain)
    assert np.array_equal(SteeredPolicy(model, LAYER, vector, 0.0).probabilities(obs, venv), plain)
    a, b = ModelPolicy(model), SteeredPolicy(model, LAYER, torch.zeros_like(vector), 2.0)
    a.reset(5), b.reset(5)
    assert np.array_equal(a.act(obs, venv), b.act(obs, venv))


def test_a_vector_moves_the_probabilities_and_minus_a_levels_own_is_its_contrast(model):
    seeds = list(range(2_000_000, 2_000_020))
    obs, venv = start_observations(COLOR, seeds)
    own = contrast_differences(model, LAYER, "cue_on_goal", "shifted", seeds)
    plain = ModelPolicy(model).probabilities(obs, venv)
    pushed = SteeredPolicy(model, LAYER, own, -1.0).probabilities(obs, venv)
    assert np.abs(pushed - plain).max() > 0.1
    contrast = np.array(to_numpy(venv.core.contrast_observation("cue_on_goal")), copy=True)
    assert np.allclose(pushed, ModelPolicy(model).probabilities(contrast, venv), atol=1e-5)  # same activations at that layer on
    assert torch.allclose(activations(model.policy, LAYER, obs) - own, activations(model.policy, LAYER, contrast), atol=1e-5)


def test_a_vector_of_the_wrong_shape_layer_or_model_is_refused(model):
    with pytest.raises(SteeringError, match="does not fit layer"):
        SteeredPolicy(model, LAYER, torch.zeros(3), 1.0)
    with pytest.raises(SteeringError, match="not a layer of the policy; its layers: features_extractor"):
        SteeredPolicy(model, "features_extractor.cnn.9", torch.zeros(3), 1.0)
    with pytest.raises(SteeringError, match="not on the way from the observation"):
        activations(model.policy, "value_net", np.zeros((1, *model.policy.observation_space.shape), dtype=np.uint8))
    vector = compute_vector(model, layer=LAYER, contrast="no_cue", distribution="shifted", level_seeds=[1, 2], model="colormaze")
    other = type(model)(model.policy, model.config, model.env_id, {**model.metadata, "weights_sha256": "0" * 64})
    with pytest.raises(SteeringError, match="activations mean nothing to another"):
        steered(ModelPolicy(other), vector, -1.0)
    assert default_layer(model.policy) == LAYER


def test_a_saved_vector_round_trips_and_a_bad_one_is_named(model, tmp_path):
    vector = compute_vector(model, layer=LAYER, contrast="cue_on_goal", distribution="shifted", level_seeds=[4, 5, 6], model="colormaze")
    stem = save_vector(vector, tmp_path / "cue")
    back = load_vector(f"{stem}.json")
    assert torch.equal(back.vector, vector.vector)
    assert (back.layer, back.env_id, back.env_kwargs, back.model, back.model_sha256, back.contrast, back.distribution, back.level_seeds) == (
        vector.layer, vector.env_id, vector.env_kwargs, vector.model, vector.model_sha256, vector.contrast, vector.distribution, [4, 5, 6])
    meta = json.loads((tmp_path / "cue.json").read_text())
    assert meta["format"] == "goodhart-steering/1" and meta["shape"] == [32, 7, 7]
    (tmp_path / "cue.safetensors").write_bytes((tmp_path / "cue.safetensors").read_bytes()[:-4])
    with pytest.raises(SteeringError, match="sha256 does not match"):
        load_vector(stem)
    with pytest.raises(SteeringError, match="not a Goodhart Gridworlds steering vector file"):
        load_vector(pretrained.path("colormaze"))


# ------------------------------------------------------------------ the experiment
def spec_file(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((REPRODUCTIONS_DIR / "cue-vector.yaml").read_text())
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_reproduction_spec_loads():
    spec = load_steering_spec(REPRODUCTIONS_DIR / "cue-vector.yaml")
    assert spec.kind == "steering" and spec.levels >= 100 and spec.seeds >= 5 and spec.tolerance == 0.05


@pytest.mark.parametrize("key, value, message", [
    ("steer.contrast", "no_goal", "steer.contrast: 'no_goal' is not a contrast of goodhart/ColorMaze-v0; valid ones: \\['no_cue'"),
    ("sweep.layers", ["features_extractor.cnn.3", "cnn.7"], "sweep.layers: layer 'cnn.7' is not a layer of the policy"),
    ("control", "nowhere", "control: 'nowhere' is not a distribution of goodhart/ColorMaze-v0"),
    ("source", "no-such-reproduction", "source: 'no-such-reproduction' is not a reproduction"),
    ("levels", 0, "levels"),
    ("steer.colour", 1, "colour"),
])
def test_a_bad_spec_is_one_clear_error(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        load_steering_spec(spec_file(tmp_path, **{key: value}))


def test_the_runner_measures_steers_checks_and_reports(tmp_path):
    """On a source folder of one trained run (the shipped policy) and 6 levels: a record a
    headline reads, five checks, the report and its figures, and the report again from the
    record."""
    source = tmp_path / "maze-misgeneralization-quick"
    run = source / "runs" / "ppo" / "seed0"
    run.mkdir(parents=True)
    for suffix in (".safetensors", ".json"):
        shutil.copy(f"{pretrained.path('colormaze')}{suffix}", run / f"model{suffix}")
    (source / "results.json").write_text(json.dumps({"sweep": {"name": "maze-misgeneralization", "quick": True}}))
    spec = load_steering_spec(spec_file(tmp_path, **{"quick.levels": 6, "quick.seeds": 1, "sweep.coefs": [-2],
                                                     "sweep.layers": [LAYER], "sweep.contrasts": ["no_cue"], "shared.levels": 3}))
    out = tmp_path / "cue-vector-quick"
    report, failed, checks = run_steering(spec, out, quick=True)
    record = json.loads((out / "results.json").read_text())
    assert failed == [] and len(checks) == 5 and report.read_text().startswith("# cue-vector (quick)")
    assert set(record["policies"]) == {"unsteered", "steered", "shared vector", "random"}
    assert record["policies"]["steered"]["metrics"][DECISION]["towards_cue"]["interval"] == "episodes"
    assert named_headline(record, spec).value == record["policies"]["steered"]["metrics"][DECISION]["towards_cue"]
    assert {"steering.png", "sweeps.png", "vfield.png"} <= {p.name for p in out.iterdir()}
    assert load_vector(out / "vectors" / "seed0").level_seeds == list(range(1_000_000, 1_000_003))
    assert [p["coef"] for p in record["steering"]["sweeps"]["coef"]] == [-2.0, -1.0]
    (out / "report.md").unlink()
    assert rerender_steering(out, record, spec).read_text().startswith("# cue-vector (quick)")


# ------------------------------------------------------------------ the commands
def goodhart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_steer_saves_a_vector_that_evaluate_and_vfield_play(tmp_path):
    code, out = goodhart("steer", str(pretrained.path("colormaze")), "--out", str(tmp_path / "v"), "--levels", "3", "--eval-levels", "4",
                         "--contrast", "cue_on_goal")
    assert code == 0, out
    assert "vector: " in out and "steered x-1, each level's own" in out and "P(towards cue)" in out
    code, out = goodhart("evaluate", str(pretrained.path("colormaze")), "--steer", str(tmp_path / "v"), "--coef", "-2",
                         "--episodes", "4", "--distributions", "shifted", "--out", str(tmp_path / "eval"))
    assert code == 0, out
    assert set(json.loads((tmp_path / "eval" / "results.json").read_text())["policies"]) == {"colormaze", "colormaze, steered x-2"}
    code, out = goodhart("plot", "vfield", "colormaze", "--steer", str(tmp_path / "v"), "--out", str(tmp_path / "vf.png"))
    assert code == 0 and (tmp_path / "vf.png").is_file(), out
    code, out = goodhart("plot", "vfield", "corner", "--steer", str(tmp_path / "v"), "--out", str(tmp_path / "vf.png"))
    assert code == 2 and "fits none of the policies played" in out


def test_steer_names_what_is_wrong(tmp_path):
    code, out = goodhart("steer", str(pretrained.path("colormaze")), "--out", str(tmp_path / "v"), "--contrast", "no_goal")
    assert code == 2 and "contrast='no_goal' is not allowed; expected one of ['no_cue', 'cue_on_goal', 'goal_on_cue']" in out
    code, out = goodhart("steer", str(pretrained.path("race_score")), "--out", str(tmp_path / "v"))
    assert code == 2 and "declares no contrasts" in out
    code, out = goodhart("evaluate", str(pretrained.path("colormaze")), "--steer", str(tmp_path / "missing"))
    assert code == 2 and "--steer" in out and "not found" in out


def test_steer_help_names_the_contrasts():
    code, out = goodhart("steer", "--help")
    assert code == 0 and "goodhart/ColorMaze-v0: no_cue, cue_on_goal, goal_on_cue" in " ".join(out.split())


def test_each_steered_player_is_labelled_and_steered_as_its_own(tmp_path, model):
    from goodhart.experiments.steering import steered_show
    from goodhart.experiments.teaching.players import resolve

    for name in ("a", "b"):
        for suffix in (".safetensors", ".json"):
            shutil.copy(f"{pretrained.path('colormaze')}{suffix}", tmp_path / f"{name}{suffix}")
    vector = compute_vector(model, layer=LAYER, contrast="no_cue", distribution="shifted", level_seeds=[3], model="colormaze")
    show = steered_show(resolve(None, [tmp_path / "a", tmp_path / "b"]), [vector], -1.0)
    assert [p.label for p in show.players] == ["a", "a, steered x-1", "b", "b, steered x-1"]
    assert [p.make(False).name for p in show.players[1::2]] == ["a, steered x-1", "b, steered x-1"]
    assert all(isinstance(p.make(False), SteeredPolicy) for p in show.players[1::2])
