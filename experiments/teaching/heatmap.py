"""Pictures of what a policy does: state-visitation heatmaps and action vector fields.

* :func:`heatmap`: where a policy goes, over many episodes, on the training and the shifted
  levels side by side (mean visits per episode of each grid cell).
* :func:`vfield`: on one maze, the policy's action probabilities on every free cell, the goal
  and the cue fixed and the agent placed on each cell in turn (its observation recomputed
  there), drawn as arrows, as in Turner et al.'s analysis of the procgen maze policy
  ("Understanding and controlling a maze-solving policy network", 2023). The decision square,
  where the path to the goal and the path to the cue (or corner) split, is outlined.

Figures are drawn with matplotlib's object API (no pyplot, no display) and saved as PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.utils import seeding

from goodhart.agents.model_io import LoadedModel
from goodhart.agents.policies import ModelPolicy
from goodhart.envs import core_class, make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.goal_maze import GoalMaze
from goodhart.envs.core.grid import MOVE_DELTAS, GridCore
from goodhart.envs.loop_race import LoopRace
from goodhart.experiments.demo import demo_spec, load_models
from goodhart.experiments.metrics import summarize

EVAL_LEVEL_SEED = 1_000_000  # the evaluation level set of the shipped configs
PROXY_COLOUR = (255, 170, 30)  # the cue's colour; also marks CornerMaze's corner


def _rgb(colour: Sequence[int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in colour)  # type: ignore[return-value]


def _env_kwargs(model: LoadedModel, max_steps: int | None = None) -> dict[str, Any]:
    kwargs = {k: v for k, v in model.config.get("env_kwargs", {}).items() if k != "distribution"}
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    return kwargs


# -------------------------------------------------------------------------- heatmaps
@dataclass
class Visits:
    """Where a policy went on one distribution: ``visits`` (H, W) mean visits per episode
    (the start counts), ``wall_rate`` (H, W) the fraction of levels with a wall there, the
    episodes' outcomes, and ``core``, holding the levels (copy ``i``: ``seeds[i]``)."""

    visits: np.ndarray
    wall_rate: np.ndarray
    outcomes: list[dict[str, Any]]
    core: GridCore


def visits(
    model: LoadedModel,
    distribution: str,
    seeds: Sequence[int],
    *,
    deterministic: bool = False,
    max_steps: int | None = None,
) -> Visits:
    """Run ``model`` for one episode on the level of each seed in ``seeds`` (batched; a seed
    may repeat, and the policy's sampling still differs between copies) and count the cells
    visited. Copy ``i`` plays ``gym.make(env_id, distribution=...).reset(seed=seeds[i])``'s
    level; the policy is seeded ``seeds[0]``."""
    n = len(seeds)
    venv = make_vec(model.env_id, n, distribution=distribution, **_env_kwargs(model, max_steps))
    core = venv.core
    core.reset(range(n), [seeding.np_random(int(s))[0] for s in seeds])
    policy = ModelPolicy(model, deterministic=deterministic)
    policy.reset(int(seeds[0]))
    counts = np.zeros(core.grid_shape, dtype=np.float64)
    wall_rate = to_numpy(core.walls).astype(np.float64).mean(axis=0)
    done = np.zeros(n, dtype=bool)
    outcomes: list[dict[str, Any] | None] = [None] * n

    def count() -> None:
        pos = to_numpy(core.pos)[~done]
        np.add.at(counts, (pos[:, 0], pos[:, 1]), 1.0)

    count()
    obs = np.array(to_numpy(core.observe()), copy=True)
    while not done.all():
        _, _, terminated, truncated = (to_numpy(a) for a in core.step(policy.act(obs, venv)))
        count()
        ended = (terminated | truncated) & ~done
        for i, outcome in zip(np.flatnonzero(ended), core.outcomes(np.flatnonzero(ended))):
            outcomes[i] = outcome
        done |= ended
        obs = np.array(to_numpy(core.observe()), copy=True)
    return Visits(counts / n, wall_rate, outcomes, core)  # type: ignore[arg-type]


def summary_text(core: type[GridCore], outcomes: list[dict[str, Any]]) -> str:
    """A short line of an env's headline rates: goal and proxy-first rates for the mazes,
    finish rate and targets for LoopRace, and the true return."""
    summary = summarize(outcomes)
    if issubclass(core, GoalMaze):
        parts = [f"goal {summary[core.OUTCOMES[0]]:.2f}", f"{core.ORACLES[1]} first {summary[core.OUTCOMES[1]]:.2f}"]
    elif issubclass(core, LoopRace):
        parts = [f"finished {summary['finished']:.2f}", f"targets {summary['targets_hit']:.1f}"]
    else:
        parts = []
    return ", ".join([*parts, f"true {summary['true_return']:.2f}"])


