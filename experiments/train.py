"""Training runs: PPO on the batched VecEnv, with everything the run produces in its folder.

Run folder ``<out>/<name>/seed<k>/``::

    config.yaml          the resolved config (repeats the run with --config)
    tb_1/                TensorBoard events: SB3's scalars, rollout/ep_true_return_mean and
                         the env's outcome rates, eval/<distribution>/<metric>
    checkpoints/         step_<n>.pt, the newest three (resume with --resume)
    episodes.csv         one row per finished training episode: timestep, env, outcomes
    eval.csv             one row per periodic evaluation and distribution
    model.safetensors    the final policy weights (safe to load: no code)
    model.json           its config, spaces and checksum
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecMonitor

from goodhart.agents.checkpoint import list_checkpoints, read_checkpoint, restore_checkpoint, save_checkpoint
from goodhart.agents.model_io import LoadedModel, save_model
from goodhart.agents.policies import ModelPolicy, run_episodes
from goodhart.agents.ppo import EntropySchedule, build_ppo, set_torch_threads
from goodhart.envs import core_class, make_vec
from goodhart.experiments.config import ConfigError, RunConfig, dump, read_yaml, validate
from goodhart.experiments.metrics import summarize


def run_dir(out: Path, name: str, seed: int) -> Path:
    return Path(out) / name / f"seed{seed}"


class CsvLog:
    """An append-only CSV whose first column is the timestep; on resume, rows after the
    checkpoint are dropped so the file matches the restored run."""

    def __init__(self, path: Path, keep_until: int | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.fields: list[str] | None = None
        if keep_until is not None and path.exists():
            with path.open(newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["timestep"]) <= keep_until]
            self.path.unlink()
            self.write(kept)
        elif path.exists():
            path.unlink()

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)


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
    ) -> None:
        super().__init__()
        self.cfg = cfg
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

    def _on_rollout_start(self) -> None:
        """Between rollouts: the policy has just been updated, the env is mid-episode."""
        if self.next_eval is not None and self.num_timesteps >= self.next_eval:
            self.run_evaluation()
            self.next_eval += self.cfg.eval.freq
        if self.num_timesteps >= self.next_checkpoint:
            save_checkpoint(self.model, self.model.get_env().venv, self.folder / "checkpoints")
            self.next_checkpoint += self.cfg.checkpoint_freq

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


def prepare_folder(cfg: RunConfig, folder: Path, resume: bool) -> int | None:
    """Create or check the run folder; the checkpoint step to resume from (None: fresh)."""
    saved = folder / "config.yaml"
    if saved.exists():
        if not resume:
            raise ConfigError(f"{folder} already holds a run; pass --resume to continue it, or choose another --name or --out")
        previous = validate(read_yaml(saved), str(saved))
        if previous != cfg:
            diff = [k for k, v in cfg.model_dump().items() if previous.model_dump()[k] != v]
            raise ConfigError(f"{saved}: the run was started with a different config ({', '.join(diff)} differ); resume with the same options")
        checkpoints = list_checkpoints(folder / "checkpoints")
        return int(checkpoints[-1].stem.split("_")[1]) if checkpoints else None
    folder.mkdir(parents=True, exist_ok=True)
    saved.write_text(dump(cfg))
    return None


def train(cfg: RunConfig, folder: Path, *, resume: bool = False, progress_bar: bool = True) -> Path:
    """Train (or resume) the run described by ``cfg`` in ``folder``; returns the model path
    stem (``folder/model``)."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for, but torch sees no GPU on this machine (use device: cpu or auto)")
    resumed_at = prepare_folder(cfg, folder, resume)
    set_torch_threads(cfg.torch_threads)
    venv = make_vec(cfg.env, cfg.n_envs, seed=cfg.seed, **cfg.env_kwargs)
    env = VecMonitor(venv)
    model = build_ppo(
        env,
        ppo=cfg.ppo.model_dump(),
        network=cfg.network.model_dump(),
        seed=cfg.seed,
        device=cfg.device,
        tensorboard_log=folder,
    )
    if resumed_at is not None:
        latest = list_checkpoints(folder / "checkpoints")[-1]
        restore_checkpoint(model, venv, read_checkpoint(latest))
        print(f"resuming {folder} from step {model.num_timesteps} ({latest.name})", file=sys.stderr)
    elif resume:
        print(f"no checkpoint in {folder / 'checkpoints'}: starting from step 0", file=sys.stderr)
    monitor = TrainingMonitor(cfg, folder, evaluation(model, cfg), resumed_at)
    callbacks = [monitor]
    if cfg.ppo.ent_coef_final is not None:
        callbacks.append(EntropySchedule(cfg.ppo.ent_coef, cfg.ppo.ent_coef_final, cfg.total_timesteps))
    remaining = cfg.total_timesteps - model.num_timesteps
    started = time.time()
    if remaining > 0:
        model.learn(
            remaining,
            callback=CallbackList(callbacks),
            reset_num_timesteps=resumed_at is None,
            tb_log_name="tb",
            progress_bar=progress_bar,
        )
        save_checkpoint(model, venv, folder / "checkpoints")
        if cfg.eval.freq:
            monitor.run_evaluation()
            model.logger.dump(model.num_timesteps)
    save_model(model, folder / "model", cfg.model_dump(mode="json"))
    elapsed = time.time() - started
    print(f"trained {folder}: {model.num_timesteps} steps in {elapsed:.0f} s", file=sys.stderr)
    return folder / "model"
