"""The level curriculum as a training callback: it picks each rollout's levels, gates PPO's
update on them, scores them afterwards, and logs how often distinguishing levels were trained on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from goodhart.agents.curriculum.buffer import LevelBuffer
from goodhart.agents.curriculum.scores import NEEDS_OPTIMAL_RETURN, LevelRollout, score_levels
from goodhart.agents.files import CsvLog
from goodhart.envs.core.grid import Levels, declares
from goodhart.envs.core.vec_env import GridVecEnv

METHODS = {
    "dr": "domain randomization: fresh levels from the generator every episode (the curriculum only counts)",
    "plr": "Prioritized Level Replay; robust (PLR⊥): the policy learns only from replayed levels, new ones are only scored",
    "accel": "ACCEL: PLR⊥ plus edits of the levels just replayed, scored and admitted like new levels",
}
CURRICULUM_FILE = "curriculum.csv"
LEVEL_STREAM = 24  # mixed into the seed of the curriculum's own new levels: a stream no other level set uses


@dataclass(frozen=True)
class CurriculumSettings:
    """A curriculum's knobs, as the run config's ``curriculum:`` section gives them (its
    defaults and their meaning are there: ``CurriculumConfig.settings()`` makes these).
    ``edits``: the env's edits ACCEL may use (empty: all of them)."""

    method: str
    score: str
    robust: bool
    buffer_size: int
    replay_prob: float
    temperature: float
    staleness: float
    edits: tuple[str, ...]
    num_edits: int


