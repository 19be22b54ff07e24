"""Training runs: PPO on the batched VecEnv, with everything the run produces in its folder.

Run folder ``<out>/<name>/seed<k>/``::

    config.yaml          the resolved config (repeats the run with --config)
    tb_1/                TensorBoard events: SB3's scalars, rollout/ep_true_return_mean and
                         the env's outcome rates, eval/<distribution>/<metric>
    checkpoints/         step_<n>.pt, the newest three (resume with --resume; an unreadable
                         newest one is skipped for the next older)
    episodes.csv         one row per finished training episode: timestep, env, outcomes
    eval.csv             one row per periodic evaluation and distribution
    reward_model.csv     with a reward model: KL to the initial policy and the learned, env
                         and true returns at step 0 and every reward_model.eval_freq steps
    alarm.json           with an alarm: where the divergence alarm fired, why, and what it did
    curriculum.csv       with a level curriculum: one row per rollout (goodhart.agents.curriculum)
    model.safetensors    the final policy weights (safe to load: no code)
    model.json           its config, spaces and checksum
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.vec_env import VecMonitor

from goodhart.agents.checkpoint import from_tensors, newest_readable, restore_checkpoint, save_checkpoint
from goodhart.agents.curriculum import LevelCurriculum
from goodhart.agents.files import CsvLog, write_atomic
from goodhart.agents.model_io import LoadedModel, ModelFileError, find_policy, load_policy, save_model
from goodhart.agents.policies import ModelPolicy, run_episodes
from goodhart.agents.ppo import EntropySchedule, build_ppo, set_torch_threads
from goodhart.envs import core_class, make_vec
from goodhart.experiments.alarm_monitor import AlarmMonitor, stopped_by_alarm
from goodhart.experiments.config import ConfigError, NetworkConfig, RunConfig, continued, dump, read_yaml, validate
from goodhart.experiments.curves import ALARM_FILE
from goodhart.experiments.metrics import summarize
from goodhart.experiments.reward_learning.training import RewardModelTraining


CURRICULUM_KEY = "curriculum"  # a checkpoint's key for the level curriculum's state


def run_dir(out: Path, name: str, seed: int) -> Path:
    return Path(out) / name / f"seed{seed}"


class TrainingMonitor(BaseCallback):
    """Logs what the proxy reward hides: per finished episode the true return beside the
    proxy return and the env's outcomes (TensorBoard means per rollout, and episodes.csv);
    periodic evaluation on fixed level sets (eval/...); checkpoints every ``checkpoint_freq``
    steps, taken between rollouts so that a resumed run continues exactly."""

    def __init__(
        self,
        cfg: RunConfig,
        folder: Path,
        evaluate: Callable[[], list[dict[str, Any]]],
        resumed_at: int | None,
        progress: Callable[[int], None] | None = None,
        saved_with: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.saved_with = saved_with
        self.progress = progress
        self.folder = folder
        self.evaluate = evaluate
        self.episodes = CsvLog(folder / "episodes.csv", resumed_at)
        self.evals = CsvLog(folder / "eval.csv", resumed_at)
        start = resumed_at or 0
        self.next_checkpoint = start + cfg.checkpoint_freq
        self.next_eval = (start // cfg.eval.freq + 1) * cfg.eval.freq if cfg.eval.freq else None
        self.finished: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        for env_index, info in enumerate(self.locals["infos"]):
            if "outcome" in info:
                self.finished.append(info["outcome"])
                self.episodes.rows.append({"timestep": self.num_timesteps, "env": env_index, **info["outcome"]})
        return True

    def _on_rollout_end(self) -> None:
        if self.finished:
            for key, value in summarize(self.finished, core_class(self.cfg.env)).items():
                if not math.isnan(value):
                    self.logger.record(f"rollout/ep_{key}_mean", value)
            self.logger.record("rollout/episodes", len(self.finished))
        self.finished = []
        self.episodes.write(self.episodes.rows)
        self.episodes.rows = []
        if self.progress is not None:
            self.progress(self.num_timesteps)

    def _on_training_end(self) -> None:
        """The episodes of a rollout cut short (a callback, such as the divergence alarm, ended training)."""
        self.episodes.write(self.episodes.rows)
        self.episodes.rows = []

    def _on_rollout_start(self) -> None:
        """Between rollouts: the policy has just been updated, the env is mid-episode."""
        if self.next_eval is not None and self.num_timesteps >= self.next_eval:
            self.run_evaluation()
            self.next_eval += self.cfg.eval.freq
        if self.num_timesteps >= self.next_checkpoint:
            self.save()
            self.next_checkpoint += self.cfg.checkpoint_freq

    def save(self) -> None:
        """A checkpoint of the run now, with the state of what else trains with it (``saved_with``)."""
        extra = self.saved_with() if self.saved_with is not None else None
        save_checkpoint(self.model, self.model.get_env().venv, self.folder / "checkpoints", extra=extra)

    def run_evaluation(self) -> None:
        rows = self.evaluate()
        for row in rows:
            for key, value in row.items():
                if key not in ("timestep", "distribution") and not math.isnan(value):
                    self.logger.record(f"eval/{row['distribution']}/{key}", value)
        self.evals.write(rows)


def evaluation(model, cfg: RunConfig) -> Callable[[], list[dict[str, Any]]]:
    """A function that evaluates ``model``'s current policy on each eval distribution's fixed
    level set and returns one row of mean outcomes per distribution."""

    def run() -> list[dict[str, Any]]:
        model.policy.set_training_mode(False)
        live = LoadedModel(policy=model.policy, config=cfg.model_dump(mode="json"), env_id=cfg.env)
        policy = ModelPolicy(live, deterministic=cfg.eval.deterministic)
        rows = []
        for dist in cfg.eval.distributions:
            outcomes = run_episodes(
                policy,
                cfg.env,
                cfg.env_kwargs,
                distribution=dist,
                episodes=cfg.eval.episodes,
                level_seed=cfg.eval.level_seed,
            )
            rows.append({"timestep": model.num_timesteps, "distribution": dist, **summarize(outcomes, core_class(cfg.env))})
        return rows

    return run


def open_run(cfg: RunConfig, folder: Path, resume: bool, start_if_missing: bool) -> tuple[RunConfig, dict[str, Any] | None]:
    """Check the run folder against the request; the config the run trains with and the
    checkpoint it continues from (None: step 0). Every check passes before anything is
    written: then a new run's folder and config.yaml are created, or an extended run's
    config.yaml is rewritten.

    ``resume``: continue the run in ``folder``, which must hold one unless ``start_if_missing``
    (then a missing run is started). Without ``resume`` the folder must not hold a run yet.
    """
    saved = folder / "config.yaml"
    if not saved.exists():
        if resume and not start_if_missing:
            raise ConfigError(f"--resume: {folder} holds no run (no config.yaml); check --out, --name and --seed, or pass --resume-or-start to start it")
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(saved, lambda tmp: tmp.write_text(dump(cfg)))
        return cfg, None
    if not resume:
        raise ConfigError(f"{folder} already holds a run; pass --resume to continue it, or choose another --name or --out")
    previous = validate(read_yaml(saved), str(saved))
    run_cfg = continued(previous, cfg, saved)
    try:
        found = newest_readable(folder / "checkpoints", lambda line: print(f"warning: {line}", file=sys.stderr))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if run_cfg != previous:
        write_atomic(saved, lambda tmp: tmp.write_text(dump(run_cfg)))
        schedule = ""
        if run_cfg.ppo.ent_coef_final is not None:
            schedule = f"; the entropy bonus keeps its schedule over the first {run_cfg.ppo.ent_coef_anneal_steps} steps, then stays at {run_cfg.ppo.ent_coef_final:g}"
        print(f"extending {folder} from {previous.total_timesteps} to {run_cfg.total_timesteps} steps (recorded in config.yaml{schedule})", file=sys.stderr)
    if found is None:
        print(f"no checkpoint in {folder / 'checkpoints'}: starting from step 0", file=sys.stderr)
        return run_cfg, None
    path, state = found
    print(f"resuming {folder} from step {state['num_timesteps']} ({path.name})", file=sys.stderr)
    return run_cfg, state


def steps_taken(start: int, total_timesteps: int, rollout: int) -> int:
    """The step count a run from ``start`` ends at: PPO collects whole rollouts of ``rollout``
    (n_envs * n_steps) steps until it reaches ``total_timesteps``, so it stops at the first
    rollout's end at or past it (20,480 for 20,000 steps of 1,024-step rollouts)."""
    return start + math.ceil(max(0, total_timesteps - start) / rollout) * rollout


