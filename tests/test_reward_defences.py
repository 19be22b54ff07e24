"""Rater distortions that can act, ensemble objectives, and the studies built from them."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from goodhart.agents.policies import EpsilonPolicy, OraclePolicy
from goodhart.experiments.config import ConfigError
from goodhart.experiments.reward_learning.raters import RaterConfig, distortion_shares, rare_distortions
from goodhart.experiments.reward_learning.reward_model import FitConfig, combine, fit_reward_model
from goodhart.experiments.reward_learning.segments import collect_segments
from goodhart.experiments.reward_learning.sources import collect_preferences
from test_rlhf import RACE, TINY_FIT, synthetic


# -------------------------------------------------------------------- sampling
def test_a_small_pool_samples_whole_episodes_not_their_first_steps():
    """The race's lagoon is stocked from the second lap: segments cut in order from 64 copies
    held only first-lap steps (no target hit in 600 segments); drawn from whole episodes, a
    farmer's small pool shows the targets it farms."""
    farmer = EpsilonPolicy(OraclePolicy("farmer"), 0.1)
    pool = collect_segments(farmer, RACE, {"view": "agent"}, count=40, length=20, seed=0)
    hits = np.any(pool.salient > 0, axis=1)
    assert hits.mean() > 0.4
    again = collect_segments(farmer, RACE, {"view": "agent"}, count=40, length=20, seed=0)
    assert np.array_equal(pool.actions, again.actions) and np.array_equal(pool.obs, again.obs)


def test_whole_episodes_are_kept_with_every_copy_playing_the_same_number():
    racer = EpsilonPolicy(OraclePolicy("racer"), 0.3)
    pool = collect_segments(racer, RACE, {"view": "agent", "max_steps": 30}, count=8 * 3, length=10, seed=1, num_envs=8)
    assert len(pool) == 24 and pool.mask.all()  # 8 copies x 1 episode of 30 steps = 24 clips of 10: all of them


# ------------------------------------------------------------------ distortions
def test_distortion_shares_count_the_segments_each_distortion_can_change():
    segments = synthetic(
        [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0]],
        salient=[[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]],
        regions={"top": [[1, 1, 1, 1], [1, 1, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]]},
    )
    assert distortion_shares(segments, RaterConfig()) == {}
    assert distortion_shares(segments, RaterConfig(salience_bias=0.1)) == {"salience_bias": 0.5}
    assert distortion_shares(segments, RaterConfig(oversight_region="top")) == {"oversight_region": 0.25}
    # watching the first half: segment 1's reward and segment 3's salient event are unseen
    assert distortion_shares(segments, RaterConfig(oversight_fraction=0.5)) == {"oversight_fraction": 0.5}
    assert rare_distortions({"salience_bias": 0.5}) == []
    (line,) = rare_distortions({"salience_bias": 0.01})
    assert line.startswith("warning: rater option salience_bias can act on only 0.010 of the segments")


def test_a_dataset_records_its_distortion_shares_and_a_prefix_its_own():
    data = collect_preferences(RACE, {"view": "agent"}, ["oracle-farmer@0.1", "oracle-racer@0.3"], labels=40,
                               rater=RaterConfig(salience_bias=0.06), length=20, seed=0)
    share = data.info["distortion_shares"]["salience_bias"]
    assert 0.2 < share < 0.8
    prefix = data.first(10)
    used = np.unique(data.pairs[:10])
    expected = float(np.mean(np.any(data.segments.salient[used] > 0, axis=1)))
    assert prefix.info["distortion_shares"]["salience_bias"] == pytest.approx(expected)


# ------------------------------------------------------------------- objectives
def test_objectives_combine_the_members_as_documented():
    members = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 0.5]])
    assert np.allclose(combine(members, "mean"), [2.0, -1.0, 0.5])
    assert np.allclose(combine(members, "worst"), [1.0, -2.0, 0.5])
    assert np.allclose(combine(members, "uncertainty", 2.0), [0.0, -3.0, 0.5])
    assert np.allclose(combine(members, "single"), [1.0, -2.0, 0.5])
    rng = np.random.default_rng(0)
    many = rng.normal(size=(5, 1000))
    assert np.all(combine(many, "worst") <= combine(many, "mean"))
    with pytest.raises(ValueError, match="objective 'best' is not one of"):
        combine(members, "best")


@pytest.fixture(scope="module")
def tiny_data():
    return collect_preferences(RACE, {"view": "agent"}, ["random", "oracle-racer@0.3", "oracle-farmer@0.3"], labels=60,
                               rater=RaterConfig(temperature=0.05, salience_bias=0.06), length=10, seed=2)


def test_an_ensemble_of_identical_members_equals_one_member(tiny_data):
    one = fit_reward_model(tiny_data, TINY_FIT)
    same = copy.deepcopy(one)
    same.nets = [one.nets[0], copy.deepcopy(one.nets[0]), copy.deepcopy(one.nets[0])]
    same.mean, same.std = np.repeat(one.mean, 3), np.repeat(one.std, 3)
    obs = tiny_data.segments.observations(np.arange(12)).reshape(-1, *tiny_data.segments.obs_shape)
    actions = tiny_data.segments.actions[:12].reshape(-1)
    expected = one.rewards(obs, actions)
    for objective in ("mean", "worst", "uncertainty", "single"):
        assert np.allclose(same.with_objective(objective, 1.5).rewards(obs, actions), expected, atol=1e-6), objective
    with pytest.raises(ValueError, match="needs an ensemble"):
        one.with_objective("worst")


