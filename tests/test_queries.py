"""Active preference queries: the pairs the reward model's ensemble disputes most
(goodhart.experiments.reward_learning.queries) and the iterated mode's use of them."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

from goodhart.agents.policies import EpsilonPolicy, OraclePolicy, RandomPolicy
from goodhart.cli import app
from goodhart.experiments.config import ConfigError, IteratedConfig, RewardModelConfig
from goodhart.experiments.reward_learning.dataset import PreferenceDataset, load_dataset, make_dataset, save_dataset
from goodhart.experiments.reward_learning.queries import choose_pairs, disagreement, member_segment_returns, pair_disagreement
from goodhart.experiments.reward_learning.raters import RaterConfig, label, sample_pairs
from goodhart.experiments.reward_learning.reward_model import FitConfig, fit_reward_model, save_reward_model, segment_returns
from goodhart.experiments.reward_learning.segments import Segments, collect_segments, concatenate
from goodhart.experiments.reward_learning.training import IteratedRefit

RACE = "goodhart/LoopRace-v0"
TINY_NETWORK = {"channels": [8], "strides": [1], "features_dim": 16, "crop": 2}


@pytest.fixture(scope="module")
def pool() -> Segments:
    sources = [EpsilonPolicy(RandomPolicy(), 0.0), EpsilonPolicy(OraclePolicy("racer"), 0.3), EpsilonPolicy(OraclePolicy("farmer"), 0.3)]
    return concatenate([collect_segments(p, RACE, {"view": "agent"}, count=40, length=10, seed=k, num_envs=8) for k, p in enumerate(sources)])


@pytest.fixture(scope="module")
def dataset(pool) -> PreferenceDataset:
    return make_dataset(pool, 60, RaterConfig(salience_bias=0.05), 0, RACE, {"view": "agent"})


@pytest.fixture(scope="module")
def ensemble(dataset):
    return fit_reward_model(dataset, FitConfig(network=TINY_NETWORK, ensemble=3, epochs=3, seed=0))


def test_member_returns_are_the_members_sums_and_average_to_the_models_returns(ensemble, dataset, pool):
    members = member_segment_returns(ensemble, pool)
    raw = member_segment_returns(ensemble, pool, normalised=False)
    assert members.shape == raw.shape == (3, len(pool))
    assert np.allclose(members.mean(axis=0), segment_returns(ensemble, dataset.segments), atol=1e-4)
    steps = pool.mask.sum(axis=1)
    assert np.allclose(members, (raw - ensemble.mean[:, None] * steps) / ensemble.std[:, None], atol=1e-4)
    assert not np.allclose(raw[0], raw[1])  # the members differ


def test_the_random_query_is_sample_pairs_exactly(ensemble, pool):
    for model in (ensemble, None):
        rng, reference = np.random.default_rng(5), np.random.default_rng(5)
        assert np.array_equal(choose_pairs(model, pool, 25, rng, "random"), sample_pairs(len(pool), 25, reference))
        assert rng.random() == reference.random()  # the same draws: the labels that follow are unchanged


def test_the_disagreement_query_keeps_the_most_disputed_candidates_in_the_order_drawn(ensemble, pool):
    count, candidates = 15, 4
    chosen = choose_pairs(ensemble, pool, count, np.random.default_rng(3), "disagreement", candidates)
    drawn = sample_pairs(len(pool), candidates * count, np.random.default_rng(3))
    scores = disagreement(member_segment_returns(ensemble, pool, normalised=False), drawn)
    kept = [k for k in range(len(drawn)) if any((drawn[k] == pair).all() for pair in chosen)]
    assert chosen.shape == (count, 2) and np.array_equal(drawn[kept], chosen)  # candidates, in the order drawn
    left = np.setdiff1d(np.arange(len(drawn)), kept)
    assert scores[kept].min() >= scores[left].max() and scores.max() > 0  # the top count of them
    assert np.allclose(pair_disagreement(ensemble, pool, chosen), scores[kept])
    random = choose_pairs(ensemble, pool, count, np.random.default_rng(3), "random")
    assert pair_disagreement(ensemble, pool, chosen).mean() > pair_disagreement(ensemble, pool, random).mean()
    one = choose_pairs(ensemble, pool, count, np.random.default_rng(3), "disagreement", candidates=1)
    assert np.array_equal(one, random)


def test_disagreement_is_the_spread_of_the_members_bradley_terry_probabilities():
    returns = np.array([[0.0, 0.0, 2.0], [0.0, 2.0, -1.0]])
    pairs = np.array([[0, 1], [2, 0], [1, 1]])
    def sigmoid(x: float) -> float:
        return 1 / (1 + np.exp(-x))

    expected = [np.std([0.5, sigmoid(-2.0)]), np.std([sigmoid(2.0), sigmoid(-1.0)]), 0.0]
    assert np.allclose(disagreement(returns, pairs), expected)
    assert np.all(disagreement(np.array([[1e4, -1e4], [-1e4, 1e4]]), np.array([[0, 1]])) == 0.5)  # no overflow


def test_an_ensemble_of_identical_members_never_disagrees(ensemble, pool):
    clone = dataclasses.replace(ensemble, nets=[copy.deepcopy(net) for net in ensemble.nets],
                                mean=np.full(3, ensemble.mean[0]), std=np.full(3, ensemble.std[0]))
    for net in clone.nets[1:]:
        net.load_state_dict(clone.nets[0].state_dict())
    pairs = sample_pairs(len(pool), 200, np.random.default_rng(0))
    for normalised in (True, False):
        returns = member_segment_returns(clone, pool, normalised=normalised)
        assert np.array_equal(returns[1], returns[0]) and np.array_equal(returns[2], returns[0])
        assert np.all(disagreement(returns, pairs) == 0)
    chosen = choose_pairs(clone, pool, 10, np.random.default_rng(1), "disagreement", 3)
    assert np.array_equal(chosen, sample_pairs(len(pool), 30, np.random.default_rng(1))[:10])  # all tied: the first drawn


def test_a_disagreement_query_on_one_net_is_refused(ensemble, pool):
    single = dataclasses.replace(ensemble, nets=ensemble.nets[:1], mean=ensemble.mean[:1], std=ensemble.std[:1])
    with pytest.raises(ValueError, match=r"^disagreement queries need an ensemble: fit the reward model with ensemble >= 2$"):
        choose_pairs(single, pool, 5, np.random.default_rng(0), "disagreement")
    with pytest.raises(ValueError, match="query 'hardest' is not one of"):
        choose_pairs(ensemble, pool, 5, np.random.default_rng(0), "hardest")
    with pytest.raises(ValueError, match="candidates=0 is not allowed"):
        choose_pairs(ensemble, pool, 5, np.random.default_rng(0), "disagreement", 0)
    spec = RewardModelConfig(path="rm", iterated=IteratedConfig(dataset="prefs", query="disagreement"))
    with pytest.raises(ConfigError) as err:
        IteratedRefit.check(SimpleNamespace(spec=spec, model=single))
    assert str(err.value) == "reward_model.iterated.query: disagreement queries need an ensemble; rm has one net (fit it with ensemble >= 2)"
    IteratedRefit.check(SimpleNamespace(spec=spec, model=ensemble))
    IteratedRefit.check(SimpleNamespace(spec=spec.model_copy(update={"iterated": IteratedConfig(dataset="prefs")}), model=single))
    for bad in ({"query": "hardest"}, {"candidates": 0}):
        with pytest.raises(ValueError):
            IteratedConfig(dataset="prefs", **bad)


def test_adding_given_pairs_labels_those_pairs(dataset, pool):
    noisy = dataclasses.replace(dataset, rater=RaterConfig(temperature=0.5, noise=0.2))
    new = pool.subset(np.arange(100, 120))
    pairs = np.array([[4, 0], [2, 17], [0, 9], [11, 4]])
    grown = noisy.add(new, np.random.default_rng(7), 4, pairs=pairs)
    assert np.array_equal(grown.labels[:60], dataset.labels) and np.array_equal(grown.pairs[:60], dataset.pairs)
    assert np.array_equal(grown.labels[60:], label(new, pairs, noisy.rater, np.random.default_rng(7)))
    assert len(grown.segments) == len(pool) + 6  # only the compared segments join the pool
    added = grown.pairs[60:]
    for side in (0, 1):
        assert np.array_equal(grown.segments.true_reward[added[:, side]], new.true_reward[pairs[:, side]])
        assert np.array_equal(grown.segments.obs[added[:, side]], new.obs[pairs[:, side]])
    # without pairs: random pairs as before; given those same pairs (every segment compared): the same dataset
    plain = noisy.add(new, np.random.default_rng(8), 10)
    drawn = sample_pairs(len(new), 10, np.random.default_rng(8))
    assert np.array_equal(plain.pairs[60:], drawn + len(pool)) and len(plain.segments) == len(pool) + 20
    rng = np.random.default_rng(8)  # advanced by sample_pairs, as choose_pairs' random query leaves it for the labels
    given = noisy.add(new, rng, 10, pairs=sample_pairs(len(new), 10, rng))
    assert np.array_equal(given.pairs, plain.pairs) and np.array_equal(given.labels, plain.labels)
    assert all(np.array_equal(a, b) for a, b in zip(given.segments.arrays().values(), plain.segments.arrays().values()))
    with pytest.raises(ValueError, match=r"expected \(4, 2\) indices of the 20 new segments"):
        noisy.add(new, np.random.default_rng(7), 4, pairs=pairs + 10)


def test_iterated_mode_with_disagreement_queries(tmp_path, dataset, ensemble):
    save_dataset(dataset, tmp_path / "prefs")
    stem = save_reward_model(ensemble, tmp_path / "rm")
    single = save_reward_model(dataclasses.replace(ensemble, nets=ensemble.nets[:1], mean=ensemble.mean[:1], std=ensemble.std[:1]), tmp_path / "rm1")
    args = ["train", "--config", str(Path(__file__).parents[1] / "agents/configs/looprace.yaml"), "--timesteps", "1536",
            "--no-progress", "--set", "n_envs=4", "--set", "ppo.n_steps=128", "--set", "ppo.batch_size=256", "--set", "eval.freq=0",
            "--set", "reward_model.eval_freq=0",
            "--set", f"reward_model.iterated={{dataset: {tmp_path / 'prefs'}, freq: 512, labels: 10, epochs: 1, query: disagreement, candidates: 3}}"]
    result = CliRunner().invoke(app, [*args, "--reward-model", str(single), "--out", str(tmp_path / "one")])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: reward_model.iterated.query: disagreement queries need an ensemble; {single} has one net (fit it with ensemble >= 2)"]
    result = CliRunner().invoke(app, [*args, "--reward-model", str(stem), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    rounds = sorted((tmp_path / "runs" / "looprace" / "seed0" / "reward_model").glob("step_*_data.json"))
    meta = [json.loads(p.read_text()) for p in rounds]
    assert [(m["labels"], m["segments"]) for m in meta] == [(70, 140), (80, 160)]  # 20 compared segments a round
    last = load_dataset(str(rounds[-1]).replace(".json", ""))
    assert np.array_equal(np.sort(last.pairs[60:].reshape(-1)), np.arange(120, 160))  # disjoint pairs
    events = EventAccumulator(str(next((tmp_path / "runs" / "looprace" / "seed0").glob("tb_1"))))
    events.Reload()
    logged = [event.value for event in events.Scalars("rlhf/query_disagreement")]
    assert len(logged) == 2 and all(0 < value <= 0.5 for value in logged)
