"""Is there a screen to open a window on? Asked before a demo or a game opens one.

Without a display, SDL quietly falls back to an offscreen driver: a demo then shows nothing and
exits as if it had, and a game waits for keys nobody can press. So the window's commands check
first and say what to do instead. ``SDL_VIDEODRIVER=dummy`` (or ``offscreen``) asks for no
window on purpose: a demo then runs headless (tests, timing); a game cannot be played.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

HEADLESS = ("dummy", "offscreen")


class NoDisplay(RuntimeError):
    """No window can be opened; the message says what to do instead."""


def require_display(*, keyboard: bool = False, demo: str | None = None) -> None:
    """Return if a window can be opened (or none is wanted: ``SDL_VIDEODRIVER=dummy``, unless
    ``keyboard``: a person must type into it); else raise :class:`NoDisplay`, suggesting
    ``goodhart record DEMO`` (``demo``: the NAME to record)."""
    asked = os.environ.get("SDL_VIDEODRIVER", "").lower()
    if asked in HEADLESS:
        if keyboard:
            raise NoDisplay(f"SDL_VIDEODRIVER={asked} opens no window, so nobody could press a key: unset it to play")
        return
    if keyboard:
        hint = "playing needs a window and a keyboard: run it where a desktop session is"
    else:
        hint = f"write the frames to a file with `goodhart record {demo or 'NAME'} --out demo.gif`, or run headless with SDL_VIDEODRIVER=dummy"
    if sys.platform.startswith("linux") and not asked and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplay(f"no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set): {hint}")
    from goodhart.envs.core.render import _pygame

    pg = _pygame()
    try:
        with _quiet_stderr():  # SDL prints its own complaints before falling back
            pg.display.init()
        driver = pg.display.get_driver()
    except pg.error as err:
        raise NoDisplay(f"cannot open a window ({err}): {hint}") from None
    if driver in HEADLESS:  # SDL's silent fallback
        pg.display.quit()
        raise NoDisplay(f"no display to open a window on (SDL fell back to its {driver} driver): {hint}")


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the process's stderr (file descriptor 2, where SDL writes) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


__all__ = ["HEADLESS", "NoDisplay", "require_display"]
