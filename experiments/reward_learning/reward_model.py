"""Reward models learned from preferences: the grid CNN, a reward per action, Bradley-Terry.

A :class:`RewardNet` reads an observation with the project's :class:`GridCNN` and outputs one
reward per action; ``r(s, a)`` is the output of the action taken. A segment's predicted return
is the sum over its steps, and the probability that the rater preferred segment A to B is
``sigmoid(R(A) - R(B))`` (Bradley-Terry, as in Christiano et al., 2017); the nets are fitted by
the cross-entropy of the labels under it. An ensemble of ``K`` nets (different initialisations
and batch orders, and with ``bootstrap`` each its own resample of the labelled pairs) gives one
reward per member; an objective (:data:`OBJECTIVES`) makes one reward of them: their mean, the
worst member, the mean less their spread (Coste et al., 2024), or the first member alone.

After fitting, each net's rewards are normalised to zero mean and unit standard deviation over
the steps of the training segments, so that PPO sees a reward of a known scale whatever the
rater's units.

Files (:func:`save_reward_model`): ``<stem>.safetensors`` (tensors only) and ``<stem>.json``
(format tag, env id and knobs, observation shape, network, ensemble size, normalisation, the
rater's options, the fit's settings and held-out accuracy, sha256 of the weights).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from goodhart.agents.files import write_atomic, write_json
from goodhart.agents.model_io import WEIGHTS_SUFFIX, model_paths, read_tagged_pair, sha256_file
from goodhart.agents.networks import GridCNN
from goodhart.experiments.reward_learning.dataset import PreferenceDataset
from goodhart.experiments.reward_learning.raters import true_returns
from goodhart.experiments.reward_learning.segments import Segments
from goodhart.envs import core_class

FORMAT = "goodhart-reward-model/1"
DEFAULT_NETWORK: dict[str, Any] = {"channels": [16, 32], "strides": [1, 2], "features_dim": 64, "crop": None}


class RewardModelError(ValueError):
    """A reward model file is missing, corrupt, or does not fit the env it is used on."""


class RewardNet(nn.Module):
    """``GridCNN`` features, then a linear layer to one reward per action. With ``crop`` = k
    the net reads only the (2k+1) x (2k+1) cells at the centre of the observation: around the
    agent, in an agent-centred view (a smaller model that sees what is near the agent)."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, channels: list[int], strides: list[int], features_dim: int,
                 crop: int | None = None) -> None:
        super().__init__()
        c, h, w = obs_shape
        self.window: tuple[slice, slice] | None = None
        if crop is not None:
            if not 0 <= crop or 2 * crop + 1 > min(h, w):
                raise ValueError(f"crop={crop!r} is not allowed; expected an integer in [0, {(min(h, w) - 1) // 2}] for observations of shape {tuple(obs_shape)}")
            cy, cx = (h - 1) // 2, (w - 1) // 2
            self.window = (slice(cy - crop, cy + crop + 1), slice(cx - crop, cx + crop + 1))
            h = w = 2 * crop + 1
        space = spaces.Box(0, 1, shape=(c, h, w), dtype=np.uint8)
        self.features = GridCNN(space, channels=channels, strides=strides, features_dim=features_dim)
        self.head = nn.Linear(features_dim, n_actions)

    def crop(self, obs: Any) -> Any:
        """The part of observations ``(..., C, H, W)`` the net reads."""
        return obs if self.window is None else obs[..., self.window[0], self.window[1]]

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, cropped: bool = False) -> torch.Tensor:
        """(B,) rewards of ``actions`` (B,) in ``obs`` (B, C, H, W) (already :meth:`crop`-ped
        if ``cropped``)."""
        if not cropped:
            obs = self.crop(obs)
        return self.head(self.features(obs)).gather(1, actions.long().unsqueeze(1)).squeeze(1)


def build_net(obs_shape: tuple[int, ...], n_actions: int, network: Mapping[str, Any]) -> RewardNet:
    """A RewardNet from a network description (the keys of ``DEFAULT_NETWORK``)."""
    network = {**DEFAULT_NETWORK, **network}
    crop = network["crop"]
    return RewardNet(tuple(obs_shape), n_actions, list(network["channels"]), list(network["strides"]), int(network["features_dim"]),
                     None if crop is None else int(crop))


