"""Simulated raters: preferences between two segments, from the true objective plus the
distortions real raters show.

A rater values a segment by the **true** reward it sees, plus a salience bias for the env's
visible proxy-like event, and compares two segments the way Christiano et al. (2017) and
Bradley-Terry model a person::

    U(segment) = sum over seen steps of  true_reward + salience_bias * salient_event
    P(first preferred) = sigmoid((U_first - U_second) / temperature)

and then answers at random in a share ``noise`` of the comparisons. Options
(:class:`RaterConfig`), each the analogue of a known failure of human feedback:

- ``temperature`` (Boltzmann rationality): near-equal segments are confused; 0 answers
  exactly (a tie gives the label 0.5, "equally good").
- ``noise``: a share of careless answers, a fair coin each.
- ``salience_bias``: the value the rater adds per unit of ``SALIENT_EVENT`` (LoopRace:
  targets hit; ColorMaze: steps on the cue), which is worth nothing truly: raters who reward
  length, confidence or spectacle.
- ``oversight_region``: the rater sees only the steps the agent spends in that part of the
  grid (one of the env's ``OVERSIGHT_REGIONS``): raters who cannot check what they cannot see.
- ``oversight_fraction``: the rater watches only the first share of each segment.

With ``temperature=0``, ``noise=0``, no bias and full oversight the labels order the segments
exactly by true return.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from goodhart.experiments.reward_learning.segments import Segments


@dataclass(frozen=True)
class RaterConfig:
    """How a simulated rater distorts the true objective (see the module docstring)."""

    temperature: float = 0.0
    noise: float = 0.0
    salience_bias: float = 0.0
    oversight_region: str | None = None
    oversight_fraction: float = 1.0

    def __post_init__(self) -> None:
        for name, low, high in (("temperature", 0.0, None), ("noise", 0.0, 1.0), ("salience_bias", 0.0, None), ("oversight_fraction", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < low or (high is not None and value > high):
                allowed = f"a number >= {low}" if high is None else f"a number in [{low}, {high}]"
                raise ValueError(f"rater option {name}={value!r} is not allowed; expected {allowed}")
        if self.oversight_fraction == 0:
            raise ValueError("rater option oversight_fraction=0 is not allowed; expected a number in (0, 1]")
        if self.oversight_region is not None and not isinstance(self.oversight_region, str):
            raise ValueError(f"rater option oversight_region={self.oversight_region!r} is not allowed; expected a region name or null")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RaterConfig:
        """A config from a mapping, refusing unknown options with one line naming them."""
        data = dict(data or {})
        allowed = [f.name for f in fields(cls)]
        unknown = [key for key in data if key not in allowed]
        if unknown:
            raise ValueError(f"unknown rater option {unknown[0]!r}; allowed: {allowed}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check_env(self, regions: Mapping[str, str], salient_event: str | None, env_id: str) -> None:
        """Refuse options the env cannot support: an unknown region, a bias without a salient event."""
        if self.oversight_region is not None and self.oversight_region not in regions:
            raise ValueError(f"rater option oversight_region={self.oversight_region!r} is not a region of {env_id}; valid ones: {list(regions)}")
        if self.salience_bias and salient_event is None:
            raise ValueError(f"rater option salience_bias: {env_id} declares no salient event to be biased towards")


def seen_steps(segments: Segments, rater: RaterConfig) -> np.ndarray:
    """(M, L) bool: the steps of each segment the rater sees."""
    seen = segments.mask.copy()
    if rater.oversight_region is not None:
        if rater.oversight_region not in segments.in_view:
            raise ValueError(f"rater option oversight_region={rater.oversight_region!r}: the segments record only {list(segments.in_view)}")
        seen &= segments.in_view[rater.oversight_region]
    if rater.oversight_fraction < 1:
        lengths = segments.mask.sum(axis=1)
        watched = np.ceil(rater.oversight_fraction * lengths).astype(np.int64)
        seen &= np.arange(segments.length)[None, :] < watched[:, None]
    return seen


def utility(segments: Segments, rater: RaterConfig) -> np.ndarray:
    """(M,) the value the rater gives each segment."""
    per_step = segments.true_reward + rater.salience_bias * segments.salient
    return np.sum(np.where(seen_steps(segments, rater), per_step, 0.0), axis=1)


def true_returns(segments: Segments) -> np.ndarray:
    """(M,) each segment's true return (all its steps)."""
    return np.sum(np.where(segments.mask, segments.true_reward, 0.0), axis=1)


