"""Bring your own trainer: a single-file PPO in the style of CleanRL, on ``gymnasium.make_vec``.

Read it top to bottom. It knows nothing of this project but three things every env here
declares through Gymnasium: ``info["true_reward"]`` beside the reward at every step,
``info["outcome"]`` (proxy ``return``, ``true_return`` and the env's own outcomes) when an
episode ends, and the registered ids. It logs both returns of every finished episode, so the
Goodhart curve shows in its own log; at the end it writes the policy in the project's model
format (safetensors + JSON), so ``goodhart evaluate``, ``record`` and ``demo`` read it.

Its settings (:class:`Args`) are generic, the same for every env, close to CleanRL's
``ppo_atari.py`` and the shipped configs: 32 copies x 128 steps, Adam at 5e-4 (constant, as in
stable-baselines3; CleanRL anneals it), 4 epochs of minibatches of 512, the clipped objective
(0.2) with a clipped value loss, GAE (gamma 0.99, lambda 0.95), normalised advantages, a
constant entropy bonus of 0.01, and a CNN of two 3x3 convolutions (16 channels, then 32 at
stride 2) and one linear layer of 128 shared by the policy and value heads. They are not tuned
per env: a phenomenon that needs another setting is a property of that setting, not the env.

Run it::

    python -m goodhart.agents.example_ppo --env-id goodhart/LoopRace-v0 \\
        --env-kwargs '{"reward": "progress"}' --total-timesteps 400000 --seed 0 --out runs/example

or through the project's runs and reproductions with ``trainer: example`` in a run config
(``goodhart reproduce NAME --trainer example``), which calls :func:`train` below.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

import goodhart.envs  # noqa: F401  (registers the goodhart/* ids with Gymnasium)


@dataclass
class Args:
    """The run: the env, its keyword arguments, the seed and the length; then PPO's settings."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    total_timesteps: int = 400_000
    num_envs: int = 32
    num_steps: int = 128
    learning_rate: float = 5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    minibatch_size: int = 512
    update_epochs: int = 4
    clip_coef: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    channels: tuple[int, int] = (16, 32)
    strides: tuple[int, int] = (1, 2)
    features_dim: int = 128
    torch_threads: int = 1  # small networks run fastest on one thread; run seeds as processes


