"""The files the teaching tools write, checked before anything runs: nothing half-made, no
folder made behind the user's back."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def check_out(out: str | os.PathLike[str], suffixes: Sequence[str]) -> Path:
    """``out`` as a Path if it ends in one of ``suffixes`` and its folder exists; else a
    one-line ``ValueError`` naming ``--out``."""
    path = Path(out)
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"--out {out}: the file must end in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ValueError(f"--out {out}: the folder {path.parent} does not exist")
    return path


__all__ = ["check_out"]
