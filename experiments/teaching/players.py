"""Who plays a demo or a plot, on which env: from a demo, a shipped policy, an env id or files.

The command line's NAME and ``--model`` become a :class:`Show` (:func:`resolve`):

* a demo of the registry (``agents/pretrained/demos.yaml``): its shipped policies, its
  distributions and its level seed;
* a shipped policy: that policy alone, with the distributions and seed of the demo it belongs to;
* a registered env id: the demo that plays it if the registry has one; otherwise the env's
  reference policies, its oracles (or a random policy where it has none), named in the panel
  titles;
* ``--model PATH`` (repeatable): those policy files instead of the shipped ones; with a demo
  or env id they must be trained on its env.

A policy trained against a learned reward model carries that model with it (the path in its
config), so panels can show the learned reward it was optimizing beside the env's score and
the true objective.

Nothing here knows an env: everything comes from the registry, the model files and the env's
declared oracles.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goodhart.agents import pretrained
from goodhart.agents.model_io import LoadedModel, ModelFileError, find_policies, load_policy, policy_label
from goodhart.agents.policies import RANDOM, ModelPolicy, Policy, oracle_names, policy_from_name
from goodhart.experiments.reward_learning.reward_model import RewardModel, RewardModelError, load_reward_model
from goodhart.envs import ENVS
from goodhart.experiments.defaults import DISTRIBUTIONS
from goodhart.experiments.seeds import SHOW_LEVEL_SEED


@dataclass(frozen=True)
class Player:
    """A policy that plays: its label, the env knobs it plays with (a model's: those it was
    trained with), whether it is one of the env's reference policies, and ``make``, which
    returns a fresh policy (its own sampling state; ``deterministic``: the most likely action)."""

    label: str
    env_kwargs: Mapping[str, Any]
    make: Callable[[bool], Policy]
    reference: bool = False
    learned: tuple[RewardModel, float] | None = None  # the reward model it was trained on, and its scale


@dataclass(frozen=True)
class Show:
    """What a demo or plot plays: ``players`` on ``env_id``, by default on ``distributions``
    from level seed ``seed``. ``name`` is what was asked for."""

    name: str
    env_id: str
    players: tuple[Player, ...]
    distributions: tuple[str, ...]
    seed: int


def names_help() -> str:
    """What NAME may be, for ``--help``: the registry's demos and policies, the env ids."""
    demos = "; ".join(f"{name}: {demo.about}" for name, demo in pretrained.DEMOS.items())
    return (
        f"A demo ({demos}); a shipped policy ({', '.join(pretrained.NAMES)}); or a registered env id "
        f"({', '.join(ENVS)}), played by its shipped policies or, where it has none, its oracles."
    )


def resolve(name: str | None, models: Sequence[str | os.PathLike[str]] | None = None) -> Show:
    """The :class:`Show` of ``name`` (a demo, a shipped policy, an env id, or None with
    ``models``) and ``models`` (policy files, seed folders or run folders (every seed), played
    instead of the shipped policies). Raises
    ``ValueError`` (``ModelFileError`` for files) with one line naming what is wrong."""
    loaded = [(os.fspath(stem), load_policy(stem)) for typed in models or () for stem in _policy_files(typed)]
    if name is None:
        if not loaded:
            raise ValueError("give NAME (a demo, a shipped policy or an env id) or --model PATH")
        env_id, demo = loaded[0][1].env_id, None
    elif name in pretrained.DEMOS:
        demo = pretrained.DEMOS[name]
        env_id = demo.env
    elif name in pretrained.POLICIES:
        if loaded:
            raise ValueError(f"{name!r} is a shipped policy and --model gives others: play one or the other")
        model = _load_shipped(name)
        demo = next((d for d in pretrained.DEMOS.values() if name in d.policies), None)
        dists = demo.distributions if demo else DISTRIBUTIONS
        return Show(name, model.env_id, (_model_player(pretrained.POLICIES[name].label, model),), dists, demo.seed if demo else SHOW_LEVEL_SEED)
    elif name in ENVS:
        env_id = name
        demo = next((d for d in pretrained.DEMOS.values() if d.env == env_id), None)
    else:
        raise ValueError(
            f"{name!r} is not a demo ({', '.join(pretrained.DEMOS)}), a shipped policy "
            f"({', '.join(pretrained.NAMES)}) or a registered env id ({', '.join(ENVS)})"
        )
    for typed, model in loaded:
        if model.env_id != env_id:
            plays = f"{name!r} plays {env_id}" if name is not None else f"--model {loaded[0][0]} is on {env_id}"
            raise ValueError(f"--model {typed} is trained on {model.env_id}, but {plays}")
    if loaded:
        players = tuple(_model_player(policy_label(typed), model) for typed, model in loaded)
    elif demo is not None:
        players = tuple(_model_player(pretrained.POLICIES[p].label, _load_shipped(p)) for p in demo.policies)
    else:
        players = reference_players(env_id)
    dists = demo.distributions if demo is not None else DISTRIBUTIONS
    return Show(name or loaded[0][0], env_id, players, tuple(dists), demo.seed if demo is not None else SHOW_LEVEL_SEED)


def reference_players(env_id: str) -> tuple[Player, ...]:
    """The env's oracles, or a random policy if it has none."""
    names = oracle_names(env_id) or [RANDOM]
    return tuple(Player(name, {}, lambda _, name=name: policy_from_name(name, env_id), reference=True) for name in names)


def _model_player(label: str, model: LoadedModel) -> Player:
    kwargs = {k: v for k, v in model.config.get("env_kwargs", {}).items() if k != "distribution"}
    return Player(label, kwargs, lambda deterministic: ModelPolicy(model, deterministic=deterministic, name=label),
                  learned=_learned_reward(label, model))


def _learned_reward(label: str, model: LoadedModel) -> tuple[RewardModel, float] | None:
    """The reward model ``model`` was trained against (its config's ``reward_model``), or None
    if it was trained on the env's reward. A missing or unreadable reward model is said in
    one warning line, and the panel shows no learned reward."""
    spec = model.config.get("reward_model") or {}
    if not spec.get("path"):
        return None
    try:
        return load_reward_model(spec["path"]), float(spec.get("scale", 1.0))
    except RewardModelError as err:
        print(f"warning: {label} was trained on a reward model that cannot be read here, so its learned reward is not shown: {err}",
              file=sys.stderr)
        return None


def _policy_files(typed: str | os.PathLike[str]) -> list[Path]:
    """The policies ``--model typed`` names: a policy file, a seed folder, or every seed of a
    run folder (see :func:`~goodhart.agents.model_io.find_policies`)."""
    try:
        return find_policies(typed)
    except ModelFileError as err:
        raise ModelFileError(f"--model {err}") from None


def _load_shipped(name: str) -> LoadedModel:
    try:
        return pretrained.load(name)
    except ModelFileError as err:
        raise ModelFileError(
            f"{err} (the shipped policy {name!r} is not there: regenerate it with "
            f"scripts/train_demo_policies.py, or pass --model)"
        ) from None


__all__ = ["Player", "Show", "names_help", "reference_players", "resolve"]
