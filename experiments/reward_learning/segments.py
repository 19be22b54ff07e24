"""Trajectory segments for preference comparisons: short clips of episodes, with what a rater sees.

A :class:`Segments` pool holds ``M`` clips of at most ``L`` consecutive steps of one episode
each, from any batched policies (random, the env's oracles, trained models, each with an
optional share of random actions). Per step it keeps the observation the action was taken
from and the action (what a reward model learns from), and the quantities a simulated rater
judges: the true reward, the env's salient proxy-like event (:meth:`GridCore.salient_events`)
and, for each of the env's oversight regions, whether the agent was in it
(:meth:`GridCore.in_view`). Symbolic observations (planes of 0s and 1s) are stored bit-packed.

Pools are saved as ``<stem>.npz`` (arrays only, loaded with ``allow_pickle=False``) beside a
JSON record of where they came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goodhart.agents.policies import Policy
from goodhart.envs import make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.rollout import rollout


@dataclass
class Segments:
    """A pool of ``M`` segments of at most ``L`` steps (shorter ones are padded; ``mask``).

    Attributes:
        obs: (M, L, ...) uint8 observations, bit-packed along the last axis if ``packed``.
        obs_shape: the shape of one observation.
        packed: observations are 0/1 planes stored with ``np.packbits``.
        actions: (M, L) int64.
        mask: (M, L) bool, the segment's real steps.
        true_reward: (M, L) float64, the env's true reward of each step.
        env_reward: (M, L) float64, the env's own (proxy) reward of each step.
        salient: (M, L) float64, the env's salient event of each step (0 if it declares none).
        in_view: region -> (M, L) bool, the agent was in that oversight region after the step.
        source: (M,) int64, index into ``sources``, the policy that played the segment.
        sources: names of the policies.
    """

    obs: np.ndarray
    obs_shape: tuple[int, ...]
    packed: bool
    actions: np.ndarray
    mask: np.ndarray
    true_reward: np.ndarray
    env_reward: np.ndarray
    salient: np.ndarray
    in_view: dict[str, np.ndarray]
    source: np.ndarray
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def length(self) -> int:
        return self.actions.shape[1]

    def observations(self, index: Any) -> np.ndarray:
        """(k, L, *obs_shape) uint8 observations of segments ``index``."""
        obs = self.obs[index]
        if not self.packed:
            return obs
        return np.unpackbits(obs, axis=-1, count=self.obs_shape[-1])

    def subset(self, index: Any) -> Segments:
        return Segments(
            self.obs[index], self.obs_shape, self.packed, self.actions[index], self.mask[index],
            self.true_reward[index], self.env_reward[index], self.salient[index],
            {name: seen[index] for name, seen in self.in_view.items()}, self.source[index], list(self.sources),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as named arrays, for ``np.savez``."""
        data = {
            "obs": self.obs, "obs_shape": np.asarray(self.obs_shape, dtype=np.int64), "packed": np.asarray(self.packed),
            "actions": self.actions, "mask": self.mask, "true_reward": self.true_reward,
            "env_reward": self.env_reward, "salient": self.salient, "source": self.source,
            "sources": np.asarray(self.sources, dtype=str),
        }
        data.update({f"in_view.{name}": seen for name, seen in self.in_view.items()})
        return data

    @classmethod
    def from_arrays(cls, data: Mapping[str, np.ndarray]) -> Segments:
        in_view = {key.split(".", 1)[1]: np.asarray(value) for key, value in data.items() if key.startswith("in_view.")}
        return cls(
            np.asarray(data["obs"]), tuple(int(s) for s in data["obs_shape"]), bool(data["packed"]),
            np.asarray(data["actions"]), np.asarray(data["mask"]), np.asarray(data["true_reward"]),
            np.asarray(data["env_reward"]), np.asarray(data["salient"]), in_view,
            np.asarray(data["source"]), [str(s) for s in data["sources"]],
        )