def _draw_level_marks(ax: Any, core: GridCore, fixed_level: bool) -> None:
    """Outline what the agent may go for: the corner region (always), and on a fixed level
    the goal and the cue."""
    from matplotlib.patches import Circle, Rectangle

    if not isinstance(core, GoalMaze):
        return
    proxy = to_numpy(core.proxy)[0]
    if fixed_level or core.ORACLES[1] == "corner":
        for r, c in np.argwhere(proxy):
            ax.add_patch(Rectangle((c - 0.45, r - 0.45), 0.9, 0.9, fill=False, lw=2, ec=_rgb(PROXY_COLOUR), zorder=3))
    if fixed_level:
        gr, gc = (int(v) for v in to_numpy(core.goal)[0])
        ax.add_patch(Circle((gc, gr), 0.3, fill=False, lw=2, ec=_rgb(core.COLOURS["goal"]), zorder=3))


def heatmap(
    name: str,
    out: str | os.PathLike[str],
    *,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distributions: Sequence[str] | None = None,
    episodes: int = 200,
    seed: int = EVAL_LEVEL_SEED,
    level: int | None = None,
    deterministic: bool = False,
    max_steps: int | None = None,
) -> dict[tuple[str, str], Visits]:
    """State-visitation heatmaps of the policies of demo ``name`` (or ``models``), one panel per
    model and distribution (default: train and shifted), over ``episodes`` episodes: on the
    levels of seeds ``seed, seed + 1, ...`` (the same levels in every panel of a
    distribution), or all on the level of seed ``level`` if given (in ColorMaze and
    CornerMaze the same maze and goal in train and shifted; the cue or goal placement
    differs). Cells that are walls in every level are dark; never-visited cells white; the
colour scale is logarithmic. Writes a PNG to ``out``; returns
    the visits by ``(label, distribution)``."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    _check_png(out)
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    loaded = load_models(name, models)
    dists = list(distributions or ("train", "shifted"))
    seeds = [level] * episodes if level is not None else list(range(seed, seed + episodes))
    results: dict[tuple[str, str], Visits] = {}
    for label, model in loaded:
        valid = core_class(model.env_id).DISTRIBUTIONS
        for dist in dists:
            if dist not in valid:
                raise ValueError(f"distribution {dist!r} is not one of {model.env_id}: valid ones: {list(valid)}")
            results[(label, dist)] = visits(model, dist, seeds, deterministic=deterministic, max_steps=max_steps)

    rows, cols = len(loaded), len(dists)
    h, w = next(iter(results.values())).visits.shape
    side = 3.4 / max(h, w)  # inches per cell
    fig = Figure(figsize=(cols * (w * side + 0.3) + 1.2, rows * (h * side + 0.7) + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    top = max(float(v.visits.max()) for v in results.values())
    norm = LogNorm(vmin=max(top / 1000, 1e-3), vmax=max(top, 2e-3))  # lingering on one cell would hide the rest
    image = None
    for r, (label, model) in enumerate(loaded):
        core = core_class(model.env_id)
        for c, dist in enumerate(dists):
            ax, result = axes[r, c], results[(label, dist)]
            ax.set_facecolor("white")
            image = ax.imshow(np.ma.masked_less_equal(result.visits, 0), cmap="YlOrRd", norm=norm, interpolation="nearest")
            walls = np.zeros((h, w, 4))
            walls[result.wall_rate >= 1.0] = (*_rgb(core.COLOURS["wall"]), 1.0)
            ax.imshow(walls, interpolation="nearest")
            _draw_level_marks(ax, result.core, level is not None)
            ax.set_xticks([])
            ax.set_yticks([])
            heading = f"{label}: {dist}" if len(loaded) > 1 else f"{dist} levels"
            ax.set_title(f"{heading}\n{summary_text(core, result.outcomes)}", fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mean visits per episode")
    where = f"{episodes} episodes on the level of seed {level}" if level is not None else f"{episodes} levels each"
    fig.suptitle(f"{demo_spec(name).about.split(':')[0]}: where the policy goes ({where})", fontsize=10)
    _save(fig, out)
    return results


# ---------------------------------------------------------------------- vector field
def action_probabilities(model: LoadedModel, obs: np.ndarray) -> np.ndarray:
    """(N, A) action probabilities of ``model`` for observations ``obs``."""
    with torch.no_grad():
        tensor, _ = model.policy.obs_to_tensor(obs)
        return model.policy.get_distribution(tensor).distribution.probs.cpu().numpy()


def oracle_path(core: GridCore, oracle: str, index: int = 0) -> list[tuple[int, int]]:
    """The cells a scripted policy (a name in ``core.ORACLES``) walks through from the
    agent's cell until it reaches its target (the goal; the cue or corner), start included."""
    actions = to_numpy(getattr(core, f"policy_{oracle}"))[index]
    walls = to_numpy(core.walls)[index]
    r, c = (int(v) for v in to_numpy(core.pos)[index])
    if oracle == "goal":
        target = np.zeros_like(walls)
        target[tuple(int(v) for v in to_numpy(core.goal)[index])] = True
    else:
        target = to_numpy(core.proxy)[index].astype(bool)
    path = [(r, c)]
    for _ in range(walls.size):
        if target[r, c]:
            return path
        dr, dc = MOVE_DELTAS[int(actions[r, c])]
        r, c = r + int(dr), c + int(dc)
        path.append((r, c))
    raise ValueError(f"the {oracle!r} oracle does not reach its target")


