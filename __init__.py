"""Goodhart Gridworlds: gridworlds where the reward and the true objective come apart.

Importing the package registers the environments with Gymnasium (``goodhart/LoopRace-v0``,
``goodhart/ColorMaze-v0``, ``goodhart/CornerMaze-v0``).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from goodhart import envs  # noqa: F401  (registers the environment ids)

DISTRIBUTION = "goodhart-gridworlds"


def _installed_version() -> str | None:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _checkout_version() -> str | None:
    """The version in ``pyproject.toml`` beside this file: a source checkout (the repository
    root is the package), installed or not; None in an installed wheel."""
    pyproject = Path(__file__).with_name("pyproject.toml")
    if not pyproject.is_file():
        return None
    project = pyproject.read_text(encoding="utf-8").split("[project]", 1)[-1].split("\n[", 1)[0]
    found = re.search(r'^version\s*=\s*"([^"]+)"', project, re.MULTILINE)
    return found.group(1) if found else None


def version_line() -> str:
    """``goodhart --version``: the installed package's version, from its metadata. Only when the
    package is not installed, the source checkout's pyproject.toml, saying so; when the two
    disagree (an editable install made before a version change), both."""
    installed, checkout = _installed_version(), _checkout_version()
    if installed is None and checkout is None:
        return f"{DISTRIBUTION}: version unknown (not installed, and no pyproject.toml beside {Path(__file__).parent})"
    if installed is None:
        return f"{DISTRIBUTION} {checkout} (from {Path(__file__).with_name('pyproject.toml')}; the package is not installed)"
    if checkout is not None and checkout != installed:
        return f"{DISTRIBUTION} {installed} (installed metadata; this checkout's pyproject.toml says {checkout}: run pip install -e . again)"
    return f"{DISTRIBUTION} {installed}"


__version__ = _installed_version() or _checkout_version() or "unknown"
