"""Scripted policies whose target changes during the episode: a step toward the nearest target.

Most oracles are level arrays, one action per cell, fixed when the level is made (see
:meth:`~goodhart.envs.core.grid.GridCore.oracle_actions`). An oracle that waters whichever
tomato is dry now, or fetches a key only while one is needed, has targets that change with the
episode's state. :func:`toward_nearest` gives its actions for the whole batch at once, on the
array API (numpy or torch): a breadth-first search run as a relaxation over every copy's grid
in parallel, from the targets out, then the move to the neighbour closest to a target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from goodhart.envs.core.grid import GridCore


def target_distances(core: GridCore, targets: Any, blocked: Any) -> Any:
    """(N, H, W) path lengths from every cell to the nearest True cell of ``targets``
    (N, H, W), moving only through cells that are not ``blocked`` (targets excepted); cells
    that cannot reach a target (and blocked cells) hold H * W."""
    xp = core.xp
    h, w = core.grid_shape
    far = h * w
    free = ~blocked | targets
    dist = far * (1 - xp.astype(targets, xp.int64))  # 0 on the targets, far elsewhere
    unreached = xp.full_like(dist, far)
    for _ in range(far):
        near = xp.full_like(dist, far)  # each cell's nearest neighbour's distance
        near[:, 1:, :] = xp.minimum(near[:, 1:, :], dist[:, :-1, :])
        near[:, :-1, :] = xp.minimum(near[:, :-1, :], dist[:, 1:, :])
        near[:, :, 1:] = xp.minimum(near[:, :, 1:], dist[:, :, :-1])
        near[:, :, :-1] = xp.minimum(near[:, :, :-1], dist[:, :, 1:])
        relaxed = xp.where(free, xp.minimum(dist, near + 1), unreached)
        if bool(xp.all(relaxed == dist)):
            break
        dist = relaxed
    return dist


def toward_nearest(core: GridCore, targets: Any, avoid: Any = None) -> Any:
    """(N,) actions that step each copy's agent toward its nearest True cell of ``targets``
    (N, H, W): around the cells of ``avoid`` (N, H, W) where a way around exists, through
    them where none does. Ties go to the first move in the order up, right, down, left; a copy
    with no reachable target gets action 0 (up)."""
    xp = core.xp
    far = core.grid_shape[0] * core.grid_shape[1]
    ways = [core.walls] if avoid is None else [core.walls | avoid, core.walls]
    actions, found = None, None
    for blocked in reversed(ways):  # the way through avoided cells first, then preferred over it
        dist = target_distances(core, targets, blocked)
        cells = core.pos[:, None, :] + core._move_deltas[None, :, :]  # (N, 4, 2) the neighbours
        options = dist[core.rows[:, None], cells[..., 0], cells[..., 1]]  # (N, 4) their distances
        reachable = xp.min(options, axis=1) < far
        step = xp.argmin(options, axis=1)
        actions = step if actions is None else xp.where(reachable, step, actions)
        found = reachable if found is None else found | reachable
    return xp.where(found, actions, xp.zeros_like(actions))
