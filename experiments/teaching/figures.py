"""What the heatmaps and vector fields share: colours, target outlines and their legend,
headline numbers (and :func:`save_png`, re-exported from :mod:`goodhart.experiments.plots`).
All of it read from the env's hooks.

Figures are drawn with matplotlib's object API (no pyplot, no display).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from goodhart.envs.core.grid import GridCore
from goodhart.experiments.columns import number
from goodhart.experiments.metrics import summarize
from goodhart.experiments.plots import save_png  # the one PNG saver, here for the heatmap and the vector field

TARGETS = ("intended", "proxy")
INSET = {"intended": 0.28, "proxy": 0.42}  # half the outline's side: nested where both are on a cell


def rgb(colour: Sequence[int]) -> tuple[float, float, float]:
    """An RGB triple of 0..255 as matplotlib's 0..1."""
    return tuple(c / 255 for c in colour)  # type: ignore[return-value]


def target_name(core: type[GridCore], key: str) -> str:
    """The legend entry of a target mask: ``goal (intended)``, ``cue (proxy)``."""
    return f"{core.INTENDED_NAME if key == 'intended' else core.PROXY_NAME} ({key})"


def outline_targets(ax: Any, core: type[GridCore], masks: Mapping[str, np.ndarray]) -> set[str]:
    """Outline the cells of each target mask in its ``TARGET_COLOURS`` colour (the intended
    target's inside the proxy's where both are on a cell), with a white halo so that it shows
    on a cell of the same colour; the keys drawn."""
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle

    halo = [patheffects.Stroke(linewidth=4, foreground="white"), patheffects.Normal()]
    drawn = set()
    for key in TARGETS:
        if key in masks and key in core.TARGET_COLOURS and masks[key].any():
            half = INSET[key]
            for r, c in np.argwhere(masks[key]):
                box = Rectangle((c - half, r - half), 2 * half, 2 * half, fill=False, lw=2, ec=rgb(core.TARGET_COLOURS[key]), zorder=5)
                box.set_path_effects(halo)
                ax.add_patch(box)
            drawn.add(key)
    return drawn


def target_handles(core: type[GridCore], drawn: Collection[str]) -> tuple[list[Any], list[str]]:
    """Legend handles and labels of the target outlines that were drawn."""
    from matplotlib.patches import Rectangle

    keys = [key for key in TARGETS if key in drawn]
    handles = [Rectangle((0, 0), 1, 1, fill=False, lw=2, ec=rgb(core.TARGET_COLOURS[key])) for key in keys]
    return handles, [target_name(core, key) for key in keys]


def outcome_label(name: str) -> str:
    """An outcome's name in words: ``reached_cue_first`` -> ``cue first``."""
    return name.removeprefix("reached_").replace("_", " ")


def headline(core: type[GridCore], outcomes: Sequence[Mapping[str, Any]]) -> str:
    """The env's ``HEADLINE`` outcomes over episodes, as a title: ``cue first 0.66, goal 0.30``."""
    means = summarize(outcomes)  # type: ignore[arg-type]
    return ", ".join(f"{outcome_label(name)} {number(means[name], short=True)}" for name in core.HEADLINE)


__all__ = ["headline", "outcome_label", "outline_targets", "rgb", "save_png", "target_handles", "target_name"]
