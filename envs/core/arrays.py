"""Array namespaces for the batched cores: numpy on the CPU, torch tensors anywhere.

The dynamics are written against the Python array API. numpy 2 implements it natively (and
is used directly, so the CPU path costs what plain numpy costs); torch goes through
``array_api_compat``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

BACKENDS = ("numpy", "torch")


def namespace(backend: str) -> ModuleType:
    """The array namespace for ``backend`` ("numpy" or "torch")."""
    if backend == "numpy":
        return np
    if backend == "torch":
        import array_api_compat.torch as xp_torch

        return xp_torch
    raise ValueError(f"backend={backend!r} is not supported; use one of {BACKENDS}")


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view (or copy, for device tensors) of an array from either backend."""
    if isinstance(x, np.ndarray):
        return x
    return x.detach().cpu().numpy()


def windows(x: Any, height: int, width: int) -> Any:
    """A view of every ``height`` x ``width`` window over the last two axes of ``x``:
    shape ``(..., H - height + 1, W - width + 1, height, width)``, no copy. Cropping one
    window per batch row out of this view is a single gather, far cheaper than indexing
    every cell."""
    if isinstance(x, np.ndarray):
        return np.lib.stride_tricks.sliding_window_view(x, (height, width), axis=(-2, -1))
    return x.unfold(-2, height, 1).unfold(-2, width, 1)
