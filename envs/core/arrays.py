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


def paste(dest: Any, src: Any, top: Any, left: Any) -> None:
    """Write each ``src[k]`` (``(n, C, h, w)``) into ``dest[k, :, top[k]:top[k]+h,
    left[k]:left[k]+w]`` in place: one scatter over the ``n * C * h * w`` source cells. numpy
    writes through a view of every window of ``dest`` (each destination cell is written once,
    so the overlap of the windows is harmless); torch, which refuses writes through
    overlapping views, indexes every cell."""
    n, _, h, w = src.shape
    if isinstance(dest, np.ndarray):
        view = np.lib.stride_tricks.sliding_window_view(dest, (h, w), axis=(-2, -1), writeable=True)
        view[np.arange(n), :, top, left] = src
        return
    import torch

    cells = torch.arange(h, device=dest.device)[None, :, None], torch.arange(w, device=dest.device)[None, None, :]
    rows = top[:, None, None] + cells[0]
    cols = left[:, None, None] + cells[1]
    dest.permute(0, 2, 3, 1)[torch.arange(n, device=dest.device)[:, None, None], rows, cols] = src.permute(0, 2, 3, 1)
