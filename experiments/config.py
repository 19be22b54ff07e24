"""Run configs: YAML files validated before anything runs, resolved into one saved record.

A run is described by defaults (the fields below) + a YAML file + ``--set key=value``
overrides + command-line flags, in that order. The resolved config is saved in the run folder
and repeats the run exactly when passed back with ``--config``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from goodhart.envs import ENVS, core_class
from goodhart.envs.core.grid import GridCore

CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A config that cannot run; the message is one line naming the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PPOConfig(_Section):
    """stable-baselines3 PPO hyperparameters, under SB3's own names, and ``ent_coef_final``."""

    learning_rate: float = Field(5e-4, gt=0)
    n_steps: int = Field(128, ge=1, description="steps per copy per rollout")
    batch_size: int = Field(512, ge=2)
    n_epochs: int = Field(4, ge=1)
    gamma: float = Field(0.99, gt=0, le=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    clip_range: float = Field(0.2, gt=0, le=1)
    ent_coef: float = Field(0.01, ge=0)
    ent_coef_final: float | None = Field(
        None,
        ge=0,
        description="if set, ent_coef is annealed linearly to this value at total_timesteps "
        "(explore early, act decisively late); None: ent_coef throughout",
    )
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)


class NetworkConfig(_Section):
    """The grid CNN (3x3 convolutions, then a linear layer) and the heads' hidden layers."""

    channels: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    strides: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    features_dim: int = Field(128, ge=1)
    net_arch: list[int] = Field(default_factory=list)

    @field_validator("channels", "strides", "net_arch")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError("every entry must be an integer >= 1")
        return value


class EvalConfig(_Section):
    """Periodic evaluation during training, on fixed seeded level sets."""

    freq: int = Field(50_000, ge=0, description="timesteps between evaluations (0: never)")
    episodes: int = Field(64, ge=1)
    distributions: list[str] = Field(default_factory=lambda: ["train", "shifted"], min_length=1)
    level_seed: int = Field(1_000_000, ge=0)
    deterministic: bool = False


class RunConfig(_Section):
    """Everything that defines a training run."""

    env: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(0, ge=0)
    n_envs: int = Field(16, ge=1)
    total_timesteps: int = Field(200_000, ge=1)
    checkpoint_freq: int = Field(50_000, ge=1, description="timesteps between checkpoints")
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    torch_threads: int = Field(1, ge=1)
    ppo: PPOConfig = Field(default_factory=PPOConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("env")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in ENVS:
            raise ValueError(f"unknown env id; valid ones: {list(ENVS)}")
        return value


def default_config_path(env_id: str) -> Path:
    """The shipped config for ``env_id``: ``experiments/configs/<name>.yaml`` where ``<name>``
    is the env's name in lower case (``goodhart/ColorMaze-v0`` -> ``colormaze.yaml``)."""
    core_class(env_id)
    return CONFIG_DIR / f"{env_id.split('/')[-1].split('-')[0].lower()}.yaml"


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``, or a ConfigError naming it."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values, not {type(data).__name__}")
    return data


def apply_override(data: dict[str, Any], assignment: str, source: str = "--set") -> None:
    """Apply ``key.sub=value`` (value parsed as YAML) to the nested mapping ``data``."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"{source} {assignment!r}: expected key=value, e.g. ppo.learning_rate=3e-4")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source} {assignment!r}: {part!r} is not a section")
        node = child
    node[leaf] = yaml.safe_load(raw)


def validate(data: dict[str, Any], source: str) -> RunConfig:
    """A RunConfig from a raw mapping, or a one-line ConfigError naming ``source`` and the key;
    the env's own knobs are checked by building the env once."""
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"{source}: {key}: unknown key; allowed here: {_allowed_keys(first['loc'])}") from None
        got = f" (got {first['input']!r})" if "input" in first and first["type"] != "missing" else ""
        raise ConfigError(f"{source}: {key}: {first['msg']}{got}") from None
    _check_env_kwargs(cfg, source)
    return cfg


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return list(model.model_fields)


def _check_env_kwargs(cfg: RunConfig, source: str) -> None:
    core = core_class(cfg.env)
    knobs = env_knobs(core)
    for key in cfg.env_kwargs:
        if key not in knobs:
            raise ConfigError(f"{source}: env_kwargs.{key}: unknown knob of {cfg.env}; allowed: {sorted(knobs)}")
    try:
        instance = core(1, **cfg.env_kwargs)
    except ValueError as err:
        raise ConfigError(f"{source}: env_kwargs: {err}") from None
    for dist in cfg.eval.distributions:
        if dist not in instance.DISTRIBUTIONS:
            raise ConfigError(f"{source}: eval.distributions: {dist!r} is not a distribution of {cfg.env}; valid ones: {list(instance.DISTRIBUTIONS)}")


def env_knobs(core: type[GridCore]) -> set[str]:
    """Keyword arguments an env accepts (its own knobs and the common ones)."""
    names: set[str] = set()
    for cls in core.__mro__:
        if "__init__" in vars(cls):
            params = inspect.signature(cls.__init__).parameters.values()
            names |= {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    return names - {"backend", "device"}


def resolve(
    env_id: str | None,
    config_path: Path | None,
    overrides: list[str],
    flags: dict[str, Any],
) -> tuple[RunConfig, Path]:
    """The validated config of a run and the file it came from (the env's shipped default if
    no file is given). ``flags`` are the command line's own options (``None``: not given)."""
    if config_path is None:
        if env_id is None:
            raise ConfigError("give --env ID or --config FILE")
        try:
            config_path = default_config_path(env_id)
        except ValueError as err:
            raise ConfigError(f"--env: {err}") from None
    data = read_yaml(config_path)
    if env_id is not None and data.get("env", env_id) != env_id:
        raise ConfigError(f"{config_path}: env is {data['env']!r} but --env says {env_id!r}")
    if env_id is not None:
        data.setdefault("env", env_id)
    for assignment in overrides:
        apply_override(data, assignment)
    for key, value in flags.items():
        if value is not None:
            data[key] = value
    return validate(data, str(config_path)), config_path


def dump(cfg: RunConfig) -> str:
    """The resolved config as YAML, every field written out."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
