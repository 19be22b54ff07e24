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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from goodhart.envs.core.files import write_atomic  # the one atomic writer, in the lowest layer that writes


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
