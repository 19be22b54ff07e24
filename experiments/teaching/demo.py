"""The demo window: policies side by side, episode after episode, in a resizable window.

:func:`demo` plays a :class:`~goodhart.experiments.teaching.players.Show` (a demo of the
registry, a shipped policy, an env id or policy files) at a few frames per second and holds the
end of each episode. It checks first that a window can be opened
(:func:`~goodhart.experiments.teaching.display.require_display`); with
``SDL_VIDEODRIVER=dummy`` it runs headless.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from goodhart.envs.core.level_sets import load_level_set
from goodhart.experiments.teaching.display import require_display
from goodhart.experiments.teaching.frames import Played, frames, level_set_names, renderer_for
from goodhart.experiments.teaching.panels import panels_for


def quit_requested(pg: Any, events: Iterable[Any]) -> bool:
    """Whether ``events`` close the window or press Esc or Q."""
    return any(e.type == pg.QUIT or (e.type == pg.KEYDOWN and e.key in (pg.K_ESCAPE, pg.K_q)) for e in events)


def demo(
    name: str | None,
    *,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distributions: Sequence[str] | None = None,
    episodes: int = 3,
    fps: int = 8,
    scale: float = 1.0,
    seed: int | None = None,
    deterministic: bool = False,
    max_steps: int | None = None,
    hold: float = 1.5,
    steer: Sequence[Any] = (),
    coef: float = -1.0,
    levels: str | os.PathLike[str] | None = None,
) -> Played:
    """Play ``name`` (see :func:`~goodhart.experiments.teaching.players.resolve`; ``models``
    instead of its shipped policies) in a window at ``fps`` frames per second, from level seed
    ``seed`` (default: the demo's), holding the end of each episode for ``hold`` seconds; Esc,
    Q or closing the window stops it. Returns what was played (episodes cut short by quitting
    are left out). ``steer``, ``coef``: steered players beside their models (see
    :func:`~goodhart.experiments.teaching.panels.panels_for`); ``levels``: a saved level set's
    folder, episode ``e`` on its level ``e``. Raises ``NoDisplay`` if no window can be opened."""
    if fps < 1:
        raise ValueError(f"--fps {fps}: must be at least 1")
    level_set = None if levels is None else load_level_set(levels)
    panels, seed = panels_for(name, models, distributions, seed=seed, deterministic=deterministic, max_steps=max_steps,
                             steer=steer, coef=coef, levels=level_set)
    renderer = renderer_for(scale)
    require_display(demo=name)
    pg = renderer.pygame
    played = Played([p.title for p in panels], seed, *level_set_names(level_set))
    try:
        for frame in frames(panels, episodes=episodes, seed=seed, renderer=renderer):
            for _ in range(max(1, round(hold * fps)) if frame.last else 1):
                renderer.show(frame.image, fps)
                if quit_requested(pg, pg.event.get()):
                    return played
            if frame.last:
                played.add(frame)
    finally:
        renderer.close()
    return played


__all__ = ["demo", "quit_requested"]
