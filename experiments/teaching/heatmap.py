"""State-visitation heatmaps: where a policy goes, over many episodes, on each distribution.

Each player of a :class:`~goodhart.experiments.teaching.players.Show` plays one episode on
each of a fixed set of levels per distribution (the same levels for every player), and every
visit of a cell is counted (the start included).

Levels that differ in layout are not drawn on one canvas, where a cell would mean different
places: when a distribution's levels come in a few layouts (at most ``MAX_LAYOUT_PANELS``, e.g.
a fixed track and its mirror images), each layout gets its own panel. When there are more
(procedurally generated mazes, every level its own), the cells are compared by position across
levels, which is the point there (does the agent head for the top-right corner?): one panel,
walls drawn where every level has one. The targets the env declares (``target_cells``) are
outlined where they are the same in every level of a panel (a fixed level, a fixed corner,
each layout's lagoon), in the env's ``TARGET_COLOURS``, with a legend.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goodhart.envs import core_class, make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.grid import GridCore
from goodhart.envs.core.rollout import rollout
from goodhart.experiments.defaults import DISTRIBUTIONS
from goodhart.experiments.seeds import EVAL_LEVEL_SEED
from goodhart.experiments.teaching.figures import headline, outline_targets, rgb, save_png, target_handles
from goodhart.experiments.teaching.outputs import check_out
from goodhart.experiments.teaching.panels import check_distributions
from goodhart.experiments.teaching.players import Player, resolve

MAX_LAYOUT_PANELS = 4


@dataclass
class Visits:
    """Where a player went on some levels of one distribution: ``visits`` (H, W) mean visits
    per episode, ``wall_rate`` (H, W) the share of those levels with a wall there, the
    episodes' ``outcomes``, the ``core`` holding every level of the distribution and
    ``copies``, which of its copies these are. ``layout`` names the layout ("" for all)."""

    visits: np.ndarray
    wall_rate: np.ndarray
    outcomes: list[dict[str, Any]]
    core: GridCore
    copies: list[int]
    layout: str = ""


@dataclass
class Heatmap:
    """A drawn heatmap: the visits by ``(player label, distribution, layout)``, and the
    figure's panel titles (each with its row's label where the rows are named), legend
    entries and title."""

    panels: dict[tuple[str, str, str], Visits] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)
    legend: list[str] = field(default_factory=list)
    title: str = ""


def play_levels(
    player: Player,
    env_id: str,
    distribution: str,
    seeds: Sequence[int],
    *,
    deterministic: bool = False,
    max_steps: int | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]], GridCore]:
    """Run ``player`` for one episode on the level of each seed in ``seeds`` (batched; a seed
    may repeat, and the policy's sampling still differs between copies): the (n, H, W) visits
    of each copy, the outcomes, and the core holding the levels. Copy ``i`` plays
    ``gym.make(env_id, distribution=...).reset(seed=seeds[i])``'s level; the policy is
    seeded ``seeds[0]``."""
    n = len(seeds)
    kwargs = dict(player.env_kwargs)
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    venv = make_vec(env_id, n, distribution=distribution, **kwargs)
    core = venv.core
    policy = player.make(deterministic)
    policy.reset(int(seeds[0]))
    steps = rollout(core, lambda obs: policy.act(obs, venv), seeds)
    counts = np.zeros((n, *core.grid_shape), dtype=np.float64)
    outcomes: list[dict[str, Any] | None] = [None] * n

    def count(live: np.ndarray) -> None:
        pos = to_numpy(core.pos)[live]
        counts[live, pos[:, 0], pos[:, 1]] += 1.0

    count(np.arange(n))  # the start cells: rollout has set the levels already
    for step in steps:
        count(np.flatnonzero(step.live))
        ended = np.flatnonzero(step.ended)
        for i, outcome in zip(ended, core.outcomes(ended)):
            outcomes[i] = outcome
    return counts, outcomes, core  # type: ignore[return-value]


def layout_groups(walls: np.ndarray) -> list[list[int]]:
    """The copies of ``walls`` (n, H, W) grouped by layout, in order of first appearance;
    one group of all if there are more than ``MAX_LAYOUT_PANELS`` layouts."""
    groups: dict[bytes, list[int]] = {}
    for i, layout in enumerate(walls):
        groups.setdefault(layout.tobytes(), []).append(i)
    return list(groups.values()) if len(groups) <= MAX_LAYOUT_PANELS else [list(range(len(walls)))]


def common_targets(core: GridCore, copies: Sequence[int]) -> dict[str, np.ndarray]:
    """The target masks shared by every copy in ``copies``: the cells in the mask in all of them."""
    masks = [core.target_cells(i) for i in copies]
    shared = {}
    for key in set.intersection(*(set(m) for m in masks)):
        shared[key] = np.logical_and.reduce([m[key] for m in masks])
    return shared


def split_by_layout(counts: np.ndarray, outcomes: list[dict[str, Any]], core: GridCore) -> list[Visits]:
    """The visits of one distribution, a :class:`Visits` per layout (see :func:`layout_groups`)."""
    walls = to_numpy(core.walls).astype(bool)
    groups = layout_groups(walls)
    parts = []
    for k, copies in enumerate(groups):
        layout = f"layout {k + 1}/{len(groups)}, {len(copies)} levels" if len(groups) > 1 else ""
        parts.append(Visits(counts[copies].mean(axis=0), walls[copies].mean(axis=0), [outcomes[i] for i in copies], core, copies, layout))
    return parts


def heatmap(
    name: str | None,
    out: str | os.PathLike[str],
    *,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distributions: Sequence[str] | None = None,
    episodes: int = 200,
    seed: int = EVAL_LEVEL_SEED,
    level: int | None = None,
    deterministic: bool = False,
    max_steps: int | None = None,
) -> Heatmap:
    """State-visitation heatmaps of the players of ``name`` (see
    :func:`~goodhart.experiments.teaching.players.resolve`; ``models`` instead of its shipped
    policies), a row per player and a column per distribution (default: train and shifted)
    and layout, over ``episodes`` episodes: on the levels of seeds ``seed, seed + 1, ...``
    (the same levels in every row), or all on the level of seed ``level`` if given. Cells
    that are walls in every level are dark, never-visited cells white; the colour scale is
    logarithmic. Writes a PNG to ``out`` (its folder must exist)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, LogNorm
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    path = check_out(out, (".png",))
    if episodes < 1:
        raise ValueError(f"--episodes {episodes}: must be at least 1")
    show = resolve(name, models)
    dists = check_distributions(show.env_id, distributions or DISTRIBUTIONS)
    core = core_class(show.env_id)
    seeds = [level] * episodes if level is not None else list(range(seed, seed + episodes))
    result = Heatmap()
    grid: dict[tuple[int, str, int], Visits] = {}  # (row, distribution, layout index)
    for r, player in enumerate(show.players):
        for dist in dists:
            parts = split_by_layout(*play_levels(player, show.env_id, dist, seeds, deterministic=deterministic, max_steps=max_steps))
            for k, part in enumerate(parts):
                grid[(r, dist, k)] = result.panels[(player.label, dist, part.layout)] = part
    columns = sorted({(dist, k) for _, dist, k in grid}, key=lambda column: (dists.index(column[0]), column[1]))

    rows, cols = len(show.players), len(columns)
    h, w = next(iter(result.panels.values())).visits.shape
    side = min(2.4 / max(h, w), 10.0 / (cols * w))  # inches per cell
    fig_width = cols * (w * side + 0.3) + 1.3
    fig = Figure(figsize=(fig_width, rows * (h * side + 0.75) + 1.0), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    top = max(float(v.visits.max()) for v in result.panels.values())
    norm = LogNorm(vmin=max(top / 1000, 1e-3), vmax=max(top, 2e-3))  # lingering on one cell would hide the rest
    # blues, short of the darkest (walls are dark), so that the outlines' colours stand out
    cmap = ListedColormap(colormaps["Blues"](np.linspace(0.08, 0.85, 256)))
    image, drawn, superimposed = None, set(), False
    named = rows > 1 or show.players[0].reference
    for r, player in enumerate(show.players):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            visits = grid.get((r, *column))
            if visits is None:  # this player's levels came in fewer layouts
                ax.set_axis_off()
                continue
            ax.set_facecolor("white")
            image = ax.imshow(np.ma.masked_less_equal(visits.visits, 0), cmap=cmap, norm=norm, interpolation="nearest")
            walls = np.zeros((h, w, 4))
            walls[visits.wall_rate >= 1.0] = (*rgb(core.COLOURS["wall"]), 1.0)
            ax.imshow(walls, interpolation="nearest")
            drawn |= outline_targets(ax, core, common_targets(visits.core, visits.copies))
            superimposed |= bool((visits.wall_rate % 1.0).any())
            if named and c == 0:
                ax.set_ylabel(player.label, fontsize=10)
            lines = [f"{column[0]}: {visits.layout}" if visits.layout else f"{column[0]} levels", headline(core, visits.outcomes)]
            title = "\n".join(_wrap(line, max(20, round(w * side * 13))) for line in lines)  # within the panel
            ax.set_title(title, fontsize=9)
            result.titles.append(f"{player.label}: {title}" if named else title)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mean visits per episode")
    handles, labels = target_handles(core, drawn)
    handles.append(Rectangle((0, 0), 1, 1, color=rgb(core.COLOURS["wall"])))
    labels.append("wall in every level" if superimposed else "wall")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9, frameon=False)
    result.legend = labels
    if level is not None:
        where = f"{episodes} episodes on the level of seed {level}"
    else:
        where = f"{episodes} levels per distribution from seed {seed}"
    result.title = f"{show.env_id}: where {'each policy' if rows > 1 else 'the policy'} goes ({where})"
    fig.suptitle(textwrap.fill(result.title, max(40, round(fig_width * 11))), fontsize=10)
    save_png(fig, path)
    return result


def _wrap(line: str, width: int) -> str:
    """``line`` wrapped to ``width`` characters, breaking only after commas."""
    glued = line.replace(" ", "\xa0").replace(",\xa0", ", ")  # textwrap does not break at no-break spaces
    return textwrap.fill(glued, width).replace("\xa0", " ")


__all__ = ["MAX_LAYOUT_PANELS", "Heatmap", "Visits", "common_targets", "heatmap", "layout_groups", "play_levels", "split_by_layout"]
