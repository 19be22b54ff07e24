"""Vector fields: a policy's action probabilities on every free cell of one level.

Everything but the agent's cell stays as at the start of the level; the agent is placed on
each free cell in turn and its observation recomputed there. Drawn as arrows, after Turner et
al.'s analysis of the procgen maze policy ("Understanding and controlling a maze-solving policy
network", 2023). Where the env declares both an intended target and a proxy
(``target_cells``), the *decision square* is outlined: the cell where the shortest path from
the start to the intended target and the one to the proxy split.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goodhart.agents.steering import SteeringVector
from goodhart.envs import core_class, make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.grid import MOVE_DELTAS, GridCore
from goodhart.envs.core.maze import decision_square, shortest_path
from goodhart.envs.core.rollout import reset_levels
from goodhart.experiments.teaching.figures import outline_targets, rgb, save_png, target_handles
from goodhart.experiments.teaching.outputs import check_out
from goodhart.experiments.teaching.panels import check_distributions
from goodhart.experiments.teaching.players import Player, resolve

Cell = tuple[int, int]
ARROWS, MEAN_MOVE, DECISION = "#7fa6e0", "#10307a", "red"


# ------------------------------------------------------------------ decision squares
def level(env_id: str, env_kwargs: Mapping[str, Any], distribution: str, seed: int) -> GridCore:
    """A core holding one copy on the level of ``gym.make(env_id, ...).reset(seed=seed)``."""
    venv = make_vec(env_id, 1, seed=seed, distribution=distribution, **env_kwargs)
    venv.reset()
    return venv.core


def level_decision(core: GridCore) -> Cell | None:
    """The decision square of copy 0's level, from its agent's cell (the env's hook)."""
    found = core.decision(0)
    return None if found is None else found.cell


def first_split_level(env_id: str, env_kwargs: Mapping[str, Any], distribution: str = "shifted", start: int = 0, tries: int = 1000) -> int:
    """The first level seed from ``start`` with a decision square other than the start;
    ``start`` if there is none within ``tries``."""
    venv = make_vec(env_id, 1, distribution=distribution, **env_kwargs)
    for seed in range(start, start + tries):
        venv.seed(seed)
        venv.reset()
        square = level_decision(venv.core)
        if square is not None and square != tuple(int(v) for v in to_numpy(venv.core.pos)[0]):
            return seed
    return start


# ------------------------------------------------------------------------ the field
@dataclass
class VectorField:
    """A policy on every free cell of one level: ``cells`` (K, 2) row/column, ``probs`` (K, A)
    action probabilities, ``vectors`` (K, 2) their mean move (row, column)."""

    label: str
    cells: np.ndarray
    probs: np.ndarray
    vectors: np.ndarray


def vector_field(player: Player, env_id: str, distribution: str, seed: int) -> VectorField:
    """``player``'s action probabilities on every free cell of the level of seed ``seed``,
    everything but the agent's cell as at the start."""
    walls = to_numpy(level(env_id, player.env_kwargs, distribution, seed).walls)[0]
    cells = np.argwhere(~walls)
    batch = make_vec(env_id, len(cells), distribution=distribution, **player.env_kwargs)
    reset_levels(batch.core, [seed] * len(cells))
    batch.core.pos = batch.core._asarray(cells.astype(np.int64))
    probs = player.make(False).probabilities(np.array(to_numpy(batch.core.observe()), copy=True), batch)
    vectors = probs @ MOVE_DELTAS[: probs.shape[1]].astype(np.float64)
    return VectorField(player.label, cells, probs, vectors)


@dataclass
class Vfield:
    """A drawn vector field: one :class:`VectorField` per player, the level seed, its decision
    square (or None), and the figure's legend entries and title."""

    fields: list[VectorField]
    seed: int
    decision: Cell | None
    start: Cell
    legend: list[str] = field(default_factory=list)
    title: str = ""


def vfield(
    name: str | None,
    out: str | os.PathLike[str],
    *,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distribution: str = "shifted",
    seed: int | None = None,
    steer: Sequence[SteeringVector] = (),
    coef: float = -1.0,
) -> Vfield:
    """Draw the vector field of every player of ``name`` (see
    :func:`~goodhart.experiments.teaching.players.resolve`; ``models`` instead of its shipped
    policies), a panel each, on the level of seed ``seed`` (default: the first level from seed
    0 with a decision square, or seed 0): the level's floor and objects, the targets the env
    declares, the start, and on every free cell four thin arrows, one per action, as long as
    its probability, and a thick one, the mean move; the decision square is outlined in red.
    ``steer``: steering vectors (:mod:`goodhart.agents.steering`); each player whose model one
    came from is drawn again beside itself, steered by it times ``coef`` (the default level is
    then the vectors' own, where they came from one level). Writes a PNG to ``out`` (its folder
    must exist)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    path = check_out(out, (".png",))
    show = resolve(name, models)
    if steer:
        from goodhart.experiments.steering import steered_show

        show = steered_show(show, steer, coef)
        own = {(v.distribution, v.level_seeds[0]) for v in steer if len(v.level_seeds) == 1}
        if seed is None and len(own) == 1 and next(iter(own))[0] == distribution:
            seed = next(iter(own))[1]
    check_distributions(show.env_id, [distribution])
    kwargs = show.players[0].env_kwargs
    if seed is None:
        seed = first_split_level(show.env_id, kwargs, distribution)
    fields = [vector_field(player, show.env_id, distribution, seed) for player in show.players]
    core = level(show.env_id, kwargs, distribution, seed)
    env = core_class(show.env_id)
    planes = to_numpy(core.planes(reveal=True))[0]
    start = tuple(int(v) for v in to_numpy(core.pos)[0])
    decision = level_decision(core)
    targets = core.target_cells(0)

    h, w = planes.shape[1:]
    rows, cols = (len(fields), 1) if w > 1.3 * h else (1, len(fields))  # wide levels one above the other
    side = min(0.45, 8.0 / (cols * w))  # inches per cell
    fig_width = cols * w * side + 2.2
    fig = Figure(figsize=(fig_width, rows * (h * side + 0.3) + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    image = np.ones((h, w, 3))
    for k, channel in enumerate(env.CHANNELS):
        if env.STYLES[channel] == "tile":
            image[planes[k] > 0] = rgb(env.COLOURS[channel])
    shown = [c for k, c in enumerate(env.CHANNELS) if env.STYLES[c] in ("tile", "disc") and planes[k].any()]
    drawn: set[str] = set()
    for ax, fld in zip(axes, fields):
        ax.imshow(image, interpolation="nearest")
        for k, channel in enumerate(env.CHANNELS):
            if env.STYLES[channel] == "disc":
                for r, c in np.argwhere(planes[k] > 0):
                    ax.add_patch(Circle((c, r), 0.3, color=rgb(env.COLOURS[channel]), alpha=0.85, zorder=2))
        drawn |= outline_targets(ax, env, targets)
        sr, sc = start
        ax.add_patch(Rectangle((sc - 0.47, sr - 0.47), 0.94, 0.94, fill=False, lw=1.5, ls="--", ec="0.3", zorder=4))
        # the image's y axis points down the rows, like the grid's: a move (dr, dc) is the data
        # vector (dc, dr), drawn in data coordinates (angles="xy")
        x, y = fld.cells[:, 1].astype(float), fld.cells[:, 0].astype(float)
        for a, (dr, dc) in enumerate(MOVE_DELTAS[: fld.probs.shape[1]]):
            p = fld.probs[:, a] * 0.45
            ax.quiver(x, y, dc * p, dr * p, angles="xy", scale_units="xy", scale=1, width=0.004, headwidth=3,
                      headlength=3, headaxislength=3, color=ARROWS, zorder=6)
        ax.quiver(x, y, fld.vectors[:, 1] * 0.45, fld.vectors[:, 0] * 0.45, angles="xy", scale_units="xy", scale=1,
                  width=0.011, color=MEAN_MOVE, zorder=7)
        if decision is not None:
            dr, dc = decision
            ax.add_patch(Rectangle((dc - 0.5, dr - 0.5), 1, 1, fill=False, lw=2.5, ec=DECISION, zorder=8))
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
        if len(fields) > 1 or show.players[0].reference:
            ax.set_title(fld.label, fontsize=9)

    handles = [Circle((0, 0), 1, color=rgb(env.COLOURS[c])) if env.STYLES[c] == "disc" else Rectangle((0, 0), 1, 1, color=rgb(env.COLOURS[c])) for c in shown]
    labels = [c.replace("_", " ") for c in shown]
    target_h, target_l = target_handles(env, drawn)
    handles += [*target_h, Rectangle((0, 0), 1, 1, fill=False, ec="0.3", ls="--")]
    labels += [*target_l, "start"]
    if decision is not None:
        handles.append(Rectangle((0, 0), 1, 1, fill=False, ec=DECISION, lw=2))
        labels.append("decision square")
    handles += [Rectangle((0, 0), 1, 1, color=ARROWS), Rectangle((0, 0), 1, 1, color=MEAN_MOVE)]
    labels += ["P(action)", "mean move"]
    fig.legend(handles, labels, loc="outside right center", fontsize=9, frameon=False)
    title = f"{show.env_id}, {distribution} level of seed {seed}: the policy's action probabilities on every cell"
    if steer:
        title += f"; steered x{coef:g} by " + "; ".join(v.describe() for v in steer)
    if decision is None and "intended" in targets and "proxy" in targets:
        title += f"; no decision square: the paths to the {env.INTENDED_NAME} and the {env.PROXY_NAME} do not split"
    fig.suptitle(textwrap.fill(title, max(40, round(fig_width * 11))), fontsize=9)
    save_png(fig, path)
    return Vfield(fields, seed, decision, start, labels, title)  # type: ignore[arg-type]


__all__ = ["VectorField", "Vfield", "decision_square", "first_split_level", "level", "shortest_path", "vector_field", "vfield"]