# A distortion that can act on fewer segments than this leaves the labels (nearly) exact.
RARE_DISTORTION = 0.05


def distortion_shares(segments: Segments, rater: RaterConfig) -> dict[str, float]:
    """Share of the segments in which each of the rater's distortions can change its value,
    for the distortions it has: ``salience_bias`` (a seen step shows the salient event),
    ``oversight_region`` (a step is outside the region), ``oversight_fraction`` (an unwatched
    step has a true reward or a salient event). A share near 0 means the labels are those of
    an undistorted rater, whatever the option says (see :data:`RARE_DISTORTION`)."""
    shares: dict[str, float] = {}
    seen = seen_steps(segments, rater)
    if rater.salience_bias:
        shares["salience_bias"] = float(np.mean(np.any(seen & (segments.salient != 0), axis=1)))
    if rater.oversight_region is not None:
        shares["oversight_region"] = float(np.mean(np.any(segments.mask & ~segments.in_view[rater.oversight_region], axis=1)))
    if rater.oversight_fraction < 1:
        watched = seen_steps(segments, RaterConfig(oversight_fraction=rater.oversight_fraction))
        hidden = segments.mask & ~watched & ((segments.true_reward != 0) | (segments.salient != 0))
        shares["oversight_fraction"] = float(np.mean(np.any(hidden, axis=1)))
    return shares


def rare_distortions(shares: Mapping[str, float]) -> list[str]:
    """One warning line for each distortion that can act on fewer than RARE_DISTORTION of the segments."""
    return [f"warning: rater option {name} can act on only {share:.3f} of the segments (below {RARE_DISTORTION}): "
            "the labels are nearly those of a rater without it; collect segments where it shows (other sources, longer episodes)"
            for name, share in shares.items() if share < RARE_DISTORTION]


def label(segments: Segments, pairs: np.ndarray, rater: RaterConfig, rng: np.random.Generator) -> np.ndarray:
    """(P,) labels of ``pairs`` (P, 2) of segment indices: 1.0 if the rater prefers the first,
    0.0 the second, 0.5 for "equally good" (a tie with ``temperature=0``)."""
    values = utility(segments, rater)
    diff = values[pairs[:, 0]] - values[pairs[:, 1]]
    if rater.temperature == 0:
        labels = np.where(np.isclose(diff, 0.0, atol=1e-9), 0.5, (diff > 0).astype(np.float64))
    else:
        p_first = 1.0 / (1.0 + np.exp(-np.clip(diff / rater.temperature, -60, 60)))
        labels = (rng.random(len(pairs)) < p_first).astype(np.float64)
    careless = rng.random(len(pairs)) < rater.noise
    return np.where(careless, rng.integers(0, 2, size=len(pairs)).astype(np.float64), labels)


def sample_pairs(count: int, pairs: int, rng: np.random.Generator) -> np.ndarray:
    """(pairs, 2) indices into a pool of ``count`` segments, two different segments each: the
    pool is shuffled and cut into consecutive pairs, reshuffled whenever it runs out, so every
    segment is used once before any is used twice, and a prefix of the pairs is the same
    sample at any size."""
    if count < 2:
        raise ValueError(f"a pool of {count} segment(s) has no pairs to compare; collect at least 2")
    out: list[np.ndarray] = []
    have = 0
    while have < pairs:
        order = rng.permutation(count)
        chunk = order[: count - count % 2].reshape(-1, 2)
        out.append(chunk)
        have += len(chunk)
    return np.concatenate(out)[:pairs]


def agreement(labels: np.ndarray, values: np.ndarray, pairs: np.ndarray) -> float:
    """Share of the decided labels (not 0.5) that agree with the order of ``values`` on pairs
    whose values differ; NaN if there are none."""
    diff = values[pairs[:, 0]] - values[pairs[:, 1]]
    decided = (labels != 0.5) & ~np.isclose(diff, 0.0, atol=1e-9)
    if not decided.any():
        return math.nan
    return float(np.mean((labels[decided] == 1.0) == (diff[decided] > 0)))