def collect_segments(
    policy: Policy,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    *,
    count: int,
    length: int,
    seed: int,
    num_envs: int = 64,
) -> Segments:
    """``count`` segments of ``policy``, drawn at random from the clips of whole episodes.

    ``num_envs`` copies (copy ``i``'s levels drawn from seed ``seed + i``) play episodes back
    to back; each finished episode is cut into consecutive clips of ``length`` steps (its last
    clip may be shorter). The first ``R`` episodes of every copy are kept, ``R`` the fewest
    that hold ``count`` clips, and ``count`` of their clips are chosen uniformly (seeded by
    ``seed``), in the order played. So a small pool samples every part of the episodes, not
    only their first steps (cut in order, 600 segments of the race held only its first lap,
    before any target could be hit). The policy is reset with ``seed`` first."""
    if count < 1 or length < 1:
        raise ValueError(f"count={count} and length={length} must be at least 1")
    venv = make_vec(env_id, num_envs, **dict(env_kwargs or {}))
    core = venv.core  # rollout steps it directly, so that per-step rater data is read before a copy resets
    regions = list(core.OVERSIGHT_REGIONS)
    has_salient = core.SALIENT_EVENT is not None
    policy.reset(seed)
    packed = venv.observation_space.high.max() == 1
    episode: list[dict[str, list]] = [_empty(regions) for _ in range(num_envs)]
    pending: list[list[dict[str, np.ndarray]]] = [[] for _ in range(num_envs)]  # clips of each copy's running episode
    finished: list[list[list[dict[str, np.ndarray]]]] = [[] for _ in range(num_envs)]  # copy -> its episodes' clips
    rounds = 1
    for step in rollout(core, lambda obs: policy.act(obs, venv), range(seed, seed + num_envs), autoreset=True):
        salient = np.asarray(to_numpy(core.salient_events())) if has_salient else np.zeros(num_envs)
        seen = {r: np.asarray(to_numpy(core.in_view(r))) for r in regions}
        for i in range(num_envs):
            steps = episode[i]
            steps["obs"].append(np.packbits(step.obs[i], axis=-1) if packed else step.obs[i])
            steps["actions"].append(step.actions[i])
            steps["true_reward"].append(step.true_reward[i])
            steps["env_reward"].append(step.reward[i])
            steps["salient"].append(salient[i])
            for r in regions:
                steps[r].append(seen[r][i])
            if len(steps["actions"]) == length:
                pending[i].append(_clip(steps))
                episode[i] = _empty(regions)
        for i in np.flatnonzero(step.ended):
            if episode[i]["actions"]:
                pending[i].append(_clip(episode[i]))
            finished[i].append(pending[i])
            pending[i], episode[i] = [], _empty(regions)
        if min(len(f) for f in finished) >= rounds:
            if _enough(finished, rounds, count):
                break
            rounds += 1
    clips = [clip for copy in finished for ep in copy[:rounds] for clip in ep]
    chosen = np.sort(np.random.default_rng([seed, 17]).choice(len(clips), size=count, replace=False))
    return _stack([clips[k] for k in chosen], length, venv.observation_space.shape, packed, regions, policy.name)


def _enough(finished: list[list[list[dict[str, np.ndarray]]]], rounds: int, count: int) -> bool:
    """The first ``rounds`` episodes of every copy are played and hold at least ``count`` clips."""
    return all(len(f) >= rounds for f in finished) and sum(len(ep) for f in finished for ep in f[:rounds]) >= count


def _empty(regions: Sequence[str]) -> dict[str, list]:
    return {key: [] for key in ("obs", "actions", "true_reward", "env_reward", "salient", *regions)}


def _clip(steps: dict[str, list]) -> dict[str, np.ndarray]:
    return {key: np.asarray(values) for key, values in steps.items()}


def _stack(clips: list[dict[str, np.ndarray]], length: int, obs_shape: tuple[int, ...], packed: bool,
           regions: Sequence[str], name: str) -> Segments:
    m = len(clips)

    def padded(key: str, dtype: Any, tail: tuple[int, ...] = ()) -> np.ndarray:
        out = np.zeros((m, length, *tail), dtype=dtype)
        for k, clip in enumerate(clips):
            out[k, : len(clip[key])] = clip[key]
        return out

    stored_shape = (*obs_shape[:-1], (obs_shape[-1] + 7) // 8) if packed else obs_shape
    mask = np.zeros((m, length), dtype=bool)
    for k, clip in enumerate(clips):
        mask[k, : len(clip["actions"])] = True
    return Segments(
        obs=padded("obs", np.uint8, stored_shape), obs_shape=tuple(obs_shape), packed=packed,
        actions=padded("actions", np.int64), mask=mask, true_reward=padded("true_reward", np.float64),
        env_reward=padded("env_reward", np.float64), salient=padded("salient", np.float64),
        in_view={r: padded(r, bool) for r in regions}, source=np.zeros(m, dtype=np.int64), sources=[name],
    )


def concatenate(pools: Sequence[Segments]) -> Segments:
    """One pool of the segments of ``pools`` (same env and length), sources renumbered."""
    first = pools[0]
    offsets = np.cumsum([0] + [len(p.sources) for p in pools[:-1]])
    return Segments(
        np.concatenate([p.obs for p in pools]), first.obs_shape, first.packed,
        np.concatenate([p.actions for p in pools]), np.concatenate([p.mask for p in pools]),
        np.concatenate([p.true_reward for p in pools]), np.concatenate([p.env_reward for p in pools]),
        np.concatenate([p.salient for p in pools]),
        {r: np.concatenate([p.in_view[r] for p in pools]) for r in first.in_view},
        np.concatenate([p.source + off for p, off in zip(pools, offsets)]),
        [name for p in pools for name in p.sources],
    )
