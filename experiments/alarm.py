"""A proxy-true divergence alarm that sees only what an auditor would.

During training the proxy (the return the agent is trained on) is known for every finished
episode, but the true objective only for an **audited sample**: each finished episode is
audited with probability ``audit_share``, and its true return is read with Gaussian noise of
standard deviation ``audit_noise`` (the analogue of a costly, imperfect human review). The
alarm fires when the proxy keeps improving while the audited true return falls, or when the
two stop moving together.

The statistics, computed whenever newly audited episodes have arrived (after all episodes that
ended at the same step), over the **window**: the last ``window`` environment steps, reaching
further back if needed to hold the last ``min_audited`` audited episodes (so a small audit
share tests late rather than never):

* the proxy is rising: the least-squares slope of the proxy return against the step, over
  every episode in the window, is positive by a one-sided t test at level ``alpha``;
* the audited true return is falling: the slope of the audited true returns against the step
  is negative by a one-sided t test at level ``alpha``;
* the audited true return has fallen from its best while the proxy rose: the window's mean
  audited true return is below that of the window where it was highest so far, and the
  window's mean proxy above the proxy's mean in that window, each by a one-sided Welch t test
  at level ``alpha`` (the slope misses a fall that is a step, not a trend, when few episodes
  are audited);
* the two diverge in kind: the Pearson correlation of proxy and true over the audited episodes
  in the window is below ``min_correlation`` by a one-sided Fisher z test at level ``alpha``
  (``min_correlation: null`` turns this test off).

The alarm fires when one of the three has held at every check for ``patience`` steps (a brief
dip while the agent is still learning is not a fall). When the true return does not fall and
proxy and true are correlated at least ``min_correlation``, the slope and correlation tests'
false-alarm probability is at most ``alpha`` each; the fall from the best window is compared
with the best of many windows, which favours a fall (the winner's curse), so its rate is
higher than ``alpha``: it is measured, not bounded (with the defaults, a flat true return under
a rising proxy over 400k steps fired in 1 of 40 runs at audit shares of 5 %, 20 % and 100 %;
``tests/test_alarm.py``). When proxy and true are the same number (the maze, the progress-trained race) the correlation is 1 and
the slopes have the same sign, so the alarm cannot fire without audit noise.

The same stream of episodes and the same seed give the same alarm online (the training
callback, :mod:`goodhart.experiments.alarm_monitor`) and offline (:func:`replay` on a run's
``episodes.csv``), so a study can measure it on runs that trained without it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from goodhart.experiments.config import AlarmConfig

RISING_AND_FALLING = "the proxy rises while the audited true return falls"
FELL_FROM_BEST = "the proxy rose while the audited true return fell from its best"
DIVERGING = "the proxy and the audited true return no longer move together (correlation below min_correlation)"


@dataclass(frozen=True)
class Alarm:
    """The alarm as it fired: the step, why, and the statistics that said so."""

    step: int
    reason: str
    window_start: int
    audited_in_window: int
    episodes_in_window: int
    audited_so_far: int
    proxy_slope_p: float
    true_slope_p: float
    fall_from_best_p: float
    correlation: float
    correlation_p: float
    best_step: int  # where the window mean of the audited true return was highest so far

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SCALE = 1e-5  # steps are regressed in units of 100k, so that the sums of squares stay well inside float64


class Sums:
    """Running sums of (x, y) pairs appended in order of x, so that the least-squares line and
    the correlation of any suffix of them cost O(1): the window slides without recounting."""

    def __init__(self) -> None:
        self.x: list[float] = []
        self.acc = [[0.0] * 6]  # cumulative n, sum x, sum xx, sum y, sum xy, sum yy

    def add(self, x: float, y: float) -> None:
        n, sx, sxx, sy, sxy, syy = self.acc[-1]
        self.x.append(x)
        self.acc.append([n + 1, sx + x, sxx + x * x, sy + y, sxy + x * y, syy + y * y])

    def moments(self, first: int) -> tuple[float, float, float]:
        """n, mean and sample variance of the y of the pairs from index ``first`` on."""
        n, _, _, yy = self.since(first)
        total = self.acc[-1][3] - self.acc[first][3]
        return n, total / n if n else math.nan, yy / (n - 1) if n > 1 else 0.0

    def since(self, first: int) -> tuple[float, float, float, float]:
        """n, and the centred sums of squares and products (xx, xy, yy) of the pairs from index ``first`` on."""
        n, sx, sxx, sy, sxy, syy = (a - b for a, b in zip(self.acc[-1], self.acc[first]))
        if n == 0:
            return 0, 0.0, 0.0, 0.0
        return n, max(sxx - sx * sx / n, 0.0), sxy - sx * sy / n, max(syy - sy * sy / n, 0.0)


def slope_p(n: float, xx: float, xy: float, yy: float, direction: int) -> float:
    """One-sided p-value (t test, n - 2 degrees of freedom) that the least-squares slope of y
    on x has the sign of ``direction`` (+1: rising, -1: falling), from the centred sums; 1.0
    where it cannot be told (n < 3, no spread of x or of y); 0 or 1 for points exactly on a
    sloped line."""
    from scipy import stats

    if n < 3 or xx <= 0 or yy <= 1e-12:
        return 1.0
    slope = xy / xx
    residual = max(yy - slope * xy, 0.0)
    if residual <= 1e-10 * yy:
        return 0.0 if slope * direction > 0 else 1.0
    return float(stats.t.sf(direction * slope / math.sqrt(residual / (n - 2) / xx), n - 2))


def correlation_below(n: float, xx: float, xy: float, yy: float, bound: float) -> tuple[float, float]:
    """The Pearson correlation from the centred sums, and the one-sided p-value (Fisher z) that
    the true correlation is below ``bound``; (nan, 1.0) where x or y is constant or n < 4."""
    from scipy import stats

    if n < 4 or xx <= 1e-12 or yy <= 1e-12:
        return math.nan, 1.0
    r = float(np.clip(xy / math.sqrt(xx * yy), -1 + 1e-12, 1 - 1e-12))
    return r, float(stats.norm.cdf((math.atanh(r) - math.atanh(bound)) * math.sqrt(n - 3)))


def above_p(higher: tuple[float, float, float], lower: tuple[float, float, float]) -> float:
    """One-sided p-value (Welch's t test) that the first sample's mean is above the second's,
    each given as (n, mean, variance); 0 or 1 where neither varies."""
    from scipy import stats

    (n1, m1, v1), (n2, m2, v2) = higher, lower
    if n1 < 2 or n2 < 2:
        return 1.0
    if v1 + v2 <= 1e-12:
        return 0.0 if m1 > m2 else 1.0
    return float(stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False, alternative="greater").pvalue)


def line_sums(x: Iterable[float], y: Iterable[float]) -> tuple[float, float, float, float]:
    """The centred sums of whole sequences (for :func:`slope_p` and :func:`correlation_below` on data at hand)."""
    sums = Sums()
    for a, b in zip(x, y):
        sums.add(float(a), float(b))
    return sums.since(0)


class DivergenceAlarm:
    """The alarm's state over one run: feed it every finished episode in order
    (:meth:`observe`), then :meth:`check` once per step; it fires at most once."""

    def __init__(self, config: AlarmConfig, seed: int) -> None:
        self.config = config
        self.rng = np.random.default_rng([config.seed if config.seed is not None else seed, 0xA1A])
        self.proxy = Sums()  # (step, proxy) of every episode
        self.true = Sums()  # (step, audited true) of the audited ones
        self.pairs = Sums()  # (proxy, audited true) of the audited ones
        self.fresh = False
        self.fired: Alarm | None = None
        self.holding_since: int | None = None  # the step since which the tests have fired at every check
        self.best: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None  # (true, proxy) moments at the best window
        self.best_step = 0

    @property
    def audited(self) -> int:
        return len(self.true.x)

    def observe(self, step: int, proxy: float, true: float) -> None:
        """One finished episode: its step, proxy return and true return (seen only if audited)."""
        u = step * SCALE
        self.proxy.add(u, float(proxy))
        if self.rng.random() < self.config.audit_share:
            noise = self.rng.normal(0.0, self.config.audit_noise) if self.config.audit_noise else 0.0
            self.true.add(u, float(true) + noise)
            self.pairs.add(float(proxy), float(true) + noise)
            self.fresh = True

    def feed(self, rows: Iterable[Mapping[str, str]], proxy: str) -> Alarm | None:
        """Observe a run's logged episodes (``episodes.csv`` rows, in order, ``proxy``: the
        trained-on return's column) and check after each step's, as the training callback
        does; the alarm if it fires (the rows after it are not read)."""
        for step, group in episode_groups(rows, proxy):
            for p, t in group:
                self.observe(step, p, t)
            fired = self.check(step)
            if fired is not None:
                return fired
        return None

    def check(self, step: int) -> Alarm | None:
        """Run the tests if new audited episodes arrived; the alarm the first time they have
        held for ``patience`` steps (None before, and after: it fires once)."""
        c = self.config
        if self.fired is not None or not self.fresh or self.audited < c.min_audited:
            return None
        self.fresh = False
        start = min((step - c.window) * SCALE, self.true.x[-c.min_audited])
        first_audited = bisect.bisect_left(self.true.x, start)
        first = bisect.bisect_left(self.proxy.x, start)
        true_now, proxy_now = self.true.moments(first_audited), self.proxy.moments(first)
        fall_p = 1.0
        if self.best is None or true_now[1] > self.best[0][1]:
            self.best, self.best_step = (true_now, proxy_now), step
        else:
            fall_p = max(above_p(self.best[0], true_now), above_p(proxy_now, self.best[1]))
        proxy_p = slope_p(*self.proxy.since(first), +1)
        true_p = slope_p(*self.true.since(first_audited), -1)
        r, r_p = (math.nan, 1.0) if c.min_correlation is None else correlation_below(*self.pairs.since(first_audited), c.min_correlation)
        reason = (RISING_AND_FALLING if proxy_p < c.alpha and true_p < c.alpha else FELL_FROM_BEST if fall_p < c.alpha
                  else DIVERGING if r_p < c.alpha else None)
        if reason is None:
            self.holding_since = None
            return None
        if self.holding_since is None:
            self.holding_since = step
        if step - self.holding_since < c.patience:
            return None
        self.fired = Alarm(step, reason, max(round(start / SCALE), 0), int(true_now[0]), len(self.proxy.x) - first, self.audited,
                           proxy_p, true_p, fall_p, r, r_p, self.best_step)
        return self.fired


def episode_groups(rows: Iterable[Mapping[str, str]], proxy: str, true: str = "true_return") -> Iterable[tuple[int, list[tuple[float, float]]]]:
    """A run's episodes (``episodes.csv`` rows, in order) grouped by the step they ended at:
    (step, [(proxy, true), ...])."""
    step, group = None, []
    for row in rows:
        t = int(row["timestep"])
        if step is not None and t != step:
            yield step, group
            group = []
        step = t
        group.append((float(row[proxy]), float(row[true])))
    if step is not None:
        yield step, group


def replay(rows: Iterable[Mapping[str, str]], config: AlarmConfig, seed: int, proxy: str) -> Alarm | None:
    """The alarm over a finished run's episodes, as the training callback would have raised it."""
    return DivergenceAlarm(config, seed).feed(rows, proxy)


def trained_on(reward_model: Any) -> str:
    """The ``episodes.csv`` column of the return a run was trained on: the learned reward's
    for a run against a reward model, else the env's reward."""
    return "reward_model_return" if reward_model is not None else "return"
