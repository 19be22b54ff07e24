"""Perfect mazes and path distances on the host (numpy), for level generation.

A maze of ``size`` x ``size`` cells is a ``(2*size+1, 2*size+1)`` boolean wall grid: cell
``(i, j)`` sits at grid position ``(2i+1, 2j+1)`` and the passages between neighbouring cells
are the grid positions between them. Every free position, passages included, is a place an
agent, goal or cue can stand.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from goodhart.envs.core.grid import MOVE_DELTAS


def perfect_maze(rng: np.random.Generator, size: int) -> np.ndarray:
    """A uniformly-branching perfect maze (exactly one path between any two cells), carved by
    a randomized depth-first search from a random cell."""
    side = 2 * size + 1
    walls = np.ones((side, side), dtype=bool)
    visited = np.zeros((size, size), dtype=bool)
    start = (int(rng.integers(size)), int(rng.integers(size)))
    stack = [start]
    visited[start] = True
    walls[2 * start[0] + 1, 2 * start[1] + 1] = False
    while stack:
        i, j = stack[-1]
        options = [
            (i + di, j + dj)
            for di, dj in ((-1, 0), (0, 1), (1, 0), (0, -1))
            if 0 <= i + di < size and 0 <= j + dj < size and not visited[i + di, j + dj]
        ]
        if not options:
            stack.pop()
            continue
        ni, nj = options[int(rng.integers(len(options)))]
        visited[ni, nj] = True
        walls[2 * ni + 1, 2 * nj + 1] = False
        walls[i + ni + 1, j + nj + 1] = False  # the passage between the two cells
        stack.append((ni, nj))
    return walls


def path_distances(walls: np.ndarray, *sources: tuple[int, int]) -> np.ndarray:
    """Breadth-first path lengths from the nearest of ``sources`` to every grid position
    (-1: unreachable)."""
    dist = np.full(walls.shape, -1, dtype=np.int64)
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
    return dist


def descent_actions(walls: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(H, W) action (index into ``MOVE_DELTAS``) on each cell that steps to a neighbour one
    closer along ``dist`` (path distances to a target); 0 where no neighbour is closer."""
    h, w = walls.shape
    actions = np.zeros((h, w), dtype=np.int64)
    for r, c in np.argwhere((dist > 0) & ~walls):
        for a, (dr, dc) in enumerate(MOVE_DELTAS):
            if dist[r + dr, c + dc] == dist[r, c] - 1:
                actions[r, c] = a
                break
    return actions


def choose_cell(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A uniformly chosen (row, column) among the True positions of ``mask``."""
    cells = np.argwhere(mask)
    return cells[int(rng.integers(len(cells)))]
