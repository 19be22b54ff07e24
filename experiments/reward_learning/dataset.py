"""Preference datasets: a segment pool, the pairs a rater compared and its labels, on disk.

Two files side by side, neither of which can run code when loaded:

* ``<stem>.npz``: the arrays (segments, ``pairs`` (P, 2), ``labels`` (P,)), read with
  ``allow_pickle=False``;
* ``<stem>.json``: a format tag, the env id and knobs, the rater's options, the policies that
  played the segments, the seed, and the sha256 of the ``.npz``.

The pairs are in the order they were sampled, so the first ``n`` labels of a dataset are a
dataset of ``n`` labels (:meth:`PreferenceDataset.first`): label-count sweeps use nested
samples.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.agents.files import write_atomic, write_json
from goodhart.agents.model_io import paired_paths, read_tagged_pair, sha256_file
from goodhart.experiments.reward_learning.raters import RaterConfig, distortion_shares, label, sample_pairs
from goodhart.experiments.reward_learning.segments import Segments, concatenate

FORMAT = "goodhart-preferences/1"


class DatasetFileError(ValueError):
    """A preference dataset file is missing, corrupt or not a Goodhart Gridworlds dataset."""


@dataclass
class PreferenceDataset:
    """Segments, the compared pairs and the rater's labels (1: first preferred, 0: second,
    0.5: equally good), with what produced them."""

    segments: Segments
    pairs: np.ndarray
    labels: np.ndarray
    env_id: str
    env_kwargs: dict[str, Any]
    rater: RaterConfig
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def first(self, count: int) -> PreferenceDataset:
        """The dataset of the first ``count`` labels (and the segments they compare)."""
        if not 1 <= count <= len(self):
            raise ValueError(f"labels={count} is not allowed; the dataset has {len(self)} labels")
        pairs = self.pairs[:count]
        used, inverse = np.unique(pairs, return_inverse=True)
        segments = self.segments.subset(used)
        return PreferenceDataset(
            segments, inverse.reshape(pairs.shape).astype(np.int64), self.labels[:count].copy(), self.env_id, dict(self.env_kwargs),
            self.rater, {**self.info, "labels_used": count, "distortion_shares": distortion_shares(segments, self.rater)},
        )

    def add(self, segments: Segments, rng: np.random.Generator, count: int, pairs: np.ndarray | None = None) -> PreferenceDataset:
        """This dataset plus ``count`` new labels of pairs of the new ``segments`` (the
        iterated mode: segments of the current policy, rated by the same rater): random pairs
        (:func:`sample_pairs`, all the segments joining the pool) or the given ``pairs``
        (count, 2) of indices into ``segments`` (the active queries of
        :func:`~goodhart.experiments.reward_learning.queries.choose_pairs`), of which only the
        segments they compare join the pool, in the order of ``segments``."""
        if pairs is None:
            new_pairs = sample_pairs(len(segments), count, rng)
        else:
            pairs = np.asarray(pairs, dtype=np.int64)
            if pairs.shape != (count, 2) or (pairs.size and not (0 <= pairs.min() and pairs.max() < len(segments))):
                raise ValueError(f"pairs to label: expected ({count}, 2) indices of the {len(segments)} new segments, got shape {pairs.shape}"
                                 + (f" with indices {pairs.min()}..{pairs.max()}" if pairs.size else ""))
            used, inverse = np.unique(pairs, return_inverse=True)
            segments, new_pairs = segments.subset(used), inverse.reshape(pairs.shape).astype(np.int64)
        new_labels = label(segments, new_pairs, self.rater, rng)
        pool = concatenate([self.segments, segments])
        return PreferenceDataset(
            pool, np.concatenate([self.pairs, new_pairs + len(self.segments)]), np.concatenate([self.labels, new_labels]),
            self.env_id, dict(self.env_kwargs), self.rater, dict(self.info),
        )


def make_dataset(
    segments: Segments, pairs: int, rater: RaterConfig, seed: int, env_id: str, env_kwargs: Mapping[str, Any],
    info: Mapping[str, Any] | None = None,
) -> PreferenceDataset:
    """Sample ``pairs`` pairs of the pool (seeded) and have ``rater`` label them; ``info``
    gains ``distortion_shares``, the share of segments each distortion can act on."""
    rng = np.random.default_rng([seed, 11])
    index = sample_pairs(len(segments), pairs, rng)
    info = {**dict(info or {}), "distortion_shares": distortion_shares(segments, rater)}
    return PreferenceDataset(segments, index, label(segments, index, rater, rng), env_id, dict(env_kwargs), rater, info)


def dataset_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(arrays, metadata)`` paths from a stem or either file."""
    return paired_paths(path, ".npz")


def save_dataset(dataset: PreferenceDataset, path: str | os.PathLike[str]) -> Path:
    """Write ``<stem>.npz`` and ``<stem>.json`` (each atomically); returns the stem."""
    arrays_path, meta_path = dataset_paths(path)
    arrays = {**{f"segments.{k}": v for k, v in dataset.segments.arrays().items()}, "pairs": dataset.pairs, "labels": dataset.labels}

    def write_arrays(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    write_atomic(arrays_path, write_arrays)
    meta = {
        "format": FORMAT,
        "arrays": arrays_path.name,
        "arrays_sha256": sha256_file(arrays_path),
        "env": dataset.env_id,
        "env_kwargs": dataset.env_kwargs,
        "rater": dataset.rater.to_dict(),
        "labels": len(dataset),
        "segments": len(dataset.segments),
        "segment_length": dataset.segments.length,
        "sources": dataset.segments.sources,
        **dataset.info,
    }
    write_json(meta_path, meta)
    return arrays_path.with_suffix("")


def load_dataset(path: str | os.PathLike[str]) -> PreferenceDataset:
    """Read a dataset written by :func:`save_dataset`; a DatasetFileError names the file if
    either file is missing, corrupt or of another format."""
    arrays_path, meta = read_tagged_pair(path, ".npz", FORMAT, "arrays_sha256", "preference dataset", DatasetFileError)
    try:
        with np.load(arrays_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        segments = Segments.from_arrays({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("segments.")})
        pairs, labels = arrays["pairs"].astype(np.int64), arrays["labels"].astype(np.float64)
        rater = RaterConfig.from_dict(meta["rater"])
    except Exception as exc:  # numpy and zipfile raise many kinds for damaged files
        raise DatasetFileError(f"{arrays_path}: not a readable preference dataset ({type(exc).__name__}: {exc})") from None
    info = {k: v for k, v in meta.items() if k not in ("format", "arrays", "arrays_sha256", "env", "env_kwargs", "rater", "labels", "segments", "segment_length", "sources")}
    return PreferenceDataset(segments, pairs, labels, meta["env"], dict(meta.get("env_kwargs") or {}), rater, info)
