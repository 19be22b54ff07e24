"""Trainers a researcher brings: the single-file example PPO hands its policy to the project's
tools exactly, trains the same twice from a seed, and logs the proxy and the true return of
every episode; the RL Zoo file covers every env; a run config names its trainer and gets the
trainer's own settings, never a mix with its own."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from goodhart.agents.example_ppo import Agent, Args, policy_tensors, train as example_train
from goodhart.agents.model_io import load_policy, save_policy_tensors
from goodhart.agents.policies import ModelPolicy
from goodhart.envs import ENVS, make_vec
from goodhart.experiments.config import ConfigError, resolve
from goodhart.experiments.evaluate import trained_subject
from goodhart.experiments.train import train
from goodhart.experiments.trainers import ZOO_FILE, trainer_settings, zoo_hyperparameters

COLOR = "goodhart/ColorMaze-v0"
TINY = {"num_envs": 4, "num_steps": 16, "minibatch_size": 32, "total_timesteps": 1024}


def tiny_run(out: Path, seed: int = 0) -> Agent:
    return example_train(Args(env_id=COLOR, seed=seed, **TINY), out)


def test_the_exported_policy_acts_as_the_example_agent(tmp_path):
    agent = tiny_run(tmp_path / "run")
    env = make_vec(COLOR, 8, seed=3)
    save_policy_tensors(policy_tensors(agent), env.observation_space, env.action_space, tmp_path / "model",
                        {"env": COLOR, "env_kwargs": {}, "network": {"channels": [16, 32], "strides": [1, 2], "features_dim": 128, "net_arch": []}})
    obs = env.reset()
    with torch.no_grad():
        expected = torch.softmax(agent.actor(agent.network(torch.as_tensor(obs).float())), dim=1).numpy()
    loaded = ModelPolicy(load_policy(tmp_path / "model"))
    np.testing.assert_allclose(loaded.probabilities(obs, env), expected, rtol=1e-5, atol=1e-6)


def test_the_example_logs_proxy_and_true_return_per_episode_and_is_deterministic(tmp_path):
    first, second = tiny_run(tmp_path / "a"), tiny_run(tmp_path / "b")
    for p, q in zip(first.parameters(), second.parameters()):
        assert torch.equal(p, q)
    rows = list(csv.DictReader(open(tmp_path / "a" / "episodes.csv")))
    assert rows and {"timestep", "env", "return", "true_return", "reached_goal"} <= set(rows[0])
    assert (tmp_path / "a" / "episodes.csv").read_text() == (tmp_path / "b" / "episodes.csv").read_text()
    other = tiny_run(tmp_path / "c", seed=1)
    assert any(not torch.equal(p, q) for p, q in zip(first.parameters(), other.parameters()))


def test_the_example_refuses_pixels(tmp_path):
    with pytest.raises(ValueError, match="symbolic planes"):
        example_train(Args(env_id=COLOR, env_kwargs={"obs_mode": "rgb"}, **TINY), tmp_path)


def test_a_run_config_with_trainer_example_trains_with_its_settings(tmp_path):
    cfg, _ = resolve(COLOR, None, ["trainer=example", "total_timesteps=4096", "eval.freq=0"], {})
    args = Args(env_id=COLOR)
    assert (cfg.n_envs, cfg.ppo.learning_rate, cfg.ppo.batch_size, cfg.ppo.ent_coef) == (args.num_envs, args.learning_rate, args.minibatch_size, args.ent_coef)
    assert cfg.ppo.ent_coef_final is None and cfg.network.strides == list(args.strides)
    folder = tmp_path / "run"
    model = train(cfg, folder, progress_bar=False)
    loaded = load_policy(model)
    assert loaded.config["trainer"] == "example" and loaded.config["n_envs"] == args.num_envs
    assert yaml.safe_load((folder / "config.yaml").read_text())["trainer"] == "example"
    assert (folder / "episodes.csv").is_file() and (folder / "args.json").is_file()
    stamp = (model.parent / "model.safetensors").stat().st_mtime_ns
    train(cfg, folder, resume=True, progress_bar=False)  # trained already: nothing to do
    assert (model.parent / "model.safetensors").stat().st_mtime_ns == stamp
    assert trained_subject("ppo", [folder], deterministic=True).trainer == "example"  # results records say who trained


def test_trainer_zoo_takes_rl_zoos_numbers_and_the_shipped_cnn():
    cfg, _ = resolve("goodhart/LoopRace-v0", None, ["trainer=zoo"], {})
    entry = zoo_hyperparameters("goodhart/LoopRace-v0")
    assert cfg.n_envs == entry["n_envs"] and cfg.ppo.n_epochs == entry["n_epochs"] and cfg.ppo.ent_coef == entry["ent_coef"]
    shipped, _ = resolve("goodhart/LoopRace-v0", None, [], {})
    assert cfg.network == shipped.network


def test_every_env_has_an_rl_zoo_entry():
    assert set(ENVS) <= set(yaml.safe_load(ZOO_FILE.read_text()))
    for env_id in ENVS:
        assert trainer_settings("zoo", env_id)["n_envs"] >= 1


def test_a_trainer_refuses_what_it_does_not_do(tmp_path):
    with pytest.raises(ConfigError, match="--set ppo.ent_coef=0.1: trainer: example trains with its own"):
        resolve(COLOR, None, ["trainer=example", "ppo.ent_coef=0.1"], {})
    with pytest.raises(ConfigError, match="trainer: example does not train with curriculum"):
        resolve(COLOR, None, ["trainer=example", "curriculum.method=dr"], {})
    with pytest.raises(ConfigError, match="trainer"):
        resolve(COLOR, None, ["trainer=mine"], {})
    bad = tmp_path / "ppo.yml"
    bad.write_text(f"{COLOR}:\n  learning_rate: lin_2.5e-4\n")
    with pytest.raises(ValueError, match="schedules"):
        zoo_hyperparameters(COLOR, bad)
    bad.write_text(f"{COLOR}:\n  n_envs: 8\n  target_kl: 0.01\n")
    with pytest.raises(ValueError, match="target_kl"):
        zoo_hyperparameters(COLOR, bad)


def test_the_rl_zoo_file_names_the_shipped_cnn_for_rl_zoo3():
    """rl_zoo3 reads policy_kwargs from the file; the project's zoo trainer takes the network
    from the env's shipped config: the two must be the same network."""
    for env_id in ENVS:
        shipped, _ = resolve(env_id, None, [], {})
        net = shipped.network
        kwargs = f"channels={net.channels}, strides={net.strides}, features_dim={net.features_dim}"
        assert kwargs in zoo_hyperparameters(env_id)["policy_kwargs"] and net.net_arch == []