def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias: float = 0.0) -> nn.Module:
    """CleanRL's orthogonal initialisation."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class Agent(nn.Module):
    """Two 3x3 convolutions and a linear layer, shared by a policy head and a value head. The
    observations are the env's symbolic planes ``(C, H, W)`` in {0, 1}."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, args: Args) -> None:
        super().__init__()
        (c1, c2), (s1, s2) = args.channels, args.strides
        convs = nn.Sequential(
            layer_init(nn.Conv2d(obs_shape[0], c1, 3, stride=s1, padding=1)), nn.ReLU(),
            layer_init(nn.Conv2d(c1, c2, 3, stride=s2, padding=1)), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = convs(torch.zeros(1, *obs_shape)).shape[1]
        self.network = nn.Sequential(*convs, layer_init(nn.Linear(flat, args.features_dim)), nn.ReLU())
        self.actor = layer_init(nn.Linear(args.features_dim, n_actions), std=0.01)
        self.critic = layer_init(nn.Linear(args.features_dim, 1), std=1.0)

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(self.network(x))

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        hidden = self.network(x)
        probs = Categorical(logits=self.actor(hidden))
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(hidden)


class EpisodeLog:
    """One CSV row per finished episode: the step count, the copy, and its outcome (the proxy
    ``return``, the ``true_return`` and the env's own outcomes)."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "w", newline="")
        self.writer = None  # a csv.DictWriter, once the first episode names the columns

    def write(self, timestep: int, info: dict[str, Any]) -> list[dict[str, float]]:
        if "outcome" not in info:
            return []
        outcome, rows = info["outcome"], []
        for i in np.flatnonzero(info["_outcome"]):
            row = {"timestep": timestep, "env": int(i)} | {k: v[i].item() for k, v in outcome.items() if not k.startswith("_")}
            if self.writer is None:
                self.writer = csv.DictWriter(self.file, fieldnames=list(row))
                self.writer.writeheader()
            self.writer.writerow(row)
            rows.append(row)
        return rows

    def close(self) -> None:
        self.file.close()


def train(args: Args, out: Path, progress: Callable[[int], None] | None = None) -> Agent:
    """Train, writing ``episodes.csv`` and ``args.json`` in ``out``; returns the agent."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(asdict(args), indent=2) + "\n")
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    envs = gym.make_vec(args.env_id, num_envs=args.num_envs, **args.env_kwargs)
    obs_shape = envs.single_observation_space.shape
    if len(obs_shape) != 3 or obs_shape[-1] == 3:
        raise ValueError(f"the example trains on symbolic planes (C, H, W); {args.env_id} gives {obs_shape} (use obs_mode='symbolic')")
    agent = Agent(obs_shape, envs.single_action_space.n, args)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    log = EpisodeLog(out / "episodes.csv")

    # Storage for one rollout.
    n, t_len = args.num_envs, args.num_steps
    obs = torch.zeros((t_len, n) + obs_shape)
    actions = torch.zeros((t_len, n), dtype=torch.long)
    logprobs, rewards, dones, values = (torch.zeros((t_len, n)) for _ in range(4))

    next_obs = torch.as_tensor(envs.reset(seed=args.seed)[0]).float()
    next_done = torch.zeros(n)
    batch_size = n * t_len
    iterations = -(-args.total_timesteps // batch_size)
    global_step, started = 0, time.time()
    for iteration in range(1, iterations + 1):
        finished: list[dict[str, float]] = []
        for step in range(t_len):
            global_step += n
            obs[step], dones[step] = next_obs, next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
            actions[step], logprobs[step], values[step] = action, logprob, value.flatten()
            next_np, reward, terminated, truncated, info = envs.step(action.numpy())
            # Same-step autoreset: next_np already starts the new episode of a copy that ended.
            rewards[step] = torch.as_tensor(reward).float()
            next_obs, next_done = torch.as_tensor(next_np).float(), torch.as_tensor(terminated | truncated).float()
            finished += log.write(global_step, info)

        # Generalised advantage estimation, backwards through the rollout.
        with torch.no_grad():
            next_value = agent.get_value(next_obs).flatten()
            advantages = torch.zeros_like(rewards)
            last = torch.zeros(n)
            for t in reversed(range(t_len)):
                not_done = 1.0 - (next_done if t == t_len - 1 else dones[t + 1])
                following = next_value if t == t_len - 1 else values[t + 1]
                delta = rewards[t] + args.gamma * following * not_done - values[t]
                last = delta + args.gamma * args.gae_lambda * not_done * last
                advantages[t] = last
            returns = advantages + values

        b_obs, b_actions = obs.reshape((-1,) + obs_shape), actions.reshape(-1)
        b_logprobs, b_advantages = logprobs.reshape(-1), advantages.reshape(-1)
        b_returns, b_values = returns.reshape(-1), values.reshape(-1)

        # The clipped surrogate objective, a clipped value loss and the entropy bonus.
        indices = np.arange(batch_size)
        for _epoch in range(args.update_epochs):
            np.random.shuffle(indices)
            for start in range(0, batch_size, args.minibatch_size):
                mb = indices[start:start + args.minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb], b_actions[mb])
                ratio = (newlogprob - b_logprobs[mb]).exp()
                mb_adv = b_advantages[mb]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                newvalue = newvalue.flatten()
                v_clipped = b_values[mb] + (newvalue - b_values[mb]).clamp(-args.clip_coef, args.clip_coef)
                v_loss = 0.5 * torch.max((newvalue - b_returns[mb]) ** 2, (v_clipped - b_returns[mb]) ** 2).mean()
                loss = pg_loss - args.ent_coef * entropy.mean() + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        if finished:
            proxy = np.mean([row["return"] for row in finished])
            true = np.mean([row["true_return"] for row in finished])
            print(f"step {global_step}: {len(finished)} episodes, return {proxy:.2f}, true return {true:.2f}, "
                  f"{global_step / (time.time() - started):.0f} steps/s", flush=True)
        if progress is not None:
            progress(global_step)
    log.close()
    envs.close()
    return agent


def policy_tensors(agent: Agent) -> dict[str, torch.Tensor]:
    """The agent's weights under the names of the project's policy (goodhart.agents.networks.GridCNN
    in a stable-baselines3 ActorCriticPolicy with shared features and no hidden layers), so that
    the project's tools load it: the two convolutions, the linear layer and the two heads."""
    conv1, conv2, linear = (m for m in agent.network if isinstance(m, nn.Conv2d | nn.Linear))
    names = {
        "features_extractor.cnn.0": conv1, "features_extractor.cnn.2": conv2, "features_extractor.linear.0": linear,
        "action_net": agent.actor, "value_net": agent.critic,
    }
    return {f"{name}.{p}": getattr(module, p).detach().clone() for name, module in names.items() for p in ("weight", "bias")}


def network_config(args: Args) -> dict[str, Any]:
    """The agent's network in the project's config terms (``network:`` of a run config)."""
    return {"channels": list(args.channels), "strides": list(args.strides), "features_dim": args.features_dim, "net_arch": [], "share_features": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = Args(env_id="")
    parser.add_argument("--env-id", required=True, help="a registered id (goodhart/...; the ids: goodhart.envs.ENVS)")
    parser.add_argument("--env-kwargs", default="{}", type=json.loads, help="the env's keyword arguments, as JSON")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--total-timesteps", type=int, default=defaults.total_timesteps)
    parser.add_argument("--out", type=Path, required=True, help="the folder for episodes.csv, args.json and model.safetensors/.json")
    cli = parser.parse_args()
    args = Args(env_id=cli.env_id, env_kwargs=cli.env_kwargs, seed=cli.seed, total_timesteps=cli.total_timesteps)
    agent = train(args, cli.out)
    from goodhart.agents.model_io import save_policy_tensors

    config = {"env": args.env_id, "env_kwargs": args.env_kwargs, "seed": args.seed, "trainer": "example", "network": network_config(args)}
    space = gym.make_vec(args.env_id, num_envs=1, **args.env_kwargs)
    save_policy_tensors(policy_tensors(agent), space.single_observation_space, space.single_action_space, cli.out / "model", config)
    print(f"wrote {cli.out / 'model'}.safetensors and .json")


if __name__ == "__main__":
    main()
