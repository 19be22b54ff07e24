"""Small trained policies shipped with the package, and the demos they play: one registry.

The registry is ``demos.yaml`` in this folder: the shipped policies (each trained by a config
in ``agents/configs/``) and the demos (an env, its policies, the distributions of its
panels, the level seed of its first episode, a line about it). ``goodhart demo``, ``record``
and ``plot`` read it; a new shipped policy or demo is a few lines there, no code.

Each policy is ``<name>.safetensors`` + ``<name>.json`` (the safe model format of
:mod:`goodhart.agents.model_io`; the JSON embeds the config that trained it) and
``<name>.eval.json``, its evaluation summary on a fixed level set (mean outcomes per
distribution). ``scripts/train_demo_policies.py`` regenerates them from the shipped configs.

Reading the registry needs neither torch nor the model files (loading a policy does), so the
command line can list the demos quickly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from goodhart.envs import core_class

if TYPE_CHECKING:
    from goodhart.agents.model_io import LoadedModel

FOLDER = Path(__file__).resolve().parent
REGISTRY = FOLDER / "demos.yaml"
VERDICTS = ("intended", "proxy")


@dataclass(frozen=True)
class Shipped:
    """A shipped policy: its name, the config that trains it, the title of its panels."""

    name: str
    config: str
    label: str


@dataclass(frozen=True)
class Demo:
    """A demo: ``policies`` (names of shipped policies) each playing every one of
    ``distributions`` of ``env``, from level seed ``seed``; ``shows`` is the verdict
    (``intended`` or ``proxy``) of each panel's first episode at that seed, panels in order
    (the first policy on each distribution, then the next)."""

    name: str
    env: str
    policies: tuple[str, ...]
    distributions: tuple[str, ...]
    seed: int
    shows: tuple[str, ...]
    about: str


def _fields(path: Path, where: str, entry: Any, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(entry, dict) or set(entry) != set(keys):
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"{path}: {where}: expected the keys {list(keys)}, got {got}")
    return entry


def _read(path: Path) -> tuple[dict[str, Shipped], dict[str, Demo]]:
    """The registry in ``path``, checked: every demo's policies shipped, its env registered
    and its distributions the env's, one verdict per panel."""
    data = _fields(path, "top level", yaml.safe_load(path.read_text(encoding="utf-8")), ("policies", "demos"))
    policies = {
        name: Shipped(name, **_fields(path, f"policies.{name}", entry, ("config", "label")))
        for name, entry in data["policies"].items()
    }
    demos = {}
    for name, entry in data["demos"].items():
        fields = _fields(path, f"demos.{name}", entry, ("env", "policies", "distributions", "seed", "shows", "about"))
        demo = Demo(name, **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        where = f"{path}: demos.{name}"
        unknown = [p for p in demo.policies if p not in policies]
        if unknown or not demo.policies:
            raise ValueError(f"{where}: policies {unknown or '[]'} are not shipped; shipped: {list(policies)}")
        valid = core_class(demo.env).DISTRIBUTIONS
        if not demo.distributions or any(d not in valid for d in demo.distributions):
            raise ValueError(f"{where}: distributions {list(demo.distributions)} must be some of {list(valid)}")
        if not isinstance(demo.seed, int) or demo.seed < 0:
            raise ValueError(f"{where}: seed {demo.seed!r} must be an integer >= 0")
        panels = len(demo.policies) * len(demo.distributions)
        if len(demo.shows) != panels or any(v not in VERDICTS for v in demo.shows):
            raise ValueError(f"{where}: shows must give one of {list(VERDICTS)} per panel ({panels})")
        demos[name] = demo
    return policies, demos


POLICIES, DEMOS = _read(REGISTRY)
NAMES = tuple(POLICIES)
CONFIGS = {name: policy.config for name, policy in POLICIES.items()}  # the config that trains each


def _check(name: str) -> None:
    if name not in POLICIES:
        raise ValueError(f"{name!r} is not a shipped policy; valid ones: {list(NAMES)}")


def path(name: str) -> Path:
    """The file stem of the shipped policy ``name`` (``.../pretrained/<name>``), to pass to
    :func:`goodhart.agents.model_io.load_policy` or ``--model``."""
    _check(name)
    return FOLDER / name


def available() -> list[str]:
    """The shipped policies whose files are present."""
    return [name for name in NAMES if (FOLDER / f"{name}.json").is_file()]


def load(name: str) -> LoadedModel:
    """The shipped policy ``name``, loaded (raises ``ModelFileError`` if its files are
    missing, e.g. not generated yet)."""
    from goodhart.agents.model_io import load_policy

    return load_policy(path(name))


def evaluation(name: str) -> dict[str, Any]:
    """The evaluation summary shipped with ``name``: ``{"level_seed", "episodes",
    "deterministic", "distributions": {distribution: {outcome: mean}}}``."""
    _check(name)
    return json.loads((FOLDER / f"{name}.eval.json").read_text(encoding="utf-8"))


__all__ = ["CONFIGS", "DEMOS", "NAMES", "POLICIES", "Demo", "Shipped", "available", "evaluation", "load", "path"]