def test_a_reproduction_runs_under_another_trainer():
    from typer.testing import CliRunner

    from goodhart.cli import app
    from goodhart.experiments.reproduce import load_reproduction, with_trainer
    from goodhart.experiments.sweep import expand

    spec = with_trainer(load_reproduction("race-gaming")[0], "example")
    runs = expand(spec, Path("unused"), quick=True)
    assert runs and all(run.config.trainer == "example" and run.config.n_envs == Args(env_id=COLOR).num_envs for run in runs)
    assert {run.condition for run in runs} == {"score-trained", "progress-trained"}  # named as under shipped
    result = CliRunner().invoke(app, ["reproduce", "race-gaming", "--trainer", "mine"])
    assert result.exit_code != 0 and "--trainer 'mine' is not a trainer; valid ones: shipped, example, zoo" in result.output


@pytest.mark.parametrize("study", ["cue-vector", "divergence-alarm"])
def test_a_study_of_a_reproductions_runs_asks_for_them_under_its_trainer(study, tmp_path, monkeypatch):
    from goodhart.experiments import reproduce

    asked = []

    def found(name, out, *, quick=False, seeds=None, trainer=None, **options):
        asked.append(trainer)
        raise KeyboardInterrupt  # stop the study here: only the question is tested

    monkeypatch.setattr(reproduce, "source_folder", found)
    with pytest.raises(KeyboardInterrupt):
        reproduce.run_reproduction(reproduce.with_trainer(reproduce.load_reproduction(study)[0], "zoo"), tmp_path / study, quick=True)
    assert asked == ["zoo"]


