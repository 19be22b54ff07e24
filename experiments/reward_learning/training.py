"""What ``goodhart train`` adds for a config with a ``reward_model`` section
(:class:`RewardModelTraining`):

* the VecEnv's reward becomes the model's (:class:`RewardModelVecEnv`), with an optional KL
  penalty towards the initial policy;
* every ``eval_freq`` steps (and at step 0) the run measures ``KL(pi || pi_init)`` on a fixed
  set of evaluation states (:func:`evaluation_states`) and, on fixed levels, the learned
  return, the env's own return and the true return, into ``reward_model.csv`` and TensorBoard
  (``rlhf/...``): the x and y axes of Gao et al.'s over-optimization curves;
* in the iterated mode, every ``iterated.freq`` steps segments of the current policy are
  rated and the model is refitted on all labels so far (Christiano et al., 2017); each
  round's model and dataset are kept in ``reward_model/`` of the run folder.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from goodhart.agents.files import CsvLog
from goodhart.agents.model_io import LoadedModel
from goodhart.agents.policies import ModelPolicy, Policy, run_episodes
from goodhart.envs import core_class
from goodhart.envs.core.vec_env import GridVecEnv
from goodhart.experiments.config import ConfigError, RunConfig
from goodhart.experiments.metrics import summarize
from goodhart.experiments.reward_learning.dataset import DatasetFileError, PreferenceDataset, load_dataset, save_dataset
from goodhart.experiments.reward_learning.reward_env import KLPenalty, RewardModelVecEnv, TrajectoryKL, kl_to_initial
from goodhart.experiments.reward_learning.reward_model import (
    FitConfig,
    RewardModel,
    RewardModelError,
    fit_reward_model,
    load_reward_model,
    save_reward_model,
)
from goodhart.experiments.reward_learning.segments import collect_segments
from goodhart.experiments.reward_learning.sources import evaluation_states


def open_reward_model(path: str | Path, env_id: str, obs_shape: tuple[int, ...], source: str) -> RewardModel:
    """Load a reward model and check it fits the env; one ConfigError line otherwise."""
    try:
        model = load_reward_model(path)
        model.check_env(env_id, obs_shape, str(path))
    except RewardModelError as err:
        raise ConfigError(f"{source}: {err}") from None
    return model


class RewardModelTraining:
    """What ``goodhart train`` adds for a config with a ``reward_model`` section: the wrapped
    env (:attr:`env`), the frozen initial policy (:meth:`attach`) and the callbacks."""

    def __init__(self, cfg: RunConfig, folder: Path) -> None:
        spec = cfg.reward_model
        assert spec is not None
        self.cfg, self.spec, self.folder = cfg, spec, folder
        obs_shape = core_class(cfg.env)(1, **cfg.env_kwargs).observation_shape
        self.model = open_reward_model(spec.path, cfg.env, tuple(obs_shape), "reward_model.path")
        try:
            self.model = self.model.with_objective(spec.objective, spec.uncertainty_coef)
        except ValueError as err:
            raise ConfigError(f"reward_model.objective: {spec.path}: {err}") from None
        self.env: RewardModelVecEnv | None = None
        self.dataset: PreferenceDataset | None = None
        if spec.iterated is not None:
            try:
                self.dataset = load_dataset(spec.iterated.dataset)
            except DatasetFileError as err:
                raise ConfigError(f"reward_model.iterated.dataset: {err}") from None
            if self.dataset.env_id != cfg.env:
                raise ConfigError(f"reward_model.iterated.dataset: {spec.iterated.dataset} holds segments of {self.dataset.env_id}, not {cfg.env}")
        self.initial = None

    def wrap(self, venv: GridVecEnv) -> RewardModelVecEnv:
        """The training VecEnv with the reward model's reward."""
        self.env = RewardModelVecEnv(venv, self.model, self.spec.scale)
        return self.env

    def attach(self, model) -> None:
        """Keep a frozen copy of ``model``'s policy as built (before any resume): the
        initial policy of the KL penalty and of the KL measurements."""
        self.initial = copy.deepcopy(model.policy)
        self.initial.set_training_mode(False)
        for parameter in self.initial.parameters():
            parameter.requires_grad_(False)

    def callbacks(self, resumed_at: int | None) -> list[BaseCallback]:
        callbacks: list[BaseCallback] = []
        if self.spec.kl_coef > 0:
            callbacks.append(KLPenalty(self.initial, self.spec.kl_coef))
        if self.spec.iterated is not None:
            callbacks.append(IteratedRefit(self, resumed_at))
        if self.spec.eval_freq:
            callbacks.append(OveroptimizationMonitor(self, resumed_at))
        return callbacks

    def measure(self, policy, timestep: int, states: np.ndarray) -> dict[str, Any]:
        """KL to the initial policy on ``states`` (``kl``, ``d``) and along the policy's own
        episodes (``trajectory_kl``, ``d_trajectory``), with the mean outcomes of
        ``eval_episodes`` episodes on the eval levels and the learned return."""
        cfg = self.cfg
        kl = kl_to_initial(policy, self.initial, states)
        live = LoadedModel(policy=policy, config=cfg.model_dump(mode="json"), env_id=cfg.env)
        row = measure_policy(ModelPolicy(live, deterministic=cfg.eval.deterministic), cfg, self.env.model, self.spec.scale,
                             self.spec.eval_episodes, kl_against=(policy, self.initial))
        return {"timestep": timestep, "kl": kl, "d": math.sqrt(max(kl, 0.0)),
                "d_trajectory": math.sqrt(max(row["trajectory_kl"], 0.0)), **row}


