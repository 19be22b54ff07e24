"""Perfect mazes and path distances on the host (numpy), for level generation.

A maze of ``size`` x ``size`` cells is a ``(2*size+1, 2*size+1)`` boolean wall grid: cell
``(i, j)`` sits at grid position ``(2i+1, 2j+1)`` and the passages between neighbouring cells
are the grid positions between them. Every free position, passages included, is a place an
agent, goal or cue can stand.
"""

from __future__ import annotations

from collections import deque
from functools import lru_cache

import numpy as np

from goodhart.envs.core.grid import MOVE_DELTAS


def perfect_maze(rng: np.random.Generator, size: int) -> np.ndarray:
    """A uniformly-branching perfect maze (exactly one path between any two cells), carved by
    a randomized depth-first search from a random cell."""
    side = 2 * size + 1
    walls = np.ones((side, side), dtype=bool)
    neighbours = _cell_neighbours(size)
    visited = [False] * (size * size)
    i, j = int(rng.integers(size)), int(rng.integers(size))
    stack = [i * size + j]
    visited[stack[0]] = True
    walls[2 * i + 1, 2 * j + 1] = False
    while stack:
        cell = stack[-1]
        options = [n for n in neighbours[cell] if not visited[n]]
        if not options:
            stack.pop()
            continue
        new = options[int(rng.integers(len(options)))]
        visited[new] = True
        (i, j), (ni, nj) = divmod(cell, size), divmod(new, size)
        walls[2 * ni + 1, 2 * nj + 1] = False
        walls[i + ni + 1, j + nj + 1] = False  # the passage between the two cells
        stack.append(new)
    return walls


@lru_cache(maxsize=None)
def _cell_neighbours(size: int) -> tuple[tuple[int, ...], ...]:
    """Flat indices of each cell's neighbours, in the order up, right, down, left."""
    return tuple(
        tuple(
            (i + di) * size + j + dj
            for di, dj in ((-1, 0), (0, 1), (1, 0), (0, -1))
            if 0 <= i + di < size and 0 <= j + dj < size
        )
        for i in range(size)
        for j in range(size)
    )


def path_distances(walls: np.ndarray, *sources: tuple[int, int]) -> np.ndarray:
    """Breadth-first path lengths from the nearest of ``sources`` to every grid position
    (-1: unreachable). Read-only: results are cached, since small mazes repeat (a 3x3-cell
    maze is one of 192) and level generation asks the same questions of them again."""
    key = tuple((int(r), int(c)) for r, c in sources)
    walls = np.ascontiguousarray(walls, dtype=bool)
    return _cached_path_distances(walls.shape, walls.tobytes(), key)


def descent_actions(walls: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(H, W) action (index into ``MOVE_DELTAS``) on each cell that steps to a neighbour one
    closer along ``dist`` (path distances to a target); 0 where no neighbour is closer.
    Read-only and cached, like :func:`path_distances`."""
    walls = np.ascontiguousarray(walls, dtype=bool)
    dist = np.ascontiguousarray(dist, dtype=np.int64)
    return _cached_descent_actions(walls.shape, walls.tobytes(), dist.tobytes())


# Bounded so that large mazes, which rarely repeat, cannot grow the caches without limit.
CACHE_SIZE = 1 << 14


@lru_cache(maxsize=CACHE_SIZE)
def _cached_path_distances(shape: tuple[int, int], wall_bytes: bytes, sources: tuple[tuple[int, int], ...]) -> np.ndarray:
    walls = np.frombuffer(wall_bytes, dtype=bool).reshape(shape)
    dist = np.full(shape, -1, dtype=np.int64)
    for source in sources:
        dist[source] = 0
    queue = deque(sources)
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVE_DELTAS:
            nr, nc = r + dr, c + dc
            if not walls[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    dist.setflags(write=False)
    return dist


@lru_cache(maxsize=CACHE_SIZE)
def _cached_descent_actions(shape: tuple[int, int], wall_bytes: bytes, dist_bytes: bytes) -> np.ndarray:
    walls = np.frombuffer(wall_bytes, dtype=bool).reshape(shape)
    dist = np.frombuffer(dist_bytes, dtype=np.int64).reshape(shape)
    actions = np.zeros(shape, dtype=np.int64)
    for r, c in np.argwhere((dist > 0) & ~walls):
        for a, (dr, dc) in enumerate(MOVE_DELTAS):
            if dist[r + dr, c + dc] == dist[r, c] - 1:
                actions[r, c] = a
                break
    actions.setflags(write=False)
    return actions


def choose_cell(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A uniformly chosen (row, column) among the True positions of ``mask``."""
    cells = np.argwhere(mask)
    return cells[int(rng.integers(len(cells)))]


def shortest_path(walls: np.ndarray, start: tuple[int, int], target: np.ndarray) -> list[tuple[int, int]] | None:
    """The cells of a shortest path from ``start`` to the nearest cell of the mask ``target``,
    both ends included (ties broken as the envs' shortest-path oracles break them); ``None``
    if none can be reached."""
    cells = [tuple(int(v) for v in cell) for cell in np.argwhere(target)]
    if not cells:
        return None
    dist = path_distances(walls, *cells)
    if dist[start] < 0:
        return None
    actions = descent_actions(walls, dist)
    path = [start]
    while dist[path[-1]] > 0:
        dr, dc = MOVE_DELTAS[int(actions[path[-1]])]
        path.append((path[-1][0] + int(dr), path[-1][1] + int(dc)))
    return path


def decision_square(walls: np.ndarray, start: tuple[int, int], targets: dict[str, np.ndarray]) -> tuple[int, int] | None:
    """The last cell shared by the shortest paths from ``start`` to the ``"intended"`` and the
    ``"proxy"`` mask of ``targets`` (Turner et al.'s decision square: where the way to the
    proxy branches off the way to the intended target); ``None`` if either is missing or
    unreachable, or the paths do not split (one target lies on the way to the other)."""
    found = decision_moves(walls, start, targets)
    return None if found is None else found[0]


def decision_moves(walls: np.ndarray, start: tuple[int, int], targets: dict[str, np.ndarray]) -> tuple[tuple[int, int], dict[str, int]] | None:
    """The decision square (see :func:`decision_square`) and the move (an index into
    ``MOVE_DELTAS``) that leaves it towards each target, ``{"intended": a, "proxy": b}``;
    ``None`` where there is no decision square."""
    if "intended" not in targets or "proxy" not in targets:
        return None
    paths = {key: shortest_path(walls, start, targets[key]) for key in ("intended", "proxy")}
    if paths["intended"] is None or paths["proxy"] is None:
        return None
    shared = 0
    while shared < min(map(len, paths.values())) and paths["intended"][shared] == paths["proxy"][shared]:
        shared += 1
    if shared in (len(paths["intended"]), len(paths["proxy"])):
        return None
    cell = paths["intended"][shared - 1]
    moves = {key: _move_between(cell, path[shared]) for key, path in paths.items()}
    return cell, moves


def _move_between(cell: tuple[int, int], neighbour: tuple[int, int]) -> int:
    """The index into ``MOVE_DELTAS`` of the move from ``cell`` to its ``neighbour``."""
    delta = (neighbour[0] - cell[0], neighbour[1] - cell[1])
    return next(a for a, (dr, dc) in enumerate(MOVE_DELTAS) if (int(dr), int(dc)) == delta)
