"""Panels: one policy playing one distribution, step by step, and the text beside it.

A panel is a batch of one driven without auto-reset, so the last frame of an episode shows how
it ended. Beside it: the env's overlay (distribution, step, proxy score, true objective so far),
for a policy trained on a learned reward model that model's reward so far, and the env's own
line saying what the agent did (``core.describe``), green when it did what we want and red
when it went for the proxy (:func:`verdict`, from the env's ``CAPABILITY`` and ``PREFERENCE``
flags).

Panels of one episode share its level seed: episode ``e`` of a run with ``seed=s`` plays the
level of ``gym.make(env_id, distribution=...).reset(seed=s + e)``, and a sampling policy is
seeded ``s + e`` too, so the episode is the first one of
``run_episodes(policy, ..., episodes=1, level_seed=s + e)``. Given a saved level set instead
(:mod:`goodhart.envs.core.level_sets`), episode ``e`` plays its level ``e``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goodhart.agents.policies import Policy
from goodhart.envs import core_class, make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.grid import GridCore, Levels
from goodhart.envs.core.gym_env import overlay
from goodhart.envs.core.level_sets import LevelSet, check_levels
from goodhart.envs.core.render import TEXT, Line
from goodhart.envs.core.rollout import Step, rollout, rollout_levels
from goodhart.envs.core.vec_env import GridVecEnv
from goodhart.experiments.teaching.players import Show, resolve

GOOD = (20, 135, 55)  # the describe line when the agent did what we want
BAD = (200, 40, 30)  # ... and when it went for the proxy


def verdict(core: GridCore, outcome: Mapping[str, Any]) -> str | None:
    """``"intended"`` when the agent did what we want, ``"proxy"`` when it went for the proxy,
    ``None`` when it has done neither (yet): the env's ``CAPABILITY`` and ``PREFERENCE`` flags."""
    if not outcome[core.CAPABILITY]:
        return None
    return "intended" if outcome[core.PREFERENCE] else "proxy"


def overlay_lines(core: GridCore, index: int = 0, outcome: Mapping[str, Any] | None = None, done: bool = False) -> list[Line]:
    """The text beside a panel: the env's overlay and its describe line, coloured by
    :func:`verdict`. ``outcome`` defaults to the episode so far."""
    if outcome is None:
        outcome = core.outcomes([index])[0]
    colour = {"intended": GOOD, "proxy": BAD}.get(verdict(core, outcome), TEXT)
    return [*overlay(core, index), (core.describe(outcome, done), colour)]


def plain(lines: Sequence[Line]) -> list[str]:
    """The text of overlay lines (dropping their colours)."""
    return [line if isinstance(line, str) else line[0] for line in lines]


@dataclass
class Panel:
    """``policy`` playing ``distribution`` of ``env_id`` (with ``env_kwargs``), a batch of one
    driven step by step (no auto-reset, so the last frame of an episode shows how it ended)."""

    title: str
    env_id: str
    env_kwargs: Mapping[str, Any]
    policy: Policy
    distribution: str
    max_steps: int | None = None
    learned: tuple[Any, float] | None = None  # (reward model, scale) the policy was trained on
    levels: Levels | None = None  # saved levels to play instead of the distribution's, in order
    venv: GridVecEnv = field(init=False)
    done: bool = field(init=False, default=False)
    outcome: dict[str, Any] | None = field(init=False, default=None)
    learned_return: float = field(init=False, default=0.0)
    _steps: Iterator[Step] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        kwargs = dict(self.env_kwargs)
        if self.max_steps is not None:
            kwargs["max_steps"] = self.max_steps
        self.venv = make_vec(self.env_id, 1, distribution=self.distribution, **kwargs)

    @property
    def core(self) -> GridCore:
        return self.venv.core

    @property
    def obs(self) -> np.ndarray:
        """The observation the policy acts on next (the last one once the episode ended)."""
        return np.array(to_numpy(self.core.observe()), copy=True)

    def start(self, seed: int, episode: int = 0) -> None:
        """A new episode on the level of seed ``seed`` (the policy reseeded with it too), or,
        with ``levels``, on level ``episode`` of them (cycling)."""
        self.policy.reset(seed)

        def act(obs: np.ndarray) -> np.ndarray:
            return self.policy.act(obs, self.venv)

        if self.levels is None:
            self._steps = rollout(self.core, act, [seed])
        else:
            index = episode % len(next(iter(self.levels.values())))
            self._steps = rollout_levels(self.core, act, {key: values[index : index + 1] for key, values in self.levels.items()})
        self.done, self.outcome, self.learned_return = False, None, 0.0

    def step(self) -> None:
        if self.done:
            return
        step = next(self._steps)
        if self.learned is not None:
            model, scale = self.learned
            self.learned_return += scale * float(model.rewards(step.obs, step.actions)[0])
        if step.ended[0]:
            self.done = True
            self.outcome = self.core.outcomes([0])[0]

    def lines(self) -> list[Line]:
        lines = overlay_lines(self.core, 0, self.outcome, self.done)
        if self.learned is not None:  # before the describe line
            lines.insert(len(lines) - 1, f"reward model {self.learned_return:.2f}")
        return lines