def test_a_reproductions_runs_are_found_beside_under_the_same_trainer(tmp_path):
    from goodhart.experiments.reproduce import source_folder
    from goodhart.experiments.results import folder_name

    beside = tmp_path / folder_name("maze-misgeneralization", quick=True, trainer="example")
    assert beside.name == "maze-misgeneralization-quick-example"
    for seed in (0, 1, 2):
        (beside / "runs" / "ppo" / f"seed{seed}").mkdir(parents=True)
        (beside / "runs" / "ppo" / f"seed{seed}.log").write_text("")  # a run's log beside its folder
    (beside / "results.json").write_text('{"sweep": {"quick": true}}')
    study = tmp_path / "cue-vector-quick-example"
    assert source_folder("maze-misgeneralization", study, quick=True, trainer="example") == beside
    assert source_folder("maze-misgeneralization", study, quick=True, seeds=[0, 2], trainer="example") == beside


def test_a_learned_reward_study_refuses_the_example_trainer_before_its_first_stage(tmp_path):
    from goodhart.experiments.reproduce import load_reproduction, run_reproduction, with_trainer

    with pytest.raises(ConfigError, match="trainer: example does not train with"):
        run_reproduction(with_trainer(load_reproduction("rater-bias")[0], "example"), tmp_path / "study", quick=True)
    assert not (tmp_path / "study").exists()  # nothing collected, cloned or fitted first


def test_what_a_trainer_cannot_run_is_named_before_training():
    from goodhart.experiments.reproduce import load_reproduction, trainer_refusal

    assert trainer_refusal(load_reproduction("maze-regret")[0], "example") == "does not train with curriculum"
    assert trainer_refusal(load_reproduction("divergence-alarm")[0], "example") == "reward-model-overoptimization: does not train with reward_model"
    assert trainer_refusal(load_reproduction("maze-regret")[0], "zoo") is None
    assert trainer_refusal(load_reproduction("cue-vector")[0], "example") is None


@pytest.mark.parametrize("name, record", [
    ("maze-misgeneralization", {"policies": {"ppo": {"kind": "trained", "trainer": "example"}}}),
    ("reward-model-overoptimization", {"conditions": {"labels=300": {"labels": 300, "trainer": "example"}}}),  # a learned-reward study
])
def test_the_trainer_table_refuses_results_of_another_trainer_than_its_folder_says(tmp_path, name, record):
    import json

    from goodhart.experiments.headline import trainers_table
    from goodhart.experiments.reproduce import load_reproduction

    folder = tmp_path / f"{name}-zoo"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(record))
    spec = load_reproduction(name)[0]
    with pytest.raises(ValueError, match="trained by \\['example'\\], not by zoo"):
        trainers_table(tmp_path, [(name, spec)], ["zoo"], lambda folder, spec: [], lambda spec, trainer: None)


def test_the_trainer_table_takes_a_quick_record_where_no_full_one_is_committed_and_says_so(tmp_path):
    import json
    import shutil

    from goodhart.experiments.headline import trainers_table
    from goodhart.experiments.reproduce import load_reproduction

    record = json.loads((Path(__file__).parents[1] / "docs/results/maze-regret-quick/results.json").read_text())
    for entry in record["policies"].values():
        entry["trainer"] = "zoo"
    quick = tmp_path / "maze-regret-quick-zoo"
    quick.mkdir()
    (quick / "results.json").write_text(json.dumps(record))
    spec = load_reproduction("maze-regret")[0]

    def table():
        return trainers_table(tmp_path, [("maze-regret", spec)], ["zoo"], lambda folder, spec: [], lambda spec, trainer: None)[-1]

    assert table().startswith("| `maze-regret` | quick mode: reached goal, `shifted`: ")
    shutil.copytree(quick, tmp_path / "maze-regret-zoo")  # a full record, once committed, is the cell
    assert "quick mode" not in table()
