"""Drawing a copy of a batched core for people: pygame frames (window or array) and text.

Everything is drawn from the core's own planes with ``reveal=True`` (people see what the
agent may not), its channel colours and styles, so a new environment gets rendering for free.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

import numpy as np

from goodhart.envs.core.arrays import to_numpy

if TYPE_CHECKING:
    from goodhart.envs.core.grid import GridCore

PANEL_WIDTH = 190
TEXT = (30, 30, 30)
Line = Union[str, tuple[str, tuple[int, int, int]]]  # a panel text line, optionally coloured
GRID_LINE = (225, 225, 220)


def _pygame():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    if not pygame.font.get_init():
        pygame.font.init()
    return pygame


def host_planes(core: GridCore, index: int) -> np.ndarray:
    """(C, H, W) numpy planes of copy ``index`` with everything revealed."""
    return to_numpy(core.planes(reveal=True))[index]


def ansi(core: GridCore, index: int = 0) -> str:
    """The grid of copy ``index`` as text, one character per cell (the topmost channel's
    symbol, objects over floor, ``.`` for empty floor)."""
    planes = host_planes(core, index)
    chars = np.full(planes.shape[1:], ".", dtype="<U1")
    for style in ("tile", "disc", "agent"):
        for k, name in enumerate(core.CHANNELS):
            if core.STYLES[name] == style:
                chars[planes[k] > 0] = core.SYMBOLS[name]
    return "\n".join("".join(row) for row in chars) + "\n"


class Renderer:
    """Draws frames of one copy: the grid, the agent with its heading, a legend and text lines.

    ``cell`` is the side of a grid cell in pixels; ``font_size`` the height of the panel's
    text; ``panel_width`` the width of the text panel (default: 190 pixels for 20-pixel text,
    in proportion); ``human`` frames go to a resizable window.
    """

    def __init__(self, cell: int = 32, font_size: int = 20, panel_width: int | None = None) -> None:
        self.cell = cell
        self.pygame = _pygame()
        self.font = self.pygame.font.Font(None, font_size)
        self.title_font = self.pygame.font.Font(None, font_size)
        self.title_font.set_bold(True)
        self.line_height = round(font_size * 1.1)
        self.panel_width = round(PANEL_WIDTH * font_size / 20) if panel_width is None else panel_width
        self.window = None
        self.clock = None

    def frame(
        self, core: GridCore, index: int = 0, lines: Sequence[Line] = (), title: str | None = None
    ) -> np.ndarray:
        """An RGB frame ``(height, width, 3)`` uint8 of copy ``index``. ``lines`` are text lines
        under the legend, each a string or ``(string, rgb)``; ``title`` a bold line above it."""
        surf = self.surface(core, index, lines, title)
        return np.transpose(self.pygame.surfarray.array3d(surf), (1, 0, 2)).copy()

    def surface(self, core: GridCore, index: int, lines: Sequence[Line], title: str | None = None):
        pg, cell = self.pygame, self.cell
        planes = host_planes(core, index)
        _, h, w = planes.shape
        rows = len(core.CHANNELS) + len(lines) + 2 + (title is not None)  # one spare row: a wrapped line
        height = max(h * cell, 24 + self.line_height * rows)
        surf = pg.Surface((w * cell + self.panel_width, height))
        surf.fill(core.BACKGROUND)
        for r in range(h + 1):
            pg.draw.line(surf, GRID_LINE, (0, r * cell), (w * cell, r * cell))
        for c in range(w + 1):
            pg.draw.line(surf, GRID_LINE, (c * cell, 0), (c * cell, h * cell))
        heading = int(to_numpy(core.heading)[index])
        for style in ("tile", "disc", "agent"):
            for k, name in enumerate(core.CHANNELS):
                if core.STYLES[name] != style:
                    continue
                for r, c in np.argwhere(planes[k] > 0):
                    self._draw(surf, style, core.COLOURS[name], int(r), int(c), heading)
        self._panel(surf, core, w * cell + 12, lines, title)
        return surf

    def _draw(self, surf, style: str, colour, r: int, c: int, heading: int) -> None:
        pg, cell = self.pygame, self.cell
        rect = pg.Rect(c * cell, r * cell, cell, cell)
        if style == "tile":
            pg.draw.rect(surf, colour, rect)
        elif style == "disc":
            pg.draw.circle(surf, colour, rect.center, cell * 0.36)
            pg.draw.circle(surf, (255, 255, 255), rect.center, cell * 0.36, max(1, cell // 14))
        else:  # the agent: a triangle pointing along its heading (0 up, 1 right, 2 down, 3 left)
            cx, cy, s = rect.centerx, rect.centery, cell * 0.4
            points = []
            for dx, dy in ((0, -s), (-0.8 * s, 0.8 * s), (0.8 * s, 0.8 * s)):
                for _ in range(heading):  # a quarter turn clockwise per heading step
                    dx, dy = -dy, dx
                points.append((cx + dx, cy + dy))
            pg.draw.polygon(surf, colour, points)

    def _panel(self, surf, core: GridCore, x: int, lines: Sequence[Line], title: str | None = None) -> None:
        pg, step = self.pygame, self.line_height
        y = 10
        if title is not None:
            surf.blit(self.title_font.render(title, True, TEXT), (x, y + 2))
            y += step + 4
        side = round(step * 0.64)
        for name in core.CHANNELS:
            swatch = pg.Rect(x, y + 2, side, side)
            pg.draw.rect(surf, core.COLOURS[name], swatch)
            surf.blit(self.font.render(name, True, TEXT), (x + side + 8, y + 2))
            y += step
        y += 10
        for line in lines:
            text, colour = (line, TEXT) if isinstance(line, str) else line
            for part in self._wrap(text, self.panel_width - 24):
                surf.blit(self.font.render(part, True, colour), (x, y))
                y += step

    def _wrap(self, text: str, width: int) -> list[str]:
        """``text`` broken between words into lines no wider than ``width`` pixels (a long
        describe line of an env goes on the next line rather than off the panel)."""
        lines: list[str] = []
        for word in text.split(" "):
            if lines and self.font.size(f"{lines[-1]} {word}")[0] <= width:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
        return lines or [""]

    def show(self, frame: np.ndarray, fps: int) -> None:
        """Show a frame in the (resizable) window at ``fps`` frames per second."""
        pg = self.pygame
        if self.window is None:
            pg.display.init()
            pg.display.set_caption("Goodhart Gridworlds")
            self.window = pg.display.set_mode((frame.shape[1], frame.shape[0]), pg.RESIZABLE)
            self.clock = pg.time.Clock()
        pg.event.pump()
        image = pg.surfarray.make_surface(np.transpose(frame, (1, 0, 2)))
        self.window.blit(pg.transform.smoothscale(image, self.window.get_size()), (0, 0))
        pg.display.flip()
        self.clock.tick(fps)

    def close(self) -> None:
        if self.window is not None:
            self.pygame.display.quit()
            self.window = None
