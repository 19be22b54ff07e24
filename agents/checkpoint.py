"""Training checkpoints: everything to continue a PPO run, written atomically, loaded safely.

A checkpoint is one ``torch.save`` file of tensors, numbers and strings only (no pickled
objects), so it loads with ``torch.load(weights_only=True)``: the policy and optimizer state,
the step and update counters, the torch / numpy / Python RNG states and the VecEnv's state
(level generators and the episodes in progress). It is written to a temporary file, flushed
to disk and then renamed, so a process killed while writing never leaves a half-written file
under a checkpoint's name; a checkpoint damaged some other way is skipped on resume for the
next older one (:func:`newest_readable`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO

from goodhart.agents.files import map_leaves, write_atomic
from goodhart.envs.core.vec_env import GridVecEnv

CHECKPOINT_NAME = re.compile(r"^step_(\d{12})\.pt$")
KEYS = ("num_timesteps", "n_updates", "policy", "optimizer", "torch_rng", "numpy_rng", "python_rng", "env_rngs", "env_arrays")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step:012d}.pt"


def to_tensors(value: Any) -> Any:
    """``value`` with every numpy array in it (in dicts and lists) as a tensor: what a
    checkpoint can hold and load safely."""
    return map_leaves(value, lambda v: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v)


def from_tensors(value: Any) -> Any:
    """The inverse of :func:`to_tensors`: tensors back to numpy arrays."""
    return map_leaves(value, lambda v: v.numpy() if isinstance(v, torch.Tensor) else v)


def save_checkpoint(model: PPO, venv: GridVecEnv, folder: Path, keep: int = 3, extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of ``model`` at its current step into ``folder`` (atomically) and
    delete all but the ``keep`` newest. ``extra``: more state to keep under its own keys (a
    level curriculum's buffer), numpy arrays stored as tensors."""
    folder.mkdir(parents=True, exist_ok=True)
    np_state = np.random.get_state()
    env_state = venv.state_dict()
    state = {
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python_rng": list(random.getstate()[1]) + [random.getstate()[0], random.getstate()[2]],
        "env_rngs": env_state["rngs"],
        "env_arrays": to_tensors(env_state["arrays"]),
        **to_tensors(extra or {}),
    }
    path = checkpoint_path(folder, model.num_timesteps)
    write_atomic(path, lambda tmp: torch.save(state, tmp))
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    for leftover in folder.glob(".step_*.tmp"):  # from writes killed midway (one writer per run)
        leftover.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if CHECKPOINT_NAME.match(p.name))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The contents of a checkpoint (tensors and plain values only), or ValueError if the file
    is not a readable checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for corrupt files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}: {reason})") from None
    if not isinstance(state, dict) or any(key not in state for key in KEYS):
        raise ValueError(f"{path}: not a goodhart training checkpoint (its keys are not {', '.join(KEYS)})")
    return state


def newest_readable(folder: Path, warn: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in ``folder`` that reads back, and its contents; each newer one
    that does not is reported through ``warn`` (one line naming the file) and skipped. None if
    ``folder`` holds no checkpoint; ValueError if it holds some and none is readable."""
    paths = list_checkpoints(folder)
    for path in reversed(paths):
        try:
            return path, read_checkpoint(path)
        except ValueError as err:
            warn(f"{err}; skipped")
    if paths:
        raise ValueError(f"{folder}: none of its {len(paths)} checkpoints is readable; delete them to train the run again from step 0")
    return None


def restore_checkpoint(model: PPO, venv: GridVecEnv, state: dict[str, Any]) -> None:
    """Put ``model`` and ``venv`` back where the checkpoint ``state`` left them."""
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = state["num_timesteps"]
    model._n_updates = state["n_updates"]
    torch.set_rng_state(state["torch_rng"])
    name, keys, *rest = state["numpy_rng"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    *internal, version, gauss = state["python_rng"]
    random.setstate((version, tuple(internal), gauss))
    arrays = {name: t.numpy() for name, t in state["env_arrays"].items()}
    model._last_obs = venv.load_state_dict({"rngs": state["env_rngs"], "arrays": arrays})
    model._last_episode_starts = np.zeros(venv.num_envs, dtype=bool)

