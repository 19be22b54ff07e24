"""Level sets on disk: levels found once (by the red team, by hand) that others play again.

A level set is a folder of two files:

    levels.npz    the level arrays (:meth:`GridCore.level_arrays`), one row per level, as
                  ``np.savez`` writes them; read back with ``allow_pickle=False``, so loading a
                  set runs no code from it
    levels.json   the env id, the knobs the levels were made under (``env_kwargs``), the
                  count, per-level metadata (``per_level``: name -> one value per level, e.g.
                  ``score``, ``distinguishing``, ``origin``) and free ``meta``

The evaluator (``goodhart evaluate --levels DIR``) and the demos (``goodhart record --levels
DIR``) play the levels in order, so what one tool found another can show. Needs numpy only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from goodhart.envs.core.files import write_atomic
from goodhart.envs.core.grid import GridCore, Levels

ARRAYS, INDEX = "levels.npz", "levels.json"
FORMAT = "goodhart-level-set/1"


class LevelSetError(ValueError):
    """A level set that cannot be written or read; one line naming the folder and the problem."""


@dataclass(frozen=True)
class LevelSet:
    """Levels read from a folder: ``levels`` (name -> (count, ...) arrays) of ``env_id``, made
    under ``env_kwargs``, with ``per_level`` metadata (name -> ``count`` values) and ``meta``."""

    folder: Path
    env_id: str
    env_kwargs: dict[str, Any]
    levels: Levels
    per_level: dict[str, list[Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(next(iter(self.levels.values())))

    @property
    def name(self) -> str:
        """What records and panel titles call the set: ``levels:<folder name>``, the folder
        above for a folder named ``levels`` (``goodhart redteam --out rt`` writes ``rt/levels``)."""
        folder = self.folder.resolve() if self.folder.name in ("levels", "") else self.folder
        return f"levels:{folder.parent.name if folder.name == 'levels' else folder.name}"

    def row(self, index: int) -> Levels:
        """Level ``index`` as a one-row Levels (what ``load_levels`` takes for one copy)."""
        return {key: values[index : index + 1] for key, values in self.levels.items()}


def level_count(levels: Mapping[str, np.ndarray], where: str) -> int:
    """The number of levels in ``levels``, if every array has that many rows."""
    if not levels:
        raise LevelSetError(f"{where}: no level arrays")
    counts = {key: len(values) for key, values in levels.items()}
    if len(set(counts.values())) != 1:
        raise LevelSetError(f"{where}: level arrays of different lengths: {counts}")
    count = next(iter(counts.values()))
    if count < 1:
        raise LevelSetError(f"{where}: no levels")
    return count


def check_levels(core: GridCore, levels: Mapping[str, np.ndarray], where: str = "levels") -> int:
    """The number of levels in ``levels`` if they are levels of ``core``: its ``level_keys``,
    each array shaped as one of its generated levels (so knobs that change the grid, such as a
    maze's ``size``, must agree); a :class:`LevelSetError` otherwise."""
    count = level_count(levels, where)
    if set(levels) != set(core.level_keys):
        raise LevelSetError(f"{where}: level arrays {sorted(levels)} are not {type(core).__name__}'s: {sorted(core.level_keys)}")
    one = core.generate_levels([np.random.default_rng(0)])
    for key in core.level_keys:
        if np.shape(levels[key])[1:] != one[key].shape[1:]:
            raise LevelSetError(
                f"{where}: level array {key!r} has levels of shape {np.shape(levels[key])[1:]}, "
                f"{type(core).__name__} with these knobs makes {one[key].shape[1:]} (another size?)"
            )
    return count


def cycled(levels: Mapping[str, np.ndarray], episodes: int) -> Levels:
    """``levels`` in order, repeated from the first until there are ``episodes`` rows (all of
    them, once each, if there are more levels than that)."""
    count = level_count(levels, "levels")
    rows = np.arange(max(episodes, count)) % count
    return {key: np.asarray(values)[rows] for key, values in levels.items()}


def save_level_set(
    folder: str | os.PathLike[str],
    env_id: str,
    env_kwargs: Mapping[str, Any],
    levels: Mapping[str, np.ndarray],
    per_level: Mapping[str, Sequence[Any]] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``levels`` of ``env_id`` (made under ``env_kwargs``) to ``folder`` (created if
    needed) with ``per_level`` metadata (JSON values, one per level) and ``meta``; returns the
    folder. Each file is written whole or not at all."""
    folder = Path(folder)
    count = level_count(levels, str(folder))
    per_level = {key: list(values) for key, values in (per_level or {}).items()}
    for key, values in per_level.items():
        if len(values) != count:
            raise LevelSetError(f"{folder}: per-level {key!r} has {len(values)} values for {count} levels")
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {key: np.asarray(values) for key, values in levels.items()}

    def write_arrays(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a file object: savez would add .npz to the name
            np.savez(handle, **arrays)

    index = {"format": FORMAT, "env": env_id, "env_kwargs": dict(env_kwargs), "count": count,
             "per_level": per_level, "meta": dict(meta or {})}
    text = json.dumps(index, indent=2) + "\n"
    write_atomic(folder / ARRAYS, write_arrays)
    write_atomic(folder / INDEX, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return folder


def load_level_set(folder: str | os.PathLike[str]) -> LevelSet:
    """The level set in ``folder``, checked: both files there, arrays of one length that
    agrees with the index, and the arrays its env's levels are made of. Raises
    :class:`LevelSetError` with one line."""
    from goodhart.envs import (
        ENVS,  # this module is imported by goodhart.envs' users, not by it
    )

    folder = Path(folder)
    for name in (ARRAYS, INDEX):
        if not (folder / name).is_file():
            raise LevelSetError(f"{folder}: not a level set (no {name}; `goodhart redteam` writes one)")
    try:
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise LevelSetError(f"{folder / INDEX}: not readable JSON ({err})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise LevelSetError(f"{folder / INDEX}: not a level set index (expected format {FORMAT!r})")
    env_id = index.get("env")
    if env_id not in ENVS:
        raise LevelSetError(f"{folder / INDEX}: env {env_id!r} is not a registered env; valid ones: {list(ENVS)}")
    try:
        with np.load(folder / ARRAYS, allow_pickle=False) as data:
            levels = {key: np.array(data[key]) for key in data.files}
    except (OSError, ValueError) as err:
        raise LevelSetError(f"{folder / ARRAYS}: not a readable level array file ({err})") from None
    where = str(folder)
    count = level_count(levels, where)
    if count != index.get("count"):
        raise LevelSetError(f"{where}: {ARRAYS} holds {count} levels, {INDEX} says {index.get('count')}")
    env_kwargs = dict(index.get("env_kwargs") or {})
    keys = ENVS[env_id](1).level_keys  # the names, whatever the knobs
    if set(levels) != set(keys):
        raise LevelSetError(f"{where}: level arrays {sorted(levels)} are not {env_id}'s: {sorted(keys)}")
    per_level = dict(index.get("per_level") or {})
    for key, values in per_level.items():
        if not isinstance(values, list) or len(values) != count:
            raise LevelSetError(f"{folder / INDEX}: per-level {key!r} does not have one value per level ({count})")
    return LevelSet(folder, env_id, env_kwargs, {key: levels[key] for key in keys}, per_level, dict(index.get("meta") or {}))


__all__ = ["ARRAYS", "INDEX", "LevelSet", "LevelSetError", "check_levels", "cycled", "level_count", "load_level_set", "save_level_set"]
