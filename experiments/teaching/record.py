"""Recording a demo to a GIF or an MP4, headless: the same frames as the window.

A GIF holds one frame per step in one shared 64-colour palette (about half the size of a
palette per frame), the last frame of each episode shown for ``hold`` seconds; an MP4 (the
optional ``video`` extra, imageio-ffmpeg) repeats it instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.envs.core.level_sets import load_level_set
from goodhart.experiments.teaching.frames import Played, frames, level_set_names, renderer_for
from goodhart.experiments.teaching.outputs import check_out
from goodhart.experiments.teaching.panels import panels_for

GIF_COLOURS = 64  # one palette shared by a GIF's frames


class MissingExtra(RuntimeError):
    """An optional dependency is missing; the message names the extra that installs it."""


@dataclass
class Recording(Played):
    """What :func:`record` wrote: :class:`Played` plus the file and its frame count."""

    path: Path = Path()
    frames: int = 0


def _mp4_writer() -> Callable[..., Any]:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "writing .mp4 needs imageio-ffmpeg, in the optional extra 'video': "
            "pip install 'goodhart-gridworlds[video]' (or write a .gif)"
        ) from None
    import imageio.v2 as iio2

    return iio2.get_writer


def record(
    name: str | None,
    out: str | os.PathLike[str],
    *,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distributions: Sequence[str] | None = None,
    episodes: int = 1,
    fps: int = 8,
    scale: float = 1.0,
    seed: int | None = None,
    deterministic: bool = False,
    max_steps: int | None = None,
    hold: float = 1.5,
    steer: Sequence[Any] = (),
    coef: float = -1.0,
    levels: str | os.PathLike[str] | None = None,
) -> Recording:
    """Write the frames of ``name`` (as :func:`~goodhart.experiments.teaching.demo.demo`
    plays them) to ``out`` (``.gif``, or ``.mp4`` with the ``video`` extra; its folder must
    exist), headless; ``steer``, ``coef``: steered players beside their models (see
    :func:`~goodhart.experiments.teaching.panels.panels_for`); ``levels``: a saved level set's
    folder, episode ``e`` on its level ``e``. Returns a :class:`Recording`."""
    path = check_out(out, (".gif", ".mp4"))
    if fps < 1:
        raise ValueError(f"--fps {fps}: must be at least 1")
    get_writer = _mp4_writer() if path.suffix.lower() == ".mp4" else None
    level_set = None if levels is None else load_level_set(levels)
    panels, seed = panels_for(name, models, distributions, seed=seed, deterministic=deterministic, max_steps=max_steps,
                             steer=steer, coef=coef, levels=level_set)
    renderer = renderer_for(scale)
    images, durations = [], []
    rec = Recording([p.title for p in panels], seed, *level_set_names(level_set), path=path)
    for frame in frames(panels, episodes=episodes, seed=seed, renderer=renderer):
        images.append(frame.image)
        durations.append(1000 / fps + (hold * 1000 if frame.last else 0))
        if frame.last:
            rec.add(frame)
    if get_writer is None:
        import imageio.v3 as iio

        iio.imwrite(path, shared_palette(images), extension=".gif", duration=[round(d) for d in durations], loop=0)
    else:
        repeats = max(1, round(hold * fps))
        with get_writer(path, fps=fps, macro_block_size=1, codec="libx264", quality=7) as writer:
            for image, duration in zip(images, durations):
                image = _even(image)
                for _ in range(repeats + 1 if duration > 1000 / fps + 1e-9 else 1):
                    writer.append_data(image)
    rec.frames = len(images)
    return rec


def shared_palette(images: Sequence[np.ndarray], colours: int = GIF_COLOURS) -> np.ndarray:
    """The frames mapped to one palette of ``colours`` colours drawn from a sample of them
    (no dithering): GIF frames then share their colours and compress to about half the size
    (text antialiasing makes hundreds of colours otherwise)."""
    from PIL import Image

    stack = np.stack(images)
    sample = [*stack[:: max(1, len(stack) // 12)], stack[-1]]
    palette = Image.fromarray(np.concatenate(sample, axis=0)).quantize(
        colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    rgb = np.array(palette.getpalette()[: 3 * colours], dtype=np.uint8).reshape(-1, 3)
    return np.stack([rgb[np.asarray(Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE))] for f in stack])


def _even(image: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264's 4:2:0 colour needs them)."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)


__all__ = ["MissingExtra", "Recording", "record", "shared_palette"]