def decision_square(core: GridCore, index: int = 0) -> tuple[int, int] | None:
    """The cell where the path from the agent to the goal and the path to the cue (or
    corner) split: the last cell they share. ``None`` if they do not split (one target lies
    on the way to the other, e.g. the cue on the goal)."""
    if not isinstance(core, GoalMaze):
        raise ValueError(f"a decision square needs a maze with a goal and a proxy, not {type(core).__name__}")
    to_goal, to_proxy = oracle_path(core, "goal", index), oracle_path(core, core.ORACLES[1], index)
    shared = 0
    while shared < min(len(to_goal), len(to_proxy)) and to_goal[shared] == to_proxy[shared]:
        shared += 1
    if shared == len(to_goal) or shared == len(to_proxy):
        return None
    return to_goal[shared - 1]


@dataclass
class VectorField:
    """The policy on every free cell of one level: ``cells`` (K, 2) row/column, ``probs``
    (K, A) action probabilities, ``vectors`` (K, 2) their mean move (row, column), and the
    level's ``start``, ``goal``, ``decision`` square (or None)."""

    cells: np.ndarray
    probs: np.ndarray
    vectors: np.ndarray
    start: tuple[int, int]
    goal: tuple[int, int] | None
    decision: tuple[int, int] | None


def vector_field(model: LoadedModel, distribution: str = "shifted", seed: int = 0) -> tuple[VectorField, GridCore]:
    """The policy's action probabilities on every free cell of the level of seed ``seed``
    (``gym.make(env_id, distribution=...).reset(seed=seed)``'s level), everything but the
    agent's cell as at the start."""
    kwargs = _env_kwargs(model)
    level = make_vec(model.env_id, 1, seed=seed, distribution=distribution, **kwargs)
    level.reset()
    core = level.core
    walls = to_numpy(core.walls)[0]
    cells = np.argwhere(~walls)
    batch = make_vec(model.env_id, len(cells), distribution=distribution, **kwargs)
    batch.core.reset(range(len(cells)), [seeding.np_random(seed)[0] for _ in cells])
    batch.core.pos = batch.core._asarray(cells.astype(np.int64))
    probs = action_probabilities(model, np.array(to_numpy(batch.core.observe()), copy=True))
    vectors = probs @ MOVE_DELTAS[: probs.shape[1]].astype(np.float64)
    start = tuple(int(v) for v in to_numpy(core.pos)[0])
    goal = tuple(int(v) for v in to_numpy(core.goal)[0]) if isinstance(core, GoalMaze) else None
    decision = decision_square(core) if isinstance(core, GoalMaze) else None
    return VectorField(cells, probs, vectors, start, goal, decision), core  # type: ignore[arg-type]


def first_split_level(model: LoadedModel, distribution: str = "shifted", start: int = 0, tries: int = 1000) -> int:
    """The first level seed from ``start`` whose paths to the goal and to the proxy split
    after the start (a maze level with a decision square that is not the start); ``start``
    if there is none within ``tries``."""
    if not issubclass(core_class(model.env_id), GoalMaze):
        return start
    venv = make_vec(model.env_id, 1, distribution=distribution, **_env_kwargs(model))
    for seed in range(start, start + tries):
        venv.seed(seed)
        venv.reset()
        square = decision_square(venv.core)
        if square is not None and square != tuple(int(v) for v in to_numpy(venv.core.pos)[0]):
            return seed
    return start


