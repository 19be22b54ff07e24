"""Policies that the evaluator runs the same way, batched over N copies of an env.

Every policy maps the observations of all N copies of a :class:`GridVecEnv` to N actions at
once: :class:`RandomPolicy`, the env's scripted oracles (:class:`OraclePolicy`), trained
models (:class:`ModelPolicy`) and any of them with a share of random actions
(:class:`EpsilonPolicy`); :func:`policy_from_name` makes one from its name. :func:`run_episodes`
runs any of them on a fixed, seeded set of levels, the same set for every policy, or on given
levels (:func:`run_levels`), and returns one outcome dict per episode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from goodhart.agents.model_io import LoadedModel, ModelFileError, find_policies, load_policy, looked_for, policy_label, several_seeds
from goodhart.envs import core_class, make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.grid import Levels
from goodhart.envs.core.level_sets import check_levels
from goodhart.envs.core.vec_env import GridVecEnv


@runtime_checkable
class Policy(Protocol):
    """A batched policy: ``act`` returns the (N,) int actions of the N copies of ``env``."""

    name: str

    def reset(self, seed: int) -> None:
        """Reseed the policy's own randomness, so that runs are reproducible."""
        ...

    def act(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        """(N,) int64 actions for observations ``obs`` of the N copies of ``env``."""
        ...

    def probabilities(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        """(N, A) probabilities of each action in each copy (what :meth:`act` samples from)."""
        ...


class RandomPolicy:
    """Uniformly random actions, from its own generator."""

    def __init__(self, seed: int = 0, name: str = "random") -> None:
        self.name = name
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        return self._rng.integers(0, int(env.action_space.n), size=env.num_envs, dtype=np.int64)

    def probabilities(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        n_actions = int(env.action_space.n)
        return np.full((env.num_envs, n_actions), 1.0 / n_actions)


class OraclePolicy:
    """One of the env's scripted reference policies (a name in its ``ORACLES``), looked up at
    every agent's cell; deterministic."""

    def __init__(self, oracle_name: str) -> None:
        self.oracle_name = oracle_name
        self.name = f"oracle-{oracle_name}"

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        return np.asarray(to_numpy(env.core.oracle_actions(self.oracle_name)), dtype=np.int64).reshape(env.num_envs)

    def probabilities(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        return np.eye(int(env.action_space.n))[self.act(obs, env)]


class ModelPolicy:
    """A trained policy (see :func:`goodhart.agents.model_io.load_policy`), one batched forward
    pass per step. Actions are sampled from its distribution (from the policy's own torch
    generator, reseeded by :meth:`reset`) or, if ``deterministic``, its most likely ones."""

    def __init__(self, loaded: LoadedModel, deterministic: bool = False, name: str = "model") -> None:
        self.loaded = loaded
        self.policy = loaded.policy
        self.deterministic = deterministic
        self.name = name
        self._generator = torch.Generator(device=self.policy.device)
        self.reset(0)

    def reset(self, seed: int) -> None:
        self._generator.manual_seed(int(seed))

    def act(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        probs = self._probs(obs)
        if self.deterministic:
            actions = torch.argmax(probs, dim=1)
        else:
            actions = torch.multinomial(probs, 1, generator=self._generator).squeeze(1)
        return actions.cpu().numpy().astype(np.int64)

    def probabilities(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        """The network's action distribution (also when ``deterministic``) for observations as
        the env gives them: the network orders and scales them itself (``network_input``)."""
        return self._probs(obs).cpu().numpy()

    def _probs(self, obs: np.ndarray) -> torch.Tensor:
        expected = tuple(self.policy.observation_space.shape)
        if tuple(obs.shape[1:]) != expected:
            raise ValueError(
                f"observations of shape {tuple(obs.shape[1:])} do not fit the model, which takes {expected}: "
                f"run it on {self.loaded.env_id!r} with its env_kwargs {self.loaded.config.get('env_kwargs')}"
            )
        with torch.no_grad():
            obs_tensor, _ = self.policy.obs_to_tensor(obs)
            return self.policy.get_distribution(obs_tensor).distribution.probs


class EpsilonPolicy:
    """``policy`` with a uniformly random action instead of its own in a share ``epsilon`` of
    the steps: the imperfect versions of a policy that give a rater comparisons worth making,
    and imperfect demonstrators (``NAME@EPS`` in :func:`policy_from_name`)."""

    def __init__(self, policy: Policy, epsilon: float, seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon={epsilon!r} is out of range; expected a number in [0, 1]")
        self.policy, self.epsilon = policy, epsilon
        self.name = policy.name if epsilon == 0 else f"{policy.name}@{epsilon:g}"
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self.policy.reset(seed)
        self._rng = np.random.default_rng([seed, 7])

    def act(self, obs: np.ndarray, env: GridVecEnv) -> np.ndarray:
        actions = np.asarray(self.policy.act(obs, env), dtype=np.int64)
        if self.epsilon == 0:
            return actions
        explore = self._rng.random(len(actions)) < self.epsilon
        random_actions = self._rng.integers(0, int(env.action_space.n), size=len(actions))
        return np.where(explore, random_actions, actions)


RANDOM = "random"
ORACLE_PREFIX = "oracle-"  # an env's scripted policy ``o`` (a name in its ``ORACLES``) is ``oracle-o``


def oracle_names(env_id: str) -> list[str]:
    """``oracle-<name>`` for each of the env's ``ORACLES``, in their order."""
    return [ORACLE_PREFIX + oracle for oracle in core_class(env_id).ORACLES]


def reference_names(env_id: str) -> list[str]:
    """The policies every env has without training: ``random``, then its oracles."""
    return [RANDOM, *oracle_names(env_id)]


def is_reference_name(name: str) -> bool:
    """Whether ``name`` (``@EPS`` or not) is spelled as a reference policy, ``random`` or
    ``oracle-...``, rather than a file: for callers that must tell the two apart before the
    env is known. Whether the env has that oracle is :func:`policy_from_name`'s to check."""
    base = name.rpartition("@")[0] if "@" in name else name
    return base == RANDOM or base.startswith(ORACLE_PREFIX)


def policy_from_name(name: str, env_id: str) -> Policy:
    """The policy that ``name`` means on ``env_id``; the one parser of policy names (sources,
    demonstrators, the evaluator's and the figures' reference policies).

    ``name`` is ``POLICY[@EPS]``: ``random``, ``oracle-<o>`` for one of the env's ``ORACLES``, or
    a trained policy as :func:`~goodhart.agents.model_io.find_policy` finds it (a seed folder,
    a run folder of one seed, a policy's stem, ``.safetensors`` or ``.json``; trained on
    ``env_id``, played sampling, named by :func:`~goodhart.agents.model_io.policy_label`);
    ``@EPS`` takes a uniformly random action instead in a share EPS of the steps
    (:class:`EpsilonPolicy`). Raises ``ValueError`` (``ModelFileError`` for a broken file, or a
    run folder of several seeds) with one line that names ``name`` and, for a name that is not
    a policy of the env, the env's reference policies and where it looked for a file."""
    base, sep, eps = name.rpartition("@") if "@" in name else (name, "", "")
    try:
        epsilon = float(eps) if sep else 0.0
    except ValueError:
        epsilon = math.nan
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"{name!r}: {eps!r} after @ is not a share of random actions in [0, 1]")
    valid = ", ".join(reference_names(env_id))
    if base == RANDOM:
        policy: Policy = RandomPolicy()
    elif base.startswith(ORACLE_PREFIX):
        if base not in oracle_names(env_id):
            raise ValueError(f"{name!r}: {env_id} has no oracle {base.removeprefix(ORACLE_PREFIX)!r}; its reference policies: {valid}")
        policy = OraclePolicy(base.removeprefix(ORACLE_PREFIX))
    else:
        try:
            stems = find_policies(base)
        except ModelFileError:
            raise ValueError(f"{name!r}: not a policy file, nor one of {env_id}'s reference policies: {valid} (looked for {looked_for(base)})") from None
        if len(stems) > 1:  # one policy plays: a run folder of several seeds is refused
            raise ModelFileError(f"{name!r}: {several_seeds(stems)}")
        stem = stems[0]
        loaded = load_policy(stem)
        if loaded.env_id != env_id:
            raise ValueError(f"{name!r}: a policy of {loaded.env_id}, not {env_id}")
        policy = ModelPolicy(loaded, name=policy_label(stem))
    return EpsilonPolicy(policy, epsilon) if sep else policy


def reference_policies(env_id: str) -> dict[str, Policy]:
    """``"random"`` and ``"oracle-<name>"`` for each of the env's ``ORACLES``, by name."""
    return {name: policy_from_name(name, env_id) for name in reference_names(env_id)}


def run_episodes(
    policy: Policy,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    *,
    distribution: str,
    episodes: int,
    level_seed: int,
    max_batch: int = 1024,
    wrap: Callable[[GridVecEnv], Any] | None = None,
    levels: Levels | None = None,
) -> list[dict[str, Any]]:
    """Run ``policy`` for ``episodes`` episodes on a fixed set of levels of ``distribution``;
    one ``info["outcome"]`` dict per episode.

    The levels depend only on ``(env_id, env_kwargs, distribution, episodes, level_seed,
    max_batch)``, never on the policy: ``n = min(episodes, max_batch)`` copies seeded
    ``level_seed + i`` (levels are drawn at reset only) each play ``k = ceil(episodes / n)``
    episodes; outcomes are ordered by (episode index, copy) and cut to ``episodes``.
    ``policy.reset(level_seed)`` is called first. A ``distribution`` in ``env_kwargs`` is
    overridden by the keyword argument.

    Note that copies are seeded ``level_seed, level_seed + 1, ...``: runs whose seed ranges
    overlap (or that overlap the training seeds) share levels.

    ``wrap`` turns the VecEnv into another whose outcomes gain entries (a reward model's
    return, see :mod:`goodhart.experiments.reward_learning.reward_env`); the levels are the same.

    ``levels`` (arrays of k levels, as a level set holds them): play each of them exactly once
    instead, outcomes in level order (:func:`run_levels`); ``episodes`` and ``distribution``
    are then unused (the levels are what is played), and ``level_seed`` seeds only the policy.
    """
    if levels is not None:
        played = run_levels(policy, env_id, env_kwargs, levels, policy_seed=level_seed, max_batch=max_batch, wrap=wrap)
        return [episodes_of_level[0] for episodes_of_level in played.outcomes]
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    if max_batch < 1:
        raise ValueError(f"max_batch={max_batch} must be at least 1")
    n = min(episodes, max_batch)
    k = math.ceil(episodes / n)
    kwargs = {key: value for key, value in (env_kwargs or {}).items() if key != "distribution"}
    env = make_vec(env_id, n, seed=level_seed, distribution=distribution, **kwargs)
    if wrap is not None:
        env = wrap(env)
    outcomes: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    remaining = n  # copies with fewer than k outcomes
    try:
        policy.reset(level_seed)
        obs = env.reset()
        while remaining:
            actions = np.asarray(policy.act(obs, env)).reshape(n)
            obs, _reward, done, infos = env.step(actions)
            for i in np.flatnonzero(done):
                if len(outcomes[i]) < k:
                    outcomes[i].append(infos[i]["outcome"])
                    if len(outcomes[i]) == k:
                        remaining -= 1
    finally:
        env.close()
    ordered = [outcomes[i][j] for j in range(k) for i in range(n)]
    return ordered[:episodes]


@dataclass(frozen=True)
class LevelEpisodes:
    """What :func:`run_levels` played: per level, in order, its episodes' outcome dicts and
    (``discounted``, (k, episodes)) their discounted true returns, sum of gamma**t times the
    true reward of step t = 0, 1, ..."""

    outcomes: list[list[dict[str, Any]]]
    discounted: np.ndarray


def run_levels(
    policy: Policy,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    levels: Levels,
    *,
    episodes: int = 1,
    gamma: float = 1.0,
    policy_seed: int = 0,
    max_batch: int = 1024,
    distribution: str | None = None,
    wrap: Callable[[GridVecEnv], Any] | None = None,
) -> LevelEpisodes:
    """Play ``policy`` for ``episodes`` episodes on each of ``levels`` (checked against the env:
    a :class:`~goodhart.envs.core.level_sets.LevelSetError` if they are not its levels), in
    batches of at most ``max_batch`` copies, copy ``i`` replaying level ``i`` of its batch
    (``play_levels``) until every copy has its episodes. ``policy.reset(policy_seed)`` is called
    once, first. ``distribution`` (default: ``env_kwargs``' or the env's first) only builds the
    env: the levels are what is played."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    if max_batch < 1:
        raise ValueError(f"max_batch={max_batch} must be at least 1")
    kwargs = {key: value for key, value in (env_kwargs or {}).items() if key != "distribution"}
    dist = distribution or (env_kwargs or {}).get("distribution") or next(iter(core_class(env_id).DISTRIBUTIONS))
    count = check_levels(core_class(env_id)(1, distribution=dist, **kwargs), levels)
    policy.reset(policy_seed)
    outcomes: list[list[dict[str, Any]]] = []
    discounted = np.zeros((count, episodes))
    for start in range(0, count, max_batch):
        n = min(max_batch, count - start)
        batch = {key: np.asarray(values)[start : start + n] for key, values in levels.items()}
        env = make_vec(env_id, n, distribution=dist, **kwargs)
        if wrap is not None:
            env = wrap(env)
        got: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        so_far, t = np.zeros(n), np.zeros(n, dtype=np.int64)
        remaining = n  # copies with fewer than ``episodes`` outcomes
        try:
            obs = env.play_levels(batch)
            while remaining:
                actions = np.asarray(policy.act(obs, env)).reshape(n)
                obs, _reward, done, infos = env.step(actions)
                so_far += gamma ** t * np.fromiter((info["true_reward"] for info in infos), float, n)
                t += 1
                for i in np.flatnonzero(done):
                    if len(got[i]) < episodes:
                        discounted[start + i, len(got[i])] = so_far[i]
                        got[i].append(infos[i]["outcome"])
                        if len(got[i]) == episodes:
                            remaining -= 1
                so_far[done], t[done] = 0.0, 0
        finally:
            env.close()
        outcomes += got
    return LevelEpisodes(outcomes, discounted)


__all__ = [
    "ORACLE_PREFIX",
    "RANDOM",
    "EpsilonPolicy",
    "LevelEpisodes",
    "ModelPolicy",
    "OraclePolicy",
    "Policy",
    "RandomPolicy",
    "is_reference_name",
    "oracle_names",
    "policy_from_name",
    "reference_names",
    "reference_policies",
    "run_episodes",
    "run_levels",
]
