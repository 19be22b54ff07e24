"""Files written whole or not at all, and JSON that says "undefined" the way JSON can.

Every file the project writes (model files, checkpoints, results, manifests, benchmark
records) goes through :func:`write_atomic`: a killed process leaves the old file or the new
one, never half of one. JSON has no NaN: :func:`write_json` writes undefined numbers (NaN,
infinities) as ``null`` and :func:`nan_for_null` reads them back as NaN.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file in the same folder (``write(tmp)``), flushed to
    disk, then rename it into place: whatever kills the writer, ``path`` holds the old file or
    the whole new one, never a part. Creates the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())  # the data on disk before the name points at it
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def map_leaves(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``value`` with ``leaf`` applied to everything in it that is not a dict, list or tuple
    (tuples come back as lists): the one walk through nested records and states."""
    if isinstance(value, dict):
        return {k: map_leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_leaves(v, leaf) for v in value]
    return leaf(value)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in nested dicts, lists and tuples) as None."""
    return map_leaves(value, lambda v: None if isinstance(v, float) and not math.isfinite(v) else v)


def nan_for_null(value: Any) -> Any:
    """The inverse of :func:`json_safe` for numbers: every None (nested) becomes NaN."""
    return map_leaves(value, lambda v: math.nan if v is None else v)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented JSON (undefined numbers as null), written atomically."""
    text = json.dumps(json_safe(data), indent=2) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


__all__ = ["json_safe", "nan_for_null", "write_atomic", "write_json"]


class CsvLog:
    """An append-only CSV whose first column is the timestep; on resume, rows after the
    checkpoint are dropped so the file matches the restored run."""

    def __init__(self, path: Path, keep_until: int | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.fields: list[str] | None = None
        if keep_until is not None and path.exists():
            with path.open(newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["timestep"]) <= keep_until]
            self.path.unlink()
            self.write(kept)
        elif path.exists():
            path.unlink()

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)
