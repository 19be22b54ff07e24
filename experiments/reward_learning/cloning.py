"""Behaviour cloning: a policy fitted to demonstrations, the supervised step before RLHF.

In RLHF the policy that RL optimizes against a reward model starts from a model fine-tuned on
demonstrations of the intended behaviour (SFT), and both the KL penalty and Gao et al.'s
d = sqrt(KL(pi || pi_init)) measure the distance from it. Here the demonstrations are
episodes of reference policies (an oracle with a share of random actions: imperfect
demonstrators, see :class:`~goodhart.agents.policies.EpsilonPolicy`), and the
policy is a run's PPO network, fitted by maximum likelihood of the demonstrated actions. Its
value head (and the value CNN, if the network has its own) is left as initialised: PPO learns
it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from goodhart.experiments.reward_learning.segments import Segments


@dataclass(frozen=True)
class CloneConfig:
    """How a policy is fitted to demonstrations."""

    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    val_fraction: float = 0.1  # share of the demonstrated episodes held out
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be at least 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} must be positive")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction={self.val_fraction!r} is not allowed; expected a number in [0, 1)")

    def held_out(self, segments: int) -> int:
        """How many of ``segments`` demonstrated segments (episodes) are held out; a ValueError
        if none would be left to fit on (checked before any demonstration is played)."""
        held = int(round(self.val_fraction * segments))
        if segments - held < 1:
            raise ValueError(f"{segments} demonstrated segment(s) leave none to fit on after holding out {held} (val_fraction={self.val_fraction})")
        return held

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _steps(demos: Segments, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segment, t) indices of the real steps of ``segments``."""
    seg, t = np.nonzero(demos.mask[segments])
    return segments[seg], t


def _log_probs(policy: ActorCriticPolicy, demos: Segments, seg: np.ndarray, t: np.ndarray) -> torch.Tensor:
    """(B, A) log-probabilities of every action in the demonstrated states (seg, t)."""
    tensor, _ = policy.obs_to_tensor(demos.observations((seg, t)))
    return policy.get_distribution(tensor).distribution.logits.log_softmax(dim=-1)


def _evaluate(policy: ActorCriticPolicy, demos: Segments, seg: np.ndarray, t: np.ndarray, batch: int = 4096) -> tuple[float, float]:
    """Mean negative log-likelihood of the demonstrated actions and the share of steps whose
    most likely action is the demonstrated one."""
    nll, agree = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(seg), batch):
            s, k = seg[start : start + batch], t[start : start + batch]
            log_p = _log_probs(policy, demos, s, k)
            actions = torch.as_tensor(demos.actions[s, k])
            nll -= float(log_p.gather(1, actions.unsqueeze(1)).sum())
            agree += int((log_p.argmax(dim=1) == actions).sum())
    return nll / max(len(seg), 1), agree / max(len(seg), 1)


def clone_policy(policy: ActorCriticPolicy, demos: Segments, config: CloneConfig,
                 progress: Callable[[int, int, dict[str, float]], None] | None = None) -> dict[str, float]:
    """Fit ``policy``'s action distribution to the actions of ``demos`` (segments, typically
    whole episodes) by Adam on their negative log-likelihood, holding out ``val_fraction`` of
    the segments. Returns the demonstrated steps used, and the train and held-out NLL and
    agreement (share of steps whose most likely action is the demonstrated one) at the end.
    Deterministic for a given policy initialisation, demonstrations and config."""
    rng = np.random.default_rng([config.seed, 11])
    order = rng.permutation(len(demos))
    held = config.held_out(len(demos))
    train_seg, train_t = _steps(demos, np.sort(order[held:]))
    val_seg, val_t = _steps(demos, np.sort(order[:held]))
    parameters = [p for name, p in policy.named_parameters() if not name.startswith(("value_net", "vf_features_extractor"))]
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    policy.set_training_mode(True)
    for epoch in range(config.epochs):
        shuffled = rng.permutation(len(train_seg))
        for start in range(0, len(shuffled), config.batch_size):
            batch = shuffled[start : start + config.batch_size]
            seg, t = train_seg[batch], train_t[batch]
            log_p = _log_probs(policy, demos, seg, t)
            loss = -log_p.gather(1, torch.as_tensor(demos.actions[seg, t]).unsqueeze(1)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if progress is not None:
            policy.set_training_mode(False)
            seg, t = (val_seg, val_t) if held else (train_seg, train_t)
            nll, _ = _evaluate(policy, demos, seg, t)
            progress(epoch + 1, config.epochs, {"nll": nll})
            policy.set_training_mode(True)
    policy.set_training_mode(False)
    train_nll, train_agree = _evaluate(policy, demos, train_seg, train_t)
    stats = {"steps": int(len(train_seg) + len(val_seg)), "train_nll": train_nll, "train_agreement": train_agree}
    if held:
        stats["held_out_nll"], stats["held_out_agreement"] = _evaluate(policy, demos, val_seg, val_t)
    return stats
