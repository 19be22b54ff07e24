"""Activation steering: a vector added to one layer of a trained policy while it plays.

After Turner et al. (2023), *Understanding and Controlling a Maze-Solving Policy Network*
(arXiv 2310.08043), who subtracted a "cheese vector" from one layer of a maze policy and cut
its probability of heading for the cheese at the decision square from 0.81 to 0.03. Here a
**steering vector** is the mean, over a set of levels, of one layer's activations on a level
minus those on its counterfactual: the same level changed as a *contrast* of the env says
(``GridCore.CONTRASTS``: ColorMaze's ``no_cue`` removes the cue, ``cue_on_goal`` moves it onto
the goal), both read at the level's start. Nothing here names an env: the counterfactual
observations come from the env's hook (``contrast_observation``).

:class:`SteeredPolicy` adds ``coef`` times a vector to that layer's output at every step (a
torch forward hook, on only while it computes), and is a :class:`~goodhart.agents.policies.Policy`
like any other, so the evaluator, the demos, the recordings and the vector fields play it
unchanged. With ``coef = -1`` at the level the vector came from, the layer's activations at
the start are exactly the counterfactual's. A vector is saved as ``<stem>.safetensors`` (the
tensor) + ``<stem>.json`` (the layer, the env, the model it came from, the contrast and the
levels), a format that cannot run code when loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from goodhart.agents.files import write_atomic, write_json
from goodhart.agents.model_io import (
    LoadedModel,
    paired_paths,
    read_tagged_pair,
    sha256_file,
)
from goodhart.agents.policies import ModelPolicy
from goodhart.envs import make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.rollout import reset_levels
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

FORMAT = "goodhart-steering/1"
SUFFIX = ".safetensors"
TENSOR = "vector"


class SteeringError(ValueError):
    """A steering vector that cannot be made, read or applied; the message says why."""


# ------------------------------------------------------------------ layers
def layer_names(policy: ActorCriticPolicy) -> list[str]:
    """The policy's layers by name (``features_extractor.cnn.3``...): every module but the
    whole policy. Only those on the way from the observation to the actions can be steered."""
    return [name for name, _ in policy.named_modules() if name]


def layer_module(policy: ActorCriticPolicy, layer: str) -> nn.Module:
    modules = dict(policy.named_modules())
    if not layer or layer not in modules:
        raise SteeringError(f"layer {layer!r} is not a layer of the policy; its layers: {', '.join(layer_names(policy))}")
    return modules[layer]


def default_layer(policy: ActorCriticPolicy) -> str:
    """The deepest layer that is still a map of the grid: the last activation of the grid
    CNN's convolutions (where the maze's places still have their own activations, as in
    Turner et al.'s residual block); the features extractor's output if it has no such."""
    names = [name for name, module in policy.named_modules() if name.startswith("features_extractor.cnn.") and isinstance(module, nn.ReLU)]
    return names[-1] if names else "features_extractor"


@contextmanager
def added(policy: ActorCriticPolicy, layer: str, addition: torch.Tensor | None) -> Iterator[None]:
    """While inside, ``addition`` (broadcast against ``(batch, *shape)``) is added to the
    output of ``layer``; ``None`` adds nothing."""
    if addition is None:
        yield
        return
    handle = layer_module(policy, layer).register_forward_hook(lambda _module, _inputs, output: output + addition)
    try:
        yield
    finally:
        handle.remove()


def _action_probs(policy: ActorCriticPolicy, obs: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        tensor, _ = policy.obs_to_tensor(obs)
        return policy.get_distribution(tensor).distribution.probs


def activations(policy: ActorCriticPolicy, layer: str, obs: np.ndarray) -> torch.Tensor:
    """``layer``'s output ``(n, *shape)`` on the observations ``obs`` as the env gives them
    (computed on the way to the action distribution)."""
    captured: list[torch.Tensor] = []
    handle = layer_module(policy, layer).register_forward_hook(lambda _m, _i, output: captured.append(output.detach().clone()))
    try:
        _action_probs(policy, obs)
    finally:
        handle.remove()
    if not captured:
        raise SteeringError(f"layer {layer!r} is not on the way from the observation to the actions (a value-only layer?); "
                            f"steer one of: {', '.join(layer_names(policy))}")
    return captured[0]


def layer_shape(policy: ActorCriticPolicy, layer: str) -> tuple[int, ...]:
    """The shape of ``layer``'s output for one observation."""
    sample = np.zeros((1, *policy.observation_space.shape), dtype=policy.observation_space.dtype)
    return tuple(activations(policy, layer, sample).shape[1:])


