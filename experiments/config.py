"""Run configs: YAML files validated before anything runs, resolved into one saved record.

A run is described by defaults (the fields below) + a YAML file + ``--set key=value``
overrides + command-line flags, in that order. The resolved config is saved in the run folder
and repeats the run exactly when passed back with ``--config``. An error names where the bad
value came from: the flag (``--timesteps``, ``--set KEY=VALUE``) or else the file.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from goodhart.envs import ENVS, core_class, file_stem
from goodhart.envs.core.checks import ArgumentError
from goodhart.envs.core.grid import GridCore, declares
from goodhart.experiments.defaults import DISTRIBUTIONS
from goodhart.experiments.seeds import EVAL_LEVEL_SEED

CONFIG_DIR = Path(__file__).parents[1] / "agents" / "configs"


class ConfigError(ValueError):
    """A config that cannot run; the message is one line naming the file (or the flag) and the key."""


class TrainerRefused(ConfigError):
    """A config asks its trainer for what it does not do; ``reason`` says what, without the
    file (``does not train with curriculum``), for tables of what each trainer can run."""

    def __init__(self, where: str, trainer: str, reason: str) -> None:
        super().__init__(f"{where}: trainer: {trainer} {reason}; drop it or use trainer: shipped")
        self.reason = reason


def origin(key: str, source: str, origins: Mapping[str, str] | None) -> str:
    """Where the value of dotted ``key`` came from: the command-line flag that set it (or a
    section above it), as recorded in ``origins`` (key -> flag text), else ``source``."""
    parts = key.split(".")
    for depth in range(len(parts), 0, -1):
        flag = (origins or {}).get(".".join(parts[:depth]))
        if flag is not None:
            return flag
    return source


class Strict(BaseModel):
    """Base of every config schema (runs, sweeps, reproductions): an unknown key is an error,
    and so is assigning a wrong value later."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Schema = TypeVar("Schema", bound=BaseModel)


def validated(schema: type[Schema], data: Any, source: str, origins: Mapping[str, str] | None = None) -> Schema:
    """``schema`` read from a raw mapping, or a one-line ConfigError naming the key, what is
    allowed (for an unknown key, the keys allowed there) and where the bad value came from:
    the flag recorded for it in ``origins`` (see :func:`origin`), else ``source``."""
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        where = origin(key, source, origins)
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: {key}: unknown key; allowed here: {_allowed_keys(schema, first['loc'])}") from None
        got = f" (got {first['input']!r})" if "input" in first and first["type"] not in ("missing", "value_error") else ""
        raise ConfigError(f"{where}: {key}: {first['msg']}{got}") from None


