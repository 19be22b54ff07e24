"""Behaviour cloning (the SFT step of RLHF) and runs that start from a policy file (init)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from goodhart.experiments.reward_learning.cloning import CloneConfig, clone_policy
from goodhart.agents.model_io import load_policy
from goodhart.agents.policies import OraclePolicy
from goodhart.agents.ppo import build_ppo
from goodhart.agents.policies import EpsilonPolicy
from goodhart.experiments.reward_learning.segments import collect_segments
from goodhart.cli import app
from goodhart.envs import make_vec

RACE = "goodhart/LoopRace-v0"
CONFIGS = Path(__file__).parents[1] / "agents" / "configs"


def goodhart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def small_policy(seed: int = 0):
    venv = make_vec(RACE, 4, seed=0, view="agent")
    network = {"channels": [8], "strides": [2], "features_dim": 16, "net_arch": []}
    return build_ppo(venv, ppo={"n_steps": 64, "batch_size": 128}, network=network, seed=seed).policy


def test_cloning_fits_the_demonstrators_actions_and_is_deterministic():
    demos = collect_segments(EpsilonPolicy(OraclePolicy("racer"), 0.3), RACE, {"view": "agent"}, count=24, length=200, seed=3, num_envs=8)
    before = small_policy()
    stats = clone_policy(before, demos, CloneConfig(epochs=3, seed=0))
    # the demonstrator takes the racer's action in 0.775 of the steps (0.7 + 0.3/4): the clone
    # should pick the demonstrated action in about that share of held-out steps, far above chance
    assert stats["held_out_agreement"] > 0.6 and stats["held_out_nll"] < 1.1  # uniform: ln 4 = 1.386
    assert stats["steps"] == int(demos.mask.sum())
    again = small_policy()
    assert clone_policy(again, demos, CloneConfig(epochs=3, seed=0)) == stats
    for a, b in zip(before.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="val_fraction"):
        CloneConfig(val_fraction=1.0)


def test_cli_clone_then_train_from_it(tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text((CONFIGS / "looprace_rlhf.yaml").read_text().replace("features_dim: 128", "features_dim: 16"))
    code, out = goodhart("rlhf", "clone", "--config", str(small), "--source", "oracle-racer@0.3", "--episodes", "8", "--epochs", "2",
                         "--out", str(tmp_path / "sft"), "--no-progress")
    assert code == 0 and "held out: NLL" in out, out
    clone = load_policy(tmp_path / "sft")
    assert clone.config["clone"]["sources"] == ["oracle-racer@0.3"] and clone.config["init"] is None
    code, out = goodhart("train", "--config", str(small), "--timesteps", "256", "--out", str(tmp_path / "runs"), "--no-progress",
                         "--set", f"init={tmp_path / 'sft'}", "--set", "n_envs=2", "--set", "ppo.n_steps=64", "--set", "ppo.batch_size=128",
                         "--set", "ppo.learning_rate=1e-12")  # Adam moves each weight by ~1e-12 a step: the trained policy is the clone
    assert code == 0, out
    trained = load_policy(tmp_path / "runs" / "small" / "seed0" / "model")
    for name, tensor in clone.policy.state_dict().items():
        if not name.startswith("value_net"):
            assert torch.allclose(tensor, trained.policy.state_dict()[name], atol=1e-8), name


def test_an_init_of_another_env_or_network_is_refused_with_one_line(tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text((CONFIGS / "looprace_rlhf.yaml").read_text().replace("features_dim: 128", "features_dim: 16"))
    code, out = goodhart("rlhf", "clone", "--config", str(small), "--source", "oracle-racer", "--episodes", "2", "--epochs", "1",
                         "--out", str(tmp_path / "sft"), "--no-progress")
    assert code == 0, out
    args = ["--timesteps", "128", "--no-progress", "--out", str(tmp_path / "runs"), "--set", f"init={tmp_path / 'sft'}"]
    code, out = goodhart("train", "--env", "goodhart/ColorMaze-v0", *args)
    assert code == 2 and out.strip().splitlines() == [f"error: init: {tmp_path / 'sft'} is a policy of {RACE}, not goodhart/ColorMaze-v0"]
    code, out = goodhart("train", "--config", str(CONFIGS / "looprace_rlhf.yaml"), *args)
    assert code == 2 and len(out.strip().splitlines()) == 1 and "has the network" in out
    code, out = goodhart("train", "--config", str(small), *args[:-1], f"init={tmp_path / 'missing'}")
    assert code == 2 and len(out.strip().splitlines()) == 1 and "init: " in out and "not found" in out
    code, out = goodhart("rlhf", "clone", "--config", str(small), "--out", str(tmp_path / "none"))
    assert code == 2 and "give at least one --source" in out
    assert not (tmp_path / "runs").exists() and not (tmp_path / "none.json").exists()