# ------------------------------------------------------------------ vectors
def env_knobs(env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A model's env knobs without the distribution it was trained on: the env it plays on
    any distribution."""
    return {k: v for k, v in env_kwargs.items() if k != "distribution"}


def contrast_differences(
    loaded: LoadedModel, layer: str, contrast: str, distribution: str, level_seeds: Sequence[int]
) -> torch.Tensor:
    """``(n, *shape)``: for the level of each seed (``gym.make(..., distribution=...)
    .reset(seed=s)``'s, with the model's env knobs), ``layer``'s activations at its start minus
    those on the same state changed as ``contrast`` says: each level's own steering vector."""
    if not level_seeds:
        raise SteeringError("a steering vector needs at least one level")
    venv = make_vec(loaded.env_id, len(level_seeds), distribution=distribution, **env_knobs(loaded.config.get("env_kwargs", {})))
    try:
        reset_levels(venv.core, list(level_seeds))
        plain = np.array(to_numpy(venv.core.observe()), copy=True)
        changed = np.array(to_numpy(venv.core.contrast_observation(contrast)), copy=True)
    except ValueError as err:
        raise SteeringError(f"{loaded.env_id}: {err}") from None
    finally:
        venv.close()
    return activations(loaded.policy, layer, plain) - activations(loaded.policy, layer, changed)


def weights_sha256(loaded: LoadedModel) -> str:
    """The identity of a model: its weights file's sha256, as its metadata records it."""
    return str(loaded.metadata.get("weights_sha256", ""))


@dataclass
class SteeringVector:
    """A steering vector and where it came from: ``layer`` of the model whose weights have
    sha256 ``model_sha256`` (``model``: the path or name it was given as), trained on
    ``env_id`` with ``env_kwargs``; the mean of ``contrast``'s differences over the levels of
    ``level_seeds`` of ``distribution``."""

    vector: torch.Tensor
    layer: str
    env_id: str
    env_kwargs: dict[str, Any]
    model: str
    model_sha256: str
    contrast: str
    distribution: str
    level_seeds: list[int]

    def describe(self) -> str:
        """One line: which contrast, layer, model and levels."""
        seeds = self.level_seeds
        levels = f"level seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} levels (seeds {seeds[0]}...{seeds[-1]})"
        return (f"contrast {self.contrast!r} at layer {self.layer} of {self.model}, on {levels} of {self.distribution!r} "
                f"(norm {float(self.vector.norm()):.3g})")


def compute_vector(
    loaded: LoadedModel, *, layer: str, contrast: str, distribution: str, level_seeds: Sequence[int], model: str
) -> SteeringVector:
    """The steering vector of ``loaded`` (given as ``model``, for the record): the mean of
    :func:`contrast_differences` over the levels of ``level_seeds``."""
    differences = contrast_differences(loaded, layer, contrast, distribution, level_seeds)
    knobs = env_knobs(loaded.config.get("env_kwargs", {}))
    return SteeringVector(differences.mean(dim=0), layer, loaded.env_id, knobs, model, weights_sha256(loaded), contrast, distribution,
                          [int(s) for s in level_seeds])


def save_vector(steering: SteeringVector, path: str | os.PathLike[str]) -> Path:
    """Write ``<stem>.safetensors`` (the tensor) and ``<stem>.json`` (what it is, with the
    tensor file's sha256); returns the stem."""
    from safetensors.torch import save_file

    data_path, meta_path = paired_paths(path, SUFFIX)
    tensor = steering.vector.detach().to("cpu", torch.float32).contiguous()
    write_atomic(data_path, lambda tmp: save_file({TENSOR: tensor}, str(tmp)))
    write_json(meta_path, {
        "format": FORMAT,
        "vector": data_path.name,
        "vector_sha256": sha256_file(data_path),
        "shape": list(tensor.shape),
        "layer": steering.layer,
        "env": steering.env_id,
        "env_kwargs": steering.env_kwargs,
        "model": steering.model,
        "model_sha256": steering.model_sha256,
        "contrast": steering.contrast,
        "distribution": steering.distribution,
        "level_seeds": steering.level_seeds,
        "norm": float(tensor.norm()),
    })
    return Path(os.fspath(data_path)[: -len(SUFFIX)])


def load_vector(path: str | os.PathLike[str]) -> SteeringVector:
    """A vector written by :func:`save_vector` (its stem, ``.safetensors`` or ``.json``);
    :class:`SteeringError` with one line naming the file if it is missing, of another kind,
    corrupt or incomplete."""
    from safetensors.torch import load_file

    data_path, meta = read_tagged_pair(path, SUFFIX, FORMAT, "vector_sha256", "steering vector", SteeringError)
    keys = ("layer", "env", "env_kwargs", "model", "model_sha256", "contrast", "distribution", "level_seeds")
    missing = [key for key in keys if key not in meta]
    if missing:
        raise SteeringError(f"{paired_paths(path, SUFFIX)[1]}: the field(s) {missing} are missing")
    try:
        tensor = load_file(str(data_path))[TENSOR]
    except Exception as exc:  # safetensors raises its own error type
        raise SteeringError(f"{data_path}: not a steering vector's safetensors file ({type(exc).__name__}: {exc})") from None
    return SteeringVector(tensor, meta["layer"], meta["env"], dict(meta["env_kwargs"]), meta["model"], meta["model_sha256"],
                          meta["contrast"], meta["distribution"], [int(s) for s in meta["level_seeds"]])


# ------------------------------------------------------------------ the policy
class SteeredPolicy(ModelPolicy):
    """A trained policy with ``coef`` x ``vector`` added to ``layer``'s output at every
    forward pass. ``vector`` has the layer's shape (the same for every copy) or one more
    leading axis, one vector per copy of the env it plays (each level's own vector); ``coef``
    < 0 subtracts it. A zero vector or ``coef = 0`` plays exactly the unsteered policy."""

    def __init__(self, loaded: LoadedModel, layer: str, vector: torch.Tensor, coef: float, deterministic: bool = False,
                 name: str = "steered") -> None:
        super().__init__(loaded, deterministic=deterministic, name=name)
        shape = layer_shape(self.policy, layer)
        vector = torch.as_tensor(vector, dtype=torch.float32)
        if tuple(vector.shape) != shape and tuple(vector.shape[1:]) != shape:
            raise SteeringError(f"a vector of shape {tuple(vector.shape)} does not fit layer {layer!r}, whose output is {shape} "
                                "per observation (a vector of that shape, or one per copy)")
        self.layer, self.coef = layer, float(coef)
        self.per_copy = vector.dim() == len(shape) + 1
        self.addition = self.coef * vector

    def _probs(self, obs: np.ndarray) -> torch.Tensor:
        if self.per_copy and len(obs) != len(self.addition):
            raise SteeringError(f"{len(self.addition)} vectors, one per copy, for {len(obs)} observations")
        with added(self.policy, self.layer, self.addition):
            return super()._probs(obs)


def steered(policy: ModelPolicy, steering: SteeringVector, coef: float, name: str | None = None) -> SteeredPolicy:
    """``policy`` steered by ``steering`` times ``coef``; refused (one line) if the vector
    comes from another env or another model: activations mean nothing across networks."""
    loaded = policy.loaded
    if steering.env_id != loaded.env_id:
        raise SteeringError(f"the steering vector is of {steering.env_id}, the policy {policy.name!r} of {loaded.env_id}")
    if steering.model_sha256 != weights_sha256(loaded):
        raise SteeringError(f"the steering vector was computed from {steering.model} (weights sha256 {steering.model_sha256[:12]}...), "
                            f"not from {policy.name!r} ({weights_sha256(loaded)[:12]}...): a network's activations mean nothing to another")
    return SteeredPolicy(loaded, steering.layer, steering.vector, coef, deterministic=policy.deterministic,
                         name=name or steered_name(policy.name, coef))


def steered_name(name: str, coef: float) -> str:
    """``ppo/seed0, steered x-1``: how a steered policy is labelled."""
    return f"{name}, steered x{coef:g}"


def match_vectors(policies: Mapping[Any, ModelPolicy], vectors: Sequence[SteeringVector]) -> dict[Any, SteeringVector]:
    """The vector of each policy (by key) among ``vectors``, matched by the model each came
    from; policies without one are left out. Refused if a vector fits none of them."""
    found: dict[Any, SteeringVector] = {}
    for steering in vectors:
        keys = [key for key, policy in policies.items() if weights_sha256(policy.loaded) == steering.model_sha256]
        if not keys:
            names = ", ".join(policy.name for policy in policies.values()) or "none"
            raise SteeringError(f"the steering vector of {steering.model} fits none of the policies played ({names}): "
                                "a vector steers the model it was computed from")
        found.update({key: steering for key in keys})
    return found


__all__ = [
    "FORMAT",
    "SteeredPolicy",
    "SteeringError",
    "SteeringVector",
    "activations",
    "added",
    "compute_vector",
    "contrast_differences",
    "default_layer",
    "env_knobs",
    "layer_names",
    "layer_shape",
    "load_vector",
    "match_vectors",
    "save_vector",
    "steered",
    "steered_name",
]