def test_bootstrap_members_train_on_different_resamples(tiny_data):
    config = FitConfig(network=TINY_FIT.network, epochs=2, ensemble=2, seed=0)
    plain = fit_reward_model(tiny_data, config)
    boot = fit_reward_model(tiny_data, FitConfig(**{**config.__dict__, "bootstrap": True}))
    assert boot.meta["fit"]["bootstrap"] is True and plain.meta["fit"]["bootstrap"] is False
    first = lambda m: next(iter(m.nets[1].state_dict().values()))  # noqa: E731
    assert not np.allclose(first(plain).numpy(), first(boot).numpy())


# -------------------------------------------------------------------- the study spec
def _spec(tmp_path, body: str):
    from goodhart.experiments.overoptimization import load_overoptimization_spec

    path = tmp_path / "study.yaml"
    path.write_text("name: s\nkind: overoptimization\nconfig: looprace_rlhf.yaml\npreferences: {sources: [random]}\n" + body)
    return load_overoptimization_spec(path)


def test_named_conditions_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="study.yaml: condition a: rater 'biased' is not one of raters"):
        _spec(tmp_path, "conditions: {a: {labels: 10, rater: biased}}\n")
    with pytest.raises(ConfigError, match="study.yaml: check 'x': 'b' is not a condition"):
        _spec(tmp_path, "conditions: {a: {labels: 10}}\nchecks: [{text: x, condition: a, value: final_true, than: b}]\n")
    with pytest.raises(ConfigError, match="study.yaml: .*query"):
        _spec(tmp_path, "conditions: {a: {labels: 10, iterated: {query: loudest}}}\n")
    with pytest.raises(ConfigError, match="give one of labels"):
        _spec(tmp_path, "labels: [10]\nconditions: {a: {labels: 10}}\n")


@pytest.mark.slow
def test_a_study_of_raters_objectives_best_of_n_and_queries_end_to_end(tmp_path):
    """Named raters and conditions, an ensemble with every objective, a KL penalty, iterated
    disagreement queries, the salient-only baseline, behaviour, best-of-n and declared checks:
    the record has each, the report shows each."""
    from goodhart.experiments.overoptimization import run_overoptimization

    spec = _spec(tmp_path, """
set: {total_timesteps: 1024, eval.freq: 0, n_envs: 4, ppo.n_steps: 128, ppo.batch_size: 256}
sft: {sources: [oracle-racer@0.3], episodes: 4, epochs: 1}
references: [random]
raters: {exact: {}, biased: {salience_bias: 0.06}}
reward_model: {network: {crop: 2, channels: [8], strides: [1], features_dim: 16}, epochs: 2, scale: 0.05, ensemble: 3, bootstrap: true}
conditions:
  exact: {labels: 30, rater: exact}
  biased: {labels: 30, rater: biased, objective: single}
  worst: {labels: 30, rater: biased, objective: worst, kl_coef: 0.05}
  asked: {labels: 30, rater: biased, iterated: {freq: 512, labels: 10, epochs: 1, query: disagreement}}
baseline: {name: salient-only, set: {env_kwargs.checkpoint_score: 0, env_kwargs.finish_score: 0}, against: biased}
behaviour: {episodes: 4, segments: 40}
best_of_n: {labels: 30, rater: biased, objectives: [single, worst], levels: 2, per_level: 8, ns: [1, 2, 8], falls: single, holds: worst}
checks: [{text: biased above exact, condition: biased, value: behaviour.salient, than: exact}]
measure: {eval_freq: 512, eval_episodes: 4, eval_states: 50}
seeds: 2
""")
    report, failed, checks = run_overoptimization(spec, tmp_path / "out", workers=2)
    assert failed == []
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(record["conditions"]) == {"exact", "biased", "worst", "asked"}
    assert record["conditions"]["worst"]["objective"] == "worst" and record["raters"]["biased"]["salience_bias"] == 0.06
    assert {"salient", "outside_track", "true_return", "disagreement"} <= set(record["conditions"]["biased"]["behaviour"])
    assert "disagreement_initial" in record["conditions"]["biased"] and "correlation" in record["conditions"]["exact"]
    assert record["baseline"]["against"] == "biased" and "share_of_gain" in record["baseline"]
    assert set(record["conditions"]["biased"]["distortion_shares"]) == {"salience_bias"} and record["conditions"]["exact"]["distortion_shares"] == {}
    assert set(record["best_of_n"]["curves"]) == {"single", "worst"} and record["best_of_n"]["ns"] == [1, 2, 8]
    assert (tmp_path / "out" / "runs" / "asked" / "seed0" / "reward_model").is_dir()
    assert len(checks) == 3 and (tmp_path / "out" / "best_of_n.png").is_file()
    text = report.read_text()
    for section in ("## Raters", "## Where the rater's distortions could act", "## What the final policies do", "## Best-of-n", "salient-only baseline"):
        assert section in text
