"""Best-of-n sampling against a learned reward model: the exact estimator, the analytic KL, the
fitted form and the scored episodes it draws from."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from goodhart.agents.policies import policy_from_name
from goodhart.envs import core_class
from goodhart.experiments.reward_learning.best_of_n import (
    best_of_n,
    curve,
    d_best_of_n,
    fit_best_of_n,
    kl_best_of_n,
    sample_episodes,
)
from goodhart.experiments.reward_learning.dataset import make_dataset
from goodhart.experiments.reward_learning.raters import RaterConfig
from goodhart.experiments.reward_learning.reward_model import FitConfig, fit_reward_model
from goodhart.experiments.reward_learning.segments import collect_segments

RACE = "goodhart/LoopRace-v0"
KWARGS = {"view": "agent", "laps": 5, "max_steps": 15}


def brute_force(scores: np.ndarray, values: np.ndarray, n: int) -> float:
    """The mean over every n-subset (in index order) of the value of its ``np.argmax`` score."""
    picks = [values[list(subset)][np.argmax(scores[list(subset)])] for subset in itertools.combinations(range(len(scores)), n)]
    return float(np.mean(picks))


# ------------------------------------------------------------------------ the estimator
def test_one_sample_is_the_initial_policy_and_all_samples_the_top_one():
    rng = np.random.default_rng(0)
    scores, values = rng.normal(size=(4, 50)), rng.normal(size=(4, 50))
    np.testing.assert_allclose(best_of_n(scores, values, 1), values.mean(axis=1))
    np.testing.assert_allclose(best_of_n(scores, values, 50), values[np.arange(4), scores.argmax(axis=1)])
    for bad in (0, 51):
        with pytest.raises(ValueError, match="n="):
            best_of_n(scores, values, bad)


@pytest.mark.parametrize("row", [[0.3, -1.2, 2.5, 0.9, 1.7, -0.4], [1.0, 3.0, 3.0, 0.0, 2.0, 3.0], [1.0] * 6])
def test_the_estimator_averages_over_every_subset_ties_to_the_lowest_index(row):
    """Against every n-subset for N = 6, with ties (three equal top scores, all equal) won by
    the lowest index as ``np.argmax`` picks."""
    scores = np.array(row)
    values = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    for n in range(1, 7):
        assert best_of_n(scores[None], values[None], n)[0] == pytest.approx(brute_force(scores, values, n), abs=1e-12)


def test_the_weights_stay_finite_for_thousands_of_samples():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(2, 4000))
    for n in (1, 2, 100, 3999, 4000):
        got = best_of_n(scores, scores, n)
        assert np.isfinite(got).all()
    top = np.sort(scores, axis=1)
    np.testing.assert_allclose(best_of_n(scores, scores, 4000), top[:, -1])
    assert (best_of_n(scores, scores, 100) > best_of_n(scores, scores, 2)).all()


# ------------------------------------------------------------------------ KL and the fit
@pytest.mark.parametrize("n", [2, 4, 16])
def test_the_analytic_kl_matches_a_monte_carlo_estimate(n):
    """The best of n uniform scores has density n u^(n-1) against the initial uniform one, so
    KL is the mean of its log at the maxima."""
    u = np.random.default_rng(n).random((400_000, n)).max(axis=1)
    estimate = np.mean(np.log(n) + (n - 1) * np.log(u))
    assert kl_best_of_n(n) == pytest.approx(estimate, abs=0.01)
    assert d_best_of_n(n) == pytest.approx(np.sqrt(kl_best_of_n(n)))
    assert kl_best_of_n(1) == 0.0


def test_the_fit_recovers_the_coefficients():
    d = np.array([d_best_of_n(n) for n in (1, 2, 4, 8, 16, 64, 256, 1024)])
    alpha, beta = 1.3, 0.45
    assert fit_best_of_n(d, d * (alpha - beta * d)) == pytest.approx((alpha, beta))
    with pytest.raises(ValueError, match="two distinct"):
        fit_best_of_n(np.array([0.0, 1.0]), np.array([0.0, 1.0]))


def test_the_curve_starts_at_the_mean_and_the_proxy_rises():
    rng = np.random.default_rng(2)
    true = rng.normal(size=(3, 40))
    proxy = true + rng.normal(size=(3, 40))
    out = curve({"mean": proxy}, true, [1, 4, 40])["mean"]
    assert out["d"][0] == 0.0 and np.all(np.diff(out["d"]) > 0)
    assert out["true_return"][0] == pytest.approx(true.mean()) and out["proxy"][0] == pytest.approx(proxy.mean())
    assert np.all(np.diff(out["proxy"]) > 0)
    assert out["true_return"][2] == pytest.approx(true[np.arange(3), proxy.argmax(axis=1)].mean())


# ------------------------------------------------------------------------ scored episodes
@pytest.fixture(scope="module")
def race_model():
    pool = collect_segments(policy_from_name("random", RACE), RACE, KWARGS, count=40, length=8, seed=0, num_envs=8)
    dataset = make_dataset(pool, 30, RaterConfig(), 0, RACE, KWARGS)
    fit = FitConfig(network={"channels": [8], "strides": [1], "features_dim": 16, "crop": 2}, ensemble=2, epochs=1, seed=0)
    return fit_reward_model(dataset, fit)


def test_sample_episodes_scores_whole_episodes_on_each_level(race_model):
    def sample(**kw):
        return sample_episodes(policy_from_name("random", RACE), race_model, RACE, KWARGS, levels=2, per_level=3, level_seed=5, seed=1, **kw)

    scores = sample()
    assert scores.true_return.shape == (2, 3) and scores.members.shape == (2, 2, 3)
    assert set(scores.scores) == {"mean", "worst", "uncertainty", "single"}
    assert all(s.shape == (2, 3) for s in scores.scores.values())
    assert set(core_class(RACE).OUTCOMES) <= set(scores.outcomes) and scores.outcomes["steps"].max() <= KWARGS["max_steps"]
    # the same seed, the same episodes; the steps of one episode only, up to its end
    again = sample()
    np.testing.assert_array_equal(scores.members, again.members)
    np.testing.assert_array_equal(scores.true_return, again.true_return)
    np.testing.assert_allclose(scores.true_return, scores.outcomes["true_return"])
    # the mean of the sums is the sum of the means; the worst member is never above the mean
    np.testing.assert_allclose(scores.scores["mean"], scores.members.mean(axis=0))
    np.testing.assert_allclose(scores.scores["single"], scores.members[0])
    assert (scores.scores["worst"] <= scores.scores["mean"] + 1e-9).all()
    assert (scores.scores["uncertainty"] <= scores.scores["mean"] + 1e-9).all()
    assert np.ptp(scores.members) > 0  # the random episodes differ
    only = sample(objectives=["mean"], num_envs=4)
    assert set(only.scores) == {"mean"}
    with pytest.raises(ValueError, match="objective"):
        sample(objectives=["best"])


def test_every_episode_of_a_level_starts_on_that_level_in_any_chunking(race_model):
    """A deterministic racer on shifted levels plays the same episode on every copy of a
    level, whether the batch is played at once or in chunks that split a level (the nets'
    float32 sums may differ in the last bits between batch sizes)."""
    kwargs = {**KWARGS, "distribution": "shifted"}

    def sample(num_envs):
        return sample_episodes(policy_from_name("oracle-racer", RACE), race_model, RACE, kwargs, levels=3, per_level=3, level_seed=0,
                               seed=0, objectives=["mean"], num_envs=num_envs)

    whole, chunked = sample(None), sample(2)
    np.testing.assert_allclose(whole.members, whole.members[:, :, :1].repeat(3, axis=2), rtol=1e-6)
    np.testing.assert_allclose(whole.members, chunked.members, rtol=1e-6)
    np.testing.assert_array_equal(whole.outcomes["checkpoints"], chunked.outcomes["checkpoints"])
    assert np.ptp(whole.members[0, :, 0]) > 1.0  # the levels differ, and each row kept its own


def test_an_episode_counts_its_own_steps_only(race_model):
    """Races of one lap end at different steps: each episode's sums stop at its own end (the
    batch steps on until the last one ends), and its outcomes are read then."""
    kwargs = {**KWARGS, "laps": 1, "max_steps": 80}
    scores = sample_episodes(policy_from_name("oracle-racer@0.3", RACE), race_model, RACE, kwargs, levels=2, per_level=3, level_seed=0,
                             seed=0, objectives=["mean"])
    steps = scores.outcomes["steps"]
    assert scores.outcomes["finished"].all() and np.ptp(steps) > 0 and steps.max() < 80
    np.testing.assert_array_equal(scores.true_return, scores.outcomes["true_return"])
    np.testing.assert_array_equal(scores.true_return, np.ones((2, 3)))