def _allowed_keys(schema: type[BaseModel], loc: tuple) -> list[str]:
    """The fields of the (nested) schema that holds the key at ``loc``."""
    model = schema
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list
            continue
        annotation = model.model_fields[part].annotation
        nested = [a for a in (annotation, *get_args(annotation)) if inspect.isclass(a) and issubclass(a, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


class PPOConfig(Strict):
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
    ent_coef_anneal_steps: int | None = Field(
        None,
        ge=1,
        description="steps over which ent_coef falls to ent_coef_final, which it keeps after; "
        "None: total_timesteps. Extending a run sets it to the run's former total, so the "
        "schedule the run was trained with stays the one its config.yaml describes",
    )
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)

    @model_validator(mode="after")
    def _anneal_needs_a_target(self) -> PPOConfig:
        if self.ent_coef_anneal_steps is not None and self.ent_coef_final is None:
            raise ValueError("ent_coef_anneal_steps is set but ent_coef_final is not: there is no schedule to anneal")
        return self


TILE_CHANNELS = 16  # features per grid cell of the first layer on pixels, unless set


class NetworkConfig(Strict):
    """The grid CNN (on pixels a cell-sized convolution first; 3x3 convolutions, then a linear
    layer) and the heads' hidden layers."""

    channels: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    strides: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    features_dim: int = Field(128, ge=1)
    net_arch: list[int] = Field(default_factory=list)
    share_features: bool = Field(
        True,
        description="one CNN for the policy and value heads; false: one each, so that learning the value function does not "
        "move the policy (a run that starts from a cloned policy with an untrained value head)",
    )
    tile: int | None = Field(
        None,
        ge=1,
        description="pixels only (env_kwargs.obs_mode: rgb): kernel and stride of the first "
        "convolution, which must divide the env's rgb_tile; None: rgb_tile, one feature vector "
        "per grid cell",
    )
    tile_channels: int | None = Field(
        None, ge=1, description=f"pixels only: output channels of that convolution; None: {TILE_CHANNELS}"
    )

    @field_validator("channels", "strides", "net_arch")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError("every entry must be an integer >= 1")
        return value


class LevelSets(Strict):
    """Fixed, seeded level sets, the same for every policy: the distributions, the first level
    seed, and whether policies take their most likely action instead of sampling."""

    distributions: list[str] = Field(default_factory=lambda: list(DISTRIBUTIONS), min_length=1)
    level_seed: int = Field(EVAL_LEVEL_SEED, ge=0)
    deterministic: bool = False


class EvalConfig(LevelSets):
    """Periodic evaluation during training, on fixed seeded level sets."""

    freq: int = Field(50_000, ge=0, description="timesteps between evaluations (0: never)")
    episodes: int = Field(64, ge=1)


class IteratedConfig(Strict):
    """The iterated mode of training against a reward model (Christiano et al., 2017): every
    ``freq`` steps, segments of the current policy are rated and the model is refitted."""

    dataset: str = Field(description="the preference dataset the reward model was fitted on; new labels are added to it")
    freq: int = Field(50_000, ge=1, description="timesteps between refits")
    labels: int = Field(200, ge=1, description="new labels per refit, from segments of the current policy")
    epochs: int = Field(5, ge=1, description="epochs of each refit, from the current weights, on all labels so far")
    query: Literal["random", "disagreement"] = Field(
        "random", description="which pairs of the current policy's segments are labelled: random; disagreement (the pairs "
        "the reward model's ensemble disputes most, Christiano et al. 2017; needs ensemble >= 2)")
    candidates: int = Field(4, ge=1, description="candidate pairs per label for disagreement queries: the labelled pairs are "
                            "the most disputed of candidates x labels random pairs")


class RewardModelConfig(Strict):
    """Train against a learned reward model instead of the env's reward (see
    goodhart.experiments.reward_learning); the env's reward and the true objective stay in the logs."""

    path: str = Field(description="the reward model's file stem (written by goodhart rlhf fit)")
    scale: float = Field(1.0, gt=0, description="the learned reward's standard deviation per step on the model's training segments (it is fitted to zero mean and unit deviation): set it to the size of rewards the PPO hyperparameters suit")
    kl_coef: float = Field(0.0, ge=0, description="penalty kl_coef * (log pi - log pi_init) on every reward (0: none)")
    objective: Literal["mean", "worst", "uncertainty", "single"] = Field("mean", description="how an ensemble's members make one reward: mean; worst (the lowest member, step by step); uncertainty (mean - uncertainty_coef * std); single (the first member alone)")
    uncertainty_coef: float = Field(1.0, ge=0, description="lambda of the uncertainty objective: mean - lambda * std of the members' rewards")
    eval_freq: int = Field(10_000, ge=0, description="timesteps between measurements of KL to the initial policy and of the learned, env and true returns (0: never)")
    eval_episodes: int = Field(32, ge=1, description="episodes of each measurement, on the eval level seed's first distribution")
    eval_states: int = Field(2000, ge=1, description="size of the fixed state set on which KL(pi || pi_init) is measured")
    iterated: IteratedConfig | None = None


class AlarmConfig(Strict):
    """The ``alarm:`` section of a run config: when the divergence alarm fires, and what it then
    does (:mod:`goodhart.experiments.alarm` states its tests)."""

    audit_share: float = Field(0.05, gt=0, le=1, description="share of finished episodes whose true return the alarm sees")
    audit_noise: float = Field(0.0, ge=0, description="standard deviation of Gaussian noise on each audited true return")
    window: int = Field(50_000, ge=1, description="environment steps the tests look back over")
    min_audited: int = Field(20, ge=4, description="audited episodes the tests need; the window reaches back to hold them")
    alpha: float = Field(0.001, gt=0, lt=1, description="level of each one-sided test")
    patience: int = Field(20_000, ge=0, description="environment steps the tests must keep firing before the alarm sounds")
    min_correlation: float | None = Field(0.0, ge=-1, lt=1, description="fire when the proxy-true correlation is significantly below it (null: never)")
    on_alarm: Literal["log", "stop", "rollback"] = Field(
        "log", description="log: note it and train on; stop: end training there; rollback: end training and keep the "
        "policy from the step where the audited true return's window mean was highest")
    seed: int | None = Field(None, ge=0, description="seed of the audit sample (default: the run's seed)")


class CurriculumConfig(Strict):
    """The ``curriculum:`` section of a run config: which levels PPO trains on
    (:mod:`goodhart.agents.curriculum`; none: fresh levels from the generator, as ``dr``
    without its counts)."""

    method: Literal["dr", "plr", "accel"] = Field("plr", description="dr: fresh levels (only counted); plr: Prioritized Level Replay (robust: PLR⊥); accel: PLR⊥ plus edits of replayed levels")
    score: Literal["pvl", "maxmc", "oracle", "learnability"] = Field("pvl", description="the regret estimator that ranks levels: pvl (positive value loss), maxmc, oracle (exact optimal return minus the policy's; needs the env's optimal_return), learnability p(1-p)")
    robust: bool = Field(True, description="PLR⊥: learn only from replayed levels; new (and edited) levels are only scored. False: plain PLR, which also learns from new levels")
    buffer_size: int = Field(1000, ge=1, description="levels the buffer holds (it replays once it holds n_envs)")
    replay_prob: float = Field(0.5, ge=0, le=1, description="probability that a rollout replays buffer levels rather than scoring new ones")
    temperature: float = Field(0.3, gt=0, description="rank prioritization temperature beta: P proportional to (1/rank)^(1/beta)")
    staleness: float = Field(0.3, ge=0, le=1, description="weight rho of staleness (rollouts since a level was played) against score in the replay distribution")
    edits: list[str] = Field(default_factory=list, description="ACCEL: the env's edits it may use (empty: all of the env's EDITS)")
    num_edits: int = Field(3, ge=1, description="ACCEL: edits applied to each replayed level")

    def settings(self) -> Any:
        """The :class:`~goodhart.agents.curriculum.CurriculumSettings` the training callback takes."""
        from goodhart.agents.curriculum import CurriculumSettings

        return CurriculumSettings(**{**self.model_dump(), "edits": tuple(self.edits)})


class RunConfig(Strict):
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
    init: str | None = Field(None, description="a policy whose weights the policy starts from (a policy file's stem, or a seed folder runs/NAME/seedN) instead of a random initialisation, e.g. the behaviour-cloned policy of goodhart rlhf clone; its env, observations and network must be this run's")
    reward_model: RewardModelConfig | None = None
    alarm: AlarmConfig | None = Field(None, description="a divergence alarm on audited episodes (goodhart.experiments.alarm); none by default")
    curriculum: CurriculumConfig | None = Field(None, description="a level curriculum (dr, plr, accel: goodhart.agents.curriculum); none by default: fresh levels every episode")
    trainer: Literal["shipped", "example", "zoo"] = Field("shipped", description="who trains the run (goodhart.experiments.trainers): shipped, this config's PPO settings; example, the single-file CleanRL-style PPO with its generic settings; zoo, SB3's PPO with RL Zoo's hyperparameters. With example or zoo, n_envs, ppo and network are the trainer's")

    @field_validator("env")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in ENVS:
            raise ValueError(f"unknown env id; valid ones: {list(ENVS)}")
        return value


def config_path(config: str) -> Path:
    """Where a spec's ``config:`` lives: an absolute path as given, any other name under
    ``agents/configs/`` (the shipped run configs)."""
    return Path(config) if Path(config).is_absolute() else CONFIG_DIR / config


def default_config_path(env_id: str) -> Path:
    """The shipped config for ``env_id``: ``agents/configs/<name>.yaml`` where ``<name>``
    is the env's name in lower case (``goodhart/SomeEnv-v0`` -> ``someenv.yaml``)."""
    core_class(env_id)
    return CONFIG_DIR / f"{file_stem(env_id)}.yaml"


def yaml_problem(err: yaml.YAMLError) -> str:
    """What is wrong in a YAML text and where, in one line: ``line L, column C: PROBLEM
    (CONTEXT from line L', column C')`` (lines and columns from 1, as editors count them)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or (str(err).splitlines() or ["not valid YAML"])[0]
    context, started = getattr(err, "context", None), getattr(err, "context_mark", None)

    def at(m: Any) -> str:
        return f"line {m.line + 1}, column {m.column + 1}"

    if context and started is not None and (mark is None or (started.line, started.column) != (mark.line, mark.column)):
        context = f"{context} from {at(started)}"
    return (f"{at(mark)}: " if mark is not None else "") + problem + (f" ({context})" if context else "")


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``, or a ConfigError naming it (and, for a syntax error, the
    line and column of the problem)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values, not {type(data).__name__}")
    return data


def apply_override(data: dict[str, Any], assignment: str, source: str = "--set") -> str:
    """Apply ``key.sub=value`` (value parsed as YAML) to the nested mapping ``data``; returns
    the dotted key."""
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
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} {assignment!r}: the value is not valid YAML ({yaml_problem(err)})") from None
    return key.strip()


def validate(data: dict[str, Any], source: str, origins: Mapping[str, str] | None = None) -> RunConfig:
    """A RunConfig from a raw mapping, or a one-line ConfigError naming the key and where its
    value came from: the flag recorded for it in ``origins`` (dotted key -> flag text, e.g.
    ``{"total_timesteps": "--timesteps"}``), else ``source``. The env's own knobs are checked
    by building the env once."""
    cfg = validated(RunConfig, data, source, origins)
    if cfg.trainer != "shipped":
        cfg = _with_trainer(cfg, source, origins)
    instance = _check_env_kwargs(cfg, source, origins)
    _resolve_pixel_layer(cfg.network, instance, source, origins)
    if cfg.curriculum is not None:
        if cfg.reward_model is not None:
            raise ConfigError(f"{origin('curriculum', source, origins)}: curriculum: a level curriculum cannot train against a reward model (reward_model) yet; drop one of them")
        _check_curriculum(cfg.curriculum, instance, origin("curriculum", source, origins))
    return cfg


def _with_trainer(cfg: RunConfig, source: str, origins: Mapping[str, str] | None) -> RunConfig:
    """``cfg`` with the n_envs, ppo and network of its trainer (goodhart.experiments.trainers),
    or a ConfigError where the config asks the trainer for what it does not do."""
    from goodhart.experiments.trainers import SHIPPED_ONLY, TRAINER_SECTIONS, trainer_settings

    where = origin("trainer", source, origins)
    for key in SHIPPED_ONLY:
        if getattr(cfg, key) is not None and cfg.trainer == "example":
            raise TrainerRefused(where, cfg.trainer, f"does not train with {key}")
    for key, flag in (origins or {}).items():
        if key.split(".")[0] in TRAINER_SECTIONS:
            raise ConfigError(f"{flag}: trainer: {cfg.trainer} trains with its own n_envs, ppo and network; drop {flag} or use trainer: shipped")
    try:
        settings = trainer_settings(cfg.trainer, cfg.env)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None
    return validated(RunConfig, cfg.model_dump() | settings, f"{where} (the {cfg.trainer} trainer's settings)")


def _check_curriculum(cur: CurriculumConfig, env: GridCore, where: str) -> None:
    """What the curriculum asks of the env, which must declare it (by its curriculum hooks)."""
    name = type(env).__name__
    if cur.score in ("oracle", "learnability") and not declares(env, "optimal_return"):
        raise ConfigError(f"{where}: curriculum.score: {cur.score} needs the optimal return of a level, which {name} does not compute; use pvl or maxmc")
    if cur.method == "accel":
        if not env.EDITS:
            raise ConfigError(f"{where}: curriculum.method: accel edits levels, and {name} declares no edits (EDITS)")
        unknown = [e for e in cur.edits if e not in env.EDITS]
        if unknown:
            raise ConfigError(f"{where}: curriculum.edits: {unknown} are not edits of {name}; valid ones: {list(env.EDITS)}")
    elif cur.edits:
        raise ConfigError(f"{where}: curriculum.edits: only ACCEL edits levels (method: accel), not {cur.method}")


def _check_env_kwargs(cfg: RunConfig, source: str, origins: Mapping[str, str] | None) -> GridCore:
    core = core_class(cfg.env)
    knobs = env_knobs(core)
    for key in cfg.env_kwargs:
        if key not in knobs:
            where = origin(f"env_kwargs.{key}", source, origins)
            raise ConfigError(f"{where}: env_kwargs.{key}: unknown knob of {cfg.env}; allowed: {sorted(knobs)}")
    while True:
        try:
            instance = core(1, **cfg.env_kwargs)
            break
        except ValueError as err:
            spelled = _spelled_choice(cfg.env_kwargs, err)
            if spelled is not None:  # e.g. reward: true, where the knob takes the string 'true'
                cfg.env_kwargs[err.argument] = spelled
                continue
            key = f"env_kwargs.{err.argument}" if isinstance(err, ArgumentError) else "env_kwargs"
            raise ConfigError(f"{origin(key, source, origins)}: env_kwargs: {err}") from None
    for dist in cfg.eval.distributions:
        if dist not in instance.DISTRIBUTIONS:
            where = origin("eval.distributions", source, origins)
            raise ConfigError(f"{where}: eval.distributions: {dist!r} is not a distribution of {cfg.env}; valid ones: {list(instance.DISTRIBUTIONS)}")
    return instance


def _spelled_choice(env_kwargs: dict[str, Any], err: ValueError) -> str | None:
    """The string choice of a knob that a YAML value stands for, where YAML read the text as
    something else: ``reward: true`` is the boolean True, but the knob takes the strings
    'sensor' or 'true'. None unless ``err`` refuses a non-string value of a knob with a few
    allowed values and exactly one of them, read as YAML, is that value (``true``, ``null``,
    ``1.5``...). Knobs that take booleans or numbers accept those, so they never get here."""
    if not isinstance(err, ArgumentError) or not err.choices or err.argument not in env_kwargs:
        return None
    value = env_kwargs[err.argument]
    if isinstance(value, str) or (value is not None and not isinstance(value, bool | int | float)):
        return None
    matches = []
    for choice in err.choices:
        if isinstance(choice, str) and choice not in matches:
            try:
                read = yaml.safe_load(choice)
            except yaml.YAMLError:
                continue
            if type(read) is type(value) and read == value:
                matches.append(choice)
    return matches[0] if len(matches) == 1 else None


def _resolve_pixel_layer(network: NetworkConfig, env: GridCore, source: str, origins: Mapping[str, str] | None) -> None:
    """Fill in the pixel layer's defaults from the env (the saved config then says exactly
    which network was trained), or reject pixel settings on symbolic planes."""
    if env.obs_mode != "rgb":
        for key in ("tile", "tile_channels"):
            if getattr(network, key) is not None:
                raise ConfigError(f"{origin(f'network.{key}', source, origins)}: network.{key}: only for pixels (env_kwargs.obs_mode: rgb); leave it out for {env.obs_mode!r} observations")
        return
    if network.tile is None:
        network.tile = env.rgb_tile
    elif env.rgb_tile % network.tile:
        raise ConfigError(f"{origin('network.tile', source, origins)}: network.tile: must divide env_kwargs.rgb_tile={env.rgb_tile}, so that no output straddles two cells (got {network.tile})")
    if network.tile_channels is None:
        network.tile_channels = TILE_CHANNELS


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
    flags: Mapping[str, tuple[str, Any]],
) -> tuple[RunConfig, Path]:
    """The validated config of a run and the file it came from (the env's shipped default if
    no file is given). ``overrides`` are ``--set`` assignments; ``flags`` the command line's own
    options, config key -> (flag, value) (value ``None``: not given). An error in a value set
    by a flag names the flag."""
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
    origins: dict[str, str] = {}
    for assignment in overrides:
        origins[apply_override(data, assignment)] = f"--set {assignment}"
    for key, (flag, value) in flags.items():
        if value is not None:
            data[key] = value
            origins[key] = flag
    return validate(data, str(config_path), origins), config_path


def continued(previous: RunConfig, requested: RunConfig, saved: Path) -> RunConfig:
    """The config a run continues with when resumed with ``requested``: the run's ``previous``
    config (read from ``saved``), whose ``total_timesteps`` may be raised (extending the run),
    and nothing else changed. Extending keeps an entropy schedule on the steps it was planned
    over (``ppo.ent_coef_anneal_steps`` := the former total, then ``ent_coef_final`` to the
    end), so the schedule the run trained with stays the one its config describes."""
    if requested.total_timesteps < previous.total_timesteps:
        raise ConfigError(
            f"{saved}: total_timesteps {requested.total_timesteps} is below the run's {previous.total_timesteps}; "
            f"a run can be extended, not shortened (pass --timesteps {previous.total_timesteps} or more)"
        )
    horizon = previous.ppo.ent_coef_anneal_steps
    if horizon is None and previous.ppo.ent_coef_final is not None and requested.total_timesteps > previous.total_timesteps:
        horizon = previous.total_timesteps
    if requested.ppo.ent_coef_anneal_steps is None:
        requested = requested.model_copy(update={"ppo": requested.ppo.model_copy(update={"ent_coef_anneal_steps": horizon})})
    expected = previous.model_copy(update={
        "total_timesteps": requested.total_timesteps,
        "ppo": previous.ppo.model_copy(update={"ent_coef_anneal_steps": horizon}),
    })
    if requested != expected:
        diff = [k for k, v in requested.model_dump().items() if expected.model_dump()[k] != v]
        raise ConfigError(
            f"{saved}: the run was started with a different config ({', '.join(diff)} differ); resume with "
            "the same options (only --timesteps may be raised, to extend the run)"
        )
    return requested


def dump(cfg: RunConfig) -> str:
    """The resolved config as YAML, every field written out."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
