"""Regret estimators: how much better than the policy one could do on a level, from one rollout.

Each scores every copy's level from what the copy did on it in the rollout just collected
(:class:`LevelRollout`): PPO's advantages and values, and the discounted returns of the
episodes it finished there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCORES = {
    "pvl": "positive value loss (Jiang et al. 2021): the mean over the rollout's steps of max(GAE advantage, 0)",
    "maxmc": "MaxMC (Jiang et al. 2021b): the highest discounted return ever seen on the level minus the mean value",
    "oracle": "oracle regret: the level's exact optimal discounted true return (the env's optimal_return) minus the "
              "mean discounted true return of the policy's episodes on it",
    "learnability": "learnability p(1 - p) (Rutherford et al. 2024), p the share of the policy's episodes on the level "
                    "that reach its optimal undiscounted true return",
}
NEEDS_OPTIMAL_RETURN = ("oracle", "learnability")


@dataclass(frozen=True)
class LevelRollout:
    """What one rollout showed of each of N copies' levels.

    Attributes:
        advantages, values: (T, N) PPO's GAE advantages and value estimates.
        proxy_returns, true_returns: per copy, the discounted returns (proxy: the reward
            trained on; true: the env's true reward) of the episodes it finished, in order;
            a copy that finished none has its unfinished episode's so far.
        reached_optimum: per copy, whether each finished episode reached the level's
            optimal undiscounted true return (empty where none finished).
    """

    advantages: np.ndarray
    values: np.ndarray
    proxy_returns: list[list[float]]
    true_returns: list[list[float]]
    reached_optimum: list[list[bool]]

    def best_returns(self) -> np.ndarray:
        """(N,) the highest discounted proxy return seen on each copy's level in the rollout."""
        return np.array([max(r) for r in self.proxy_returns])


def score_levels(name: str, rollout: LevelRollout, optimal: np.ndarray | None = None, max_returns: np.ndarray | None = None) -> np.ndarray:
    """(N,) scores ``name`` (one of ``SCORES``) of the copies' levels. ``optimal``: the levels'
    optimal discounted true returns (oracle); ``max_returns``: the highest discounted returns
    seen on them before this rollout (MaxMC; default: none)."""
    if name == "pvl":
        return np.maximum(rollout.advantages, 0.0).mean(axis=0)
    if name == "maxmc":
        best = rollout.best_returns() if max_returns is None else np.maximum(max_returns, rollout.best_returns())
        return best - rollout.values.mean(axis=0)
    if name == "oracle":
        if optimal is None:
            raise ValueError("oracle regret needs the levels' optimal returns")
        return optimal - np.array([np.mean(r) for r in rollout.true_returns])
    if name == "learnability":
        p = np.array([np.mean(r) if r else 0.0 for r in rollout.reached_optimum])
        return p * (1 - p)
    raise ValueError(f"score={name!r} is not a regret estimator; valid ones: {list(SCORES)}")