class LevelCurriculum(BaseCallback):
    """Runs a curriculum on a :class:`GridVecEnv` (give it after the callback that saves
    checkpoints: its state is saved between scoring one rollout and picking the next).

    Each rollout every copy plays one level, again after each episode (``play_levels``): a
    *replay* rollout of levels sampled from the buffer, which PPO learns from; a *new* one of
    fresh levels from the generator, scored and offered to the buffer, learned from only by
    non-robust PLR; for ACCEL, after each replay, an *edit* rollout of the replayed levels
    edited, scored and offered like new ones. ``dr`` leaves the env alone and counts.

    Writes ``curriculum.csv`` in ``folder`` (one row per rollout: its kind, the share of
    distinguishing levels and episodes, whether PPO learned from it, the buffer's size,
    scores and share of distinguishing levels) and ``curriculum/*`` to TensorBoard.
    """

    def __init__(self, settings: CurriculumSettings, venv: GridVecEnv, gamma: float, seed: int, folder: Path, resumed_at: int | None) -> None:
        super().__init__()
        self.settings, self.venv, self.core = settings, venv, venv.core
        self.gamma, self.seed = gamma, seed
        self.n = venv.num_envs
        self.buffer = LevelBuffer(settings.buffer_size)
        self.rng = np.random.default_rng([LEVEL_STREAM, seed, 1])
        self.counts = declares(self.core, "distinguishing")
        self.needs_optimum = settings.score in NEEDS_OPTIMAL_RETURN
        self.edits = list(settings.edits or self.core.EDITS)
        self.generated = 0  # new levels drawn so far: the next one's index in the curriculum's stream
        self.clock = 0  # replay rollouts so far (staleness)
        self.pending: Levels | None = None  # ACCEL: the edited levels to play next
        self.totals = {"episodes": 0, "distinguishing": 0}  # over the rollouts PPO learned from
        self.log = CsvLog(folder / CURRICULUM_FILE, resumed_at)
        self.kind = "dr"
        self.levels: Levels | None = None
        self.slots: np.ndarray | None = None

    # ------------------------------------------------------------ rollouts
    def _on_rollout_start(self) -> None:
        self.kind, self.slots = self._next_kind(), None
        if self.kind != "dr":
            if self.kind == "replay":
                self.slots = self.buffer.sample(self.rng, self.n, self.settings.temperature, self.settings.staleness, self.clock)
                self.levels = self.buffer.take(self.slots)
                self.clock += 1
            elif self.kind == "edit":
                self.levels, self.pending = self.pending, None
            else:
                self.levels = self._new_levels()
            self.model._last_obs = self.venv.play_levels(self.levels)
            self.model._last_episode_starts = np.ones(self.n, dtype=bool)
        self.learns = self.kind in ("dr", "replay") or (self.kind == "new" and not self.settings.robust)
        self.model.learn_from_rollout = self.learns
        self.level_is_distinguishing = self.core.distinguishing(self.core.level_arrays()) if self.counts else None
        self.rollout_counts = {"episodes": 0, "distinguishing": 0}
        self.t = np.zeros(self.n, dtype=np.int64)
        self.proxy_so_far, self.true_so_far = np.zeros(self.n), np.zeros(self.n)
        self.proxy_returns: list[list[float]] = [[] for _ in range(self.n)]
        self.true_returns: list[list[float]] = [[] for _ in range(self.n)]
        self.reached: list[list[bool]] = [[] for _ in range(self.n)]
        if self.needs_optimum:
            self.best_true = self.core.optimal_return(self.core.level_arrays(), 1.0)

    def _next_kind(self) -> str:
        method = self.settings.method
        if method == "dr":
            return "dr"
        if method == "accel" and self.pending is not None:
            return "edit"
        if self.buffer.size >= self.n and self.rng.random() < self.settings.replay_prob:
            return "replay"
        return "new"

    def _new_levels(self) -> Levels:
        """Fresh levels of the generator, level ``k`` of the run's stream drawn from a generator
        seeded by (stream, run seed, k): the same levels on every replay of the run."""
        rngs = [np.random.default_rng([LEVEL_STREAM, self.seed, 0, self.generated + i]) for i in range(self.n)]
        self.generated += self.n
        return self.core.generate_levels(rngs)

    def _on_step(self) -> bool:
        rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
        discount = self.gamma ** self.t
        self.proxy_so_far += discount * rewards
        self.true_so_far += discount * np.fromiter((info["true_reward"] for info in infos), float, self.n)
        self.t += 1
        ended = np.flatnonzero(dones)
        for i in ended:
            self.proxy_returns[i].append(float(self.proxy_so_far[i]))
            self.true_returns[i].append(float(self.true_so_far[i]))
            if self.needs_optimum:
                self.reached[i].append(infos[i]["outcome"]["true_return"] >= self.best_true[i] - 1e-9)
            if self.counts:
                self.rollout_counts["episodes"] += 1
                self.rollout_counts["distinguishing"] += int(self.level_is_distinguishing[i])
        if len(ended):
            self.proxy_so_far[ended], self.true_so_far[ended], self.t[ended] = 0.0, 0.0, 0
            if self.kind == "dr" and self.counts:  # a new level from the generator
                self.level_is_distinguishing[ended] = self.core.distinguishing(self.core.level_arrays(ended))
                if self.needs_optimum:
                    self.best_true[ended] = self.core.optimal_return(self.core.level_arrays(ended), 1.0)
        return True

    def _on_rollout_end(self) -> None:
        if self.learns:
            for key in self.totals:
                self.totals[key] += self.rollout_counts[key]
        admitted = 0
        if self.kind != "dr":
            rollout = self._rollout()
            optimal = self.core.optimal_return(self.levels, self.gamma) if self.settings.score == "oracle" else None
            stored = self.buffer.max_returns[self.slots] if self.kind == "replay" else None
            scores = score_levels(self.settings.score, rollout, optimal, stored)
            if self.kind == "replay":
                self.buffer.update(self.slots, scores, rollout.best_returns(), self.clock)
                if self.settings.method == "accel":
                    self.pending = self.core.edit_levels(self.levels, self.edits, self.settings.num_edits, self.rng)
            else:
                distinguishing = self.level_is_distinguishing if self.counts else np.zeros(self.n, dtype=bool)
                admitted = self.buffer.admit(self.levels, scores, rollout.best_returns(), distinguishing, self.clock)
        self._log(admitted)

    def _rollout(self) -> LevelRollout:
        buffer = self.model.rollout_buffer
        proxy, true = [list(r) for r in self.proxy_returns], [list(r) for r in self.true_returns]
        for i in range(self.n):
            if not proxy[i]:  # no episode finished: what the unfinished one earned so far
                proxy[i], true[i] = [float(self.proxy_so_far[i])], [float(self.true_so_far[i])]
        return LevelRollout(np.asarray(buffer.advantages), np.asarray(buffer.values), proxy, true, self.reached)

    def _log(self, admitted: int) -> None:
        size = self.buffer.size
        trained = self.totals["episodes"]
        row = {
            "timestep": self.num_timesteps,
            "kind": self.kind,
            "learned": int(self.learns),
            "episodes": self.rollout_counts["episodes"],
            "distinguishing_episodes": self.rollout_counts["distinguishing"],
            "distinguishing_levels": float(np.mean(self.level_is_distinguishing)) if self.counts else math.nan,
            "played_distinguishing": self.totals["distinguishing"] / trained if trained else math.nan,
            "admitted": admitted,
            "buffer_size": size,
            "buffer_score_mean": float(self.buffer.scores[:size].mean()) if size else math.nan,
            "buffer_score_max": float(self.buffer.scores[:size].max()) if size else math.nan,
            "buffer_distinguishing": float(self.buffer.distinguishing[:size].mean()) if size else math.nan,
        }
        self.log.write([row])
        for key in ("played_distinguishing", "buffer_size", "buffer_score_mean", "buffer_score_max", "buffer_distinguishing"):
            if not math.isnan(row[key]):
                self.logger.record(f"curriculum/{key}", row[key])

    # ------------------------------------------------------ save and resume
    def state_dict(self) -> dict[str, Any]:
        """The buffer, the curriculum's generator, counters and pending edits (numpy arrays,
        ints and the generator's state: what a checkpoint stores)."""
        return {
            "buffer": self.buffer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "generated": self.generated,
            "clock": self.clock,
            "pending": self.pending,
            "totals": dict(self.totals),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.rng.bit_generator.state = state["rng"]
        self.generated, self.clock = int(state["generated"]), int(state["clock"])
        self.pending = None if state["pending"] is None else {key: np.array(v) for key, v in state["pending"].items()}
        self.totals = {key: int(v) for key, v in state["totals"].items()}