def vfield(
    name: str,
    out: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    distribution: str = "shifted",
    seed: int | None = None,
) -> tuple[VectorField, int]:
    """Draw the vector field (:func:`vector_field`) of demo ``name``'s policy (or ``model``;
    for ``race``, the score-trained one) on the level of seed ``seed`` (default: the first
    level from seed 0 with a decision square): walls, the cue or the corner, the goal, the
    start, and on every free cell four thin arrows, one per action, as long as its
    probability, and a thick one, the mean move; the decision square is outlined in red.
    Writes a PNG to ``out``; returns the field and the level seed drawn."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    _check_png(out)
    label, loaded = load_models(name, [model] if model else None)[0]
    if distribution not in core_class(loaded.env_id).DISTRIBUTIONS:
        valid = list(core_class(loaded.env_id).DISTRIBUTIONS)
        raise ValueError(f"distribution {distribution!r} is not one of {loaded.env_id}: valid ones: {valid}")
    if seed is None:
        seed = first_split_level(loaded, distribution)
    field, core = vector_field(loaded, distribution, seed)
    planes = to_numpy(core.planes(reveal=True))[0]
    h, w = planes.shape[1:]
    fig = Figure(figsize=(w * 0.6 + 2.6, h * 0.6 + 0.7), layout="constrained")
    ax = fig.subplots()
    image = np.ones((h, w, 3))
    for k, channel in enumerate(core.CHANNELS):
        if core.STYLES[channel] == "tile":
            image[planes[k] > 0] = _rgb(core.COLOURS[channel])
    corner = isinstance(core, GoalMaze) and core.ORACLES[1] == "corner"
    if corner:
        region = to_numpy(core.proxy)[0]
        image[region] = 0.6 * image[region] + 0.4 * np.array(_rgb(PROXY_COLOUR))
    ax.imshow(image, interpolation="nearest")
    for k, channel in enumerate(core.CHANNELS):
        if core.STYLES[channel] == "disc":
            for r, c in np.argwhere(planes[k] > 0):
                ax.add_patch(Circle((c, r), 0.3, color=_rgb(core.COLOURS[channel]), alpha=0.85, zorder=2))
    sr, sc = field.start
    ax.add_patch(Rectangle((sc - 0.44, sr - 0.44), 0.88, 0.88, fill=False, lw=1.5, ls="--", ec="0.3", zorder=2))
    # the image's y axis points down the rows, like the grid's: a move (dr, dc) is the data
    # vector (dc, dr), drawn in data coordinates (angles="xy")
    x, y = field.cells[:, 1].astype(float), field.cells[:, 0].astype(float)
    for a, (dr, dc) in enumerate(MOVE_DELTAS[: field.probs.shape[1]]):
        p = field.probs[:, a] * 0.45
        ax.quiver(x, y, dc * p, dr * p, angles="xy", scale_units="xy", scale=1, width=0.004, headwidth=3,
                  headlength=3, headaxislength=3, color="#7fa6e0", zorder=3)
    ax.quiver(x, y, field.vectors[:, 1] * 0.45, field.vectors[:, 0] * 0.45, angles="xy", scale_units="xy", scale=1,
              width=0.011, color="#10307a", zorder=4)
    if field.decision is not None:
        dr, dc = field.decision
        ax.add_patch(Rectangle((dc - 0.5, dr - 0.5), 1, 1, fill=False, lw=2.5, ec="red", zorder=5))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    tiles = [c for c in core.CHANNELS if c != "agent"]
    handles = [Rectangle((0, 0), 1, 1, color=_rgb(core.COLOURS[c])) for c in tiles]
    names = list(tiles)
    if corner:
        handles.append(Rectangle((0, 0), 1, 1, color=_rgb(PROXY_COLOUR), alpha=0.4))
        names.append("corner")
    handles += [
        Rectangle((0, 0), 1, 1, fill=False, ec="0.3", ls="--"),
        Rectangle((0, 0), 1, 1, fill=False, ec="red", lw=2),
        Rectangle((0, 0), 1, 1, color="#7fa6e0"),
        Rectangle((0, 0), 1, 1, color="#10307a"),
    ]
    names += ["start", "decision square", "P(action)", "mean move"]
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    proxy = core.ORACLES[1] if isinstance(core, GoalMaze) else "proxy"
    note = ""
    if isinstance(core, GoalMaze) and field.decision is None:
        note = f"\nno decision square: the paths to the goal and the {proxy} do not split"
    ax.set_title(f"{label}, {distribution} level of seed {seed}: the policy on every cell{note}", fontsize=9)
    _save(fig, out)
    return field, seed


def _check_png(out: str | os.PathLike[str]) -> None:
    if Path(out).suffix.lower() != ".png":
        raise ValueError(f"--out {out}: the picture is written as PNG; give a file ending in .png")


def _save(fig: Any, out: str | os.PathLike[str]) -> None:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


__all__ = [
    "EVAL_LEVEL_SEED",
    "VectorField",
    "Visits",
    "action_probabilities",
    "decision_square",
    "first_split_level",
    "heatmap",
    "oracle_path",
    "summary_text",
    "vector_field",
    "vfield",
    "visits",
]