def check_distributions(env_id: str, distributions: Sequence[str]) -> list[str]:
    """``distributions`` if each is one of ``env_id``'s, else a one-line ``ValueError``."""
    valid = core_class(env_id).DISTRIBUTIONS
    for dist in distributions:
        if dist not in valid:
            raise ValueError(f"--distribution {dist!r} is not one of {env_id}'s: valid ones: {list(valid)}")
    return list(distributions)


def make_panels(
    show: Show,
    distributions: Sequence[str] | None = None,
    *,
    deterministic: bool = False,
    max_steps: int | None = None,
    level_set: LevelSet | None = None,
) -> list[Panel]:
    """A panel for every player of ``show`` on every distribution (default: the show's), or
    with ``level_set``, one per player on its levels. The titles name the player where there
    are several, or where it is a reference policy."""
    if level_set is not None:
        if distributions:
            raise ValueError("--levels plays the saved levels: leave out --distribution")
        if level_set.env_id != show.env_id:
            raise ValueError(f"--levels {level_set.folder}: a level set of {level_set.env_id}, not of {show.env_id}")
    dists = check_distributions(show.env_id, distributions or show.distributions)[:1 if level_set else None]
    panels = []
    for player in show.players:
        for dist in dists:
            label = level_set.name if level_set else dist
            named = len(show.players) > 1 or player.reference
            if named and len(dists) > 1:
                title = f"{player.label}, {label}"
            elif named:
                title = player.label
            else:
                title = f"{label} levels" if level_set is None else label
            panel = Panel(title, show.env_id, player.env_kwargs, player.make(deterministic), dist, max_steps, player.learned,
                          None if level_set is None else level_set.levels)
            if level_set is not None:
                check_levels(panel.core, level_set.levels, str(level_set.folder))
            panels.append(panel)
    return panels


def panels_for(
    name: str | None,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distributions: Sequence[str] | None = None,
    *,
    seed: int | None = None,
    deterministic: bool = False,
    max_steps: int | None = None,
    steer: Sequence[Any] = (),
    coef: float = -1.0,
    levels: LevelSet | None = None,
) -> tuple[list[Panel], int]:
    """The panels of ``name`` and ``models`` (see
    :func:`~goodhart.experiments.teaching.players.resolve`) and the level seed of the first
    episode (``seed``, or the show's). ``steer``: steering vectors; each player whose model
    one came from plays again beside itself, steered by it times ``coef``. ``levels``: a
    saved level set, played in order instead of the distributions (the seed then seeds only
    the policies' sampling)."""
    show = resolve(name, models)
    if steer:
        from goodhart.experiments.steering import steered_show

        show = steered_show(show, steer, coef)
    panels = make_panels(show, distributions, deterministic=deterministic, max_steps=max_steps, level_set=levels)
    return panels, show.seed if seed is None else seed


def episode_verdicts(panels: Sequence[Panel], seed: int) -> list[str | None]:
    """Each panel's :func:`verdict` at the end of its episode on the level of seed ``seed``
    (the first episode of a demo run with ``--seed SEED``), without drawing anything."""
    for panel in panels:
        panel.start(seed)
        while not panel.done:
            panel.step()
    return [verdict(panel.core, panel.outcome) for panel in panels]  # type: ignore[arg-type]


__all__ = ["BAD", "GOOD", "Panel", "check_distributions", "episode_verdicts", "make_panels", "overlay_lines", "panels_for", "plain", "verdict"]
