"""Best-of-n sampling against a learned reward model: the second optimisation method of Gao,
Schulman & Hilton (2022, "Scaling laws for reward model overoptimization").

Instead of training a policy on the reward model (PPO, :mod:`.training`), best-of-n draws n
episodes from the initial policy and keeps the one the reward model scores highest. The more
samples, the harder the proxy is optimised, and the further the kept episodes' distribution
moves from the initial policy's: by ``KL(best-of-n || initial) = log n - (n - 1) / n`` nats
(:func:`kl_best_of_n`), without any training. Gao et al. found the true (gold) return of
best-of-n to follow ``R(d) = d (alpha - beta d)`` in ``d = sqrt(KL)`` (:func:`fit_best_of_n`),
where PPO's followed ``d (alpha - beta log d)``.

Nothing is re-sampled per n: :func:`sample_episodes` plays ``N`` episodes per level once,
recording every reward model objective's return, each member's return, the true return and
the env's outcomes; :func:`best_of_n` then gives, for any ``n <= N``, the exact expectation
over all n-subsets of those samples (an unbiased estimate of best-of-n's mean, with far less
variance than drawing subsets at random), and :func:`curve` the proxy and true curves in d.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammaln

from goodhart.agents.policies import Policy
from goodhart.envs import make_vec
from goodhart.envs.core.rollout import Step, rollout
from goodhart.experiments.reward_learning.reward_model import OBJECTIVES, RewardModel, combine


@dataclass(frozen=True)
class EpisodeScores:
    """``per_level`` episodes on each of ``levels`` levels, scored: row ``j`` holds the
    episodes of level seed ``level_seeds[j]``, the pool best-of-n draws from for that level.

    Attributes:
        true_return: (levels, per_level) the true return of each episode.
        scores: objective -> (levels, per_level), the reward model's return under it (the sum
            over the episode's steps of the members' normalised rewards combined by the
            objective, :func:`~.reward_model.combine`).
        members: (K, levels, per_level) each ensemble member's normalised return.
        outcomes: outcome name -> (levels, per_level), the env's outcome metrics of each
            episode (``return``, ``true_return``, the env's ``OUTCOMES``, ``steps``).
        level_seeds: (levels,) the level seed of each row.
        uncertainty_coef: the coefficient of the ``uncertainty`` objective.
    """

    true_return: np.ndarray
    scores: dict[str, np.ndarray]
    members: np.ndarray
    outcomes: dict[str, np.ndarray]
    level_seeds: np.ndarray
    uncertainty_coef: float = 1.0


def _objectives(model: RewardModel, objectives: Sequence[str] | None, uncertainty_coef: float) -> list[str]:
    """The objectives to score, each checked as the trainer checks it (an ensemble for
    ``worst`` and ``uncertainty``); by default every one the model's ensemble allows."""
    if objectives is None:
        objectives = [o for o in OBJECTIVES if len(model.nets) > 1 or o not in ("worst", "uncertainty")]
    if not objectives:
        raise ValueError("give at least one reward model objective")
    for objective in objectives:
        model.with_objective(objective, uncertainty_coef)  # a ValueError naming it otherwise
    return list(dict.fromkeys(objectives))


def sample_episodes(
    policy: Policy,
    model: RewardModel,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    *,
    levels: int,
    per_level: int,
    level_seed: int,
    seed: int,
    objectives: Sequence[str] | None = None,
    uncertainty_coef: float = 1.0,
    num_envs: int | None = None,
) -> EpisodeScores:
    """Play ``per_level`` whole episodes of ``policy`` on each of ``levels`` levels and score
    them by ``model`` (see :class:`EpisodeScores`).

    Level ``j`` is the level of seed ``level_seed + j``, and all its episodes start there
    (copies of the batch share a seed), so that best-of-n compares episodes of one level, as
    Gao et al. compare completions of one prompt. Episode ``e`` (row ``e // per_level``) is
    played by copy ``e`` of a batch of all ``levels * per_level`` episodes, or, with
    ``num_envs``, of consecutive chunks of that many; each copy plays exactly one episode (no
    auto-reset), and a step's reward is predicted from the observation its action was taken
    from, as :class:`~.reward_env.RewardModelVecEnv` does in training.

    ``objectives`` are keys of ``OBJECTIVES`` of :mod:`~goodhart.experiments.reward_learning.reward_model` (default: all that the
    model's ensemble allows). ``policy.reset(seed)`` is called once first, so the episodes
    are the same for the same ``(seed, num_envs)``; a different ``num_envs`` hands the
    policy's random draws out differently."""
    for name, value in (("levels", levels), ("per_level", per_level)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed; expected an integer >= 1")
    total = levels * per_level
    if num_envs is not None and (not isinstance(num_envs, int) or num_envs < 1):
        raise ValueError(f"num_envs={num_envs!r} is not allowed; expected an integer >= 1 or None (all episodes at once)")
    batch = total if num_envs is None else min(num_envs, total)
    chosen = _objectives(model, objectives, uncertainty_coef)
    members = np.zeros((len(model.nets), total))
    scores = {objective: np.zeros(total) for objective in chosen}
    true_return = np.zeros(total)
    outcomes: dict[str, np.ndarray] = {}
    policy.reset(seed)
    for start in range(0, total, batch):
        episodes = np.arange(start, min(start + batch, total))
        for step, live, rewards, ended in _play(policy, model, env_id, env_kwargs, level_seed + episodes // per_level):
            rows = episodes[live]
            members[:, rows] += rewards
            for objective in chosen:
                scores[objective][rows] += combine(rewards, objective, uncertainty_coef)
            true_return[rows] += step.true_reward[live]
            for name, values in ended.items():
                outcomes.setdefault(name, np.zeros(total, dtype=values.dtype))[episodes[step.ended]] = values
    shape = (levels, per_level)
    return EpisodeScores(
        true_return=true_return.reshape(shape),
        scores={objective: values.reshape(shape) for objective, values in scores.items()},
        members=members.reshape(len(model.nets), *shape),
        outcomes={name: values.reshape(shape) for name, values in outcomes.items()},
        level_seeds=level_seed + np.arange(levels),
        uncertainty_coef=float(uncertainty_coef),
    )


def _play(policy: Policy, model: RewardModel, env_id: str, env_kwargs: Mapping[str, Any] | None,
          seeds: np.ndarray) -> Iterator[tuple[Step, np.ndarray, np.ndarray, dict[str, np.ndarray]]]:
    """One episode of ``policy`` on each copy of a batch started on the levels of ``seeds``. Per
    step: the step, the copies still in their episode, their members' rewards (K, live) and
    the outcomes (name -> (ended,)) of the copies whose episode ended in it."""
    venv = make_vec(env_id, len(seeds), **dict(env_kwargs or {}))
    core = venv.core  # stepped directly: one episode per copy, outcomes read as each ends
    model.check_env(env_id, tuple(core.observation_shape), "best-of-n reward model")
    try:
        for step in rollout(core, lambda obs: policy.act(obs, venv), seeds):
            live = np.flatnonzero(step.live)
            ended = {}
            if step.ended.any():  # the core shows the state after this step, before any reset
                ended = {name: values[step.ended] for name, values in core.outcome_arrays().items()}
            yield step, live, model.member_rewards(step.obs[live], step.actions[live]), ended
    finally:
        venv.close()


# ------------------------------------------------------------------------ the estimator
def _rank_weights(samples: int, n: int) -> np.ndarray:
    """(samples,) the probability that the sample of rank r (1-based, ascending score) is the
    best of a uniformly random n-subset: ``C(r-1, n-1) / C(samples, n)``, in logs (lgamma) so
    that thousands of samples neither overflow nor underflow to nonsense."""
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= samples:
        raise ValueError(f"n={n!r} is not allowed; expected an integer from 1 to the {samples} samples per level")
    rank = np.arange(1, samples + 1)
    log_w = np.full(samples, -np.inf)
    ok = rank >= n
    r = rank[ok]
    log_w[ok] = (gammaln(r) - gammaln(n) - gammaln(r - n + 1)) - (gammaln(samples + 1) - gammaln(n + 1) - gammaln(samples - n + 1))
    weights = np.exp(log_w)
    return weights / weights.sum()  # exactly 1 in theory (hockey-stick identity); rounding removed


def _by_score(scores: np.ndarray, *values: np.ndarray) -> list[np.ndarray]:
    """``values`` (L, N) reordered within each row by ascending ``scores``; among equal scores
    the higher index ranks lower, so that the lowest index ranks highest (wins the tie, as
    ``np.argmax`` does)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"scores of shape {scores.shape}; expected (levels, samples per level)")
    index = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((-index, scores), axis=-1)
    out = []
    for v in values:
        v = np.asarray(v, dtype=float)
        if v.shape != scores.shape:
            raise ValueError(f"values of shape {v.shape} do not match scores of shape {scores.shape}")
        out.append(np.take_along_axis(v, order, axis=1))
    return out


def best_of_n(scores: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """(L,) for each row (level) of ``scores`` and ``values`` (L, N): the expected ``values``
    of the highest-scored of ``n`` episodes drawn without replacement from the row's N.

    Exact over all C(N, n) subsets, not a Monte Carlo draw: the sample of rank r (ascending
    score, 1-based) is the best of a random n-subset with probability C(r-1, n-1) / C(N, n).
    Ties in score go to the lowest index, as ``np.argmax`` over the subset (in index order)
    would pick. ``n = 1`` gives the row's mean (the initial policy), ``n = N`` the top-scored
    sample. A ValueError for n < 1 or n > N."""
    (ranked,) = _by_score(scores, values)
    return ranked @ _rank_weights(ranked.shape[1], n)


# ------------------------------------------------------------------------ KL and the fit
def kl_best_of_n(n: int) -> float:
    """``KL(best-of-n || initial) = log n - (n - 1) / n`` nats: the analytic value for
    continuous scores (Stiennon et al., 2020; Gao et al., 2022), the x axis of the curves. With
    ties among the scores (a discrete distribution of episodes) the true KL is at most this
    (Beirami et al., 2024)."""
    if n < 1:
        raise ValueError(f"n={n!r} is not allowed; expected n >= 1")
    return math.log(n) - (n - 1) / n


def d_best_of_n(n: int) -> float:
    """``d = sqrt(KL(best-of-n || initial))``, Gao et al.'s distance from the initial policy."""
    return math.sqrt(max(kl_best_of_n(n), 0.0))


def fit_best_of_n(d: np.ndarray, gain: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(alpha, beta)`` of Gao et al.'s best-of-n form ``gain = d (alpha - beta d)``
    over points ``d >= 0``; ``gain`` is the true return less the initial policy's (n = 1, d = 0).
    A ValueError if fewer than two distinct d > 0 pin the two coefficients down."""
    d, gain = np.asarray(d, dtype=float).reshape(-1), np.asarray(gain, dtype=float).reshape(-1)
    if d.shape != gain.shape:
        raise ValueError(f"{d.size} values of d but {gain.size} gains")
    if (d < 0).any() or not np.isfinite(d).all() or not np.isfinite(gain).all():
        raise ValueError("d must be finite and >= 0, and every gain finite")
    if len(np.unique(d[d > 0])) < 2:
        raise ValueError("fitting d (alpha - beta d) needs at least two distinct d > 0")
    features = np.stack([d, -d * d], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(features, gain, rcond=None)
    return float(alpha), float(beta)


def curve(
    scores_by_objective: Mapping[str, np.ndarray], true_return: np.ndarray, ns: Sequence[int]
) -> dict[str, dict[str, np.ndarray]]:
    """Best-of-n curves, one per objective: objective -> ``{"n", "kl", "d", "true_return",
    "proxy"}``, arrays over ``ns``; ``true_return`` and ``proxy`` (the objective's own score of
    the chosen episode) are best-of-n's expectation averaged over levels. ``scores_by_objective``
    maps objective -> (L, N) scores (:attr:`EpisodeScores.scores`), ``true_return`` is (L, N)."""
    ns = [int(n) for n in ns]
    kl = np.array([kl_best_of_n(n) for n in ns])
    out = {}
    for objective, scores in scores_by_objective.items():
        true_ranked, proxy_ranked = _by_score(scores, true_return, scores)
        weights = [_rank_weights(true_ranked.shape[1], n) for n in ns]
        out[objective] = {
            "n": np.array(ns), "kl": kl, "d": np.sqrt(np.maximum(kl, 0.0)),
            "true_return": np.array([(true_ranked @ w).mean() for w in weights]),
            "proxy": np.array([(proxy_ranked @ w).mean() for w in weights]),
        }
    return out


__all__ = ["EpisodeScores", "best_of_n", "curve", "d_best_of_n", "fit_best_of_n", "kl_best_of_n", "sample_episodes"]
