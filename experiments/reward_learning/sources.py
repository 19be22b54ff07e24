"""Where RLHF's data comes from: the policies that play segments and demonstrations, the
rated preference pairs, the cloned starting policy (SFT) and the fixed state set on which a
policy's distance from its start is measured.

A source is ``POLICY[@EPSILON]``: ``random``, ``oracle-<name>`` or a model file, with a share
EPSILON of random actions; each source plays its own level seeds (``SOURCE_SEED_STRIDE`` apart;
the bases are in :mod:`goodhart.experiments.seeds`), so two sources never share a level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.agents.model_io import save_model
from goodhart.agents.policies import RANDOM, Policy, oracle_names, policy_from_name
from goodhart.agents.ppo import build_ppo
from goodhart.envs import core_class, make_vec
from goodhart.experiments.config import RunConfig
from goodhart.experiments.reward_learning.cloning import CloneConfig, clone_policy
from goodhart.experiments.reward_learning.dataset import PreferenceDataset, make_dataset
from goodhart.experiments.reward_learning.raters import RaterConfig
from goodhart.experiments.reward_learning.segments import Segments, collect_segments, concatenate
from goodhart.experiments.seeds import DEMONSTRATION_LEVEL_SEED, RLHF_STATE_LEVEL_SEED, SOURCE_SEED_STRIDE


def source_policy(spec: str, env_id: str) -> Policy:
    """The policy of a source spec (:func:`~goodhart.agents.policies.policy_from_name`), its
    errors prefixed ``source`` so that a command line or a config says which list it is from."""
    try:
        return policy_from_name(spec, env_id)
    except ValueError as err:
        raise type(err)(f"source {err}") from None


def check_sources(sources: Sequence[str], env_id: str) -> None:
    """Build every source's policy once, so that a bad spec (an unknown oracle, a missing
    model file, a model of another env) is refused before any work starts or any progress
    is shown; a ValueError naming it otherwise."""
    if not sources:
        raise ValueError("give at least one source policy")
    for spec in sources:
        source_policy(spec, env_id)


def default_sources(env_id: str) -> list[str]:
    """Random actions and every oracle of the env with a share 0.1 and 0.3 of random actions:
    segments from poor to good, of the intended target and of the proxy."""
    return [RANDOM, *(f"{oracle}@{eps}" for oracle in oracle_names(env_id) for eps in (0.1, 0.3))]


def collect_pool(env_id: str, env_kwargs: Mapping[str, Any], sources: Sequence[str], count: int, length: int, seed: int) -> Segments:
    """``count`` segments split equally among ``sources`` (repeat one to weight it), each
    source on its own level seeds."""
    if not sources:
        raise ValueError("give at least one source policy")
    policies = [source_policy(spec, env_id) for spec in sources]
    shares = np.diff(np.linspace(0, count, len(policies) + 1).round().astype(int))
    pools = [
        collect_segments(policy, env_id, env_kwargs, count=int(n), length=length, seed=seed + SOURCE_SEED_STRIDE * k)
        for k, (policy, n) in enumerate(zip(policies, shares))
        if n > 0
    ]
    return concatenate(pools)


def collect_preferences(
    env_id: str,
    env_kwargs: Mapping[str, Any],
    sources: Sequence[str],
    *,
    labels: int,
    rater: RaterConfig,
    length: int = 20,
    segments: int | None = None,
    seed: int = 0,
) -> PreferenceDataset:
    """Segments of ``sources`` (a pool of ``segments``, default ``2 * labels``: every pair
    fresh), ``labels`` random pairs of them, labelled by ``rater``."""
    core = core_class(env_id)
    rater.check_env(core.OVERSIGHT_REGIONS, core.SALIENT_EVENT, env_id)
    pool = collect_pool(env_id, env_kwargs, sources, segments or 2 * labels, length, seed)
    info = {"seed": seed, "source_specs": list(sources)}
    return make_dataset(pool, labels, rater, seed, env_id, env_kwargs, info)


def clone_demonstrations(cfg: RunConfig, sources: Sequence[str], episodes: int, fit: CloneConfig, out: str | Path, progress=None) -> dict[str, Any]:
    """The SFT step: ``episodes`` whole episodes of ``sources`` (split equally, on level seeds
    from ``DEMONSTRATION_LEVEL_SEED + cfg.seed``), and ``cfg``'s PPO network (initialised with
    ``cfg.seed``) fitted to their actions (:func:`clone_policy`); saved as a policy file at ``out`` whose
    config is ``cfg``'s with a ``clone`` section saying how it was made. Returns that section."""
    fit.held_out(episodes)
    check_sources(sources, cfg.env)
    core = core_class(cfg.env)(1, **cfg.env_kwargs)
    demos = collect_pool(cfg.env, cfg.env_kwargs, sources, episodes, core.max_steps, DEMONSTRATION_LEVEL_SEED + cfg.seed)
    model = build_ppo(make_vec(cfg.env, cfg.n_envs, seed=cfg.seed, **cfg.env_kwargs), ppo=cfg.ppo.model_dump(), network=cfg.network.model_dump(),
                      seed=cfg.seed, device="cpu")
    stats = clone_policy(model.policy, demos, fit, progress)
    record = {"sources": list(sources), "episodes": episodes, "fit": fit.to_dict(), **stats}
    config = {**cfg.model_dump(mode="json"), "init": None, "reward_model": None, "clone": record}
    save_model(model, out, config)
    return record


def evaluation_states(env_id: str, env_kwargs: Mapping[str, Any], count: int, seed: int = RLHF_STATE_LEVEL_SEED) -> np.ndarray:
    """A fixed set of ``count`` observations on which to measure ``KL(pi || pi_init)``: the
    states visited by the env's reference policies (random, and each oracle with a share 0.2
    of random actions), equally, on level seeds from ``seed``; the same for every run of the
    env and knobs."""
    sources = [RANDOM, *(f"{oracle}@0.2" for oracle in oracle_names(env_id))]
    length = 20
    pool = collect_pool(env_id, env_kwargs, sources, math.ceil(count / length) + len(sources), length, seed)
    rows = np.flatnonzero(pool.mask.reshape(-1))
    chosen = np.sort(np.random.default_rng(seed).choice(rows, size=min(count, len(rows)), replace=False))
    seg, t = np.divmod(chosen, pool.length)
    return pool.observations((seg, t))