def measure_policy(policy: Policy, cfg: RunConfig, model: RewardModel, scale: float, episodes: int,
                   kl_against: tuple[Any, Any] | None = None) -> dict[str, float]:
    """Mean outcomes of ``episodes`` episodes of ``policy`` on ``cfg``'s eval levels (its first
    eval distribution), with the return ``model`` gives them (``reward_model_return``) and,
    given ``(network, initial network)`` of the policy, their ``trajectory_kl``."""
    def wrap(env: GridVecEnv):
        env = RewardModelVecEnv(env, model, scale)
        return env if kl_against is None else TrajectoryKL(env, *kl_against)

    outcomes = run_episodes(policy, cfg.env, cfg.env_kwargs, distribution=cfg.eval.distributions[0], episodes=episodes,
                            level_seed=cfg.eval.level_seed, wrap=wrap)
    return summarize(outcomes, core_class(cfg.env))


class OveroptimizationMonitor(BaseCallback):
    """Measures (:meth:`RewardModelTraining.measure`) at step 0 and every ``eval_freq``
    steps, between rollouts, into ``reward_model.csv`` and TensorBoard ``rlhf/...``."""

    def __init__(self, setup: RewardModelTraining, resumed_at: int | None) -> None:
        super().__init__()
        self.setup = setup
        self.log = CsvLog(setup.folder / "reward_model.csv", resumed_at)
        freq = setup.spec.eval_freq
        self.next = 0 if resumed_at is None else (resumed_at // freq + 1) * freq
        cfg = setup.cfg
        self.states = evaluation_states(cfg.env, {k: v for k, v in cfg.env_kwargs.items() if k != "distribution"}, setup.spec.eval_states)

    def _measure(self) -> None:
        self.model.policy.set_training_mode(False)
        row = self.setup.measure(self.model.policy, self.num_timesteps, self.states)
        for key in ("kl", "d", "trajectory_kl", "d_trajectory", "true_return", "return", "reward_model_return"):
            self.logger.record(f"rlhf/{key}", row[key])
        self.log.write([row])

    def _on_training_start(self) -> None:
        if self.num_timesteps >= self.next:
            self._measure()
            self.next = self.num_timesteps + self.setup.spec.eval_freq

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.next:
            self._measure()
            self.next += self.setup.spec.eval_freq

    def _on_training_end(self) -> None:
        if self.num_timesteps > self.next - self.setup.spec.eval_freq:
            self._measure()

    def _on_step(self) -> bool:
        return True


class IteratedRefit(BaseCallback):
    """Every ``iterated.freq`` steps: ``iterated.labels`` pairs of segments of the current
    policy, rated by the dataset's rater, added to the dataset; the model refitted from its
    current weights for ``iterated.epochs`` epochs; both saved as ``reward_model/step_<n>``.
    Each round is seeded by the run's seed and the step, so a resumed run repeats it.

    Which pairs (``iterated.query``, :func:`choose_pairs`): ``random`` pairs up ``2 * labels``
    segments at random, each segment in one pair. ``disagreement`` collects ``candidates``
    times as many segments, ``2 * labels * candidates``, so that the ``labels * candidates``
    candidate pairs are again disjoint (one shuffle of the pool): no candidate is drawn twice,
    the kept pairs share no segment, and every kept pair is one the model (before the refit)
    disputes most among genuinely different comparisons; from ``2 * labels`` segments the
    candidates would repeat pairs and the most disputed segments would be labelled again and
    again. The price is ``candidates`` times the rollout steps per round. Only the compared
    segments join the dataset (:meth:`PreferenceDataset.add`), so both modes add ``2 * labels``
    segments a round; with ``candidates = 1`` the two modes label the same pairs. The mean
    disagreement of the chosen pairs is logged as ``rlhf/query_disagreement``."""

    def __init__(self, setup: RewardModelTraining, resumed_at: int | None) -> None:
        super().__init__()
        self.setup = setup
        spec = setup.spec.iterated
        self.check(setup)
        self.freq = spec.freq
        self.folder = setup.folder / "reward_model"
        restored = self._restore(resumed_at) if resumed_at else None
        # the nominal schedule (freq, 2 freq, ...) after the restored round; a round lost with
        # its process is redone at once
        self.next = self.freq if restored is None else (restored // self.freq + 1) * self.freq

    @staticmethod
    def check(setup: RewardModelTraining) -> None:
        """Refuse a disagreement query on a model of one net (one ConfigError line)."""
        if setup.spec.iterated.query == "disagreement" and len(setup.model.nets) < 2:
            raise ConfigError(f"reward_model.iterated.query: disagreement queries need an ensemble; {setup.spec.path} has one net "
                              "(fit it with ensemble >= 2)")

    def _restore(self, step: int) -> int | None:
        """Load the newest round saved at or before ``step``; its step (None: none)."""
        rounds = sorted(int(p.stem.split("_")[1]) for p in self.folder.glob("step_*.json") if not p.stem.endswith("_data"))
        done = [r for r in rounds if r <= step]
        if not done:
            return None
        last = self.folder / f"step_{done[-1]:012d}"
        self.setup.dataset = load_dataset(f"{last}_data")
        self.setup.env.set_model(load_reward_model(last).with_objective(self.setup.spec.objective, self.setup.spec.uncertainty_coef))
        return done[-1]

    def _on_rollout_start(self) -> None:
        if self.num_timesteps < self.next:
            return
        from goodhart.experiments.reward_learning.queries import choose_pairs, pair_disagreement

        setup, spec, cfg = self.setup, self.setup.spec.iterated, self.setup.cfg
        step = self.num_timesteps
        live = LoadedModel(policy=self.model.policy, config=cfg.model_dump(mode="json"), env_id=cfg.env)
        dataset = setup.dataset
        active = spec.query == "disagreement"
        segments = collect_segments(
            ModelPolicy(live, name="policy"), cfg.env, cfg.env_kwargs, count=2 * spec.labels * (spec.candidates if active else 1),
            length=dataset.segments.length, seed=cfg.seed * 1_000_003 + step,
        )
        rng = np.random.default_rng([cfg.seed, step])
        if active:
            pairs = choose_pairs(setup.env.model, segments, spec.labels, rng, spec.query, spec.candidates)
            self.logger.record("rlhf/query_disagreement", float(pair_disagreement(setup.env.model, segments, pairs).mean()))
            dataset = dataset.add(segments, rng, spec.labels, pairs=pairs)
        else:
            dataset = dataset.add(segments, rng, spec.labels)  # random pairs, as sampled by choose_pairs' random query
        fitted = fit_reward_model(dataset, refit_config(setup.env.model, spec.epochs, cfg.seed + step), initial=setup.env.model)
        fitted = fitted.with_objective(setup.spec.objective, setup.spec.uncertainty_coef)
        stem = self.folder / f"step_{step:012d}"
        save_dataset(dataset, f"{stem}_data")
        save_reward_model(fitted, stem)
        setup.dataset = dataset
        setup.env.set_model(fitted)
        self.logger.record("rlhf/labels", len(dataset))
        self.logger.record("rlhf/held_out_accuracy", fitted.meta["accuracy"]["held_out"])
        self.next += self.freq

    def _on_step(self) -> bool:
        return True


def refit_config(model: RewardModel, epochs: int, seed: int) -> FitConfig:
    """The fit settings of ``model``, with ``epochs`` and ``seed``."""
    fit = model.meta.get("fit", {})
    return FitConfig(
        network=model.meta["network"], ensemble=len(model.nets), epochs=epochs, batch_size=fit.get("batch_size", 32),
        learning_rate=fit.get("learning_rate", 1e-3), weight_decay=fit.get("weight_decay", 1e-4),
        val_fraction=fit.get("val_fraction", 0.2), bootstrap=fit.get("bootstrap", False), seed=seed,
    )

