"""RLHF: rater hooks of the envs, simulated raters, preference datasets, reward models, training
against them, and the over-optimization analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from goodhart.agents.policies import OraclePolicy, RandomPolicy
from goodhart.experiments.reward_learning.dataset import DatasetFileError, load_dataset, make_dataset, save_dataset
from goodhart.experiments.reward_learning.raters import RaterConfig, agreement, label, sample_pairs, true_returns, utility
from goodhart.experiments.reward_learning.reward_env import RewardModelVecEnv, kl_to_initial
from goodhart.agents.model_io import model_paths
from goodhart.experiments.reward_learning.reward_model import FitConfig, RewardModelError, fit_reward_model, load_reward_model, save_reward_model
from goodhart.agents.policies import EpsilonPolicy
from goodhart.experiments.reward_learning.segments import Segments, collect_segments, concatenate
from goodhart.cli import app
from goodhart.envs import make_vec
from goodhart.experiments.overoptimization import fit_gao, gao_peak
from goodhart.experiments.reward_learning.sources import collect_preferences

RACE, MAZE = "goodhart/LoopRace-v0", "goodhart/ColorMaze-v0"
TINY_FIT = FitConfig(network={"channels": [8], "strides": [1], "features_dim": 16, "crop": 2}, epochs=3, seed=0)


def goodhart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def synthetic(true: list[list[float]], salient: list[list[float]] | None = None, regions: dict | None = None) -> Segments:
    """Segments with the given per-step true rewards (and salient events, region flags)."""
    true_arr = np.asarray(true, dtype=float)
    m, length = true_arr.shape
    return Segments(
        obs=np.zeros((m, length, 1, 1, 1), dtype=np.uint8), obs_shape=(1, 1, 1), packed=False,
        actions=np.zeros((m, length), dtype=np.int64), mask=np.ones((m, length), dtype=bool), true_reward=true_arr,
        env_reward=np.zeros((m, length)), salient=np.zeros((m, length)) if salient is None else np.asarray(salient, dtype=float),
        in_view={name: np.asarray(v, dtype=bool) for name, v in (regions or {}).items()},
        source=np.zeros(m, dtype=np.int64), sources=["synthetic"],
    )


@pytest.fixture(scope="module")
def race_pool() -> Segments:
    sources = [EpsilonPolicy(RandomPolicy(), 0.0), EpsilonPolicy(OraclePolicy("racer"), 0.3), EpsilonPolicy(OraclePolicy("farmer"), 0.3)]
    return concatenate([collect_segments(p, RACE, {"view": "agent"}, count=60, length=12, seed=k, num_envs=8) for k, p in enumerate(sources)])


# ----------------------------------------------------------------------- env hooks
def test_salient_events_count_the_targets_hit_and_the_steps_on_the_cue():
    venv = make_vec(RACE, 2, seed=0)
    venv.reset()
    core, hits = venv.core, 0.0
    for _ in range(60):
        core.step(core.oracle_actions("farmer"))
        hits += core.salient_events()
    assert np.array_equal(hits, core.targets_hit)  # one event per target hit
    maze = make_vec(MAZE, 4, seed=0)
    maze.reset()
    maze.core.step(maze.core.oracle_actions("cue"))
    on_cue = maze.core.proxy[maze.core.rows, maze.core.pos[:, 0], maze.core.pos[:, 1]]
    assert np.array_equal(maze.core.salient_events(), on_cue.astype(float))


def test_oversight_regions_are_declared_by_the_env():
    venv = make_vec(RACE, 1, seed=0)
    venv.reset()
    core = venv.core
    assert "track" in core.OVERSIGHT_REGIONS and core.in_view("track").all()
    for _ in range(200):  # the farmer races until the lagoon is stocked, then turns into it
        core.step(core.oracle_actions("farmer"))
        if core.lagoon_map[0, core.pos[0, 0], core.pos[0, 1]]:
            break
    assert core.lagoon_map[0, core.pos[0, 0], core.pos[0, 1]] and not core.in_view("track").any()
    assert core.in_view("bottom").all() and not core.in_view("top").any()
    with pytest.raises(ValueError, match="oversight region"):
        core.in_view("nowhere")


# -------------------------------------------------------------------------- raters
def test_an_exact_rater_orders_segments_by_true_return(race_pool):
    pairs = sample_pairs(len(race_pool), 400, np.random.default_rng(0))
    labels = label(race_pool, pairs, RaterConfig(), np.random.default_rng(1))
    truth = true_returns(race_pool)
    diff = truth[pairs[:, 0]] - truth[pairs[:, 1]]
    assert np.array_equal(labels, np.where(np.isclose(diff, 0), 0.5, (diff > 0).astype(float)))
    assert (labels == 1).any() and (labels == 0).any() and (labels == 0.5).any()


def test_temperature_and_noise_make_labels_disagree_with_the_truth():
    rng = np.random.default_rng(0)
    segments = synthetic(rng.normal(0, 1, size=(400, 5)).tolist())
    pairs = sample_pairs(len(segments), 2000, rng)
    truth = true_returns(segments)

    def agree(rater: RaterConfig) -> float:
        return agreement(label(segments, pairs, rater, np.random.default_rng(2)), truth, pairs)

    exact, warm, hot = agree(RaterConfig()), agree(RaterConfig(temperature=1.0)), agree(RaterConfig(temperature=10.0))
    assert exact == 1.0 and exact > warm + 0.05 and warm > hot + 0.05
    noisy = agree(RaterConfig(noise=0.4))
    assert abs(noisy - 0.8) < 0.04  # a coin flip in 40 % of the answers is wrong in half of them


def test_salience_bias_prefers_the_segment_with_more_salient_events():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 1, size=(400, 4))
    salient = rng.integers(0, 3, size=(400, 4))
    segments = synthetic(true.tolist(), salient.tolist())
    pairs = sample_pairs(len(segments), 2000, rng)
    events = salient.sum(axis=1).astype(float)

    def more_salient_preferred(bias: float) -> float:
        return agreement(label(segments, pairs, RaterConfig(salience_bias=bias), rng), events, pairs)

    none, some, strong = more_salient_preferred(0.0), more_salient_preferred(0.5), more_salient_preferred(5.0)
    assert abs(none - 0.5) < 0.06 and some > none + 0.1 and strong > some + 0.1


def test_limited_oversight_ignores_what_the_rater_cannot_see():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 1, size=(300, 6))
    visible = np.zeros((300, 6), dtype=bool)
    visible[:, :3] = True  # the region covers the first three steps
    segments = synthetic(true.tolist(), regions={"top": visible})
    pairs = sample_pairs(len(segments), 1000, rng)
    seen_value = true[:, :3].sum(axis=1)
    for rater in (RaterConfig(oversight_region="top"), RaterConfig(oversight_fraction=0.5)):
        labels = label(segments, pairs, rater, rng)
        assert agreement(labels, seen_value, pairs) == 1.0  # exactly the seen part decides
        assert agreement(labels, true_returns(segments), pairs) < 0.85  # ... not the whole segment
    assert np.allclose(utility(segments, RaterConfig(oversight_region="top")), seen_value)


def test_unknown_or_bad_rater_options_fail_with_one_clear_line(tmp_path):
    with pytest.raises(ValueError, match="unknown rater option 'salience'"):
        RaterConfig.from_dict({"salience": 1.0})
    with pytest.raises(ValueError, match="noise=1.5"):
        RaterConfig(noise=1.5)
    code, out = goodhart("rlhf", "collect", "--env", RACE, "--rater", "salience=0.1", "--out", str(tmp_path / "d"), "--labels", "4")
    assert code == 2 and out.strip().splitlines() == ["error: unknown rater option 'salience'; allowed: ['temperature', 'noise', 'salience_bias', 'oversight_region', 'oversight_fraction']"]
    code, out = goodhart("rlhf", "collect", "--env", RACE, "--rater", "oversight_region=sky", "--out", str(tmp_path / "d"), "--labels", "4")
    assert code == 2 and "oversight_region='sky' is not a region of goodhart/LoopRace-v0" in out
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------ datasets
def test_dataset_round_trip_nested_prefixes_and_corrupt_files(tmp_path):
    dataset = collect_preferences(RACE, {"view": "agent"}, ["random", "oracle-racer@0.2"], labels=30, rater=RaterConfig(temperature=0.05), length=8, seed=3)
    stem = save_dataset(dataset, tmp_path / "prefs")
    again = load_dataset(stem)
    assert np.array_equal(again.labels, dataset.labels) and np.array_equal(again.segments.observations(np.arange(5)), dataset.segments.observations(np.arange(5)))
    assert again.rater == dataset.rater and again.env_id == RACE
    first = again.first(10)
    assert len(first) == 10 and np.array_equal(first.labels, dataset.labels[:10])
    assert np.allclose(true_returns(first.segments)[first.pairs], true_returns(dataset.segments)[dataset.pairs[:10]])
    data = (tmp_path / "prefs.npz").read_bytes()
    (tmp_path / "prefs.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFileError, match="prefs.npz: sha256 does not match"):
        load_dataset(stem)


# ------------------------------------------------------------------- reward models
def test_reward_model_save_load_round_trip_and_bad_files(tmp_path, race_pool):
    dataset = make_dataset(race_pool, 40, RaterConfig(), 0, RACE, {"view": "agent"})
    model = fit_reward_model(dataset, FitConfig(**{**TINY_FIT.__dict__, "ensemble": 2, "epochs": 1}))
    stem = save_reward_model(model, tmp_path / "rm")
    loaded = load_reward_model(stem)
    obs, actions = race_pool.observations(np.arange(4)).reshape(-1, *race_pool.obs_shape), race_pool.actions[:4].reshape(-1)
    assert np.allclose(loaded.rewards(obs, actions), model.rewards(obs, actions))
    assert loaded.meta["rater"] == RaterConfig().to_dict() and loaded.meta["accuracy"].keys() == {"train", "held_out", "held_out_vs_true"}
    weights, meta = model_paths(stem)
    text = json.loads(meta.read_text())
    meta.write_text(json.dumps({**text, "format": "something-else"}))
    with pytest.raises(RewardModelError, match="not a Goodhart Gridworlds reward model file"):
        load_reward_model(stem)
    meta.write_text(json.dumps(text))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(RewardModelError, match="sha256 does not match"):
        load_reward_model(stem)


def test_bradley_terry_learns_held_out_preferences_on_a_toy_case():
    """ColorMaze segments of the goal oracle, the cue oracle and random walks, rated exactly:
    the model must order held-out pairs far better than chance."""
    dataset = collect_preferences(MAZE, {}, ["random", "oracle-goal@0.3", "oracle-cue@0.3"], labels=300, rater=RaterConfig(), length=8, seed=0)
    torch.manual_seed(123)
    before = torch.rand(1)
    model = fit_reward_model(dataset, FitConfig(network={"channels": [8], "strides": [1], "features_dim": 16, "crop": 2}, epochs=8, seed=0))
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)  # the global RNG is left alone
    assert model.meta["accuracy"]["held_out"] >= 0.8, model.meta["accuracy"]


# ------------------------------------------------------------- training against it
@pytest.fixture(scope="module")
def race_model(tmp_path_factory, race_pool) -> Path:
    dataset = make_dataset(race_pool, 60, RaterConfig(salience_bias=0.05), 0, RACE, {"view": "agent"})
    folder = tmp_path_factory.mktemp("rm")
    save_dataset(dataset, folder / "prefs")
    return save_reward_model(fit_reward_model(dataset, TINY_FIT), folder / "rm")


def test_reward_model_vec_env_keeps_the_true_reward_and_the_env_reward(race_model):
    model = load_reward_model(race_model)
    plain, wrapped = make_vec(RACE, 3, seed=5, view="agent"), RewardModelVecEnv(make_vec(RACE, 3, seed=5, view="agent"), model, scale=0.5)
    obs, obs_w = plain.reset(), wrapped.reset()
    learned = np.zeros(3)
    rng = np.random.default_rng(0)
    for _ in range(200):
        actions = rng.integers(0, 4, size=3)
        expected = 0.5 * model.rewards(obs_w, actions)
        obs, reward, done, infos = plain.step(actions)
        obs_w, reward_w, done_w, infos_w = wrapped.step(actions)
        assert np.allclose(reward_w, expected) and np.array_equal(done, done_w)
        learned += reward_w
        for info, info_w, r in zip(infos, infos_w, reward):
            assert info_w["true_reward"] == info["true_reward"] and info_w["env_reward"] == float(r)
            if "outcome" in info:
                assert {k: v for k, v in info_w["outcome"].items() if k != "reward_model_return"} == info["outcome"]
        for i in np.flatnonzero(done):
            assert math.isclose(infos_w[i]["outcome"]["reward_model_return"], learned[i], rel_tol=1e-5, abs_tol=1e-4)
            learned[i] = 0.0
    assert done.any()


def test_kl_to_itself_is_zero_and_to_another_policy_positive():
    from goodhart.agents.ppo import build_ppo

    venv = make_vec(MAZE, 2, seed=0)
    network = {"channels": [4], "strides": [1], "features_dim": 8, "net_arch": []}
    a, b = (build_ppo(venv, ppo={"n_steps": 8, "batch_size": 16}, network=network, seed=s).policy for s in (0, 1))
    obs = np.stack([venv.reset() for _ in range(3)]).reshape(-1, *venv.observation_space.shape)
    assert kl_to_initial(a, a, obs) == pytest.approx(0.0, abs=1e-7)
    assert kl_to_initial(a, b, obs) > 0


def test_trajectory_kl_sums_the_per_step_kl_along_each_episode():
    from goodhart.agents.ppo import build_ppo
    from goodhart.experiments.reward_learning.reward_env import TrajectoryKL

    network = {"channels": [4], "strides": [1], "features_dim": 8, "net_arch": []}
    a, b = (build_ppo(make_vec(MAZE, 2, seed=0), ppo={"n_steps": 8, "batch_size": 16}, network=network, seed=s).policy for s in (0, 1))
    envs = {"other": TrajectoryKL(make_vec(MAZE, 2, seed=0, max_steps=12), a, b), "same": TrajectoryKL(make_vec(MAZE, 2, seed=0, max_steps=12), a, a)}
    obs = {name: env.reset() for name, env in envs.items()}
    expected, finished = np.zeros(2), 0
    rng = np.random.default_rng(0)
    for _ in range(30):
        actions = rng.integers(0, 4, size=2)
        expected += [kl_to_initial(a, b, obs["other"][i : i + 1]) for i in range(2)]
        results = {name: env.step(actions) for name, env in envs.items()}
        obs = {name: r[0] for name, r in results.items()}
        _, _, done, infos = results["other"]
        for i in np.flatnonzero(done):
            assert infos[i]["outcome"]["trajectory_kl"] == pytest.approx(expected[i], rel=1e-2) and expected[i] > 0  # float32 logits
            assert results["same"][3][i]["outcome"]["trajectory_kl"] == pytest.approx(0.0, abs=1e-6)
            expected[i], finished = 0.0, finished + 1
    assert finished >= 2


def test_train_against_a_reward_model_with_kl_penalty_logs_the_measurements(tmp_path, race_model):
    code, out = goodhart("train", "--config", str(Path(__file__).parents[1] / "agents/configs/looprace.yaml"), "--reward-model", str(race_model),
                         "--kl-coef", "0.1", "--timesteps", "1024", "--out", str(tmp_path), "--no-progress",
                         "--set", "n_envs=4", "--set", "ppo.n_steps=128", "--set", "ppo.batch_size=256", "--set", "eval.freq=0",
                         "--set", "reward_model.eval_freq=512", "--set", "reward_model.eval_episodes=4", "--set", "reward_model.eval_states=64")
    assert code == 0, out
    rows = (tmp_path / "looprace" / "seed0" / "reward_model.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:4] == ["timestep", "kl", "d", "d_trajectory"] and {"trajectory_kl", "true_return", "return", "reward_model_return"} <= set(header)
    assert [int(r.split(",")[0]) for r in rows[1:]] == [0, 512, 1024]
    assert float(rows[1].split(",")[1]) == 0.0 and float(rows[-1].split(",")[1]) > 0
    episodes = (tmp_path / "looprace" / "seed0" / "episodes.csv").read_text().splitlines()[0]
    assert "reward_model_return" in episodes and "true_return" in episodes


def test_a_demo_of_a_policy_trained_on_a_reward_model_shows_the_learned_reward(tmp_path, race_model, capsys):
    from goodhart.agents.model_io import load_policy
    from goodhart.agents.policies import ModelPolicy
    from goodhart.experiments.teaching.panels import panels_for, plain

    code, out = goodhart("train", "--config", str(Path(__file__).parents[1] / "agents/configs/looprace.yaml"), "--reward-model", str(race_model),
                         "--timesteps", "256", "--out", str(tmp_path), "--no-progress", "--set", "n_envs=2", "--set", "ppo.n_steps=128",
                         "--set", "ppo.batch_size=256", "--set", "eval.freq=0", "--set", "reward_model.eval_freq=0",
                         "--set", "reward_model.scale=0.5")
    assert code == 0, out
    model_path = tmp_path / "looprace" / "seed0" / "model"
    panels, seed = panels_for(None, [model_path], ["train"], seed=0, deterministic=True)
    panel, rm = panels[0], load_reward_model(race_model)
    same = ModelPolicy(load_policy(model_path), deterministic=True)
    panel.start(seed)
    expected = 0.0
    for _ in range(10):
        expected += 0.5 * float(rm.rewards(panel.obs, np.asarray(same.act(panel.obs, panel.venv)).reshape(1))[0])
        panel.step()
    text = plain(panel.lines())
    assert f"reward model {expected:.2f}" in text and text[-1].startswith("racing")  # the describe line stays last
    race_model.with_suffix(".json").rename(tmp_path / "moved.json")
    try:
        panels, _ = panels_for(None, [model_path], ["train"], seed=0)
    finally:
        (tmp_path / "moved.json").rename(race_model.with_suffix(".json"))
    assert panels[0].learned is None and "cannot be read here" in capsys.readouterr().err


def test_iterated_mode_refits_on_segments_of_the_current_policy(tmp_path, race_model):
    prefs = race_model.parent / "prefs"
    code, out = goodhart("train", "--config", str(Path(__file__).parents[1] / "agents/configs/looprace.yaml"), "--reward-model", str(race_model),
                         "--timesteps", "1536", "--out", str(tmp_path), "--no-progress",
                         "--set", "n_envs=4", "--set", "ppo.n_steps=128", "--set", "ppo.batch_size=256", "--set", "eval.freq=0",
                         "--set", "reward_model.eval_freq=0", "--set", f"reward_model.iterated={{dataset: {prefs}, freq: 512, labels: 10, epochs: 1}}")
    assert code == 0, out
    rounds = sorted((tmp_path / "looprace" / "seed0" / "reward_model").glob("step_*_data.json"))
    assert [json.loads(p.read_text())["labels"] for p in rounds] == [70, 80]
    assert load_reward_model(str(rounds[-1]).replace("_data.json", "")).meta["data"]["labels"] == 80


def test_a_reward_model_of_another_env_or_a_corrupt_one_is_refused_before_anything_is_written(tmp_path, race_model):
    args = ["--timesteps", "256", "--no-progress", "--set", "eval.freq=0", "--out", str(tmp_path / "runs")]
    code, out = goodhart("train", "--env", MAZE, "--reward-model", str(race_model), *args)
    assert code == 2 and out.strip().splitlines() == [f"error: reward_model.path: {race_model}: fitted on {RACE}, not {MAZE}"]
    code, out = goodhart("train", "--env", RACE, "--reward-model", str(race_model), "--set", "env_kwargs.view=full", *args)
    agent, full = (make_vec(RACE, 1, view=view).observation_space.shape for view in ("agent", "full"))
    assert code == 2 and f"takes observations of shape {agent}, the env gives {full}" in out
    broken = tmp_path / "broken"
    (broken.with_suffix(".json")).write_text("{not json")
    code, out = goodhart("train", "--env", RACE, "--reward-model", str(broken), *args)
    assert code == 2 and len(out.strip().splitlines()) == 1 and "not valid JSON" in out
    assert not (tmp_path / "runs").exists()


def test_cli_collect_then_fit(tmp_path):
    code, out = goodhart("rlhf", "collect", "--env", MAZE, "--labels", "40", "--length", "6", "--rater", "temperature=0.1",
                         "--rater", "salience_bias=0.2", "--out", str(tmp_path / "prefs"))
    assert code == 0, out
    assert load_dataset(tmp_path / "prefs").rater == RaterConfig(temperature=0.1, salience_bias=0.2)
    code, out = goodhart("rlhf", "fit", str(tmp_path / "prefs"), "--out", str(tmp_path / "rm"), "--epochs", "2", "--channels", "8",
                         "--strides", "1", "--features-dim", "16", "--no-progress")
    assert code == 0 and "held out" in out, out
    assert load_reward_model(tmp_path / "rm").meta["data"]["labels"] == 40
    code, out = goodhart("rlhf", "fit", str(tmp_path / "missing"), "--out", str(tmp_path / "rm2"))
    assert code == 2 and "preference dataset metadata file not found" in out and not (tmp_path / "rm2.json").exists()


@pytest.mark.parametrize("command", [["rlhf", "clone"], ["rlhf", "collect"], ["rlhf", "fit"], ["train"], ["reproduce"]])
def test_help(command):
    code, out = goodhart(*command, "--help")
    assert code == 0 and "Usage" in out


# --------------------------------------------------------------------- the analysis
def test_gao_fit_recovers_the_coefficients_and_the_peak():
    d = np.linspace(0.05, 3.0, 30)
    alpha, beta = 1.5, 0.8
    gain = d * (alpha - beta * np.log(d))
    assert fit_gao(d, gain) == pytest.approx((alpha, beta))
    d_star, top = gao_peak(alpha, beta)
    assert d_star == pytest.approx(math.exp(alpha / beta - 1)) and top == pytest.approx(d_star * (alpha - beta * math.log(d_star)))
    assert math.isnan(gao_peak(1.0, -0.1)[0])


@pytest.mark.slow
def test_overoptimization_runner_end_to_end(tmp_path):
    """A tiny reproduction: cloned starting policies, preferences, reward models, PPO runs (a
    process each) from the clones, the fits, the references, the checks, report.md and the
    plot; re-running reuses everything."""
    from goodhart.experiments.overoptimization import load_overoptimization_spec, run_overoptimization

    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text("""
