"""Training against a reward model: the VecEnv whose reward is the model's, and the KL penalty.

:class:`RewardModelVecEnv` replaces the reward of a VecEnv by a reward model's prediction
``r(s_t, a_t)`` and leaves everything else as it was: ``info["true_reward"]`` still holds the
true objective, ``info["env_reward"]`` the env's own (proxy) reward, and the ``outcome`` of a
finished episode gains ``reward_model_return``, so logs show the learned proxy, the env's
score and the true objective side by side.

:class:`KLPenalty` subtracts ``kl_coef * (log pi(a|s) - log pi_init(a|s))`` from every
reward PPO stores, the standard RLHF penalty towards the initial policy (Ziegler et al.,
2019), whose expectation is ``kl_coef * KL(pi || pi_init)`` per step.
:func:`kl_to_initial` measures ``KL(pi || pi_init)`` on a fixed set of states;
:class:`TrajectoryKL` along the policy's own episodes, summed over their steps: the KL between
the two policies' distributions of whole episodes (the dynamics cancel), the sequence-level KL
that Gao et al. measured on the policy's samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from goodhart.experiments.reward_learning.reward_model import RewardModel


class RewardModelVecEnv(VecEnvWrapper):
    """``venv`` with its reward replaced by ``scale`` times ``model``'s normalised reward (see
    the module docstring)."""

    def __init__(self, venv: VecEnv, model: RewardModel, scale: float = 1.0) -> None:
        super().__init__(venv)
        self.model = model
        self.scale = scale
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._episode = np.zeros(venv.num_envs)

    def set_model(self, model: RewardModel) -> None:
        """Use another model from the next step on (the iterated mode refits it)."""
        self.model = model

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        self._episode[:] = 0.0
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._obs is None:
            raise RuntimeError("RewardModelVecEnv: step before reset (or before load_state_dict)")
        learned = self.scale * self.model.rewards(self._obs, self._actions)
        obs, env_reward, done, infos = self.venv.step_wait()
        self._episode += learned
        for i, info in enumerate(infos):
            info["env_reward"] = float(env_reward[i])
            if "outcome" in info:
                info["outcome"] = {**info["outcome"], "reward_model_return": float(self._episode[i])}
        self._episode[done] = 0.0
        self._obs = obs
        return obs, learned, done, infos

    def load_state_dict(self, state: dict[str, Any]) -> np.ndarray:
        """Restore the wrapped env's state (:meth:`GridVecEnv.load_state_dict`) and keep its
        observations, from which the next rewards are predicted."""
        self._obs = self.venv.load_state_dict(state)
        return self._obs


def _log_probs(policy: ActorCriticPolicy, obs: torch.Tensor) -> torch.Tensor:
    """(B, A) log-probabilities of every action."""
    return policy.get_distribution(obs).distribution.logits.log_softmax(dim=-1)


def kl_to_initial(policy: ActorCriticPolicy, initial: ActorCriticPolicy, obs: np.ndarray, batch: int = 2048) -> float:
    """Mean over states ``obs`` of ``KL(policy(.|s) || initial(.|s))`` (nats), exactly over
    the discrete actions."""
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(obs), batch):
            o, _ = policy.obs_to_tensor(obs[start : start + batch])
            log_p, log_q = _log_probs(policy, o), _log_probs(initial, o)
            total += float((log_p.exp() * (log_p - log_q)).sum(dim=1).sum())
    return total / max(len(obs), 1)


class KLPenalty(BaseCallback):
    """Subtracts ``coef * (log pi(a|s) - log pi_init(a|s))`` from each reward of the rollout
    as it is collected (see the module docstring); ``initial`` is a frozen copy of the policy
    at the start of training. Logs the mean per-step estimate as ``rlhf/kl_per_step``."""

    def __init__(self, initial: ActorCriticPolicy, coef: float) -> None:
        super().__init__()
        self.initial = initial
        self.coef = coef
        self._estimates: list[float] = []

    def _on_step(self) -> bool:
        obs, actions = self.locals["obs_tensor"], self.locals["actions"]
        with torch.no_grad():
            initial = _log_probs(self.initial, obs).gather(1, torch.as_tensor(actions).long().reshape(-1, 1)).squeeze(1)
        estimate = (self.locals["log_probs"] - initial).cpu().numpy()
        self.locals["rewards"] -= (self.coef * estimate).astype(self.locals["rewards"].dtype)
        self._estimates.append(float(estimate.mean()))
        return True

    def _on_rollout_end(self) -> None:
        if self._estimates:
            self.logger.record("rlhf/kl_per_step", float(np.mean(self._estimates)))
        self._estimates = []


class TrajectoryKL(VecEnvWrapper):
    """``venv`` played by ``policy``: each finished episode's outcome gains ``trajectory_kl``,
    the sum over its steps of ``KL(policy(.|s_t) || initial(.|s_t))`` (nats), exact over the
    discrete actions. Its mean over episodes sampled from ``policy`` is ``KL(P_pi || P_init)``
    over episodes. ``policy`` must be the one that chooses the actions."""

    def __init__(self, venv: VecEnv, policy: ActorCriticPolicy, initial: ActorCriticPolicy) -> None:
        super().__init__(venv)
        self.policy, self.initial = policy, initial
        self._obs: np.ndarray | None = None
        self._episode = np.zeros(venv.num_envs)

    def reset(self) -> np.ndarray:
        self._obs = self.venv.reset()
        self._episode[:] = 0.0
        return self._obs

    def step_wait(self) -> VecEnvStepReturn:
        with torch.no_grad():
            o, _ = self.policy.obs_to_tensor(self._obs)
            log_p, log_q = _log_probs(self.policy, o), _log_probs(self.initial, o)
            self._episode += (log_p.exp() * (log_p - log_q)).sum(dim=1).cpu().numpy()
        obs, reward, done, infos = self.venv.step_wait()
        for i in np.flatnonzero(done):
            infos[i]["outcome"] = {**infos[i]["outcome"], "trajectory_kl": float(self._episode[i])}
        self._episode[done] = 0.0
        self._obs = obs
        return obs, reward, done, infos