OBJECTIVES = {
    "mean": "the members' mean reward",
    "worst": "the lowest member's reward, step by step (worst-case optimisation, Coste et al. 2024)",
    "uncertainty": "the members' mean less uncertainty_coef times their standard deviation, step by step (uncertainty-weighted "
                   "optimisation; Coste et al. subtract the variance, the deviation keeps the coefficient in reward units)",
    "single": "the first member alone: the single reward model the ensemble objectives are compared with",
}


def combine(members: np.ndarray, objective: str = "mean", uncertainty_coef: float = 1.0) -> np.ndarray:
    """(B,) one reward per step from ``members`` (K, B), the members' normalised rewards,
    by ``objective`` (a key of :data:`OBJECTIVES`)."""
    if objective == "mean":
        return members.mean(axis=0)
    if objective == "worst":
        return members.min(axis=0)
    if objective == "uncertainty":
        return members.mean(axis=0) - uncertainty_coef * members.std(axis=0)
    if objective == "single":
        return members[0]
    raise ValueError(f"reward model objective {objective!r} is not one of {list(OBJECTIVES)}")


@dataclass
class RewardModel:
    """An ensemble of fitted nets with their normalisation, and where they came from.

    Attributes:
        nets: the ensemble's nets (eval mode, CPU).
        mean, std: (K,) per net: its raw rewards' mean and standard deviation on the training steps.
        env_id, env_kwargs: the env whose observations it reads.
        obs_shape: the observation shape it takes.
        meta: network, rater options, fit settings and results.
        objective, uncertainty_coef: how :meth:`rewards` makes one reward of the members'
            (:func:`combine`); a choice of the run that uses the model, not saved with it.
    """

    nets: list[RewardNet]
    mean: np.ndarray
    std: np.ndarray
    env_id: str
    env_kwargs: dict[str, Any]
    obs_shape: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    objective: str = "mean"
    uncertainty_coef: float = 1.0

    def with_objective(self, objective: str, uncertainty_coef: float = 1.0) -> RewardModel:
        """The same nets, combined by ``objective`` (see :data:`OBJECTIVES`)."""
        if objective not in OBJECTIVES:
            raise ValueError(f"reward model objective {objective!r} is not one of {list(OBJECTIVES)}")
        if objective in ("worst", "uncertainty") and len(self.nets) < 2:
            raise ValueError(f"reward model objective {objective!r} needs an ensemble; this model has one net (fit it with ensemble >= 2)")
        return dataclasses.replace(self, objective=objective, uncertainty_coef=float(uncertainty_coef))

    def member_rewards(self, obs: np.ndarray, actions: np.ndarray, batch: int = 4096) -> np.ndarray:
        """(K, B) normalised rewards of every net for ``obs`` (B, *obs_shape) and ``actions`` (B,)."""
        out = []
        with torch.no_grad():
            for start in range(0, len(actions), batch):
                o = torch.as_tensor(np.asarray(obs[start : start + batch]))
                a = torch.as_tensor(np.asarray(actions[start : start + batch]))
                out.append(np.stack([net(o, a).numpy() for net in self.nets]))
        raw = np.concatenate(out, axis=1) if out else np.zeros((len(self.nets), 0))
        return (raw - self.mean[:, None]) / self.std[:, None]

    def rewards(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(B,) float32: the members' normalised rewards combined by the model's objective."""
        return combine(self.member_rewards(obs, actions), self.objective, self.uncertainty_coef).astype(np.float32)

    def check_env(self, env_id: str, obs_shape: tuple[int, ...], source: str = "reward model") -> None:
        """Refuse an env or observation shape the model was not fitted on."""
        if env_id != self.env_id:
            raise RewardModelError(f"{source}: fitted on {self.env_id}, not {env_id}")
        if tuple(obs_shape) != tuple(self.obs_shape):
            raise RewardModelError(
                f"{source}: takes observations of shape {tuple(self.obs_shape)}, the env gives {tuple(obs_shape)} "
                f"(fitted with env_kwargs {self.env_kwargs})"
            )


# --------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class FitConfig:
    """Settings of a Bradley-Terry fit. ``epochs`` passes over the training pairs; the
    ensemble member with each net's lowest held-out loss is kept (early stopping). With
    ``bootstrap`` each member trains on its own resample (with replacement) of the training
    pairs, so that members differ in data as well as in seed (Coste et al., 2024)."""

    network: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_NETWORK))
    ensemble: int = 1
    bootstrap: bool = False
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("ensemble", 1), ("epochs", 1), ("batch_size", 1)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; expected an integer >= {low}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction={self.val_fraction!r} is not allowed; expected a number in [0, 1)")
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")
        unknown = set(self.network) - set(DEFAULT_NETWORK)
        if unknown:
            raise ValueError(f"unknown reward network option {sorted(unknown)[0]!r}; allowed: {list(DEFAULT_NETWORK)}")

    def held_out(self, labels: int) -> int:
        """How many of ``labels`` labelled pairs are held out; a ValueError if none would be
        left to train on."""
        held = int(round(self.val_fraction * labels))
        if labels - held < 1:
            raise ValueError(f"{labels} label(s) leave no training pairs with val_fraction={self.val_fraction}")
        return held


class _Inputs:
    """The segments' observations as the nets read them: cropped once up front when the net
    crops (small enough to hold unpacked), else unpacked batch by batch."""

    def __init__(self, dataset: PreferenceDataset, net: RewardNet) -> None:
        self.segments = dataset.segments
        self.cache = None
        if net.window is not None:
            chunks = [net.crop(self.segments.observations(np.arange(s, min(s + 512, len(self.segments))))) for s in range(0, len(self.segments), 512)]
            self.cache = np.ascontiguousarray(np.concatenate(chunks))

    def returns(self, net: RewardNet, index: np.ndarray) -> torch.Tensor:
        """(len(index),) predicted returns of segments ``index``."""
        obs = torch.as_tensor(self.cache[index] if self.cache is not None else self.segments.observations(index))
        k, length = obs.shape[:2]
        actions = torch.as_tensor(self.segments.actions[index]).reshape(-1)
        mask = torch.as_tensor(self.segments.mask[index], dtype=torch.float32)
        rewards = net(obs.reshape(k * length, *obs.shape[2:]), actions, cropped=self.cache is not None).reshape(k, length)
        return (rewards * mask).sum(dim=1)

    def logits(self, net: RewardNet, pairs: np.ndarray) -> torch.Tensor:
        returns = self.returns(net, pairs.reshape(-1)).reshape(-1, 2)
        return returns[:, 0] - returns[:, 1]


def _loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    loss = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
    decided = labels != 0.5
    correct = ((logits[decided] > 0).float() == labels[decided]).sum().item()
    return loss, correct, int(decided.sum().item())


def _evaluate(net: RewardNet, inputs: _Inputs, dataset: PreferenceDataset, index: np.ndarray, batch: int) -> tuple[float, float]:
    """Mean loss and accuracy (on the decided labels) of pairs ``index``."""
    total, correct, decided = 0.0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(index), batch):
            chunk = index[start : start + batch]
            logits = inputs.logits(net, dataset.pairs[chunk])
            loss, c, d = _loss_and_accuracy(logits, torch.as_tensor(dataset.labels[chunk], dtype=torch.float32))
            total, correct, decided = total + loss.item(), correct + c, decided + d
    return total / max(len(index), 1), correct / decided if decided else math.nan


def check_fit(dataset: PreferenceDataset, config: FitConfig) -> None:
    """Refuse a fit that cannot run, before any work (and any progress bar): observations a
    reward net cannot read, too few labels to hold ``val_fraction`` out and still train, or a
    network that does not fit the observations (a crop larger than the grid)."""
    segments = dataset.segments
    if len(segments.obs_shape) != 3:
        raise ValueError(f"reward models take symbolic (C, H, W) observations; these are {segments.obs_shape}")
    config.held_out(len(dataset))
    with torch.random.fork_rng():  # the global RNG left as it was
        build_net(segments.obs_shape, len(core_class(dataset.env_id).ACTIONS), {**DEFAULT_NETWORK, **dict(config.network)})


def fit_reward_model(
    dataset: PreferenceDataset,
    config: FitConfig = FitConfig(),
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    initial: RewardModel | None = None,
) -> RewardModel:
    """Fit an ensemble on ``dataset``'s labels; a share ``val_fraction`` of the pairs is held
    out. ``progress(done, total, stats)`` is called after every epoch of every net. With
    ``initial`` (a model of the same network and ensemble size) training continues from its
    weights (the iterated mode's refits). The torch global RNG is left as it was."""
    check_fit(dataset, config)
    segments = dataset.segments
    rng = np.random.default_rng([config.seed, 13])
    order = rng.permutation(len(dataset))
    held = config.held_out(len(dataset))
    val, train = order[:held], order[held:]
    network = {**DEFAULT_NETWORK, **dict(config.network)}
    n_actions = len(core_class(dataset.env_id).ACTIONS)
    nets, history = [], []
    inputs: _Inputs
    for member in range(config.ensemble):
        with torch.random.fork_rng():
            torch.manual_seed(config.seed * 1009 + member)
            net = build_net(segments.obs_shape, n_actions, network)
        if initial is not None:
            net.load_state_dict(initial.nets[member].state_dict())
        inputs = inputs if member else _Inputs(dataset, net)
        optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        best = (math.inf, None, -1)
        sample = train[np.random.default_rng([config.seed, 19, member]).integers(0, len(train), len(train))] if config.bootstrap else train
        for epoch in range(config.epochs):
            net.train()
            shuffled = sample[rng.permutation(len(sample))]
            for start in range(0, len(shuffled), config.batch_size):
                chunk = shuffled[start : start + config.batch_size]
                logits = inputs.logits(net, dataset.pairs[chunk])
                loss, _, _ = _loss_and_accuracy(logits, torch.as_tensor(dataset.labels[chunk], dtype=torch.float32))
                optimizer.zero_grad()
                (loss / len(chunk)).backward()
                optimizer.step()
            net.eval()
            val_loss, val_acc = _evaluate(net, inputs, dataset, val, 256) if len(val) else (math.nan, math.nan)
            criterion = val_loss if len(val) else -epoch
            if criterion < best[0]:
                best = (criterion, {k: v.clone() for k, v in net.state_dict().items()}, epoch)
            if progress is not None:
                progress(member * config.epochs + epoch + 1, config.ensemble * config.epochs, {"val_loss": val_loss, "val_acc": val_acc})
        net.load_state_dict(best[1])
        net.eval()
        history.append({"best_epoch": best[2] + 1})
        nets.append(net)
    mean, std = _normalisation(nets, dataset)
    model = RewardModel(nets, mean, std, dataset.env_id, dict(dataset.env_kwargs), tuple(segments.obs_shape))
    model.meta = {
        "network": network,
        "n_actions": n_actions,
        "rater": dataset.rater.to_dict(),
        "fit": {
            "ensemble": config.ensemble, "bootstrap": config.bootstrap, "epochs": config.epochs, "batch_size": config.batch_size,
            "learning_rate": config.learning_rate, "weight_decay": config.weight_decay,
            "val_fraction": config.val_fraction, "seed": config.seed, "best_epochs": [h["best_epoch"] for h in history],
        },
        "data": {"labels": len(dataset), "train_pairs": len(train), "val_pairs": len(val), "segments": len(segments),
                 "segment_length": segments.length, "sources": segments.sources, **dataset.info},
        "accuracy": accuracy_report(model, dataset, train, val),
    }
    return model


def _normalisation(nets: list[RewardNet], dataset: PreferenceDataset) -> tuple[np.ndarray, np.ndarray]:
    segments = dataset.segments
    raw = RewardModel(nets, np.zeros(len(nets)), np.ones(len(nets)), dataset.env_id, {}, segments.obs_shape)
    values = member_step_rewards(raw, segments, np.flatnonzero(segments.mask.reshape(-1)))
    std = values.std(axis=1)
    return values.mean(axis=1), np.where(std > 1e-8, std, 1.0)


def member_step_rewards(model: RewardModel, segments: Segments, rows: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(K, len(rows)) every member's normalised reward of the flat step indices ``rows`` of a
    segment pool, read in batches of ``batch`` steps."""
    def steps(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seg, t = np.divmod(chunk, segments.length)
        return segments.observations((seg, t)), segments.actions[seg, t]

    parts = [model.member_rewards(*steps(rows[s : s + batch])) for s in range(0, len(rows), batch)]
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(model.nets), 0))


def segment_returns(model: RewardModel, segments: Segments) -> np.ndarray:
    """(M,) the model's return (its objective's normalised rewards, summed) of every segment."""
    members = member_step_rewards(model, segments, np.arange(segments.mask.size))
    rewards = combine(members, model.objective, model.uncertainty_coef).astype(np.float32)
    return np.sum(np.where(segments.mask, rewards.reshape(segments.mask.shape), 0.0), axis=1)


def accuracy_report(model: RewardModel, dataset: PreferenceDataset, train: np.ndarray, val: np.ndarray) -> dict[str, float]:
    """Pair accuracy of the ensemble against the rater's labels (train and held out) and
    against the true returns' order (held out), on decided pairs."""
    returns = segment_returns(model, dataset.segments)
    truth = true_returns(dataset.segments)

    def against(labels: np.ndarray, pairs: np.ndarray) -> float:
        predicted = returns[pairs[:, 0]] - returns[pairs[:, 1]]
        decided = labels != 0.5
        return float(np.mean((predicted[decided] > 0) == (labels[decided] == 1.0))) if decided.any() else math.nan

    def true_labels(pairs: np.ndarray) -> np.ndarray:
        diff = truth[pairs[:, 0]] - truth[pairs[:, 1]]
        return np.where(np.isclose(diff, 0), 0.5, (diff > 0).astype(float))

    val_pairs, train_pairs = dataset.pairs[val], dataset.pairs[train]
    return {
        "train": against(dataset.labels[train], train_pairs),
        "held_out": against(dataset.labels[val], val_pairs) if len(val) else math.nan,
        "held_out_vs_true": against(true_labels(val_pairs), val_pairs) if len(val) else math.nan,
    }


# ---------------------------------------------------------------------------- files
def save_reward_model(model: RewardModel, path: str | os.PathLike[str]) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` (atomically); returns the stem."""
    from safetensors.torch import save_file

    weights_path, meta_path = model_paths(path)
    tensors = {f"{k}.{name}": t.detach().contiguous().clone() for k, net in enumerate(model.nets) for name, t in net.state_dict().items()}
    tensors["normalisation.mean"] = torch.as_tensor(model.mean, dtype=torch.float64)
    tensors["normalisation.std"] = torch.as_tensor(model.std, dtype=torch.float64)
    write_atomic(weights_path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    meta = {
        "format": FORMAT,
        "weights": weights_path.name,
        "weights_sha256": sha256_file(weights_path),
        "env": model.env_id,
        "env_kwargs": model.env_kwargs,
        "obs_shape": list(model.obs_shape),
        "ensemble": len(model.nets),
        **model.meta,
    }
    write_json(meta_path, meta)
    return weights_path.with_suffix("")


def load_reward_model(path: str | os.PathLike[str]) -> RewardModel:
    """Rebuild a reward model saved by :func:`save_reward_model`. Raises RewardModelError,
    naming the file, if a file is missing, corrupt, of another format or does not fit."""
    from safetensors.torch import load_file

    weights_path, meta = read_tagged_pair(path, WEIGHTS_SUFFIX, FORMAT, "weights_sha256", "reward model", RewardModelError)
    meta_path = model_paths(path)[1]
    try:
        tensors = load_file(str(weights_path), device="cpu")
        network = meta["network"]
        nets = []
        for k in range(int(meta["ensemble"])):
            net = build_net(tuple(meta["obs_shape"]), int(meta["n_actions"]), network)
            prefix = f"{k}."
            net.load_state_dict({name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}, strict=True)
            net.eval()
            nets.append(net)
        mean, std = tensors["normalisation.mean"].numpy(), tensors["normalisation.std"].numpy()
    except Exception as exc:  # safetensors, KeyError, shape mismatches
        raise RewardModelError(f"{weights_path}: the weights do not fit the reward model described in {meta_path.name} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    extra = {k: v for k, v in meta.items() if k not in ("format", "weights", "weights_sha256", "env", "env_kwargs", "obs_shape", "ensemble")}
    return RewardModel(nets, mean, std, meta["env"], dict(meta.get("env_kwargs") or {}), tuple(meta["obs_shape"]), extra)
