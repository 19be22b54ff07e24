"""Frames of a demo: the panels drawn side by side, episode after episode, in lockstep.

:func:`frames` yields them; the window (:mod:`.demo`) shows them and :mod:`.record` writes
them to a file. :class:`Played` keeps, per finished episode, each panel's outcome and the text
of its last frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goodhart.envs.core.level_sets import LevelSet
from goodhart.envs.core.render import Renderer
from goodhart.experiments.teaching.panels import Panel, plain

SEPARATOR = (150, 150, 150)
PANEL_GAP = 6
BASE_CELL, BASE_FONT = 32, 20
PANEL_WIDTH = 215  # at 20-pixel text: room for the longest describe line


@dataclass
class Frame:
    """One frame of a demo: the picture, where it is, and each panel's overlay text."""

    image: np.ndarray
    episode: int
    step: int
    last: bool  # the last frame of its episode: every panel's episode has ended
    lines: list[list[str]]
    outcomes: list[dict[str, Any] | None]  # each panel's outcome (None while running)


def renderer_for(scale: float) -> Renderer:
    """A renderer with cells and text scaled by ``scale`` (1: 32-pixel cells)."""
    if not scale > 0:
        raise ValueError(f"--scale {scale}: must be positive")
    font = max(12, round(BASE_FONT * scale))
    return Renderer(cell=max(4, round(BASE_CELL * scale)), font_size=font, panel_width=round(PANEL_WIDTH * font / BASE_FONT))


def compose(images: Sequence[np.ndarray]) -> np.ndarray:
    """Panels side by side, padded to the same height, with a grey gap between them."""
    height = max(image.shape[0] for image in images)
    parts = []
    for k, image in enumerate(images):
        if k:
            parts.append(np.full((height, PANEL_GAP, 3), SEPARATOR, dtype=np.uint8))
        pad = height - image.shape[0]
        parts.append(np.concatenate([image, np.full((pad, image.shape[1], 3), 255, np.uint8)]) if pad else image)
    return np.concatenate(parts, axis=1)


def frames(panels: Sequence[Panel], *, episodes: int, seed: int, renderer: Renderer) -> Iterator[Frame]:
    """Frames of ``episodes`` episodes played in lockstep by all panels: episode ``e`` on the
    level of seed ``seed + e`` (or a level set's level ``e``, see :class:`Panel`); a panel whose episode ended stays on its last state until
    all have ended. An episode gives ``1 + max(steps)`` frames (the start, then one per step)."""
    if episodes < 1:
        raise ValueError(f"--episodes {episodes}: must be at least 1")
    for episode in range(episodes):
        for panel in panels:
            panel.start(seed + episode, episode)
        step = 0
        while True:
            last = all(panel.done for panel in panels)
            lines = [panel.lines() for panel in panels]
            image = compose([renderer.frame(p.core, 0, text, p.title) for p, text in zip(panels, lines)])
            yield Frame(image, episode, step, last, [plain(text) for text in lines], [p.outcome for p in panels])
            if last:
                break
            for panel in panels:
                panel.step()
            step += 1


@dataclass
class Played:
    """What a demo played: the panels' titles, the level seed of its first episode and, per
    finished episode, each panel's outcome and the overlay text of its last frame."""

    titles: list[str]
    seed: int = 0
    level_set: str | None = None  # the saved level set played (episode k on its level k, cycling), if any
    level_count: int = 1
    outcomes: list[list[dict[str, Any]]] = field(default_factory=list)
    last_lines: list[list[list[str]]] = field(default_factory=list)

    def add(self, frame: Frame) -> None:
        self.outcomes.append(list(frame.outcomes))  # type: ignore[arg-type]
        self.last_lines.append(frame.lines)

    def summary(self) -> list[str]:
        """One line per episode: each panel's describe line."""
        def where(k: int) -> str:
            return f"seed {self.seed + k}" if self.level_set is None else f"level {k % self.level_count} of {self.level_set}"

        return [
            f"episode {k + 1} ({where(k)}): " + " | ".join(f"{t}: {text[-1]}" for t, text in zip(self.titles, lines))
            for k, lines in enumerate(self.last_lines)
        ]


def level_set_names(level_set: LevelSet | None) -> tuple[str | None, int]:
    """What :class:`Played` says of a level set: its name and its number of levels."""
    return (None, 1) if level_set is None else (level_set.name, level_set.count)


__all__ = ["Frame", "Played", "compose", "frames", "level_set_names", "renderer_for"]
