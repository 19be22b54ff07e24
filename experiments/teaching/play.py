"""A person plays an env with the keyboard, with the demos' overlay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from goodhart.envs import make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.render import _pygame
from goodhart.experiments.teaching.display import require_display
from goodhart.experiments.teaching.frames import renderer_for
from goodhart.experiments.teaching.panels import overlay_lines

PLAY_HELP = "arrows move, R restart, N next level, Esc quit"


def play(
    env_id: str,
    *,
    distribution: str = "train",
    seed: int = 0,
    scale: float = 1.0,
    fps: int = 30,
    env_kwargs: dict[str, Any] | None = None,
    events: Iterable[Any] | None = None,
) -> list[dict[str, Any]]:
    """A person plays ``env_id`` with the keyboard: arrow keys move, R restarts the level,
    N goes on to the next level (seed + 1), Esc or closing the window quits. The overlay is
    the demos' one. Returns the outcomes of the episodes that ended.

    ``events``: where input comes from. ``None`` reads pygame's event queue (so events posted
    with ``pygame.event.post`` work too), after checking that a window can be opened
    (``NoDisplay`` otherwise; ``SDL_VIDEODRIVER=dummy`` passes); an iterable of pygame events
    (or of lists of them) is consumed one item per frame instead, and the game quits when it
    runs out, so a test can script a game."""
    venv = make_vec(env_id, 1, distribution=distribution, **(env_kwargs or {}))
    core = venv.core
    renderer = renderer_for(scale)
    if events is None:
        require_display()
    pg = renderer.pygame
    keys = {pg.K_UP: 0, pg.K_RIGHT: 1, pg.K_DOWN: 2, pg.K_LEFT: 3}
    script = None if events is None else iter(events)
    outcomes: list[dict[str, Any]] = []
    level = seed

    def start(level_seed: int) -> None:
        venv.seed(level_seed)
        venv.reset()

    start(level)
    outcome: dict[str, Any] | None = None
    try:
        while True:
            lines = [*overlay_lines(core, 0, outcome, outcome is not None), f"level seed {level}", PLAY_HELP]
            renderer.show(renderer.frame(core, 0, lines, "you"), fps)
            if script is None:
                batch = pg.event.get()
            else:
                try:
                    item = next(script)
                except StopIteration:
                    return outcomes
                batch = item if isinstance(item, (list, tuple)) else [item]
            for event in batch:
                if event.type == pg.QUIT:
                    return outcomes
                if event.type != pg.KEYDOWN:
                    continue
                if event.key in (pg.K_ESCAPE, pg.K_q):
                    return outcomes
                if event.key == pg.K_r:
                    start(level)
                    outcome = None
                elif event.key == pg.K_n:
                    level += 1
                    start(level)
                    outcome = None
                elif event.key in keys and outcome is None:
                    _, _, terminated, truncated = (to_numpy(a) for a in core.step(np.asarray([keys[event.key]])))
                    if terminated[0] or truncated[0]:
                        outcome = core.outcomes([0])[0]
                        outcomes.append(outcome)
    finally:
        renderer.close()


def key_events(actions: Iterable[int], pg: Any = None) -> list[Any]:
    """pygame KEYDOWN events of the arrow keys for ``actions`` (0 up, 1 right, 2 down,
    3 left), to script :func:`play`."""
    pg = pg or _pygame()
    arrows = (pg.K_UP, pg.K_RIGHT, pg.K_DOWN, pg.K_LEFT)
    return [pg.event.Event(pg.KEYDOWN, key=arrows[int(a)]) for a in actions]


__all__ = ["PLAY_HELP", "key_events", "play"]