class StepsBar(ProgressBarCallback):
    """stable-baselines3's progress bar (steps/s and ETA) out of the steps the run really
    takes, whole rollouts (see :func:`steps_taken`), rather than the total asked for, which the
    count would pass; never past its total."""

    def _on_training_start(self) -> None:
        from stable_baselines3.common.callbacks import tqdm

        start, total = self.model.num_timesteps, self.locals["total_timesteps"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tqdm's "rich is experimental", which SB3 hides too
            self.pbar = tqdm(total=steps_taken(start, total, self.model.n_steps * self.training_env.num_envs) - start)

    def _on_step(self) -> bool:
        self.pbar.update(max(0, min(self.training_env.num_envs, self.pbar.total - self.pbar.n)))
        return True


def starting_policy(cfg: RunConfig) -> LoadedModel:
    """The policy ``cfg.init`` a run starts from (a policy file, or a seed folder: see
    :func:`~goodhart.agents.model_io.find_policy`), checked against the run's env,
    observations and network; one ConfigError line otherwise."""
    try:
        loaded = load_policy(find_policy(cfg.init))
    except ModelFileError as err:
        raise ConfigError(f"init: {err}") from None
    if loaded.env_id != cfg.env:
        raise ConfigError(f"init: {cfg.init} is a policy of {loaded.env_id}, not {cfg.env}")
    space = make_vec(cfg.env, 1, **cfg.env_kwargs).observation_space
    if loaded.policy.observation_space != space:
        raise ConfigError(f"init: {cfg.init} reads observations {loaded.policy.observation_space}, this run's env gives {space}")
    network = NetworkConfig(**{k: v for k, v in loaded.config["network"].items() if k in NetworkConfig.model_fields})
    if network != cfg.network:
        raise ConfigError(f"init: {cfg.init} has the network {network.model_dump()}, this run's config asks for {cfg.network.model_dump()}")
    return loaded


def train(cfg: RunConfig, folder: Path, *, resume: bool = False, start_if_missing: bool = False, progress_bar: bool = True,
          progress: Callable[[int], None] | None = None) -> Path:
    """Train the run described by ``cfg`` in ``folder``, or continue it (``resume``; see
    :func:`open_run`), possibly to a larger ``total_timesteps``; returns the model path stem
    (``folder/model``). ``progress(steps)`` is called after every rollout (the experiment
    engine's display)."""
    if cfg.trainer == "example":
        return train_example(cfg, folder, resume=resume, start_if_missing=start_if_missing, progress=progress)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for, but torch sees no GPU on this machine (use device: cpu or auto)")
    rlhf = None
    if cfg.reward_model is not None:  # the reward replaced by a learned one (goodhart.experiments.reward_learning)
        rlhf = RewardModelTraining(cfg, folder)  # checks the model and its data before the folder is made
    start = starting_policy(cfg) if cfg.init is not None else None
    cfg, checkpoint = open_run(cfg, folder, resume, start_if_missing)
    resumed_at = None if checkpoint is None else int(checkpoint["num_timesteps"])
    if rlhf is not None:
        rlhf.cfg = cfg  # as extended, if it was
    set_torch_threads(cfg.torch_threads)
    venv = make_vec(cfg.env, cfg.n_envs, seed=cfg.seed, **cfg.env_kwargs)
    if rlhf is not None:
        venv = rlhf.wrap(venv)
    env = VecMonitor(venv)
    model = build_ppo(
        env,
        ppo=cfg.ppo.model_dump(),
        network=cfg.network.model_dump(),
        seed=cfg.seed,
        device=cfg.device,
        tensorboard_log=folder,
    )
    if start is not None:  # before attach: the initial policy of a KL penalty is the one started from
        model.policy.load_state_dict(start.policy.state_dict())
    if rlhf is not None:
        rlhf.attach(model)
    if checkpoint is not None:
        restore_checkpoint(model, venv, checkpoint)
    curriculum = None
    if cfg.curriculum is not None:
        curriculum = LevelCurriculum(cfg.curriculum.settings(), venv, cfg.ppo.gamma, cfg.seed, folder, resumed_at)
        if checkpoint is not None and CURRICULUM_KEY in checkpoint:
            curriculum.load_state_dict(from_tensors(checkpoint[CURRICULUM_KEY]))
    saved_with = None if curriculum is None else (lambda: {CURRICULUM_KEY: curriculum.state_dict()})
    monitor = TrainingMonitor(cfg, folder, evaluation(model, cfg), resumed_at, progress, saved_with)
    callbacks = [monitor]
    if cfg.alarm is not None:  # after the monitor, which cuts episodes.csv back to the checkpoint
        callbacks.append(AlarmMonitor(cfg, folder, resumed_at))
    if cfg.ppo.ent_coef_final is not None:
        horizon = cfg.ppo.ent_coef_anneal_steps or cfg.total_timesteps
        callbacks.append(EntropySchedule(cfg.ppo.ent_coef, cfg.ppo.ent_coef_final, horizon))
    if rlhf is not None:
        callbacks += rlhf.callbacks(resumed_at)
    if curriculum is not None:  # after the monitor: a checkpoint holds the buffer before the next rollout's levels are picked
        callbacks.append(curriculum)
    if progress_bar:
        callbacks.append(StepsBar())
    remaining = cfg.total_timesteps - model.num_timesteps
    started = time.time()
    if remaining > 0 and stopped_by_alarm(folder):
        print(f"{folder}: its divergence alarm ended training at step {model.num_timesteps} ({ALARM_FILE}); not training on", file=sys.stderr)
        remaining = 0
    if remaining > 0:
        model.learn(
            remaining,
            callback=CallbackList(callbacks),
            reset_num_timesteps=resumed_at is None,
            tb_log_name="tb",
        )
        monitor.save()
        if cfg.eval.freq:
            monitor.run_evaluation()
            model.logger.dump(model.num_timesteps)
    save_model(model, folder / "model", cfg.model_dump(mode="json"))
    elapsed = time.time() - started
    print(f"trained {folder}: {model.num_timesteps} steps in {elapsed:.0f} s", file=sys.stderr)
    return folder / "model"


def train_example(cfg: RunConfig, folder: Path, *, resume: bool, start_if_missing: bool,
                  progress: Callable[[int], None] | None) -> Path:
    """Train the run with the single-file example PPO (:mod:`goodhart.agents.example_ppo`),
    its generic settings (the run config's n_envs, ppo and network, set from them), and write
    its policy as the project's model file. It keeps no checkpoints: a run resumed before its
    model was written trains again from step 0."""
    from goodhart.agents.example_ppo import Args, policy_tensors, train as example_train
    from goodhart.agents.model_io import save_policy_tensors

    model = folder / "model"
    if resume and (folder / "config.yaml").exists() and load_policy_quietly(model):
        print(f"{folder}: trained already (the example trainer's model is there)", file=sys.stderr)
        return model
    if resume and (folder / "config.yaml").exists():
        print(f"{folder}: the example trainer keeps no checkpoints; training again from step 0", file=sys.stderr)
        (folder / "config.yaml").unlink()
    cfg, _ = open_run(cfg, folder, False, start_if_missing)
    started = time.time()
    args = Args(env_id=cfg.env, env_kwargs=dict(cfg.env_kwargs), seed=cfg.seed, total_timesteps=cfg.total_timesteps, torch_threads=cfg.torch_threads)
    with open(folder / "train.log", "w") as log, contextlib.redirect_stdout(log):  # its per-rollout lines
        agent = example_train(args, folder, progress)
    space = make_vec(cfg.env, 1, **cfg.env_kwargs)
    save_policy_tensors(policy_tensors(agent), space.observation_space, space.action_space, model, cfg.model_dump(mode="json"))
    print(f"trained {folder} with the example PPO: {cfg.total_timesteps} steps in {time.time() - started:.0f} s", file=sys.stderr)
    return model


def load_policy_quietly(model: Path) -> bool:
    """Whether a readable model file is at ``model``."""
    try:
        load_policy(model)
    except ModelFileError:
        return False
    return True


@dataclass(frozen=True)
class TrainSpec:
    """A training job of the experiment engine: the run's config and its folder."""

    config: RunConfig
    folder: Path


def train_stage(spec: TrainSpec, progress: Callable[[int], None]) -> None:
    """Train the run, or continue it from its newest checkpoint (a stage of the engine)."""
    train(spec.config, spec.folder, resume=True, start_if_missing=True, progress_bar=False, progress=progress)