name: tiny
kind: overoptimization
config: looprace_rlhf.yaml
set: {total_timesteps: 2048, eval.freq: 0, n_envs: 4, ppo.n_steps: 128, ppo.batch_size: 256}
sft: {sources: [oracle-racer@0.3], episodes: 4, epochs: 1}
references: [random, oracle-farmer]
preferences: {sources: [random, oracle-racer@0.1, oracle-farmer@0.3], length: 10, rater: {temperature: 0.05, salience_bias: 0.03}}
reward_model: {network: {crop: 2, channels: [8], strides: [1], features_dim: 16}, epochs: 2, scale: 0.05}
labels: [20, 40]
kl: {labels: 40, kl_coef: 0.05}
measure: {eval_freq: 512, eval_episodes: 4, eval_states: 100}
seeds: 2
""")
    spec = load_overoptimization_spec(spec_file)
    report, failed, checks = run_overoptimization(spec, tmp_path / "out", workers=2)
    assert failed == [] and report.is_file() and (tmp_path / "out" / "overoptimization.png").is_file()
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(record["conditions"]) == {"labels=20", "labels=40", "labels=40,kl=0.05"}
    entry = record["conditions"]["labels=40"]
    assert len(entry["d"]) == 2 and entry["timestep"] == [0, 512, 1024, 1536, 2048] and entry["d"][0][0] == 0.0
    assert entry["trainer"] == "shipped" and "trainer's" not in report.read_text()  # the record names who trained its PPO
    assert len(checks) == 11 and "## Expected effects" in report.read_text() and "## Reference policies" in report.read_text()
    assert set(record["references"]) == {"random", "oracle-farmer", "sft"} and len(entry["d_trajectory"][0]) == 5
    run_config = (tmp_path / "out" / "runs" / "labels=20" / "seed1" / "config.yaml").read_text()
    assert f"init: {tmp_path / 'out' / 'sft' / 'seed1'}" in run_config
    started = (tmp_path / "out" / "reward_models" / "labels20" / "seed0.json").stat().st_mtime
    run_overoptimization(spec, tmp_path / "out", workers=2)
    assert (tmp_path / "out" / "reward_models" / "labels20" / "seed0.json").stat().st_mtime == started


def test_overoptimization_spec_errors_name_the_file_and_key(tmp_path):
    from goodhart.experiments.config import ConfigError
    from goodhart.experiments.overoptimization import load_overoptimization_spec

    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text("name: x\nkind: overoptimization\nconfig: looprace.yaml\npreferences: {sources: [random], rater: {bias: 1}}\nlabels: [10]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown rater option 'bias'"):
        load_overoptimization_spec(spec_file)
    spec_file.write_text("name: x\nkind: overoptimization\nconfig: looprace.yaml\npreferences: {sources: [random]}\nlabels: []\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: give one of labels .* and conditions"):
        load_overoptimization_spec(spec_file)


def test_one_default_for_each_fit_setting():
    """`goodhart rlhf fit` / `clone` and the over-optimization spec default to the fit's own
    settings (FitConfig, CloneConfig): one default each, not three."""
    import typer

    from goodhart.cli import app
    from goodhart.experiments.overoptimization import FitSpec, SFTSpec
    from goodhart.experiments.reward_learning.cloning import CloneConfig

    commands = {c.name: c for c in typer.main.get_command(app).commands["rlhf"].commands.values()}
    defaults = {name: {p.name: p.default for p in command.params} for name, command in commands.items()}
    assert defaults["fit"]["epochs"] == FitConfig.epochs == FitSpec().epochs
    assert defaults["fit"]["learning_rate"] == FitConfig.learning_rate and defaults["fit"]["val_fraction"] == FitConfig.val_fraction
    assert defaults["clone"]["epochs"] == CloneConfig.epochs == SFTSpec(sources=["random"]).epochs
    assert defaults["clone"]["learning_rate"] == CloneConfig.learning_rate and defaults["clone"]["val_fraction"] == CloneConfig.val_fraction
