"""PLR's level buffer: the levels of highest regret seen so far, sampled by rank and staleness."""

from __future__ import annotations

from typing import Any

import numpy as np

from goodhart.envs.core.grid import Levels


class LevelBuffer:
    """At most ``capacity`` levels with their scores, the replay clock at which each was last
    played (staleness), the highest discounted return seen on each (MaxMC) and whether each is
    distinguishing. A new level enters while there is room, then only in place of the level
    of lowest score, and only if its own score is higher (Jiang et al. 2021)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.levels: Levels = {}
        self.scores = np.zeros(capacity)
        self.last_played = np.zeros(capacity, dtype=np.int64)
        self.max_returns = np.full(capacity, -np.inf)
        self.distinguishing = np.zeros(capacity, dtype=bool)
        self.size = 0

    def take(self, slots: np.ndarray) -> Levels:
        """The levels in ``slots``, as (k, ...) arrays."""
        return {key: values[slots].copy() for key, values in self.levels.items()}

    def probabilities(self, temperature: float, staleness: float, clock: int) -> np.ndarray:
        """Replay probabilities of the stored levels: ``(1 - staleness) * P_rank +
        staleness * P_stale``, with ``P_rank`` proportional to ``(1 / rank) ** (1 /
        temperature)`` (rank 1: the highest score) and ``P_stale`` to the replays since each
        level was last played."""
        k = self.size
        ranks = np.empty(k)
        ranks[np.argsort(-self.scores[:k], kind="stable")] = np.arange(1, k + 1)
        weights = (1.0 / ranks) ** (1.0 / temperature)
        by_score = weights / weights.sum()
        age = (clock - self.last_played[:k]).astype(float)
        by_age = age / age.sum() if age.sum() > 0 else np.full(k, 1.0 / k)
        return (1 - staleness) * by_score + staleness * by_age

    def sample(self, rng: np.random.Generator, n: int, temperature: float, staleness: float, clock: int) -> np.ndarray:
        """``n`` distinct slots drawn by :meth:`probabilities` without replacement (the buffer
        holds at least ``n``): a batch of n copies plays n levels. Drawn one by one with
        replacement, rank prioritization at temperature 0.3 would give the top level about
        60 % of the batch, and the policy would learn from a handful of levels at a time."""
        return rng.choice(self.size, size=n, replace=False, p=self.probabilities(temperature, staleness, clock))

    def update(self, slots: np.ndarray, scores: np.ndarray, max_returns: np.ndarray, clock: int) -> None:
        """New scores of replayed levels (a level replayed by several copies keeps the last)."""
        self.scores[slots] = scores
        self.max_returns[slots] = np.maximum(self.max_returns[slots], max_returns)
        self.last_played[slots] = clock

    def admit(self, levels: Levels, scores: np.ndarray, max_returns: np.ndarray, distinguishing: np.ndarray, clock: int) -> int:
        """Offer each of ``levels`` in turn; the number admitted."""
        if not self.levels:
            self.levels = {key: np.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype) for key, v in levels.items()}
        admitted = 0
        for i, score in enumerate(scores):
            if self.size < self.capacity:
                slot = self.size
                self.size += 1
            else:
                slot = int(np.argmin(self.scores))
                if score <= self.scores[slot]:
                    continue
            for key, values in levels.items():
                self.levels[key][slot] = values[i]
            self.scores[slot], self.max_returns[slot] = score, max_returns[i]
            self.distinguishing[slot], self.last_played[slot] = distinguishing[i], clock
            admitted += 1
        return admitted

    # ------------------------------------------------------ save and resume
    def state_dict(self) -> dict[str, Any]:
        """Numpy arrays and ints only (a checkpoint stores them as tensors)."""
        return {
            "size": self.size,
            "scores": self.scores.copy(),
            "last_played": self.last_played.copy(),
            "max_returns": self.max_returns.copy(),
            "distinguishing": self.distinguishing.copy(),
            "levels": {key: values.copy() for key, values in self.levels.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["scores"]) != self.capacity:
            raise ValueError(f"the saved level buffer holds {len(state['scores'])} levels, this one {self.capacity}")
        self.size = int(state["size"])
        self.scores, self.last_played = np.array(state["scores"], dtype=float), np.array(state["last_played"], dtype=np.int64)
        self.max_returns, self.distinguishing = np.array(state["max_returns"], dtype=float), np.array(state["distinguishing"], dtype=bool)
        self.levels = {key: np.array(values) for key, values in state["levels"].items()}
