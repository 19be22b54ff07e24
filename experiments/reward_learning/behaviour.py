"""What a policy trained against a learned reward actually does, in the terms of the rater's
distortions, and where the reward model's members disagree.

* :func:`episode_behaviour`: per episode of a policy, the env's salient event
  (``SALIENT_EVENT``, what a biased rater over-rewards) and the share of steps outside each
  oversight region (``OVERSIGHT_REGIONS``, what a rater with limited oversight cannot see),
  beside the true return. Whole episodes, so the numbers are per episode.
* :func:`salience_correlation`: the Pearson correlation, over a fixed set of segments, between
  a reward model's return and the salient-event count: the analogue of the correlation between
  reward and response length that Singhal et al. (2023) and ODIN (Chen et al., 2024) measure.
* :func:`state_disagreement`: the members' spread on the states a policy visits: an ensemble
  is a defence only where its members disagree on what the over-optimized policy does
  (Eisenstein et al., 2023).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from goodhart.agents.policies import Policy
from goodhart.envs import core_class
from goodhart.experiments.reward_learning.reward_model import RewardModel, member_step_rewards, segment_returns
from goodhart.experiments.reward_learning.segments import Segments, collect_segments


def episode_segments(policy: Policy, env_id: str, env_kwargs: Mapping[str, Any], episodes: int, seed: int) -> Segments:
    """``episodes`` whole episodes of ``policy`` (one segment each), copy ``i`` on level seed ``seed + i``."""
    max_steps = core_class(env_id)(1, **dict(env_kwargs)).max_steps
    return collect_segments(policy, env_id, env_kwargs, count=episodes, length=max_steps, seed=seed, num_envs=episodes)


def episode_behaviour(episodes: Segments) -> dict[str, float]:
    """Means over whole episodes: ``salient`` (salient events per episode), ``outside_<region>``
    (share of an episode's steps outside each oversight region), ``true_return``."""
    steps = episodes.mask.sum(axis=1)
    out = {
        "salient": float(np.mean(np.where(episodes.mask, episodes.salient, 0.0).sum(axis=1))),
        "true_return": float(np.mean(np.where(episodes.mask, episodes.true_reward, 0.0).sum(axis=1))),
    }
    for region, seen in episodes.in_view.items():
        out[f"outside_{region}"] = float(np.mean((episodes.mask & ~seen).sum(axis=1) / np.maximum(steps, 1)))
    return out


def salience_correlation(model: RewardModel, segments: Segments) -> float:
    """Pearson correlation over ``segments`` between ``model``'s return and the salient-event
    count; NaN where either does not vary."""
    salient = np.where(segments.mask, segments.salient, 0.0).sum(axis=1)
    learned = segment_returns(model, segments)
    if salient.std() == 0 or learned.std() == 0:
        return float("nan")
    return float(np.corrcoef(learned, salient)[0, 1])


def state_disagreement(model: RewardModel, segments: Segments) -> float:
    """Mean over the steps of ``segments`` of the standard deviation of the members'
    normalised rewards of the action taken."""
    spread = member_step_rewards(model, segments, np.flatnonzero(segments.mask.reshape(-1))).std(axis=0)
    return float(np.mean(spread)) if spread.size else float("nan")
