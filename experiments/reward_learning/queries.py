"""Which pairs of segments the rater is asked about: random pairs, or the pairs the reward
model's ensemble disputes most (active queries).

Christiano et al. (2017) sampled many pairs of clips, had each member of the reward-model
ensemble predict which clip of each pair the rater prefers, and asked about the pairs whose
predictions varied most across the members: a label is worth most where the model is least
sure. Here a member's prediction is its Bradley-Terry probability that the first segment is
preferred, ``sigmoid(R_k(a) - R_k(b))`` with ``R_k`` the member's predicted return, and the
disagreement of a pair is the standard deviation of that probability over the members
(:func:`disagreement`). The returns are the nets' raw ones, which their Bradley-Terry fit
compared: the normalised rewards PPO sees (unit deviation per step) push most probabilities of
segments of tens of steps to 0 or 1, and the spread to 0 or 0.5. :func:`choose_pairs` draws
``candidates x count`` random pairs and keeps the ``count`` most disputed. Query modes (:data:`QUERIES`) are those of
``reward_model.iterated.query``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from goodhart.experiments.reward_learning.raters import sample_pairs
from goodhart.experiments.reward_learning.reward_model import RewardModel, member_step_rewards
from goodhart.experiments.reward_learning.segments import Segments

QUERIES = {
    "random": "random pairs of the segments (sample_pairs)",
    "disagreement": "the most disputed of candidates x count random pairs: the highest standard deviation over the ensemble's "
                    "members of their Bradley-Terry probability that the first segment is preferred",
}


def member_segment_returns(model: RewardModel, segments: Segments, normalised: bool = True) -> np.ndarray:
    """(K, M) each member's predicted return of every segment: the sum of its rewards over the
    segment's steps, normalised (as :meth:`RewardModel.member_rewards`) or, with
    ``normalised=False``, the net's raw outputs, the returns its Bradley-Terry fit compared."""
    if not normalised:
        model = dataclasses.replace(model, mean=np.zeros(len(model.nets)), std=np.ones(len(model.nets)))
    rewards = member_step_rewards(model, segments, np.arange(segments.mask.size))
    return np.sum(np.where(segments.mask[None], rewards.reshape(len(model.nets), *segments.mask.shape), 0.0), axis=2)


def disagreement(member_returns: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(P,) for ``pairs`` (P, 2) of segment indices, the standard deviation over the members of
    ``member_returns`` (K, M) of each member's probability ``sigmoid(R_k(a) - R_k(b))`` that
    the first segment is preferred: 0 where all members agree, at most 0.5."""
    diff = member_returns[:, pairs[:, 0]] - member_returns[:, pairs[:, 1]]
    p_first = 0.5 * (1.0 + np.tanh(0.5 * diff))  # sigmoid, without overflow
    return (p_first - p_first[:1]).std(axis=0)  # the same spread; exactly 0 where the members agree exactly


def pair_disagreement(model: RewardModel, segments: Segments, pairs: np.ndarray) -> np.ndarray:
    """(P,) :func:`disagreement` of ``model``'s members (on their raw returns, as in
    :func:`choose_pairs`) about ``pairs`` of ``segments``; only the segments the pairs compare
    are evaluated."""
    used, inverse = np.unique(pairs, return_inverse=True)
    return disagreement(member_segment_returns(model, segments.subset(used), normalised=False), inverse.reshape(pairs.shape))


def choose_pairs(model: RewardModel | None, segments: Segments, count: int, rng: np.random.Generator, query: str = "random",
                 candidates: int = 4) -> np.ndarray:
    """(count, 2) pairs of ``segments`` for the rater, by ``query`` (a key of :data:`QUERIES`):

    * ``random``: ``sample_pairs(len(segments), count, rng)`` exactly (``model`` unused);
    * ``disagreement``: ``sample_pairs(len(segments), candidates * count, rng)``, of which the
      ``count`` with the highest :func:`disagreement` of ``model``'s members are kept, in the
      order drawn (ties: the earlier drawn). The members' raw returns are compared, the ones
      their Bradley-Terry fit used, so each probability is the member's own prediction of the
      rater. With ``candidates=1`` the pairs are the random mode's.

    Either way ``rng`` advances by the one ``sample_pairs`` call. A ValueError (one line) for an
    unknown query, ``candidates < 1``, or a disagreement query on a model of one net."""
    if query == "random":
        return sample_pairs(len(segments), count, rng)
    if query != "disagreement":
        raise ValueError(f"query {query!r} is not one of {list(QUERIES)}")
    if isinstance(candidates, bool) or not isinstance(candidates, int | np.integer) or candidates < 1:
        raise ValueError(f"candidates={candidates!r} is not allowed; expected an integer >= 1")
    if model is None or len(model.nets) < 2:
        raise ValueError("disagreement queries need an ensemble: fit the reward model with ensemble >= 2")
    drawn = sample_pairs(len(segments), candidates * count, rng)
    if candidates == 1:
        return drawn
    scores = pair_disagreement(model, segments, drawn)
    kept = np.sort(np.argsort(-scores, kind="stable")[:count])
    return drawn[kept]
