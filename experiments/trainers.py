"""The trainers a run can be trained with, so that a phenomenon is shown to hold beyond the
settings this project tuned (``trainer:`` in a run config; ``goodhart reproduce NAME --trainer T``).

* ``shipped``: stable-baselines3's PPO with the config's own ``n_envs``, ``ppo`` and ``network``
  sections (the shipped configs are tuned per env).
* ``example``: the single-file CleanRL-style PPO of :mod:`goodhart.agents.example_ppo`, on
  ``gymnasium.make_vec``, with its generic settings, the same for every env.
* ``zoo``: stable-baselines3's PPO with RL Zoo's hyperparameters for the env, read from
  ``agents/configs/zoo/ppo.yml`` (RL Zoo's file format; its gridworld settings), and the
  project's CNN from the env's shipped config.

With ``example`` or ``zoo`` the run's ``n_envs``, ``ppo`` and ``network`` are the trainer's,
written into the run's config.yaml; the config's own are replaced, so one file serves every
trainer.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

TRAINERS = {
    "shipped": "stable-baselines3 PPO with the config's own settings (tuned per env)",
    "example": "the single-file CleanRL-style PPO (goodhart.agents.example_ppo), generic settings",
    "zoo": "stable-baselines3 PPO with RL Zoo's hyperparameters (agents/configs/zoo/ppo.yml) and the project's CNN",
}
ZOO_FILE = Path(__file__).parents[1] / "agents" / "configs" / "zoo" / "ppo.yml"
# RL Zoo keys that are stable-baselines3 PPO hyperparameters of a run config's ppo section
ZOO_PPO_KEYS = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range", "ent_coef", "vf_coef", "max_grad_norm")
# RL Zoo keys the file may hold that the project does not train with (rl_zoo3 reads them)
ZOO_OTHER_KEYS = ("policy", "n_timesteps", "normalize", "env_kwargs", "policy_kwargs")
# the run config's sections a trainer other than shipped sets itself
TRAINER_SECTIONS = ("n_envs", "ppo", "network")
# settings only the shipped trainer uses
SHIPPED_ONLY = ("reward_model", "alarm", "curriculum", "init")


def trained_by(entries: Iterable[Mapping[str, Any]]) -> str:
    """``the `zoo` trainer`` for a record's policies or conditions trained by trainers other than
    shipped, else "": what a report says of who trained them (an entry that names no trainer is
    from before trainers were named: shipped)."""
    others = sorted({entry.get("trainer", "shipped") for entry in entries} - {"shipped"})
    return f"the {', '.join(f'`{t}`' for t in others)} trainer" if others else ""


def zoo_hyperparameters(env_id: str, path: Path = ZOO_FILE) -> dict[str, Any]:
    """The RL Zoo entry for ``env_id``; a ValueError names the file when it has none, or a key
    this project would silently ignore."""
    entries = yaml.safe_load(path.read_text()) or {}
    if env_id not in entries:
        raise ValueError(f"{path} has no entry for {env_id}; its envs: {sorted(k for k in entries if '/' in k)}")
    entry = dict(entries[env_id])
    unknown = sorted(set(entry) - {"n_envs", *ZOO_PPO_KEYS, *ZOO_OTHER_KEYS})
    if unknown:
        raise ValueError(f"{path}: {env_id}: {unknown} are not taken by the zoo trainer; known keys: n_envs, {', '.join(ZOO_PPO_KEYS)}")
    for key in ("learning_rate", "clip_range"):
        if isinstance(entry.get(key), str):
            raise ValueError(f"{path}: {env_id}: {key}: {entry[key]!r}: schedules (lin_...) are not supported; give a number")
    if entry.get("normalize"):
        raise ValueError(f"{path}: {env_id}: normalize: the zoo trainer does not normalise observations or rewards; set it false")
    return entry


def sb3_ppo_defaults() -> dict[str, Any]:
    """What stable-baselines3's PPO takes for each of ``ZOO_PPO_KEYS`` an RL Zoo entry leaves
    out (rl_zoo3 does the same), read off its signature."""
    from stable_baselines3 import PPO

    parameters = inspect.signature(PPO).parameters
    return {key: parameters[key].default for key in ZOO_PPO_KEYS}


def trainer_settings(trainer: str, env_id: str) -> dict[str, Any]:
    """The ``n_envs``, ``ppo`` and ``network`` sections a run trains with under ``trainer``
    (``shipped``: none, the config's own stay). Zoo's network is the project's CNN, as the
    env's shipped config sets it."""
    if trainer == "shipped":
        return {}
    if trainer == "example":
        from goodhart.agents.example_ppo import Args, network_config

        args = Args(env_id=env_id)
        ppo = {"learning_rate": args.learning_rate, "n_steps": args.num_steps, "batch_size": args.minibatch_size,
               "n_epochs": args.update_epochs, "gamma": args.gamma, "gae_lambda": args.gae_lambda, "clip_range": args.clip_coef,
               "ent_coef": args.ent_coef, "vf_coef": args.vf_coef, "max_grad_norm": args.max_grad_norm}
        return {"n_envs": args.num_envs, "ppo": ppo, "network": network_config(args)}
    if trainer == "zoo":
        from goodhart.experiments.config import NetworkConfig, default_config_path, read_yaml

        entry = zoo_hyperparameters(env_id)
        ppo = sb3_ppo_defaults() | {k: entry[k] for k in ZOO_PPO_KEYS if k in entry}
        network = NetworkConfig(**read_yaml(default_config_path(env_id)).get("network", {}))
        return {"n_envs": entry.get("n_envs", 1), "ppo": ppo, "network": network.model_dump()}
    raise ValueError(f"trainer {trainer!r} is not a trainer; valid ones: {', '.join(TRAINERS)}")
